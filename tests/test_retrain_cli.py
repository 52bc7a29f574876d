"""End-to-end runs of `python retrain.py`, checking each output as its user would."""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import retrain

from conftest import (SAMPLE_DIR, retrain_output_args, run_retrain_alone,
                      run_tool)

tf.disable_v2_behavior()

SAMPLE_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']


def _sample_images():
  """(path, class index) of every sample photo."""
  images = []
  for class_index, name in enumerate(SAMPLE_CLASSES):
    for path in sorted(glob.glob(os.path.join(SAMPLE_DIR, name, '*'))):
      if path.lower().endswith(('.jpg', '.jpeg', '.png')):
        images.append((path, class_index))
  return images


def _final_accuracy(output):
  match = re.search(r'Final test accuracy = ([0-9.]+)% \(N=(\d+)\)', output)
  assert match, output[-3000:]
  return float(match.group(1)), int(match.group(2))


@pytest.fixture(scope='module')
def default_run(sample_module, tmp_path_factory):
  """One run with the default training flags on the sample, all outputs on."""
  out_dir = str(tmp_path_factory.mktemp('default_run'))
  saved_model_dir = os.path.join(out_dir, 'saved_models', '1')
  os.makedirs(os.path.join(out_dir, 'tmp'))
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--saved_model_dir', saved_model_dir,
      '--intermediate_store_frequency', '1500',
      '--print_misclassified_test_images'] + retrain_output_args(out_dir),
                    env={'TMPDIR': os.path.join(out_dir, 'tmp')})
  return out_dir, saved_model_dir, result


def test_a_run_leaves_nothing_in_the_temporary_folder(default_run):
  # E.g. AutoGraph's converted code, which it removes only at a clean exit.
  out_dir, _, _ = default_run
  assert os.listdir(os.path.join(out_dir, 'tmp')) == []


def test_default_run_succeeds_and_reaches_90_percent(default_run):
  _, _, result = default_run
  assert result.returncode == 0, result.stdout[-3000:]
  accuracy, count = _final_accuracy(result.stdout)
  assert count >= 15
  assert accuracy >= 90.0
  for line in ('Step 0: Train accuracy = ', 'Step 0: Cross entropy = ',
               'Step 3999: Train accuracy = ', 'Step 3999: Cross entropy = ',
               '=== MISCLASSIFIED TEST IMAGES ==='):
    assert line in result.stdout
  assert re.search(r'Step 3999: Validation accuracy = [0-9.]+% \(N=100\)',
                   result.stdout)
  assert 'Traceback' not in result.stdout
  # People see the run's own lines, not TensorFlow's deprecation pages.
  assert 'deprecated' not in result.stdout
  assert 'Instructions for updating' not in result.stdout


def test_labels_file_lists_classes_in_index_order(default_run):
  out_dir, _, _ = default_run
  with open(os.path.join(out_dir, 'output_labels.txt')) as f:
    assert f.read() == '\n'.join(SAMPLE_CLASSES) + '\n'


def test_frozen_graph_classifies_the_sample_photos(default_run, sample_module):
  out_dir, _, _ = default_run
  height, width = retrain.load_module_spec(sample_module).image_size
  graph_def = tf.GraphDef()
  with open(os.path.join(out_dir, 'output_graph.pb'), 'rb') as f:
    graph_def.ParseFromString(f.read())
  images = _sample_images()
  with tf.Graph().as_default():
    probabilities, = tf.import_graph_def(
        graph_def, return_elements=['final_result:0'], name='')
    input_tensor = tf.get_default_graph().get_tensor_by_name('Placeholder:0')
    assert input_tensor.get_shape().as_list() == [None, height, width, 3]
    jpeg = tf.placeholder(tf.string)
    decoded = tf.image.resize_bilinear(tf.expand_dims(
        tf.image.convert_image_dtype(tf.image.decode_jpeg(jpeg, channels=3),
                                     tf.float32), 0), [height, width])
    with tf.Session() as sess:
      batch = np.concatenate([
          sess.run(decoded, {jpeg: open(path, 'rb').read()})
          for path, _ in images])
      result = sess.run(probabilities, {input_tensor: batch})
  assert result.shape == (len(images), len(SAMPLE_CLASSES))
  np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=1e-4)
  truth = np.array([label for _, label in images])
  assert np.mean(result.argmax(axis=1) == truth) >= 0.9


