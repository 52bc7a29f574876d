#!/usr/bin/env bash
# Runs the tests on both stacks: sets up .venv (today's stack, with Apache Beam, MediaPipe and ONNX) and, where
# a Python 3.9-3.11 is found, .venv-classic (the classic stack, with ONNX from Python 3.10 on); runs the
# command-line, half_plus_two and ONNX tests on the classic stack, then the whole suite on today's (whose tests
# that compare with hub.Module use .venv-classic). Extra arguments go to the whole suite's pytest.
#   PYTHON=...          today's stack's Python (3.10-3.13); CLASSIC_PYTHON=... the classic stack's (3.9-3.11)
#   RETRAIN_CLASSIC=0   today's stack alone
#   RETRAIN_STACK=classic  the whole suite on the classic stack alone
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
# Two worker processes, each taking whole test files (their module-scoped set-ups stay in one process);
# pass -n 0 to run in this process alone (e.g. with --pdb).
pytest_args=(-p no:cacheprovider -n 2 --dist loadfile --durations=10)

if [ "${RETRAIN_STACK:-today}" = classic ]; then
  WITH_ONNX=1 source tools/setup_venv.sh
  exec "$venv_python" -m pytest "${pytest_args[@]}" "$@" tests
fi

classic_python=""
if [ "${RETRAIN_CLASSIC:-1}" != 0 ]; then
  status=0
  (PYTHON="${CLASSIC_PYTHON:-}" RETRAIN_STACK=classic WITH_ONNX=1 source tools/setup_venv.sh) || status=$?
  if [ "$status" = 0 ]; then
    classic_python="$PWD/.venv-classic/bin/python"
  elif [ "$status" = 3 ]; then
    echo "The classic stack is not tested here (no Python 3.9-3.11; set CLASSIC_PYTHON=/path/to/python3.11)."
  else
    exit "$status"
  fi
fi
WITH_BEAM=1 WITH_TFLITE=1 WITH_ONNX=1 source tools/setup_venv.sh

if [ -n "$classic_python" ]; then
  echo "== The classic stack (TensorFlow 2.15, hub.Module): the command-line, half_plus_two and ONNX tests"
  "$classic_python" -m pytest "${pytest_args[@]}" tests/test_retrain_cli.py tests/test_half_plus_two.py \
    tests/test_onnx.py
fi
echo "== Today's stack (TensorFlow 2.21): the whole suite"
RETRAIN_CLASSIC_PYTHON="$classic_python" exec "$venv_python" -m pytest "${pytest_args[@]}" "$@" tests
