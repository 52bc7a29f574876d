"""Tests for make_image_module.py: every kind of module, built here offline."""

import os
import subprocess
import sys

import numpy as np
import tensorflow.compat.v1 as tf

import make_image_module
import retrain
from conftest import run_tool


def _features(module_dir, images):
  with tf.Graph().as_default():
    features = retrain.load_module_spec(module_dir).apply_fn()(images)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return sess.run(features)


def _random_images(count, size, seed=0):
  return np.random.RandomState(seed).rand(count, size, size, 3).astype(
      np.float32)


def test_sample_cnn_is_an_image_feature_vector_and_deterministic(
    sample_module, tmp_path):
  spec = retrain.load_module_spec(sample_module)
  assert retrain.module_image_shape(spec) == (128, 128, 3)
  signature = spec.meta_graph.signature_def['default']
  assert tf.TensorShape(signature.inputs['images'].tensor_shape).as_list() == [
      None, 128, 128, 3]
  assert tf.TensorShape(signature.outputs['default'].tensor_shape).as_list(
      ) == [None, spec.feature_width]
  images = _random_images(3, 128)
  first = _features(sample_module, images)
  again = make_image_module.export_sample_cnn_module(str(tmp_path / 'again'))
  np.testing.assert_array_equal(first, _features(again, images))
  assert first.shape == (3, spec.feature_width)
  assert first.min() >= 0.0
  other_seed = make_image_module.export_sample_cnn_module(
      str(tmp_path / 'seed1'), seed=1)
  assert not np.allclose(first, _features(other_seed, images))


def test_quantized_sample_cnn_has_fake_quant_ops(quantized_module):
  with tf.Graph().as_default() as graph:
    retrain.load_module_spec(quantized_module).apply_fn()(
        _random_images(1, 128))
    ops = {op.type for op in graph.get_operations()}
  assert 'FakeQuantWithMinMaxVars' in ops


