"""TF Lite: the models retrain.py writes, run with TF Lite's interpreter as an
app would (README: What next; docs/exports.md: TF Lite)."""

import io
import logging
import os
import re
import sys
import warnings
import zipfile

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

import label_image
import retrain
import tflite_export
from conftest import (REPO_DIR, SAMPLE_DIR, decode_images,
                      graph_probabilities, retrain_output_args,
                      run_retrain_alone, run_tool, tflite_probabilities)

tf.disable_v2_behavior()

SAMPLE_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']


def test_tflite_float_model_agrees_with_the_frozen_graph(trained_run,
                                                         sample_images):
  paths, images = sample_images
  assert 'Save TF Lite model to : ' + trained_run['tflite'] in (
      trained_run['output'])
  assert 'Summary on the non-converted ops' not in trained_run['output']
  expected = graph_probabilities(trained_run['graph'], images)
  actual, input_details, output_details = tflite_probabilities(
      trained_run['tflite'], images)
  assert input_details['dtype'] == np.float32
  assert list(input_details['shape']) == [1, 128, 128, 3]
  assert output_details['dtype'] == np.float32
  assert actual.shape == (len(paths), len(SAMPLE_CLASSES))
  agreement = np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))
  assert agreement >= 0.99, agreement
  np.testing.assert_allclose(actual, expected, atol=1e-3)


def test_the_interpreter_is_litert_where_installed_and_warns_nothing(
    trained_run):
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    interpreter = tflite_export.tflite_interpreter(
        model_path=trained_run['tflite'])
  assert not [str(warning.message) for warning in caught]
  assert 'Interpreter is deprecated' not in trained_run['output']
  try:
    import ai_edge_litert  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:  # TensorFlow 2.15's stack.
    assert isinstance(interpreter, tf.lite.Interpreter)
  else:
    assert type(interpreter).__module__ == 'ai_edge_litert.interpreter'


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
  expected = graph_probabilities(os.path.join(out_dir, 'output_graph.pb'),
                                  images)
  actual, input_details, output_details = tflite_probabilities(tflite_file,
                                                                images)
  assert input_details['dtype'] == np.uint8
  scale, zero_point = input_details['quantization']
  assert zero_point == 0 and abs(scale - 1 / 255.0) < 1e-6
  assert output_details['dtype'] == np.uint8
  # Every op of a fully quantized model works on integers.
  interpreter = tflite_export.tflite_interpreter(model_path=tflite_file)
  float_tensors = [detail['name'] for detail in
                   interpreter.get_tensor_details()
                   if detail['dtype'] == np.float32]
  assert not float_tensors, float_tensors
  agreement = np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))
  assert agreement >= 0.95, agreement


# ---------------------------------------------------------------------------
# --tflite_quantize, the TF Lite metadata and the accuracy check at export.
# ---------------------------------------------------------------------------

EXPORT_LINE = re.compile(
    r'TF Lite \((\w+)\) (test|validation) accuracy = ([0-9.]+)% \(N=(\d+)\), '
    r'frozen graph ([0-9.]+)%, top-1 agreement (\d+)/(\d+), ([0-9.]+) MB')


