#!/usr/bin/env bash
# Creates .venv (Python 3.9-3.11) with requirements.txt installed, once; later calls only check it.
# Sourced by run_demo.sh and run_tests.sh. With WITH_BEAM=1 (run_tests.sh sets it) it installs
# requirements-beam.txt (Apache Beam, for beam_bottlenecks.py) too, and with WITH_TFLITE=1 (run_tests.sh
# sets it too) requirements-tflite.txt (MediaPipe, for the TF Lite metadata).
set -euo pipefail
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="$repo_dir/.venv"
stamp="$venv_dir/.requirements-installed"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.10 python3.9 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$venv_dir/bin/python" ]; then
  python_bin="$(pick_python)" || {
    echo "ERROR: Python 3.9, 3.10 or 3.11 is needed (TensorFlow 2.15 + tensorflow-hub 0.15); set PYTHON=/path/to/python3.11." >&2
    exit 1
  }
  "$python_bin" -m venv "$venv_dir"
fi
if [ ! -f "$stamp" ] || [ "$repo_dir/requirements.txt" -nt "$stamp" ]; then
  echo "Installing requirements into $venv_dir (first run only)..."
  "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo_dir/requirements.txt"
  touch "$stamp"
fi
beam_stamp="$venv_dir/.requirements-beam-installed"
if [ "${WITH_BEAM:-0}" = 1 ] && { [ ! -f "$beam_stamp" ] || [ "$repo_dir/requirements-beam.txt" -nt "$beam_stamp" ] ||
    [ "$repo_dir/requirements.txt" -nt "$beam_stamp" ]; }; then
  echo "Installing requirements-beam.txt into $venv_dir (first run only)..."
  "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo_dir/requirements.txt" \
    -r "$repo_dir/requirements-beam.txt"
  touch "$beam_stamp"
fi
tflite_stamp="$venv_dir/.requirements-tflite-installed"
if [ "${WITH_TFLITE:-0}" = 1 ] && { [ ! -f "$tflite_stamp" ] || [ "$repo_dir/requirements-tflite.txt" -nt "$tflite_stamp" ] ||
    [ "$repo_dir/requirements.txt" -nt "$tflite_stamp" ]; }; then
  echo "Installing requirements-tflite.txt into $venv_dir (first run only)..."
  extra=()
  [ "${WITH_BEAM:-0}" = 1 ] && extra=(-r "$repo_dir/requirements-beam.txt")
  # All at once, so that pip resolves MediaPipe against TensorFlow's (and Beam's) pins.
  "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo_dir/requirements.txt" \
    "${extra[@]}" -r "$repo_dir/requirements-tflite.txt"
  touch "$tflite_stamp"
fi
