"""Today's stack against the classic one: hub.Module (tensorflow_hub 0.15,
TensorFlow 2.15) reads what this project writes, and computes the same
bottlenecks as retrain.py's own module loader.

These tests run the classic stack's Python, which run_tests.sh passes in
RETRAIN_CLASSIC_PYTHON (.venv-classic); without it they are skipped. With the
real material of ../shared (MobileNet v2 and the flower photos) the
bottlenecks are compared on real photos, else on the generated sample.
"""

import glob
import os
import subprocess

import numpy as np
import pytest

import make_image_module
import retrain
from conftest import (REPO_DIR, SAMPLE_DIR, retrain_cache, run_tool,
                      write_any_size_module)

SHARED_DIR = os.path.join(os.path.dirname(REPO_DIR), 'shared')
MOBILENET_V2 = os.path.join(SHARED_DIR, 'modules',
                            'mobilenet_v2_1.0_224_dequantized',
                            'frozen_graph.pb')
DEV_PHOTOS = os.path.join(SHARED_DIR, 'photos', 'flower_photos_dev')
# Real photos per class compared (of 100): enough for every category of the
# split, few enough for the original's one-image-at-a-time caching.
PHOTOS_PER_CLASS = 40


def _classic_python():
  """The classic stack's Python, or skips the test saying why not."""
  python = os.environ.get('RETRAIN_CLASSIC_PYTHON')
  if not python:
    pytest.skip('no classic stack: RETRAIN_CLASSIC_PYTHON is not set '
                '(run_tests.sh sets it where a Python 3.9-3.11 is found)')
  result = _run_classic(python, ['-c', 'import tensorflow_hub as h; h.Module'])
  assert result.returncode == 0, (
      '%s has no hub.Module: %s' % (python, result.stdout[-2000:]))
  return python


def _run_classic(python, args, timeout=900):
  return subprocess.run([python] + args, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=timeout,
                        check=False, cwd=REPO_DIR,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))


def _real_photos(folder):
  """Links the first PHOTOS_PER_CLASS dev photos of each class into folder."""
  for class_dir in sorted(glob.glob(os.path.join(DEV_PHOTOS, '*', ''))):
    target = os.path.join(folder, os.path.basename(class_dir[:-1]))
    os.makedirs(target)
    for path in sorted(glob.glob(os.path.join(class_dir, '*.jpg')))[
        :PHOTOS_PER_CLASS]:
      os.symlink(path, os.path.join(target, os.path.basename(path)))
  return folder


def test_bottlenecks_equal_hub_modules(tmp_path, sample_module):
  """retrain.py's cache files against the original's, which hub.Module
  computes on the classic stack: relative L1 distance at most 1e-5."""
  python = _classic_python()
  if os.path.isfile(MOBILENET_V2) and os.path.isdir(DEV_PHOTOS):
    module = make_image_module.export_frozen_graph_module(
        str(tmp_path / 'mobilenet_v2'), MOBILENET_V2, 'input:0',
        'MobilenetV2/Logits/AvgPool:0', 224, (-1.0, 1.0))
    image_dir = _real_photos(str(tmp_path / 'photos'))
  else:
    module, image_dir = sample_module, SAMPLE_DIR
  ours = retrain_cache(module, image_dir, str(tmp_path / 'ours'))
  out = str(tmp_path / 'original')
  result = _run_classic(python, [
      os.path.join(REPO_DIR, 'bench', 'original_retrain.py'), '--image_dir',
      image_dir, '--tfhub_module', module, '--how_many_training_steps', '1',
      '--bottleneck_dir', os.path.join(out, 'bottleneck'),
      '--summaries_dir', os.path.join(out, 'logs'),
      '--output_graph', os.path.join(out, 'graph.pb'),
      '--output_labels', os.path.join(out, 'labels.txt'),
      '--checkpoint_path', os.path.join(out, '_retrain_checkpoint')])
  assert result.returncode == 0, result.stdout[-3000:]
  originals = {
      os.path.relpath(path, os.path.join(out, 'bottleneck')): path
      for path in glob.glob(os.path.join(out, 'bottleneck', '*', '*.txt'))}
  assert sorted(originals) == sorted(ours)
  for name, path in originals.items():
    with open(path) as f:
      reference = np.array(f.read().split(','), np.float64)
    values = np.array(ours[name].split(','), np.float64)
    distance = np.abs(values - reference).sum() / np.abs(reference).sum()
    assert distance <= 1e-5, (name, distance)


def test_hub_module_reads_what_today_writes(tmp_path):
  """half_plus_two.py's and make_image_module.py's modules, written on
  today's stack, in hub.Module on the classic stack."""
  python = _classic_python()
  half_plus_two = str(tmp_path / 'half_plus_two')
  assert run_tool('half_plus_two.py', [half_plus_two]).returncode == 0
  sample = make_image_module.export_sample_cnn_module(
      str(tmp_path / 'sample'), image_size=32)
  # The image size attached by hand as tensorflow_hub's attach_image_module_info
  # did: hub.get_expected_image_size must read what load_module_spec reads.
  sized = write_any_size_module(str(tmp_path / 'sized'), (96, 80))
  assert retrain.load_module_spec(sized).image_size == (96, 80)
  script = (
      'import sys, numpy as np, tensorflow.compat.v1 as tf\n'
      'import tensorflow_hub as hub\n'
      'tf.disable_v2_behavior()\n'
      'y = hub.Module(sys.argv[1])([10.0, 3.0, 4.0])\n'
      'spec = hub.load_module_spec(sys.argv[2])\n'
      'features = hub.Module(spec)(np.full([1, 32, 32, 3], 0.5, np.float32))\n'
      'with tf.Session() as sess:\n'
      '  sess.run(tf.global_variables_initializer())\n'
      '  print(sess.run(y).tolist(), hub.get_expected_image_size(spec),\n'
      '        sess.run(features).shape,\n'
      '        hub.get_expected_image_size(hub.load_module_spec(sys.argv[3])))\n')
  result = _run_classic(python, ['-c', script, half_plus_two, sample, sized])
  assert result.returncode == 0, result.stdout[-3000:]
  assert result.stdout.strip().splitlines()[-1] == (
      '[7.0, 3.5, 4.0] [32, 32] (1, 1024) [96, 80]')