def _training_images(count):
  """The first `count` training images of the sample, decoded for 128x128."""
  image_lists = retrain.create_image_lists(SAMPLE_DIR, 10, 10)
  paths = [retrain.get_image_path(image_lists, label, index, SAMPLE_DIR,
                                  'training')
           for label in image_lists
           for index in range(len(image_lists[label]['training']))]
  return decode_images(paths[::max(1, len(paths) // count)][:count], 128)


@pytest.fixture(scope='module')
def exports(trained_run, sample_module, tmp_path_factory):
  """trained_run's layer exported in every --tflite_quantize mode, in process.

  Returns:
    {mode: .tflite path}, and 'plain': the float model without metadata
    (exported as if retrain.py had been copied without tflite_metadata.py),
    with the log lines of that export under 'plain_log'.
  """
  out_dir = tmp_path_factory.mktemp('tflite_exports')
  spec = retrain.load_module_spec(sample_module)
  eval_session = retrain.build_eval_session(
      spec, len(SAMPLE_CLASSES), 'final_result',
      os.path.join(trained_run['dir'], 'checkpoint', 'model'))
  calibration = _training_images(60)
  paths = {}
  for mode in retrain.TFLITE_QUANTIZATIONS:
    paths[mode] = str(out_dir / ('%s.tflite' % mode))
    exported = tflite_export.export_tflite(
        paths[mode], spec, len(SAMPLE_CLASSES), eval_session, mode,
        calibration, SAMPLE_CLASSES)
    assert exported.quantization == mode
  paths['plain'] = str(out_dir / 'plain.tflite')
  handler = _ListHandler()
  logger = logging.getLogger('tensorflow')
  logger.addHandler(handler)
  level = logger.level
  logger.setLevel(logging.INFO)
  with pytest.MonkeyPatch.context() as patch:
    patch.setitem(sys.modules, 'tflite_metadata', None)  # Importing fails.
    exported = tflite_export.export_tflite(paths['plain'], spec,
                                           len(SAMPLE_CLASSES), eval_session)
  logger.removeHandler(handler)
  logger.setLevel(level)
  assert not exported.has_metadata
  paths['plain_log'] = handler.lines
  eval_session.sess.close()
  return paths


class _ListHandler(logging.Handler):
  """Keeps the messages logged to it."""

  def __init__(self):
    super(_ListHandler, self).__init__()
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


@pytest.mark.parametrize('mode,min_agreement', [
    ('none', 0.99), ('float16', 0.99), ('dynamic', 0.95), ('uint8', 0.95)])
def test_every_quantization_mode_agrees_with_the_frozen_graph(
    exports, trained_run, sample_images, mode, min_agreement):
  _, images = sample_images
  expected = graph_probabilities(trained_run['graph'], images)
  actual, input_details, output_details = tflite_probabilities(
      exports[mode], images)
  agreement = np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))
  assert agreement >= min_agreement, agreement
  if mode == 'uint8':
    assert input_details['dtype'] == output_details['dtype'] == np.uint8
    scale, zero_point = input_details['quantization']
    assert zero_point == 0 and abs(scale - 1 / 255.0) < 1e-6  # 0-255 as is
    interpreter = tflite_export.tflite_interpreter(model_path=exports[mode])
    assert not [detail['name'] for detail in interpreter.get_tensor_details()
                if detail['dtype'] == np.float32]
  else:
    assert input_details['dtype'] == output_details['dtype'] == np.float32


def test_quantized_models_shrink_as_expected(exports):
  size = {mode: os.path.getsize(exports[mode])
          for mode in retrain.TFLITE_QUANTIZATIONS}
  assert size['dynamic'] < 0.35 * size['none']
  assert size['uint8'] < 0.35 * size['none']
  assert 0.4 * size['none'] < size['float16'] < 0.6 * size['none']


def test_without_tflite_metadata_py_the_model_is_plain_and_one_line_says_so(
    exports):
  notes = [line for line in exports['plain_log'] if 'metadata' in line]
  assert notes == ['TF Lite metadata (labels, normalisation) not written: put '
                   'tflite_metadata.py (it comes with retrain.py) beside '
                   'retrain.py, in %s.' % REPO_DIR]
  content = open(exports['plain'], 'rb').read()
  assert label_image.tflite_labels(content) is None
  with_metadata = open(exports['none'], 'rb').read()
  assert len(content) < len(with_metadata)


@pytest.mark.parametrize('mode', retrain.TFLITE_QUANTIZATIONS)
def test_metadata_says_what_the_model_reads_and_returns(exports, mode):
  with open(exports[mode], 'rb') as f:
    content = f.read()
  assert label_image.tflite_labels(content) == SAMPLE_CLASSES
  with zipfile.ZipFile(io.BytesIO(content)) as archive:
    entry, = archive.infolist()
  assert entry.compress_type == zipfile.ZIP_STORED  # MediaPipe needs it.
  assert entry.date_time == (1980, 1, 1, 0, 0, 0)
  schema = pytest.importorskip(  # The metadata schema's code, as MediaPipe
      'mediapipe.tasks.metadata.metadata_schema_py_generated')  # ships it.
  model = tflite_schema.Model.GetRootAs(content, 0)
  buffers = [model.Metadata(index).Buffer()
             for index in range(model.MetadataLength())
             if model.Metadata(index).Name() == b'TFLITE_METADATA']
  assert len(buffers) == 1
  data = model.Buffers(buffers[0]).DataAsNumpy().tobytes()
  assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
  metadata = schema.ModelMetadata.GetRootAs(data, 0)
  assert metadata.MinParserVersion() == b'1.0.0'
  image = metadata.SubgraphMetadata(0).InputTensorMetadata(0)
  scores = metadata.SubgraphMetadata(0).OutputTensorMetadata(0)
  unit = image.ProcessUnits(0)
  assert unit.OptionsType() == schema.ProcessUnitOptions.NormalizationOptions
  normalization = schema.NormalizationOptions()
  normalization.Init(unit.Options().Bytes, unit.Options().Pos)
  assert (list(normalization.MeanAsNumpy()),
          list(normalization.StdAsNumpy())) == ([0.0], [255.0])
  high = 255.0 if mode == 'uint8' else 1.0  # uint8: the tensors' own range.
  for tensor in (image, scores):
    stats = tensor.Stats()
    assert (stats.MinAsNumpy()[0], stats.MaxAsNumpy()[0]) == (0.0, high)
  labels_file = scores.AssociatedFiles(0)
  assert labels_file.Name() == b'labels.txt'
  assert labels_file.Type() == schema.AssociatedFileType.TENSOR_AXIS_LABELS


def _mediapipe_results(content, images):
  """MediaPipe ImageClassifier's (top label, its score) for uint8 images."""
  mp = pytest.importorskip('mediapipe')
  from mediapipe.tasks import python as mp_tasks  # pylint: disable=g-import-not-at-top
  from mediapipe.tasks.python import vision  # pylint: disable=g-import-not-at-top
  options = vision.ImageClassifierOptions(
      base_options=mp_tasks.BaseOptions(model_asset_buffer=content),
      max_results=len(SAMPLE_CLASSES))
  results = []
  with vision.ImageClassifier.create_from_options(options) as classifier:
    for image in images:
      categories = classifier.classify(mp.Image(
          image_format=mp.ImageFormat.SRGB,
          data=np.ascontiguousarray(image))).classifications[0].categories
      results.append((categories[0].category_name, categories[0].score))
  return results


def _agreement_with_graph(content, graph_file, sample_images):
  """How often MediaPipe's top label is the graph's, and the largest
  difference of the top score, on the sample photos (fed at 128x128)."""
  _, images = sample_images
  pixels = np.round(images * 255).astype(np.uint8)
  expected = graph_probabilities(graph_file, pixels / 255.0)
  results = _mediapipe_results(content, pixels)
  labels = [SAMPLE_CLASSES[index] for index in expected.argmax(axis=1)]
  agreement = np.mean([name == label for (name, _), label in
                       zip(results, labels)])
  score_error = max(abs(score - probabilities.max()) for (_, score),
                    probabilities in zip(results, expected))
  return agreement, score_error


def test_mediapipe_classifies_the_float_model_with_its_labels(trained_run,
                                                              sample_images):
  pytest.importorskip('mediapipe')
  assert 'metadata' not in trained_run['output']  # It was written.
  agreement, score_error = _agreement_with_graph(
      open(trained_run['tflite'], 'rb').read(), trained_run['graph'],
      sample_images)
  assert agreement >= 0.99, agreement
  assert score_error < 0.01, score_error


def test_mediapipe_classifies_the_uint8_model_with_its_labels(uint8_run,
                                                              sample_images):
  pytest.importorskip('mediapipe')
  agreement, score_error = _agreement_with_graph(
      open(uint8_run['tflite'], 'rb').read(), uint8_run['graph'],
      sample_images)
  assert agreement >= 0.95, agreement
  assert score_error < 0.05, score_error


def test_wrong_normalisation_in_the_metadata_is_caught(exports, trained_run,
                                                       sample_images):
  pytest.importorskip('mediapipe')
  plain = open(exports['plain'], 'rb').read()
  results = {}
  for std in (255.0, 1.0):  # Right: values in [0, 1]; wrong: 0-255.
    content = tflite_export.tflite_with_metadata(
        plain, SAMPLE_CLASSES, tflite_export.TfliteNormalization(0.0, std),
        'test')
    results[std] = _agreement_with_graph(content, trained_run['graph'],
                                         sample_images)[0]
  assert results[255.0] >= 0.99, results
  assert results[1.0] < 0.9, results


@pytest.fixture(scope='module')
def uint8_run(trained_run, tmp_path_factory):
  """A short seeded run with --tflite_quantize uint8 (bottlenecks reused)."""
  out_dir = str(tmp_path_factory.mktemp('uint8_run'))
  paths = {'tflite': os.path.join(out_dir, 'model.tflite'),
           'graph': os.path.join(out_dir, 'output_graph.pb')}
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', trained_run['module'],
      '--how_many_training_steps', '200', '--random_seed', '1',
      '--tflite_quantize', 'uint8', '--tflite_calibration_images', '50',
      '--tflite_output_file', paths['tflite']] + retrain_output_args(
          out_dir, os.path.join(trained_run['dir'], 'bottleneck')))
  assert result.returncode == 0, result.stdout[-3000:]
  paths['output'] = result.stdout
  return paths


