"""TF Lite: the models retrain.py writes, run with tf.lite.Interpreter as an app
would (README: What next, TF Lite)."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import retrain
from conftest import (SAMPLE_DIR, graph_probabilities, retrain_output_args,
                      run_tool, tflite_probabilities)

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
  interpreter = tf.lite.Interpreter(model_path=tflite_file)
  float_tensors = [detail['name'] for detail in
                   interpreter.get_tensor_details()
                   if detail['dtype'] == np.float32]
  assert not float_tensors, float_tensors
  agreement = np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))
  assert agreement >= 0.95, agreement
