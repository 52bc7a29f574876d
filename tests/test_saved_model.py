"""The SavedModel for TensorFlow Serving: both signatures, read and run with
saved_model_cli as docs/exports.md shows (README: What next;
docs/exports.md: The SavedModel)."""

import glob
import os
import re

import numpy as np
import tensorflow.compat.v1 as tf

from conftest import (SAMPLE_DIR, decode_images, graph_probabilities,
                      run_command, saved_model_cli)

tf.disable_v2_behavior()


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
  shown = run_command(saved_model_cli() + ['show', '--dir', saved_model, '--all'])
  assert shown.returncode == 0, shown.stdout[-3000:]
  for text in ("signature_def['serving_default']", "inputs['image']",
               "signature_def['serving_bytes']", "inputs['image_bytes']",
               'dtype: DT_STRING', "outputs['classes']",
               "outputs['prediction']"):
    assert text in shown.stdout

  paths = [os.path.join(SAMPLE_DIR, 'roses', 'rose_003.jpg'),
           os.path.join(SAMPLE_DIR, 'tulips', 'tulip_004.jpg'),
           sorted(glob.glob(os.path.join(SAMPLE_DIR, 'daisy', '*.png')))[0]]
  expected = graph_probabilities(trained_run['graph'], decode_images(paths, 128))
  labels = open(trained_run['labels']).read().split()

  # The image files as they are, the way a Serving client posts them.
  np.save(str(tmp_path / 'image_bytes.npy'),
          np.array([open(path, 'rb').read() for path in paths], dtype=object))
  run = run_command(saved_model_cli() + [
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

  np.save(str(tmp_path / 'image.npy'), decode_images(paths, 128))
  run = run_command(saved_model_cli() + [
      'run', '--dir', saved_model, '--tag_set', 'serve', '--signature_def',
      'serving_default', '--inputs', 'image=' + str(tmp_path / 'image.npy')])
  assert run.returncode == 0, run.stdout[-3000:]
  assert 'Result for output key prediction:' in run.stdout
  printed = run.stdout.split('Result for output key prediction:')[1]
  values = np.array([float(v) for v in re.findall(
      r'[-+]?\d+\.\d*(?:e[-+]?\d+)?', printed)])
  np.testing.assert_allclose(values.reshape(expected.shape), expected,
                             rtol=1e-4, atol=1e-6)
