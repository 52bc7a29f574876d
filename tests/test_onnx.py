"""ONNX: retrain.py --onnx_output_file and label_image.py --onnx_file, run
with ONNX Runtime as a user would (README: Use the model elsewhere;
docs/exports.md: ONNX)."""

import glob
import importlib.util
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import label_image
import onnx_export
import retrain
from conftest import (SAMPLE_DIR, decode_images, graph_probabilities,
                      read_csv, retrain_output_args, run_retrain_alone,
                      run_tool, sample_paths)

tf.disable_v2_behavior()

SAMPLE_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
MISSING = [name for name in onnx_export.CONVERT_PACKAGES
           if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(
    bool(MISSING), reason='requirements-onnx.txt is not installed (%s '
    'missing): pip install -r requirements-onnx.txt' % ', '.join(MISSING))

EXPORT_LINE = re.compile(
    r'ONNX test accuracy = ([0-9.]+)% \(N=(\d+)\), frozen graph ([0-9.]+)%, '
    r'top-1 agreement (\d+)/(\d+), max probability difference ([0-9.e+-]+), '
    r'([0-9.]+) MB, converted in ([0-9.]+) s')


@pytest.fixture(scope='module')
def onnx_run(sample_module, tmp_path_factory):
  """A seeded retrain.py run on the sample with --onnx_output_file."""
  out_dir = str(tmp_path_factory.mktemp('onnx_run'))
  onnx_file = os.path.join(out_dir, 'model.onnx')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '300', '--random_seed', '1',
      '--onnx_output_file', onnx_file] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  return {'dir': out_dir, 'onnx': onnx_file, 'output': result.stdout,
          'graph': os.path.join(out_dir, 'output_graph.pb'),
          'labels': os.path.join(out_dir, 'output_labels.txt')}


@needs_onnx
def test_onnx_model_agrees_with_the_frozen_graph_at_any_batch_size(
    onnx_run):
  import onnxruntime  # pylint: disable=g-import-not-at-top
  line = EXPORT_LINE.search(onnx_run['output'])
  assert line, onnx_run['output'][-3000:]
  _, count, _, agreeing, checked, difference, _, _ = line.groups()
  assert int(count) == int(agreeing) == int(checked) == 25
  assert float(difference) < 1e-5
  # As a user runs it: ONNX Runtime alone, the names from the model.
  session = onnxruntime.InferenceSession(
      onnx_run['onnx'], providers=['CPUExecutionProvider'])
  image_input, = session.get_inputs()
  output, = session.get_outputs()
  assert (image_input.name, image_input.shape) == ('image',
                                                   ['batch', 128, 128, 3])
  assert (output.name, output.shape) == ('prediction', ['batch', 5])
  with open(onnx_run['labels']) as f:
    assert session.get_modelmeta().custom_metadata_map['labels'] == (
        f.read().strip())
  images = decode_images(sample_paths(), 128)
  expected = graph_probabilities(onnx_run['graph'], images)
  for batch in (1, 7, len(images)):
    actual = np.concatenate([
        session.run(None, {'image': images[start:start + batch]})[0]
        for start in range(0, len(images), batch)])
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    assert (actual.argmax(1) == expected.argmax(1)).all()


