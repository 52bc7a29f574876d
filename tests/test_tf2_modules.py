"""TF2 SavedModel modules (current TF Hub / Kaggle models) in retrain.py
(README: What next; docs/modules.md: TF2 modules)."""

import glob
import os
import re
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import label_image
import retrain
from tf2_modules import TF2ImageModule  # tf2_modules is the fixture here.
from conftest import (decode_images, graph_probabilities, retrain_output_args,
                      run_command, run_retrain_alone, run_tool,
                      tflite_probabilities)

tf.disable_v2_behavior()


def test_tf2_modules_are_described_from_their_signature(tf2_modules):
  fixed = retrain.load_module_spec(tf2_modules['fixed'])
  assert isinstance(fixed, TF2ImageModule)
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
  result = run_command([sys.executable, '-c', script, tf2_modules[kind],
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
  images = decode_images(paths, 48)
  expected = graph_probabilities(os.path.join(out_dir, 'output_graph.pb'),
                                  images)
  actual, _, _ = tflite_probabilities(tflite_file, images)
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


def test_retrain_py_copied_alone_names_tf2_modules_py(tf2_modules,
                                                      color_image_dir,
                                                      tmp_path):
  alone = str(tmp_path / 'alone')
  out_dir = str(tmp_path / 'out')
  result = run_retrain_alone(alone, [
      '--image_dir', color_image_dir, '--tfhub_module', tf2_modules['fixed']] +
                             retrain_output_args(out_dir))
  assert result.returncode == 1
  assert result.stdout.strip().splitlines() == [
      'ERROR: --tfhub_module %s (a TF2 SavedModel) needs tf2_modules.py '
      'beside retrain.py, in %s: copy it from the project that retrain.py '
      'comes from.' % (tf2_modules['fixed'], alone)], result.stdout
  assert 'Traceback' not in result.stdout
  assert not os.path.exists(out_dir)  # Nothing trained, nothing written.
