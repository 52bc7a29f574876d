"""Shared fixtures: modules and images the tests build themselves, offline."""

import os
import subprocess
import sys

import numpy as np
import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(REPO_DIR, 'flower_photos_sample')
sys.path.insert(0, REPO_DIR)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')


def run_tool(script, args, timeout=900, env=None):
  """Runs one of the project's scripts as a user would; returns the result."""
  full_env = dict(os.environ)
  full_env.update(env or {})
  return subprocess.run(
      [sys.executable, os.path.join(REPO_DIR, script)] + list(args),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      timeout=timeout, env=full_env, check=False)


def retrain_output_args(out_dir, bottleneck_dir=None):
  """Flags that keep every output of a retrain.py run inside out_dir."""
  return [
      '--output_graph', os.path.join(out_dir, 'output_graph.pb'),
      '--output_labels', os.path.join(out_dir, 'output_labels.txt'),
      '--summaries_dir', os.path.join(out_dir, 'retrain_logs'),
      '--bottleneck_dir', bottleneck_dir or os.path.join(out_dir, 'bottleneck'),
      '--checkpoint_path', os.path.join(out_dir, 'checkpoint', 'model'),
      '--intermediate_output_graphs_dir', os.path.join(out_dir, 'intermediate'),
  ]


@pytest.fixture(scope='session')
def sample_module(tmp_path_factory):
  """The default sample CNN module (what the README's demo builds)."""
  import make_image_module  # pylint: disable=g-import-not-at-top
  return make_image_module.export_sample_cnn_module(
      str(tmp_path_factory.mktemp('modules') / 'sample_cnn'))


@pytest.fixture(scope='session')
def quantized_module(tmp_path_factory):
  """The sample CNN instrumented with FakeQuant ops."""
  import make_image_module  # pylint: disable=g-import-not-at-top
  return make_image_module.export_sample_cnn_module(
      str(tmp_path_factory.mktemp('modules') / 'sample_cnn_quant'),
      quantize=True)


def write_color_images(class_dir, base_color, count, seed, png_every=5):
  """Writes noisy images of one dominant colour, of varying sizes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(class_dir, exist_ok=True)
  rng = np.random.RandomState(seed)
  for i in range(count):
    height, width = 40 + 3 * i, 60 - i
    pixels = np.clip(rng.randn(height, width, 3) * 35 + base_color, 0, 255)
    extension = 'png' if i % png_every == 0 else 'jpg'
    Image.fromarray(pixels.astype(np.uint8)).save(
        os.path.join(class_dir, 'image_%02d.%s' % (i, extension)))


@pytest.fixture()
def color_image_dir(tmp_path):
  """Three small classes of coloured noise: quick to cache and to learn."""
  root = tmp_path / 'images'
  for seed, (name, color) in enumerate([('red', (210, 40, 40)),
                                        ('Green_Leaves', (40, 200, 40)),
                                        ('blue', (40, 40, 210))]):
    write_color_images(str(root / name), color, 24, seed)
  return str(root)


@pytest.fixture(scope='session')
def tf2_modules(tmp_path_factory):
  """TF2 SavedModel image feature vectors (tests/make_tf2_module.py --all).

  Built in a process of their own, since saving needs TF2 behaviour: a dict
  of folders by kind: 'fixed' (64x64 input), 'variable_size', 'signature_only'
  and 'not_image'.
  """
  root = str(tmp_path_factory.mktemp('tf2_modules'))
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_DIR, 'tests', 'make_tf2_module.py'),
       '--all', root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stdout[-3000:]
  return {kind: os.path.join(root, kind) for kind in
          ('fixed', 'variable_size', 'signature_only', 'not_image')}


@pytest.fixture(scope='session')
def trained_run(sample_module, tmp_path_factory):
  """A seeded retrain.py run on the sample with the SavedModel and TF Lite on.

  Returns:
    A dict: 'dir' (all outputs), 'graph', 'labels', 'saved_model', 'tflite',
    'summaries' paths and 'output' (what the run printed).
  """
  out_dir = str(tmp_path_factory.mktemp('trained_run'))
  paths = {
      'dir': out_dir,
      'graph': os.path.join(out_dir, 'output_graph.pb'),
      'labels': os.path.join(out_dir, 'output_labels.txt'),
      'saved_model': os.path.join(out_dir, 'saved_models', '1'),
      'tflite': os.path.join(out_dir, 'model.tflite'),
      'summaries': os.path.join(out_dir, 'retrain_logs'),
  }
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '1000', '--random_seed', '1',
      '--saved_model_dir', paths['saved_model'],
      '--tflite_output_file', paths['tflite']] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  paths['output'] = result.stdout
  return paths