def _check_export_line(output, graph_file, tflite_file, mode):
  """The logged accuracy line matches a recount on the test images."""
  lines = [match for match in map(EXPORT_LINE.search, output.splitlines())
           if match]
  assert len(lines) == 1, output[-2000:]
  (logged_mode, category, accuracy, count, graph_accuracy, agreeing, total,
   megabytes) = lines[0].groups()
  assert (logged_mode, category) == (mode, 'test')
  image_lists = retrain.create_image_lists(SAMPLE_DIR, 10, 10)
  paths, truth = [], []
  for class_index, label in enumerate(image_lists):
    for index in range(len(image_lists[label]['testing'])):
      paths.append(retrain.get_image_path(image_lists, label, index,
                                          SAMPLE_DIR, 'testing'))
      truth.append(class_index)
  images = decode_images(paths, 128)
  graph_top = graph_probabilities(graph_file, images).argmax(axis=1)
  tflite_top = tflite_probabilities(tflite_file, images)[0].argmax(axis=1)
  assert int(count) == int(total) == len(paths) == 25
  assert float(accuracy) == round(100.0 * np.mean(tflite_top == truth), 1)
  assert float(graph_accuracy) == round(100.0 * np.mean(graph_top == truth), 1)
  assert int(agreeing) == np.sum(tflite_top == graph_top)
  assert float(megabytes) == round(os.path.getsize(tflite_file) / 1e6, 2)


