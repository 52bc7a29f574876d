"""What users do with retrain.py's results, checked as they would do it.

TF Lite models run with tf.lite.Interpreter, the SavedModel's two signatures
through saved_model_cli, the evaluation report in the log and in
TensorBoard (a real TensorBoard server, read over HTTP), TF2 SavedModel
modules and offline use of TFHUB_CACHE_DIR.
"""

import glob
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorboard.backend.event_processing import event_accumulator

import label_image
import retrain
from conftest import (REPO_DIR, SAMPLE_DIR, retrain_output_args, run_tool,
                      write_color_images)

sys.path.insert(0, os.path.join(REPO_DIR, 'tools'))
import screenshot_tensorboard  # pylint: disable=g-import-not-at-top,wrong-import-position

tf.disable_v2_behavior()

SAMPLE_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']


def _sample_paths():
  return sorted(path for path in glob.glob(os.path.join(SAMPLE_DIR, '*', '*'))
                if path.lower().endswith(('.jpg', '.jpeg', '.png')))


def _decode(paths, size):
  """Images decoded and resized as retrain.py does: float [N, H, W, 3]."""
  with tf.Graph().as_default():
    data = tf.placeholder(tf.string)
    image = retrain._decode_and_resize(data, size, size, 3)  # pylint: disable=protected-access
    with tf.Session() as sess:
      return np.concatenate([sess.run(image, {data: open(path, 'rb').read()})
                             for path in paths])


def _graph_probabilities(graph_file, images):
  graph_def = tf.GraphDef()
  with open(graph_file, 'rb') as f:
    graph_def.ParseFromString(f.read())
  with tf.Graph().as_default():
    output, = tf.import_graph_def(graph_def, return_elements=['final_result:0'],
                                  name='')
    with tf.Session() as sess:
      return sess.run(output, {'Placeholder:0': images})


def _tflite_probabilities(tflite_file, images):
  """Runs a .tflite on each image; returns (probabilities, in/out details)."""
  interpreter = tf.lite.Interpreter(model_path=tflite_file)
  interpreter.allocate_tensors()
  input_details = interpreter.get_input_details()[0]
  output_details = interpreter.get_output_details()[0]
  results = []
  for image in images:
    if input_details['dtype'] == np.uint8:
      scale, zero_point = input_details['quantization']
      image = np.clip(np.round(image / scale + zero_point), 0,
                      255).astype(np.uint8)
    interpreter.set_tensor(input_details['index'], image[None])
    interpreter.invoke()
    output = interpreter.get_tensor(output_details['index'])[0]
    if output_details['dtype'] == np.uint8:
      scale, zero_point = output_details['quantization']
      output = (output.astype(np.float32) - zero_point) * scale
    results.append(output)
  return np.array(results), input_details, output_details


def _saved_model_cli():
  """The saved_model_cli command that comes with TensorFlow."""
  script = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  if os.path.isfile(script):
    return [script]
  return [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli']


def _run(command, timeout=300):
  return subprocess.run(command, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=timeout,
                        check=False, env=dict(os.environ,
                                              TF_CPP_MIN_LOG_LEVEL='3'))


# ---------------------------------------------------------------------- TF Lite


@pytest.fixture(scope='module')
def sample_images():
  paths = _sample_paths()
  return paths, _decode(paths, 128)


def test_tflite_float_model_agrees_with_the_frozen_graph(trained_run,
                                                         sample_images):
  paths, images = sample_images
  assert 'Save TF Lite model to : ' + trained_run['tflite'] in (
      trained_run['output'])
  assert 'Summary on the non-converted ops' not in trained_run['output']
  expected = _graph_probabilities(trained_run['graph'], images)
  actual, input_details, output_details = _tflite_probabilities(
      trained_run['tflite'], images)
  assert input_details['dtype'] == np.float32
  assert list(input_details['shape']) == [1, 128, 128, 3]
  assert output_details['dtype'] == np.float32
  assert actual.shape == (len(paths), len(SAMPLE_CLASSES))
  agreement = np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))
  assert agreement >= 0.99, agreement
  np.testing.assert_allclose(actual, expected, atol=1e-3)


