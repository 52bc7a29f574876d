#!/usr/bin/env bash
# Sets up .venv if needed (with Apache Beam and MediaPipe), then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# The tests cover beam_bottlenecks.py and the TF Lite metadata (MediaPipe) too.
WITH_BEAM=1 WITH_TFLITE=1 source tools/setup_venv.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
# Two worker processes, each taking whole test files (their module-scoped set-ups stay in one process);
# pass -n 0 to run in this process alone (e.g. with --pdb).
exec .venv/bin/python -m pytest -p no:cacheprovider -n 2 --dist loadfile --durations=10 "$@" tests