def test_saved_model_loads_and_serves_probabilities(default_run,
                                                    sample_module):
  _, saved_model_dir, _ = default_run
  height, width = retrain.load_module_spec(sample_module).image_size
  # tf.saved_model.load needs TF2 behaviour: a fresh Python, as a server has.
  script = (
      'import json, sys\n'
      'import numpy as np\n'
      'import tensorflow as tf\n'
      'model = tf.saved_model.load(sys.argv[1], tags=["serve"])\n'
      'serve = model.signatures["serving_default"]\n'
      'images = np.random.RandomState(0).rand(3, %d, %d, 3).astype("float32")\n'
      'out = serve(image=tf.constant(images))\n'
      'print(json.dumps({"keys": sorted(out), '
      '"inputs": sorted(serve.structured_input_signature[1]), '
      '"prediction": out["prediction"].numpy().tolist()}))\n' % (height, width))
  completed = subprocess.run(
      [sys.executable, '-c', script, saved_model_dir], stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True, timeout=300, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert completed.returncode == 0, completed.stderr[-3000:]
  answer = json.loads(completed.stdout.strip().splitlines()[-1])
  assert answer['keys'] == ['prediction']
  assert answer['inputs'] == ['image']
  prediction = np.array(answer['prediction'])
  assert prediction.shape == (3, len(SAMPLE_CLASSES))
  np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-4)


def test_tensorboard_finds_the_original_scalars(default_run):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  out_dir, _, _ = default_run
  tags = {}
  for run in ('train', 'validation'):
    accumulator = event_accumulator.EventAccumulator(
        os.path.join(out_dir, 'retrain_logs', run),
        size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    tags[run] = accumulator.Tags()
    accuracy_tag = [t for t in tags[run]['scalars']
                    if re.match(r'^accuracy(_\d+)?$', t)]
    assert len(accuracy_tag) == 1, tags[run]['scalars']
    events = accumulator.Scalars(accuracy_tag[0])
    # Training writes every step; validation every --eval_step_interval.
    assert len(events) == (4000 if run == 'train' else 401)
    assert events[-1].value >= 0.9
  train_scalars = tags['train']['scalars']
  assert [t for t in train_scalars if re.match(r'^cross_entropy(_\d+)?$', t)]
  for variable in ('weights', 'biases'):
    for statistic in ('mean', 'stddev', 'max', 'min'):
      assert [t for t in train_scalars if re.match(
          r'^final_retrain_ops/%s/summaries/%s(_\d+)?$' % (variable,
                                                           statistic), t)]
  histograms = tags['train']['histograms']
  assert 'final_retrain_ops/weights/summaries/histogram' in histograms
  assert 'final_retrain_ops/Wx_plus_b/pre_activations' in histograms
  assert 'activations' in histograms
  # Histograms with each evaluation: at every step, they doubled its time.
  train_histograms = event_accumulator.EventAccumulator(
      os.path.join(out_dir, 'retrain_logs', 'train'),
      size_guidance={event_accumulator.HISTOGRAMS: 0})
  train_histograms.Reload()
  assert [event.step for event in train_histograms.Histograms(
      'activations')] == list(range(0, 4000, 10)) + [3999]
  assert tags['train']['graph']
  # The whole training graph, module and new layer, as the original wrote.
  train = event_accumulator.EventAccumulator(
      os.path.join(out_dir, 'retrain_logs', 'train'))
  train.Reload()
  names = {node.name for node in train.Graph().node}
  assert {'Placeholder', 'final_result'} <= names
  assert [name for name in names if name.startswith('module_apply_default/')]


def test_checkpoint_intermediate_graphs_and_bottlenecks(default_run,
                                                        sample_module):
  out_dir, _, _ = default_run
  assert tf.train.latest_checkpoint(os.path.join(out_dir, 'checkpoint'))
  assert sorted(os.listdir(os.path.join(out_dir, 'intermediate'))) == [
      'intermediate_1500.pb', 'intermediate_3000.pb']
  width = retrain.load_module_spec(sample_module).feature_width
  files = glob.glob(os.path.join(out_dir, 'bottleneck', '*', '*.txt'))
  assert len(files) == len(_sample_images())
  for path in files[:40]:
    with open(path) as f:
      assert len(f.read().split(',')) == width
  assert not [p for p in glob.glob(os.path.join(out_dir, '**', '*.tmp-*'),
                                   recursive=True)]


def test_retrain_py_copied_alone_runs_a_classic_run(default_run, sample_module,
                                                    tmp_path):
  # The extras (tflite_export.py, tf2_modules.py) are imported only when a
  # flag asks for them: a TF1 module needs none of the project's other files.
  cached_dir, _, _ = default_run
  alone = str(tmp_path / 'alone')
  out_dir = str(tmp_path / 'out')
  saved_model_dir = os.path.join(out_dir, 'saved_models', '1')
  result = run_retrain_alone(alone, [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '50', '--saved_model_dir',
      saved_model_dir, '--flip_left_right', '--random_crop', '10',
      '--intermediate_store_frequency', '25'] + retrain_output_args(
          out_dir, os.path.join(cached_dir, 'bottleneck')))
  assert result.returncode == 0, result.stdout[-3000:]
  assert 'Traceback' not in result.stdout
  assert 'Final test accuracy = ' in result.stdout
  assert os.listdir(alone) == ['retrain.py']
  # The per-class report is an extra: one line says what to copy.
  assert re.search(r'^WARNING:tensorflow:The per-class test report needs '
                   r'evaluation_report\.py beside retrain\.py', result.stdout,
                   re.M), result.stdout[-3000:]
  assert '=== PER-CLASS TEST RESULTS ===' not in result.stdout
  # So are distorted batches: the original's one image after the other.
  assert re.search(r'^WARNING:tensorflow:Distorting in batches needs '
                   r'fast_distortions\.py beside retrain\.py, .* Until then, '
                   r'images are distorted one after the other', result.stdout,
                   re.M), result.stdout[-3000:]
  assert os.listdir(os.path.join(out_dir, 'intermediate')) == [
      'intermediate_25.pb']
  assert os.path.getsize(os.path.join(out_dir, 'output_graph.pb')) > 0
  with open(os.path.join(out_dir, 'output_labels.txt')) as f:
    assert f.read() == '\n'.join(SAMPLE_CLASSES) + '\n'
  assert os.path.isfile(os.path.join(saved_model_dir, 'saved_model.pb'))
  # As the original's: the test's report is the extra's.
  assert sorted(os.listdir(os.path.join(out_dir, 'retrain_logs'))) == [
      'train', 'validation']
  for run in ('train', 'validation'):
    assert glob.glob(os.path.join(out_dir, 'retrain_logs', run,
                                  'events.out.tfevents.*')), run


def test_second_run_reuses_the_cache(default_run, sample_module):
  out_dir, _, _ = default_run
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '20'] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  assert re.search(r'(\d+) bottlenecks found in the cache, 0 to compute',
                   result.stdout)