def test_tflite_output_file_must_be_a_file_name(tmp_path):
  flags = retrain.build_parser().parse_args(
      ['--image_dir', SAMPLE_DIR, '--tflite_output_file', str(tmp_path)] +
      retrain_output_args(str(tmp_path / 'out')))
  with pytest.raises(retrain.RetrainError,
                     match='--tflite_output_file .* is a folder: give a file'):
    retrain.check_flags(flags)


@pytest.fixture(scope='module')
def quantized_run(quantized_module, tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp('quantized_run'))
  tflite_file = os.path.join(out_dir, 'model_quant.tflite')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', quantized_module,
      '--how_many_training_steps', '1000', '--random_seed', '1',
      '--tflite_output_file', tflite_file] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  return out_dir, tflite_file, result.stdout


def test_tflite_quantized_model_is_uint8_and_agrees(quantized_run,
                                                   sample_images):
  out_dir, tflite_file, output = quantized_run
  assert output.count('The TF Lite model is fully quantized') == 1
  _, images = sample_images
  expected = _graph_probabilities(os.path.join(out_dir, 'output_graph.pb'),
                                  images)
  actual, input_details, output_details = _tflite_probabilities(tflite_file,
                                                                images)
  assert input_details['dtype'] == np.uint8
  scale, zero_point = input_details['quantization']
  assert zero_point == 0 and abs(scale - 1 / 255.0) < 1e-6
  assert output_details['dtype'] == np.uint8
  # Every op of a fully quantized model works on integers.
  interpreter = tf.lite.Interpreter(model_path=tflite_file)
  float_tensors = [detail['name'] for detail in
                   interpreter.get_tensor_details()
                   if detail['dtype'] == np.float32]
  assert not float_tensors, float_tensors
  agreement = np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))
  assert agreement >= 0.95, agreement


# ------------------------------------------------------------------ SavedModel


def _signature_defs(saved_model_dir):
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(saved_model_dir, 'saved_model.pb'), 'rb') as f:
    saved_model.ParseFromString(f.read())
  meta_graph, = saved_model.meta_graphs
  assert list(meta_graph.meta_info_def.tags) == ['serve']
  return meta_graph.signature_def


def _describe(tensor_info):
  return (tf.as_dtype(tensor_info.dtype).name,
          [dim.size for dim in tensor_info.tensor_shape.dim])


def test_saved_model_signatures(trained_run):
  signatures = _signature_defs(trained_run['saved_model'])
  assert sorted(signatures) == ['serving_bytes', 'serving_default']
  default = signatures['serving_default']
  # Exactly the original's: image float [None, H, W, 3] -> prediction.
  assert default.method_name == 'tensorflow/serving/predict'
  assert list(default.inputs) == ['image']
  assert _describe(default.inputs['image']) == ('float32', [-1, 128, 128, 3])
  assert default.inputs['image'].name == 'Placeholder:0'
  assert list(default.outputs) == ['prediction']
  assert _describe(default.outputs['prediction']) == ('float32', [-1, 5])
  assert default.outputs['prediction'].name == 'final_result:0'
  images = signatures['serving_bytes']
  assert images.method_name == 'tensorflow/serving/predict'
  assert list(images.inputs) == ['image_bytes']
  assert _describe(images.inputs['image_bytes']) == ('string', [-1])
  assert sorted(images.outputs) == ['classes', 'prediction']
  assert _describe(images.outputs['prediction']) == ('float32', [-1, 5])
  assert _describe(images.outputs['classes']) == ('string', [-1])


