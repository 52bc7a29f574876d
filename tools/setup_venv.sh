#!/usr/bin/env bash
# Creates the virtual environment of a stack once, with its requirements installed; later calls only check it.
# Sourced by run_demo.sh and run_tests.sh, which then run "$venv_python".
#
#   today's stack (default)    requirements.txt in .venv, Python 3.10-3.13
#   RETRAIN_STACK=classic      requirements-classic.txt in .venv-classic, Python 3.9-3.11
#
# PYTHON=/path/to/python3.x picks the interpreter (else python3, then the newest python3.x found).
# With WITH_BEAM=1 (run_tests.sh sets it) requirements-beam.txt (Apache Beam, for beam_bottlenecks.py) goes in
# too, and with WITH_TFLITE=1 requirements-tflite.txt (MediaPipe, which reads the TF Lite metadata): today's
# stack only. WITH_ONNX=1 adds requirements-onnx.txt (tf2onnx, onnx, ONNX Runtime) on either stack, from
# Python 3.10 on. The venv is installed again when its requirement files change.
set -euo pipefail
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# python_in_range PYTHON MIN MAX: whether PYTHON runs and is 3.MIN to 3.MAX.
python_in_range() {
  "$1" -c "import sys; sys.exit(not (3, $2) <= sys.version_info[:2] <= (3, $3))" >/dev/null 2>&1
}

# pick_python MIN MAX: $PYTHON if set (and only it), else the first of python3 and python3.MAX .. python3.MIN
# that is in range.
pick_python() {
  local minor candidates=()
  if [ -n "${PYTHON:-}" ]; then
    candidates=("$PYTHON")
  else
    candidates=(python3)
    for ((minor = $2; minor >= $1; minor--)); do candidates+=("python3.$minor"); done
  fi
  for candidate in "${candidates[@]}"; do
    if command -v "$candidate" >/dev/null 2>&1 && python_in_range "$candidate" "$1" "$2"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if [ "${RETRAIN_STACK:-today}" = classic ]; then
  venv_dir="$repo_dir/.venv-classic" min_minor=9 max_minor=11
  requirement_files=(requirements-classic.txt)
  no_python="the classic stack (requirements-classic.txt: TensorFlow 2.15) needs Python 3.9, 3.10 or 3.11"
else
  venv_dir="$repo_dir/.venv" min_minor=10 max_minor=13
  requirement_files=(requirements.txt)
  [ "${WITH_BEAM:-0}" = 1 ] && requirement_files+=(requirements-beam.txt)
  [ "${WITH_TFLITE:-0}" = 1 ] && requirement_files+=(requirements-tflite.txt)
  no_python="requirements.txt (TensorFlow 2.21) needs Python 3.10, 3.11, 3.12 or 3.13; for Python 3.9, use the classic stack: RETRAIN_STACK=classic (requirements-classic.txt)"
fi
venv_python="$venv_dir/bin/python"

if [ -x "$venv_python" ] && ! python_in_range "$venv_python" "$min_minor" "$max_minor"; then
  echo "Recreating $venv_dir: its Python does not fit the requirements..."
  rm -rf "$venv_dir"
fi
if [ ! -x "$venv_python" ]; then
  python_bin="$(pick_python "$min_minor" "$max_minor")" || {
    echo "ERROR: $no_python; ${PYTHON:+PYTHON=$PYTHON is not one of them; }set PYTHON=/path/to/python3.$max_minor (or another)." >&2
    exit 3  # run_tests.sh tells this apart from a failed install.
  }
  "$python_bin" -m venv "$venv_dir"
fi

# requirements-onnx.txt fits both stacks; tf2onnx 1.17 needs Python 3.10 or newer.
if [ "${WITH_ONNX:-0}" = 1 ] && python_in_range "$venv_python" 10 13; then
  requirement_files+=(requirements-onnx.txt)
fi

# The stamp holds what was installed: the Python version and the requirement files' contents.
stamp="$venv_dir/.requirements-installed"
wanted="$("$venv_python" -V 2>&1; cd "$repo_dir" && cat "${requirement_files[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "Installing ${requirement_files[*]} into $venv_dir (first run only)..."
  # All at once, so that pip resolves the extras against TensorFlow's pins.
  (cd "$repo_dir" && "$venv_python" -m pip install --quiet --disable-pip-version-check \
    $(printf -- '-r %s ' "${requirement_files[@]}"))
  printf '%s' "$wanted" >"$stamp"
fi
