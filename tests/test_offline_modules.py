"""Module URLs: tensorflow_hub's download of a compressed module into
TFHUB_CACHE_DIR, and its cache without a network (README: What next;
docs/modules.md: Offline)."""

import functools
import hashlib
import http.server
import os
import shutil
import tarfile
import threading

import pytest
import tensorflow.compat.v1 as tf

import retrain
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


def test_compressed_module_url_is_downloaded_then_found_offline(
    sample_module, tmp_path, monkeypatch):
  """A .tar.gz module served on this machine's loopback, as tfhub.dev and
  Kaggle serve them: hub.resolve downloads and unpacks it into
  TFHUB_CACHE_DIR, and finds it there once the server is gone."""
  www = tmp_path / 'www'
  www.mkdir()
  with tarfile.open(str(www / 'sample.tar.gz'), 'w:gz') as archive:
    archive.add(sample_module, arcname='.')
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(
      http.server.SimpleHTTPRequestHandler, directory=str(www)))
  threading.Thread(target=server.serve_forever, daemon=True).start()
  url = 'http://127.0.0.1:%d/sample.tar.gz' % server.server_address[1]
  monkeypatch.setenv('TFHUB_CACHE_DIR', str(tmp_path / 'hub_cache'))
  monkeypatch.setenv('NO_PROXY', '127.0.0.1')
  monkeypatch.setenv('no_proxy', '127.0.0.1')
  try:
    downloaded = retrain.load_module_spec(url)
  finally:
    server.shutdown()
    server.server_close()
  assert downloaded.path.startswith(str(tmp_path / 'hub_cache'))
  assert sorted(os.listdir(downloaded.path)) == sorted(
      os.listdir(sample_module))
  offline = retrain.load_module_spec(url)
  assert (offline.path, offline.image_size, offline.feature_width) == (
      downloaded.path, (128, 128), downloaded.feature_width)