def test_saved_model_cli_show_and_run(trained_run, tmp_path):
  saved_model = trained_run['saved_model']
  shown = _run(_saved_model_cli() + ['show', '--dir', saved_model, '--all'])
  assert shown.returncode == 0, shown.stdout[-3000:]
  for text in ("signature_def['serving_default']", "inputs['image']",
               "signature_def['serving_bytes']", "inputs['image_bytes']",
               'dtype: DT_STRING', "outputs['classes']",
               "outputs['prediction']"):
    assert text in shown.stdout

  paths = [os.path.join(SAMPLE_DIR, 'roses', 'rose_003.jpg'),
           os.path.join(SAMPLE_DIR, 'tulips', 'tulip_004.jpg'),
           sorted(glob.glob(os.path.join(SAMPLE_DIR, 'daisy', '*.png')))[0]]
  expected = _graph_probabilities(trained_run['graph'], _decode(paths, 128))
  labels = open(trained_run['labels']).read().split()

  # The image files as they are, the way a Serving client posts them.
  np.save(str(tmp_path / 'image_bytes.npy'),
          np.array([open(path, 'rb').read() for path in paths], dtype=object))
  run = _run(_saved_model_cli() + [
      'run', '--dir', saved_model, '--tag_set', 'serve', '--signature_def',
      'serving_bytes', '--inputs',
      'image_bytes=' + str(tmp_path / 'image_bytes.npy'),
      '--outdir', str(tmp_path / 'bytes_out')])
  assert run.returncode == 0, run.stdout[-3000:]
  assert 'Result for output key classes:' in run.stdout
  prediction = np.load(str(tmp_path / 'bytes_out' / 'prediction.npy'))
  classes = np.load(str(tmp_path / 'bytes_out' / 'classes.npy'),
                    allow_pickle=True)
  np.testing.assert_allclose(prediction, expected, atol=1e-5)
  assert [c.decode() if isinstance(c, bytes) else c for c in classes] == [
      labels[i] for i in expected.argmax(axis=1)]

  np.save(str(tmp_path / 'image.npy'), _decode(paths, 128))
  run = _run(_saved_model_cli() + [
      'run', '--dir', saved_model, '--tag_set', 'serve', '--signature_def',
      'serving_default', '--inputs', 'image=' + str(tmp_path / 'image.npy')])
  assert run.returncode == 0, run.stdout[-3000:]
  assert 'Result for output key prediction:' in run.stdout
  printed = run.stdout.split('Result for output key prediction:')[1]
  values = np.array([float(v) for v in re.findall(
      r'[-+]?\d+\.\d*(?:e[-+]?\d+)?', printed)])
  np.testing.assert_allclose(values.reshape(expected.shape), expected,
                             rtol=1e-4, atol=1e-6)


# --------------------------------------------------------- evaluation report


def _report_lines(output):
  lines = [line.split('INFO:tensorflow:', 1)[1] for line in
           output.splitlines() if line.startswith('INFO:tensorflow:')]
  start = lines.index('=== PER-CLASS TEST RESULTS ===')
  return lines[start + 1:start + 1 + 2 * len(SAMPLE_CLASSES) + 4]


def test_final_evaluation_prints_the_per_class_table(trained_run):
  output = trained_run['output']
  accuracy, count = re.search(
      r'Final test accuracy = ([0-9.]+)% \(N=(\d+)\)', output).groups()
  lines = _report_lines(output)
  assert lines[0].split() == ['class', 'precision', 'recall', 'f1',
                              'support']
  rows = [line.split() for line in lines[1:1 + len(SAMPLE_CLASSES)]]
  assert [row[0] for row in rows] == SAMPLE_CLASSES
  assert lines[1 + len(SAMPLE_CLASSES)].startswith('macro avg ')
  assert sum(int(row[4]) for row in rows) == int(count)
  assert lines[2 + len(SAMPLE_CLASSES)] == (
      'Confusion matrix (rows: true class, columns: predicted class):')
  assert lines[3 + len(SAMPLE_CLASSES)].split() == SAMPLE_CLASSES
  confusion = np.array([[int(v) for v in line.split()[1:]]
                        for line in lines[4 + len(SAMPLE_CLASSES):]])
  assert confusion.shape == (5, 5)
  assert confusion.sum() == int(count)
  assert abs(100.0 * np.trace(confusion) / confusion.sum() -
             float(accuracy)) < 0.1
  for index, row in enumerate(rows):
    assert int(row[4]) == confusion[index].sum()
    if confusion[:, index].sum():
      assert abs(float(row[1]) - confusion[index, index] /
                 confusion[:, index].sum()) < 1e-3
    assert abs(float(row[2]) - confusion[index, index] /
               confusion[index].sum()) < 1e-3


def test_confusion_matrix_goes_to_tensorboard(trained_run):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(trained_run['summaries'], 'test'),
      size_guidance={event_accumulator.IMAGES: 0,
                     event_accumulator.TENSORS: 0})
  accumulator.Reload()
  assert accumulator.Tags()['images'] == ['confusion_matrix']
  event, = accumulator.Images('confusion_matrix')
  assert event.step == 999
  image = Image.open(io.BytesIO(event.encoded_image_string))
  assert image.format == 'PNG' and image.mode == 'RGB'
  assert image.size == (event.width, event.height)
  text, = accumulator.Tensors('evaluation_report')
  table = tf.make_ndarray(text.tensor_proto).item().decode()
  assert 'precision' in table and 'tulips' in table


