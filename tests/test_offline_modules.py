"""Module URLs without a network: tensorflow_hub's cache in TFHUB_CACHE_DIR
(README: What next, Offline)."""

import hashlib
import shutil

import pytest
import tensorflow.compat.v1 as tf

from conftest import retrain_output_args, run_tool, write_color_images

tf.disable_v2_behavior()


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