@needs_onnx
def test_a_tf2_module_is_converted_with_its_functions_inlined(
    tf2_modules, color_image_dir, tmp_path):
  """A TF2 SavedModel module is a function call in the frozen graph, which
  tf2onnx alone leaves for ONNX Runtime to fail on."""
  import onnxruntime  # pylint: disable=g-import-not-at-top
  out_dir = str(tmp_path / 'out')
  onnx_file = os.path.join(out_dir, 'model.onnx')
  result = run_tool('retrain.py', [
      '--image_dir', color_image_dir, '--tfhub_module',
      tf2_modules['variable_size'], '--image_size', '48',
      '--how_many_training_steps', '50', '--random_seed', '3',
      '--onnx_output_file', onnx_file] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  assert EXPORT_LINE.search(result.stdout), result.stdout[-3000:]
  session = onnxruntime.InferenceSession(
      onnx_file, providers=['CPUExecutionProvider'])
  assert session.get_inputs()[0].shape == ['batch', 48, 48, 3]
  images = decode_images(sorted(glob.glob(
      os.path.join(color_image_dir, '*', '*'))), 48)
  expected = graph_probabilities(os.path.join(out_dir, 'output_graph.pb'),
                                  images)
  actual, = session.run(['prediction'], {'image': images})
  np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


@needs_onnx
def test_label_image_onnx_file_agrees_with_the_graph(onnx_run, tmp_path,
                                                     capsys):
  reports = {}
  for flag, model in (('--graph', 'graph'), ('--onnx_file', 'onnx')):
    reports[model] = str(tmp_path / (model + '.csv'))
    labels = ['--labels', onnx_run['labels']] if model == 'graph' else []
    code = label_image.main(labels + [
        flag, onnx_run[model], '--image', SAMPLE_DIR, '--output_csv',
        reports[model], '--top_k', '5'])
    output = capsys.readouterr()
    assert code == 0, output
  _, graph_rows = read_csv(reports['graph'])
  _, onnx_rows = read_csv(reports['onnx'])  # The labels from the model.
  assert len(onnx_rows) == len(graph_rows) == 250
  for row, graph_row in zip(onnx_rows, graph_rows):
    assert row[:2] == graph_row[:2]
    assert dict(zip(row[1:-1:2], row[2:-1:2])).keys() == set(SAMPLE_CLASSES)
    for index in range(2, 11, 2):
      assert abs(float(row[index]) - float(graph_row[index])) <= 2e-5
  assert output.out.splitlines()[-1].startswith('Accuracy: ')


@needs_onnx
def test_a_disagreeing_model_is_one_line_and_no_file(onnx_run, sample_module,
                                                     tmp_path, monkeypatch):
  """A conversion that changes the numbers (here: a bias moved by hand) is
  said in one line, and nothing is written."""
  import onnx  # pylint: disable=g-import-not-at-top
  spec = retrain.load_module_spec(sample_module)
  eval_session = retrain.build_eval_session(
      spec, 5, 'final_result',
      os.path.join(onnx_run['dir'], 'checkpoint', 'model'))
  image_lists = retrain.create_image_lists(SAMPLE_DIR, 10, 10)
  run_images = retrain.RunImages(image_lists, SAMPLE_DIR,
                                 retrain.module_image_shape(spec))
  good_file = str(tmp_path / 'good.onnx')
  check = onnx_export.export_checked_onnx(good_file, eval_session, run_images)
  assert check.count == check.agreeing == 25
  assert os.listdir(str(tmp_path)) == ['good.onnx']
  convert = onnx_export.convert_to_onnx

  def with_a_moved_bias(*args):
    model = onnx.load_from_string(convert(*args))
    bias = [tensor for tensor in model.graph.initializer
            if list(tensor.dims) == [5] and
            tensor.data_type == onnx.TensorProto.FLOAT][0]
    values = onnx.numpy_helper.to_array(bias).copy()
    values[0] += 3.0
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    return model.SerializeToString()

  monkeypatch.setattr(onnx_export, 'convert_to_onnx', with_a_moved_bias)
  bad_file = str(tmp_path / 'bad.onnx')
  with pytest.raises(retrain.RetrainError) as raised:
    onnx_export.export_checked_onnx(bad_file, eval_session, run_images)
  message = str(raised.value)
  assert '\n' not in message
  assert re.fullmatch(
      r'The ONNX model disagrees with the frozen graph on the test images '
      r'\(max probability difference 0\.\d+, top-1 agreement \d+/25\), so ' +
      re.escape(bad_file) + r' is not written \(the other outputs are\): use '
      r'the versions of requirements-onnx\.txt\.', message), message
  assert os.listdir(str(tmp_path)) == ['good.onnx']
  eval_session.sess.close()


@needs_onnx
def test_onnx_output_file_must_be_a_file_name(tmp_path):
  flags = retrain.build_parser().parse_args(
      ['--image_dir', SAMPLE_DIR, '--onnx_output_file', str(tmp_path)] +
      retrain_output_args(str(tmp_path / 'out')))
  with pytest.raises(retrain.RetrainError,
                     match='--onnx_output_file .* is a folder: give a file'):
    retrain.check_flags(flags)


def _hiding(tmp_path, package):
  """PYTHONPATH under which `import package` fails as if not installed."""
  folder = tmp_path / 'hidden'
  folder.mkdir(exist_ok=True)
  (folder / (package + '.py')).write_text(
      'raise ModuleNotFoundError("No module named %r", name=%r)\n' %
      (package, package))
  return {'PYTHONPATH': str(folder)}


@needs_onnx  # It hides one of them: the others must be there.
@pytest.mark.parametrize('package', ['onnxruntime', 'tf2onnx'])
def test_a_missing_package_is_said_before_training(sample_module, tmp_path,
                                                   package):
  out_dir = str(tmp_path / 'out')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--onnx_output_file', os.path.join(out_dir, 'model.onnx')] +
                    retrain_output_args(out_dir),
                    env=_hiding(tmp_path, package))
  assert result.returncode == 1
  assert result.stdout.strip() == (
      'ERROR: --onnx_output_file needs the package %s, which is not '
      'installed: pip install -r requirements-onnx.txt (it comes with '
      'retrain.py; it installs tf2onnx, onnx and onnxruntime).' % package)
  assert not os.path.exists(out_dir)