def test_classification_report_numbers():
  truth = [0, 0, 0, 1, 1, 2, 2, 2]
  predicted = [0, 0, 1, 1, 1, 0, 2, 0]
  report = retrain.classification_report(truth, predicted, 4)
  np.testing.assert_array_equal(report['confusion'], [
      [2, 1, 0, 0], [0, 2, 0, 0], [2, 0, 1, 0], [0, 0, 0, 0]])
  np.testing.assert_allclose(report['precision'][:3], [0.5, 2 / 3.0, 1.0])
  np.testing.assert_allclose(report['recall'][:3], [2 / 3.0, 1.0, 1 / 3.0])
  np.testing.assert_allclose(report['f1'][:3], [4 / 7.0, 0.8, 0.5])
  np.testing.assert_array_equal(report['support'], [3, 2, 3, 0])
  # Class 3: never predicted, no images: nothing to measure.
  assert np.isnan(report['precision'][3]) and np.isnan(report['recall'][3])
  assert np.isnan(report['f1'][3])
  lines = retrain.format_classification_report(report, ['a', 'b', 'c', 'd'])
  assert lines[4].split() == ['d', '-', '-', '-', '0']
  assert lines[5].split() == ['macro', 'avg', '0.722', '0.667', '0.624', '8']
  assert lines[-4].split() == ['a', '2', '1', '0', '0']
  # A class with images that is never predicted: precision unknown, F1 0.
  report = retrain.classification_report([0, 1], [0, 0], 2)
  assert np.isnan(report['precision'][1]) and report['recall'][1] == 0
  assert np.isnan(report['f1'][1])


@pytest.mark.parametrize('class_count', [2, 60])
def test_confusion_matrix_png_any_class_count(class_count):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  truth = rng.randint(class_count, size=300)
  report = retrain.classification_report(truth, rng.randint(class_count,
                                                            size=300),
                                         class_count)
  names = ['class number %d with a long name' % i for i in range(class_count)]
  png, height, width = retrain.confusion_matrix_png(report['confusion'],
                                                    names)
  image = Image.open(io.BytesIO(png))
  assert image.size == (width, height)
  assert 100 < width < 2000 and 100 < height < 2000


def test_summaries_dir_may_hold_the_test_run(tmp_path, monkeypatch):
  summaries = tmp_path / 'logs'
  for run in ('train', 'validation', 'test'):
    (summaries / run).mkdir(parents=True)
    (summaries / run / 'events.out').write_text('old')
  monkeypatch.setattr(retrain, 'FLAGS', retrain.build_parser().parse_args(
      ['--summaries_dir', str(summaries)]))
  assert retrain._clearable_summaries_dir(str(summaries))  # pylint: disable=protected-access
  retrain.prepare_file_system()
  assert os.listdir(str(summaries)) == []
  (summaries / 'notes').mkdir()
  assert not retrain._clearable_summaries_dir(str(summaries))  # pylint: disable=protected-access


# ------------------------------------------------------------------ TensorBoard


def test_tensorboard_serves_the_runs_over_http(trained_run):
  with screenshot_tensorboard.TensorBoard(trained_run['summaries']) as board:
    assert board.url.startswith('http://127.0.0.1:')
    tags = board.wait_for_scalars(('train', 'validation'))
    assert sorted(board.get_json('data/runs')) == ['test', 'train',
                                                   'validation']
    for run, count in (('train', 1000), ('validation', 101)):
      accuracy = [t for t in tags[run] if re.match(r'^accuracy(_\d+)?$', t)]
      cross_entropy = [t for t in tags[run]
                       if re.match(r'^cross_entropy(_\d+)?$', t)]
      assert len(accuracy) == 1 and len(cross_entropy) == 1, tags[run]
      points = board.get_json('data/plugin/scalars/scalars', run=run,
                              tag=accuracy[0])
      # [wall time, step, value] for each step written.
      assert len(points) == count
      assert points[-1][1] == 999 and points[-1][2] >= 0.9
    images = board.get_json('data/plugin/images/tags')
    assert 'confusion_matrix' in images['test']