def test_distorted_run(sample_module, tmp_path):
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '40', '--train_batch_size', '32',
      '--flip_left_right', '--random_crop', '10', '--random_scale', '10',
      '--random_brightness', '10'] + retrain_output_args(str(tmp_path)))
  assert result.returncode == 0, result.stdout[-3000:]
  _final_accuracy(result.stdout)
  assert 'Step 39: Train accuracy' in result.stdout
  assert os.path.getsize(str(tmp_path / 'output_graph.pb')) > 0


def test_bfloat16_run(sample_module, tmp_path):
  """docs/speed.md: bfloat16 has a cache of its own and trains as well."""
  saved_model_dir = str(tmp_path / 'saved_model')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--bottleneck_precision', 'bfloat16', '--random_seed', '1',
      '--how_many_training_steps', '400', '--saved_model_dir',
      saved_model_dir] + retrain_output_args(str(tmp_path)))
  assert result.returncode == 0, result.stdout[-3000:]
  accuracy, _ = _final_accuracy(result.stdout)
  assert accuracy >= 90.0
  cached = glob.glob(str(tmp_path / 'bottleneck' / '*' / '*.txt'))
  assert len(cached) == len(_sample_images())
  assert all(path.endswith('~bfloat16.txt') for path in cached)
  assert os.path.isfile(os.path.join(saved_model_dir, 'saved_model.pb'))
  assert os.path.getsize(str(tmp_path / 'checkpoint' / 'model.index')) > 0


def test_same_seed_gives_the_same_model(sample_module, tmp_path):
  graphs = []
  for attempt in ('a', 'b'):
    out_dir = str(tmp_path / attempt)
    result = run_tool('retrain.py', [
        '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
        '--how_many_training_steps', '30', '--train_batch_size', '16',
        '--random_seed', '7', '--flip_left_right', '--random_crop', '5'] +
                      retrain_output_args(out_dir, str(tmp_path / 'cache')))
    assert result.returncode == 0, result.stdout[-3000:]
    with open(os.path.join(out_dir, 'output_graph.pb'), 'rb') as f:
      graphs.append(f.read())
  assert graphs[0] == graphs[1]


def test_quantization_instrumented_module(quantized_module, tmp_path):
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', quantized_module,
      '--how_many_training_steps', '300'] + retrain_output_args(str(tmp_path)))
  assert result.returncode == 0, result.stdout[-3000:]
  assert 'The model is instrumented for quantization with TF-Lite' in (
      result.stdout)
  graph_def = tf.GraphDef()
  with open(str(tmp_path / 'output_graph.pb'), 'rb') as f:
    graph_def.ParseFromString(f.read())
  new_layer_quant = [n.name for n in graph_def.node
                     if n.op == 'FakeQuantWithMinMaxVars' and
                     n.name.startswith('final_retrain_ops/')]
  assert len(new_layer_quant) >= 2, new_layer_quant
  accuracy, _ = _final_accuracy(result.stdout)
  assert accuracy >= 70.0


def test_offline_url_fails_with_one_clear_line(tmp_path):
  out_dir = str(tmp_path / 'out')
  result = run_tool('retrain.py', ['--image_dir', SAMPLE_DIR] +
                    retrain_output_args(out_dir),
                    env={'TFHUB_CACHE_DIR': str(tmp_path / 'hub_cache')})
  assert result.returncode == 1
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 1, result.stdout
  assert lines[0].startswith('ERROR: Could not download the module '
                             'https://tfhub.dev/google/imagenet/inception_v3/')
  assert 'TFHUB_CACHE_DIR' in lines[0] and '--tfhub_module' in lines[0]
  assert not os.path.exists(out_dir)