def test_label_image_without_onnxruntime_is_one_line(tmp_path):
  onnx_file = tmp_path / 'model.onnx'
  onnx_file.write_bytes(b'not read')
  result = run_tool('label_image.py', [
      '--onnx_file', str(onnx_file), '--image', SAMPLE_DIR],
                    env=_hiding(tmp_path, 'onnxruntime'))
  assert result.returncode == 1
  assert result.stdout.strip() == (
      'ERROR: --onnx_file needs the package onnxruntime, which is not '
      'installed: pip install -r requirements-onnx.txt (it comes with '
      'retrain.py; it installs tf2onnx, onnx and onnxruntime).')


def test_a_package_that_does_not_import_is_one_line(tmp_path, monkeypatch):
  """E.g. onnx 1.19 beside TensorFlow 2.15's ml_dtypes."""
  (tmp_path / 'onnx_broken_here.py').write_text(
      "raise AttributeError(\"module 'ml_dtypes' has no attribute "
      "'float4_e2m1fn'\")\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(retrain.RetrainError) as raised:
    onnx_export.import_packages('--onnx_output_file', ['onnx_broken_here'])
  assert str(raised.value) == (
      "--onnx_output_file needs the package onnx_broken_here, which is "
      "installed but cannot be imported (module 'ml_dtypes' has no attribute "
      "'float4_e2m1fn'): install the versions of requirements-onnx.txt: pip "
      "install -r requirements-onnx.txt.")


def test_retrain_py_copied_alone_names_onnx_export_py(sample_module,
                                                      tmp_path):
  alone = str(tmp_path / 'alone')
  result = run_retrain_alone(alone, [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--onnx_output_file', str(tmp_path / 'model.onnx')] +
                             retrain_output_args(str(tmp_path / 'out')))
  assert result.returncode == 1
  assert result.stdout.strip() == (
      'ERROR: --onnx_output_file needs onnx_export.py beside retrain.py, in '
      '%s: copy it from the project that retrain.py comes from.' % alone)


@needs_onnx
def test_not_an_onnx_file_is_one_line(onnx_run, capsys):
  code = label_image.main(['--onnx_file', onnx_run['labels'], '--image',
                           SAMPLE_DIR])
  output = capsys.readouterr().err.strip()
  assert code == 1
  assert '\n' not in output
  assert output.startswith('ERROR: %s is not an ONNX model (.onnx) file that '
                           'ONNX Runtime can run (' % onnx_run['labels'])