def test_screenshot_script_without_chromium_says_what_to_do(tmp_path,
                                                            monkeypatch,
                                                            capsys):
  monkeypatch.setattr(screenshot_tensorboard, 'find_chromium', lambda: None)
  assert screenshot_tensorboard.main(['--logdir', str(tmp_path)]) == 1
  assert 'Chromium not found' in capsys.readouterr().err


@pytest.mark.skipif(not screenshot_tensorboard.find_chromium(),
                    reason='Chromium is not installed (Debian: apt-get '
                    'install chromium); it is not in requirements.txt.')
def test_screenshot_of_the_scalars_dashboard(trained_run, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  output = str(tmp_path / 'scalars.png')
  result = run_tool(os.path.join('tools', 'screenshot_tensorboard.py'), [
      '--logdir', trained_run['summaries'], '--output', output], timeout=600)
  assert result.returncode == 0, result.stdout[-3000:]
  image = Image.open(output).convert('RGB')
  assert image.size == (1400, 640)
  pixels = np.asarray(image).reshape(-1, 3).astype(int)
  # TensorBoard's orange header bar and the blue validation curve are drawn.
  assert np.sum(np.all(np.abs(pixels - [245, 124, 0]) < 20, axis=1)) > 10000
  assert np.sum(np.all(np.abs(pixels - [0, 119, 187]) < 40, axis=1)) > 100


# ----------------------------------------------------------------- TF2 modules


def test_tf2_modules_are_described_from_their_signature(tf2_modules):
  fixed = retrain.load_module_spec(tf2_modules['fixed'])
  assert isinstance(fixed, retrain.TF2ImageModule)
  assert fixed.image_size == (64, 64) and not fixed.variable_size
  assert fixed.feature_width == 35 and fixed.signature is None
  signature_only = retrain.load_module_spec(tf2_modules['signature_only'])
  assert signature_only.image_size == (64, 64)
  assert (signature_only.signature, signature_only.input_key,
          signature_only.output_key) == ('serving_default', 'images',
                                         'feature_vector')
  variable = retrain.load_module_spec(tf2_modules['variable_size'],
                                      image_size=48)
  assert variable.image_size == (48, 48) and variable.variable_size
  with pytest.raises(retrain.RetrainError, match='takes images of any size: '
                     'pass the size it was trained for with --image_size'):
    retrain.load_module_spec(tf2_modules['variable_size'])
  with pytest.raises(retrain.RetrainError, match='--image_size 32 does not '
                     'fit'):
    retrain.load_module_spec(tf2_modules['fixed'], image_size=32)
  with pytest.raises(retrain.RetrainError, match='is a TF2 SavedModel but '
                     'not an image feature vector'):
    retrain.load_module_spec(tf2_modules['not_image'])


@pytest.mark.parametrize('kind', ['fixed', 'signature_only'])
def test_tf2_module_in_a_tf1_graph_computes_the_saved_features(
    tf2_modules, tmp_path, kind):
  images = np.random.RandomState(3).rand(4, 64, 64, 3).astype(np.float32)
  np.save(str(tmp_path / 'images.npy'), images)
  # The features as TF2 computes them, in a TF2 process.
  script = ('import sys, numpy as np, tensorflow as tf\n'
            'model = tf.saved_model.load(sys.argv[1])\n'
            'images = tf.constant(np.load(sys.argv[2]))\n'
            'out = (model(images) if callable(model) else model.signatures['
            '"serving_default"](images=images)["feature_vector"])\n'
            'np.save(sys.argv[3], out.numpy())\n')
  result = _run([sys.executable, '-c', script, tf2_modules[kind],
                 str(tmp_path / 'images.npy'), str(tmp_path / 'out.npy')])
  assert result.returncode == 0, result.stdout[-3000:]
  expected = np.load(str(tmp_path / 'out.npy'))
  spec = retrain.load_module_spec(tf2_modules[kind])
  graph, bottleneck, resized_input, quantize = retrain.create_module_graph(
      spec)
  assert not quantize
  assert resized_input.op.name == 'Placeholder'
  assert bottleneck.get_shape().as_list() == [None, 35]
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    actual = sess.run(bottleneck, {resized_input: images})
  # The saved variable values, not the zeros they were created with.
  assert np.abs(actual[:, 3:]).max() > 0.01
  np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_retrain_with_a_tf2_module_end_to_end(tf2_modules, color_image_dir,
                                              tmp_path, capsys):
  out_dir = str(tmp_path / 'out')
  saved_model_dir = os.path.join(out_dir, 'saved_model', '1')
  tflite_file = os.path.join(out_dir, 'model.tflite')
  result = run_tool('retrain.py', [
      '--image_dir', color_image_dir, '--tfhub_module',
      tf2_modules['variable_size'], '--image_size', '48',
      '--how_many_training_steps', '200', '--random_seed', '3',
      '--intermediate_store_frequency', '150',
      '--saved_model_dir', saved_model_dir,
      '--tflite_output_file', tflite_file] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  assert 'Traceback' not in result.stdout
  accuracy = float(re.search(r'Final test accuracy = ([0-9.]+)%',
                             result.stdout).group(1))
  assert accuracy >= 90.0
  # Features depend on the size, so it is part of the cache file names.
  cache_files = glob.glob(os.path.join(out_dir, 'bottleneck', '*', '*.txt'))
  assert cache_files and all('@48x48.txt' in f for f in cache_files)
  # The frozen graph holds the module's weights as constants.
  graph_def = tf.GraphDef()
  with open(os.path.join(out_dir, 'output_graph.pb'), 'rb') as f:
    graph_def.ParseFromString(f.read())
  assert not [n for n in graph_def.node
              if n.op in ('VariableV2', 'VarHandleOp')]
  paths = sorted(glob.glob(os.path.join(color_image_dir, '*', '*')))
  images = _decode(paths, 48)
  expected = _graph_probabilities(os.path.join(out_dir, 'output_graph.pb'),
                                  images)
  actual, _, _ = _tflite_probabilities(tflite_file, images)
  assert np.mean(actual.argmax(axis=1) == expected.argmax(axis=1)) >= 0.99
  # The image-bytes signature of the SavedModel classifies the files.
  capsys.readouterr()
  code = label_image.main([
      '--saved_model_dir', saved_model_dir, '--signature', 'serving_bytes',
      '--labels', os.path.join(out_dir, 'output_labels.txt'),
      '--image', color_image_dir])
  printed = capsys.readouterr().out
  assert code == 0, printed
  assert float(re.search(r'Accuracy: ([0-9.]+)%', printed).group(1)) >= 90.0


def test_tf2_module_mistakes_are_one_line(tf2_modules, color_image_dir,
                                          tmp_path):
  for module, extra, expected in (
      (tf2_modules['variable_size'], [], 'takes images of any size'),
      (tf2_modules['not_image'], [], 'not an image feature vector'),
      (tf2_modules['fixed'], ['--image_size', '0'],
       '--image_size must be a positive number')):
    result = run_tool('retrain.py', [
        '--image_dir', color_image_dir, '--tfhub_module', module] + extra +
                      retrain_output_args(str(tmp_path / 'out')))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('ERROR: '), result.stdout
    assert expected in lines[0]


@pytest.mark.parametrize('kind', ['tf1', 'tf2'])
def test_module_url_resolves_offline_from_tfhub_cache_dir(
    kind, sample_module, tf2_modules, tmp_path):
  url = ('https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/'
         'feature_vector/%s' % ('2' if kind == 'tf1' else '5'))
  cache_dir = tmp_path / 'hub_cache'
  cache_dir.mkdir()
  # Where tensorflow_hub keeps a downloaded module: the SHA-1 of its URL.
  shutil.copytree(sample_module if kind == 'tf1' else tf2_modules['fixed'],
                  str(cache_dir / hashlib.sha1(url.encode()).hexdigest()))
  image_dir = tmp_path / 'images'
  for seed, (name, color) in enumerate([('red', (210, 40, 40)),
                                        ('blue', (40, 40, 210))]):
    write_color_images(str(image_dir / name), color, 12, seed)
  result = run_tool('retrain.py', [
      '--image_dir', str(image_dir), '--tfhub_module', url,
      '--how_many_training_steps', '20'] +
                    retrain_output_args(str(tmp_path / 'out')),
                    env={'TFHUB_CACHE_DIR': str(cache_dir)})
  assert result.returncode == 0, result.stdout[-3000:]
  assert 'Final test accuracy' in result.stdout
