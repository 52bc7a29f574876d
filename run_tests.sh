#!/usr/bin/env bash
# Sets up .venv if needed (with Apache Beam), then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
WITH_BEAM=1 source tools/setup_venv.sh  # The tests cover beam_bottlenecks.py too.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
exec .venv/bin/python -m pytest -p no:cacheprovider --durations=10 "$@" tests