def test_export_logs_a_consistent_accuracy_line(trained_run, uint8_run):
  _check_export_line(trained_run['output'], trained_run['graph'],
                     trained_run['tflite'], 'float32')
  _check_export_line(uint8_run['output'], uint8_run['graph'],
                     uint8_run['tflite'], 'uint8')
  assert uint8_run['output'].count('The TF Lite model is fully quantized') == 1


def test_uint8_export_repeats_exactly_with_the_seed(trained_run, uint8_run):
  # The calibration images are drawn with --random_seed, and the metadata's
  # zip entry has a fixed date: a rerun writes the same bytes.
  again = os.path.join(os.path.dirname(uint8_run['tflite']), 'again')
  tflite_file = os.path.join(again, 'model.tflite')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', trained_run['module'],
      '--how_many_training_steps', '200', '--random_seed', '1',
      '--tflite_quantize', 'uint8', '--tflite_calibration_images', '50',
      '--tflite_output_file', tflite_file] + retrain_output_args(
          again, os.path.join(trained_run['dir'], 'bottleneck')))
  assert result.returncode == 0, result.stdout[-3000:]
  with open(tflite_file, 'rb') as again_file, open(uint8_run['tflite'],
                                                   'rb') as first_file:
    assert again_file.read() == first_file.read()


def test_tflite_flag_mistakes_are_one_line(tmp_path):
  for args, message in [
      (['--tflite_quantize', 'uint8'], '--tflite_quantize needs '
       '--tflite_output_file'),
      (['--tflite_output_file', str(tmp_path / 'm.tflite'),
        '--tflite_calibration_images', '0'],
       '--tflite_calibration_images must be a positive number')]:
    flags = retrain.build_parser().parse_args(
        ['--image_dir', SAMPLE_DIR] + args +
        retrain_output_args(str(tmp_path / 'out')))
    with pytest.raises(retrain.RetrainError, match=message):
      retrain.check_flags(flags)


# ---------------------------------------------------------------------------
# retrain.py copied without tflite_export.py.
# ---------------------------------------------------------------------------


def test_tflite_flag_without_tflite_export_py_is_one_line(tmp_path):
  flags = retrain.build_parser().parse_args(
      ['--image_dir', SAMPLE_DIR, '--tflite_output_file',
       str(tmp_path / 'm.tflite')] + retrain_output_args(str(tmp_path / 'out')))
  with pytest.MonkeyPatch.context() as patch:
    patch.setitem(sys.modules, 'tflite_export', None)  # Importing fails.
    with pytest.raises(retrain.RetrainError, match=re.escape(
        '--tflite_output_file needs tflite_export.py (and tflite_metadata.py) '
        'beside retrain.py, in %s: copy them from the project that retrain.py '
        'comes from.' % REPO_DIR)):
      retrain.check_flags(flags)


def test_retrain_py_copied_alone_says_so_before_training(sample_module,
                                                         tmp_path):
  alone = str(tmp_path / 'alone')
  out_dir = str(tmp_path / 'out')
  result = run_retrain_alone(alone, [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--tflite_output_file', os.path.join(out_dir, 'model.tflite')] +
                             retrain_output_args(out_dir))
  assert result.returncode == 1
  assert result.stdout.strip().splitlines() == [
      'ERROR: --tflite_output_file needs tflite_export.py (and '
      'tflite_metadata.py) beside retrain.py, in %s: copy them from the '
      'project that retrain.py comes from.' % alone], result.stdout
  assert 'Traceback' not in result.stdout
  assert not os.path.exists(out_dir)  # Nothing trained, nothing written.
