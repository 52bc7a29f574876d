#!/usr/bin/env bash
# The whole job on the shipped sample, offline: sets up .venv (RETRAIN_STACK=classic: .venv-classic), builds the sample image module,
# retrains it on flower_photos_sample/ and classifies one photo with the frozen graph.
# Outputs go to $DEMO_DIR (default /tmp/retrain_demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source tools/setup_venv.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
demo_dir="${DEMO_DIR:-/tmp/retrain_demo}"
module_dir="$demo_dir/sample_module"
photo="flower_photos_sample/roses/$(ls flower_photos_sample/roses | head -n 1)"

if [ ! -f "$module_dir/tfhub_module.pb" ]; then
  echo "== Building the sample image module in $module_dir"
  "$venv_python" make_image_module.py "$module_dir"
fi

echo "== Retraining on flower_photos_sample/"
"$venv_python" retrain.py \
  --image_dir flower_photos_sample \
  --tfhub_module "$module_dir" \
  --output_graph "$demo_dir/output_graph.pb" \
  --output_labels "$demo_dir/output_labels.txt" \
  --summaries_dir "$demo_dir/retrain_logs" \
  --bottleneck_dir "$demo_dir/bottleneck" \
  --checkpoint_path "$demo_dir/checkpoint/_retrain_checkpoint" \
  --saved_model_dir "$demo_dir/saved_models/$(date +%s)/" \
  --tflite_output_file "$demo_dir/output_graph.tflite" \
  "$@"

echo "== Classifying $photo with the frozen graph"
"$venv_python" label_image.py \
  --graph "$demo_dir/output_graph.pb" \
  --labels "$demo_dir/output_labels.txt" \
  --image "$photo"

echo "== Done. TensorBoard: $(dirname "$venv_python")/tensorboard --logdir $demo_dir/retrain_logs"