def _write_classifier_graph(path, size=32):
  """A frozen classic classifier with a batch size fixed to 1, like MobileNet."""
  rng = np.random.RandomState(3)
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [1, size, size, 3], name='input')
    kernel = tf.constant(rng.randn(3, 3, 3, 8).astype(np.float32))
    conv = tf.nn.relu(tf.nn.conv2d(images, kernel, [1, 2, 2, 1], 'SAME'))
    pooled = tf.nn.avg_pool(conv, [1, size // 2, size // 2, 1], [1, 1, 1, 1],
                            'VALID', name='AvgPool')
    logits = tf.reshape(tf.reshape(pooled, [1, 8]) @ tf.constant(
        rng.randn(8, 4).astype(np.float32)), [1, 4])
    tf.nn.softmax(logits, name='Predictions')
  with open(path, 'wb') as f:
    f.write(graph.as_graph_def().SerializeToString())
  return graph


def _run_frozen_graph(path, images, input_range):
  graph_def = tf.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  low, high = input_range
  with tf.Graph().as_default():
    tf.import_graph_def(graph_def, name='')
    with tf.Session() as sess:
      return np.concatenate([
          sess.run('AvgPool:0', {'input:0': image[None] * (high - low) + low})
          .reshape(1, -1) for image in images])


def test_frozen_graph_module_runs_batches_like_the_graph(tmp_path):
  graph_path = str(tmp_path / 'frozen_graph.pb')
  _write_classifier_graph(graph_path)
  module_dir = make_image_module.export_frozen_graph_module(
      str(tmp_path / 'module'), graph_path, 'input:0', 'AvgPool:0',
      input_range=(-1.0, 1.0))
  assert retrain.load_module_spec(module_dir).image_size == (32, 32)
  images = _random_images(3, 32)
  np.testing.assert_allclose(
      _features(module_dir, images),
      _run_frozen_graph(graph_path, images, (-1.0, 1.0)), rtol=1e-5,
      atol=1e-6)


def test_frozen_graph_mistakes_are_one_line(tmp_path):
  graph_path = str(tmp_path / 'frozen_graph.pb')
  _write_classifier_graph(graph_path)
  (tmp_path / 'not_a_graph.pb').write_bytes(b'\x00garbage' * 10)
  cases = [
      ['--bottleneck_tensor', 'NoSuchTensor:0', '--frozen_graph', graph_path],
      ['--bottleneck_tensor', 'AvgPool:0', '--frozen_graph',
       str(tmp_path / 'not_a_graph.pb')],
      ['--bottleneck_tensor', 'AvgPool:0', '--frozen_graph',
       str(tmp_path / 'missing.pb')],
  ]
  for number, args in enumerate(cases):
    out_dir = str(tmp_path / ('out%d' % number))
    result = run_tool('make_image_module.py',
                      ['--kind', 'frozen_graph'] + args + [out_dir])
    assert result.returncode != 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and 'error' in lines[0], result.stdout
    assert not os.path.exists(out_dir)


def test_refuses_a_non_empty_output_folder(tmp_path):
  (tmp_path / 'taken').mkdir()
  (tmp_path / 'taken' / 'keep.txt').write_text('mine')
  result = run_tool('make_image_module.py', [str(tmp_path / 'taken')])
  assert result.returncode == 1
  assert 'already exists' in result.stdout
  assert os.listdir(str(tmp_path / 'taken')) == ['keep.txt']


def test_keras_architecture_with_a_local_weights_file(tmp_path):
  # Keras 2 (retrain.keras_2()) saves the weights file in TF2
  # behaviour, as its users do.
  weights = str(tmp_path / 'mobilenet_v2_96.h5')
  expected = str(tmp_path / 'expected.npy')
  images = _random_images(2, 96)
  np.save(str(tmp_path / 'images.npy'), images)
  script = (
      'import sys, numpy as np, tensorflow as tf\n'
      'try:\n'
      '  import tf_keras as keras\n'
      'except ImportError:\n'
      '  keras = tf.keras\n'
      'model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), '
      'include_top=False, pooling="avg", weights=None)\n'
      'rng = np.random.RandomState(5)\n'
      'model.set_weights([w + rng.normal(0, 0.05, w.shape) '
      'for w in model.get_weights()])\n'
      'model.save_weights(sys.argv[1])\n'
      'x = np.load(sys.argv[3])\n'
      'np.save(sys.argv[2], model(x * 2 - 1, training=False).numpy())\n')
  subprocess.run([sys.executable, '-c', script, weights, expected,
                  str(tmp_path / 'images.npy')], check=True, timeout=300,
                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'),
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  module_dir = make_image_module.export_keras_module(
      str(tmp_path / 'module'), 'mobilenet_v2', image_size=96, weights=weights)
  spec = retrain.load_module_spec(module_dir)
  assert spec.image_size == (96, 96) and spec.feature_width == 1280
  reference = np.load(expected)
  assert np.abs(reference).max() > 1e-3
  np.testing.assert_allclose(_features(module_dir, images), reference,
                             rtol=1e-4, atol=1e-5 * np.abs(reference).max())


def test_keras_imagenet_weights_offline_is_one_line(tmp_path):
  out_dir = str(tmp_path / 'module')
  # A proxy that refuses connections keeps the test offline everywhere.
  result = run_tool('make_image_module.py', [
      '--kind', 'keras', '--architecture', 'mobilenet_v2', '--image_size',
      '96', '--weights', 'imagenet', out_dir],
                    env={'HTTPS_PROXY': 'http://127.0.0.1:9',
                         'HTTP_PROXY': 'http://127.0.0.1:9'})
  assert result.returncode == 1
  errors = [line for line in result.stdout.splitlines()
            if 'error' in line.lower()]
  assert len(errors) == 1 and 'pass a local weights file' in errors[0]
  assert 'Traceback' not in result.stdout
  assert not os.path.exists(out_dir)
