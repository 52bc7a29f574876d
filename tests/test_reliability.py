"""Reliability: bad images, bad flags, existing outputs, interrupted runs.

Every case of the 'unbreakable' issue is built here on the fly: broken and odd
image files, wrong flags and folders, corrupted caches, concurrent runs,
Ctrl-C / SIGTERM and kill -9 at random moments.
"""

import errno
import faulthandler
import glob
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import fast_distortions
import image_checks
import retrain
from conftest import (NON_UTF8_NAME, REPO_DIR, SAMPLE_DIR, retrain_output_args,
                      run_tool, write_bad_images, write_color_images)

tf.disable_v2_behavior()

CATEGORIES = ('training', 'testing', 'validation')
IS_ROOT = hasattr(os, 'geteuid') and os.geteuid() == 0


def _all_names(label_lists):
  return sorted(sum((label_lists[c] for c in CATEGORIES), []))


def _tmp_files(folder):
  return [path for path in glob.glob(os.path.join(folder, '**', '*'),
                                     recursive=True) if '.tmp-' in path]


@pytest.fixture()
def bad_image_dir(color_image_dir):
  """The three colour classes, with every kind of bad file added to 'red'."""
  expected = write_bad_images(os.path.join(color_image_dir, 'red'),
                              huge=False)
  return color_image_dir, expected


def _expected_skips(expected, unreadable_is_readable=IS_ROOT):
  skips = {name: reason for name, reason in expected.items() if reason}
  if unreadable_is_readable:
    del skips['no_permission.jpg']
  return skips


# ------------------------------------------------------------------ bad data


def _reference_image(path, height, width):
  """PIL's RGB decoding of path, resized like retrain.py does, in [0, 1]."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rgb = np.asarray(Image.open(path).convert('RGB'), np.float32) / 255.0
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(tf.image.resize_bilinear(rgb[np.newaxis],
                                             [height, width]))


def test_bad_images_are_skipped_with_reasons_and_odd_ones_decoded(
    module_pipeline, bad_image_dir, tmp_path, caplog):
  # Other tests' imports (half_plus_two) lower TensorFlow's log level.
  caplog.set_level(logging.INFO, logger='tensorflow')
  image_dir, expected = bad_image_dir
  red_dir = os.path.join(image_dir, 'red')
  skipped = []
  image_lists = retrain.create_image_lists(image_dir, 10, 10,
                                           unusable=skipped)
  bottleneck_dir = str(tmp_path / 'bottleneck')
  skipped += retrain.cache_bottlenecks(
      module_pipeline.sess, image_lists, image_dir, bottleneck_dir,
      *module_pipeline.tensors, module_name='m')

  skips = _expected_skips(expected)
  skipped_names = {os.fsencode(os.path.basename(path)).decode(
      'utf-8', 'backslashreplace'): reason for path, reason in skipped}
  printable = lambda name: os.fsencode(name).decode('utf-8', 'backslashreplace')
  assert sorted(skipped_names) == sorted(printable(n) for n in skips)
  for name, reason_part in skips.items():
    reason = skipped_names[printable(name)]
    assert reason_part in reason, (name, reason)
    # One warning per skipped file names it and says why.
    assert [r for r in caplog.records if printable(name) in r.getMessage()
            and reason in r.getMessage()], name

  # Skipped images are gone from every set, their cache files never written.
  red_names = _all_names(image_lists['red'])
  for name in skips:
    assert name not in red_names
  cached = set(os.listdir(os.path.join(bottleneck_dir, 'red')))
  used = [name for name in expected if name not in skips]
  assert sorted(used) == sorted(n for n in red_names if not n.startswith(
      'image_'))
  assert len(cached) == len(red_names) == 24 + len(used)
  for name in used:
    assert any(entry.startswith(name[:150]) for entry in cached), name
  assert not [n for n in cached if '.tmp-' in n]

  # Odd but valid images are decoded to the right RGB picture.
  for name in used:
    path = os.path.join(red_dir, name)
    with open(path, 'rb') as f:
      decoded = module_pipeline.decode(f.read())
    assert decoded.shape == (1, module_pipeline.image_height,
                             module_pipeline.image_width, 3), name
    reference = _reference_image(path, module_pipeline.image_height,
                                 module_pipeline.image_width)
    difference = np.abs(decoded - reference)
    # JPEG decoders differ by a few levels (TF uses the fast integer IDCT).
    assert difference.max() <= 12 / 255.0, name
    assert difference.mean() <= 2 / 255.0, name


def _distorted_batches(module_pipeline, distortions, image_lists, image_dir,
                       batch_size, seed=None,
                       memory_mb=retrain.DEFAULT_DECODED_IMAGES_MB):
  """The parallel DistortedBatches that retrain.py's main trains with."""
  return fast_distortions.DistortedBatches(
      retrain.module_image_shape(module_pipeline.spec),
      retrain.Distortions(*distortions), image_lists, image_dir, 'training',
      batch_size, seed=seed, memory_mb=memory_mb)


def test_decoded_images_in_memory_give_the_same_batches(module_pipeline,
                                                        color_image_dir):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  with module_pipeline.graph.as_default():
    from_files, in_memory = [_distorted_batches(
        module_pipeline, (True, 10, 10, 10), image_lists, color_image_dir, 8,
        seed=5, memory_mb=memory_mb) for memory_mb in (0, 64)]
  for _ in range(12):
    images_from_files, truths_from_files = from_files.next(
        module_pipeline.sess)
    images_in_memory, truths_in_memory = in_memory.next(module_pipeline.sess)
    np.testing.assert_array_equal(images_from_files, images_in_memory)
    np.testing.assert_array_equal(truths_from_files, truths_in_memory)
  # 96 draws (with replacement) of the 57 training images: each image drawn
  # was decoded once, then kept.
  training_paths = [
      retrain.get_image_path(image_lists, label, index, color_image_dir,
                             'training')
      for label, lists in image_lists.items()
      for index in range(len(lists['training']))]
  kept = [(path, in_memory.memory.image(module_pipeline.sess, path))
          for path in training_paths]
  kept = [(path, image) for path, image in kept if image is not None]
  assert len(from_files.memory) == 0
  assert not [path for path in training_paths
              if from_files.memory.image(module_pipeline.sess, path)
              is not None]
  # The table also holds the images of the batches on their way.
  held = [(path, image) for path, image in kept
          if in_memory.memory.is_held(path)]
  assert 30 <= len(in_memory.memory) == len(held) <= len(kept)
  assert in_memory.memory.used_bytes == sum(image.nbytes
                                            for _, image in held)
  with tf.Graph().as_default(), tf.Session() as sess:
    for path, image in kept[:5]:
      with open(path, 'rb') as f:
        decoded = sess.run(tf.image.decode_image(f.read(), channels=3))
      np.testing.assert_array_equal(image, decoded)


def test_decoded_images_stay_within_their_budget():
  with tf.Graph().as_default():
    memory = fast_distortions.DecodedImages(1)
    nothing = fast_distortions.DecodedImages(0)
  image_bytes = 600 * 400 * 3  # 0.69 MB
  for name in ('a', 'b'):
    assert memory.wants(name)  # Both asked for while the memory is empty.
  assert not memory.wants('a')  # Asked for once only.
  memory.kept('a', image_bytes)
  memory.kept('b', image_bytes)  # Already on its way: kept (1.4 MB).
  assert memory.is_held('b') and not memory.wants('b')
  assert not memory.wants('c')  # Over the budget: read from file.
  assert not memory.is_held('c')
  assert len(memory) == 2 and memory.used_bytes == 2 * image_bytes
  assert not nothing.wants('a')
  assert len({memory.key(name) for name in ('a', 'b', 'c', 'a')}) == 3


def test_skipped_images_reach_no_batch_and_no_test_set(module_pipeline,
                                                       bad_image_dir,
                                                       tmp_path, monkeypatch):
  image_dir, expected = bad_image_dir
  skips = set(_expected_skips(expected))
  image_lists = retrain.create_image_lists(image_dir, 30, 30)
  bottleneck_dir = str(tmp_path / 'bn')
  retrain.cache_bottlenecks(module_pipeline.sess, image_lists, image_dir,
                            bottleneck_dir, *module_pipeline.tensors,
                            module_name='m')
  for category in CATEGORIES:
    _, truths, names = retrain.get_random_cached_bottlenecks(
        module_pipeline.sess, image_lists, -1, category, bottleneck_dir,
        image_dir, *module_pipeline.tensors, module_name='m')
    assert len(truths) == len(names)
    assert not skips & {os.path.basename(n) for n in names}

  # The distorted training path draws its images from the same lists.
  drawn = []
  original_get_image_path = retrain.get_image_path

  def recording_get_image_path(*args):
    path = original_get_image_path(*args)
    drawn.append(os.path.basename(path))
    return path

  monkeypatch.setattr(retrain, 'get_image_path', recording_get_image_path)
  with module_pipeline.graph.as_default():
    distorted_jpeg, distorted = retrain.add_input_distortions(
        True, 10, 10, 10, module_pipeline.spec)
    batches = _distorted_batches(module_pipeline, (True, 10, 10, 10),
                                 image_lists, image_dir, 16)
  for _ in range(3):
    bottlenecks, truths = retrain.get_random_distorted_bottlenecks(
        module_pipeline.sess, image_lists, 16, 'training', image_dir,
        distorted_jpeg, distorted, module_pipeline.resized_input,
        module_pipeline.bottleneck, batches=batches)
    assert bottlenecks.shape[0] == len(truths) == 16
  assert len(drawn) >= 48
  assert not skips & set(drawn)


def test_distorted_training_stops_instead_of_hanging_when_images_vanish(
    module_pipeline, color_image_dir, tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  retrain.cache_bottlenecks(module_pipeline.sess, image_lists, color_image_dir,
                            str(tmp_path / 'bn'), *module_pipeline.tensors,
                            module_name='m')
  with module_pipeline.graph.as_default():
    distorted_jpeg, distorted = retrain.add_input_distortions(
        True, 0, 0, 0, module_pipeline.spec)
    # Nothing kept in memory: every draw reads its file.
    batches = _distorted_batches(module_pipeline, (True, 0, 0, 0),
                                 image_lists, color_image_dir, 8, memory_mb=0)
  args = (module_pipeline.sess, image_lists, 8, 'training', color_image_dir,
          distorted_jpeg, distorted, module_pipeline.resized_input,
          module_pipeline.bottleneck, batches)
  bottlenecks, _ = retrain.get_random_distorted_bottlenecks(*args)
  assert len(bottlenecks) == 8
  # Every image is damaged or removed during the run.
  for index, path in enumerate(sorted(glob.glob(
      os.path.join(color_image_dir, '*', '*')))):
    if index % 2:
      os.remove(path)
    else:
      with open(path, 'wb') as f:
        f.write(b'\xff\xd8\xff garbage')
  # A hang would kill the test run with a traceback instead of blocking it.
  faulthandler.dump_traceback_later(300, exit=True)
  try:
    with pytest.raises(retrain.RetrainError, match='can no longer be read'):
      for _ in range(20):
        retrain.get_random_distorted_bottlenecks(*args)
  finally:
    faulthandler.cancel_dump_traceback_later()


def test_huge_image_is_decoded_downscaled_and_bomb_skipped(module_pipeline,
                                                           tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from conftest import png_bytes  # pylint: disable=g-import-not-at-top
  huge = str(tmp_path / 'huge.jpg')
  Image.new('RGB', (12000, 12000), (200, 100, 20)).save(huge, quality=90)
  assert 12000 * 12000 > retrain.MAX_IMAGE_PIXELS
  with open(huge, 'rb') as f:
    decoded = module_pipeline.decode(f.read())
  np.testing.assert_allclose(decoded.reshape(-1, 3).mean(axis=0),
                             np.array([200, 100, 20]) / 255.0, atol=3 / 255.0)
  # Too large for JPEG scaling, or not a JPEG: skipped before decoding.
  pixels = np.zeros((4, 4, 3), np.uint8)
  for declared in [(20000, 20000), (6000, 6000)]:
    reason = image_checks.decode_or_explain(
        module_pipeline.sess, png_bytes(pixels, declared_size=declared, rows=2),
        module_pipeline.jpeg_data, module_pipeline.decoded_image)[1]
    assert reason.startswith('it is %d x %d pixels, more than the %d' % (
        declared + (retrain.MAX_IMAGE_PIXELS,))), reason
  # Normal images keep their exact original decoding.
  with tf.Graph().as_default(), tf.Session() as sess:
    data = tf.placeholder(tf.string)
    guarded = retrain.decode_and_resize(data, 64, 64, 3)
    plain = tf.image.resize_bilinear(tf.expand_dims(tf.image.convert_image_dtype(
        tf.image.decode_jpeg(data, channels=3), tf.float32), 0), [64, 64])
    for path in sorted(glob.glob(os.path.join(SAMPLE_DIR, '*', '*')))[::10]:
      with open(path, 'rb') as f:
        image_data = f.read()
      first, second = sess.run([guarded, plain], {data: image_data})
      np.testing.assert_array_equal(first, second)


def test_unreadable_file_is_skipped(module_pipeline, color_image_dir, tmp_path,
                                    monkeypatch):
  path = os.path.join(color_image_dir, 'blue', 'image_03.jpg')
  os.chmod(path, 0)
  if IS_ROOT:
    # root reads a chmod 000 file anyway: make reading it fail as for others.
    real_open = os.open

    def refusing_open(file_path, *args, **kwargs):
      if os.fspath(file_path) == path:
        raise PermissionError(13, 'Permission denied', path)
      return real_open(file_path, *args, **kwargs)

    monkeypatch.setattr(os, 'open', refusing_open)
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  skipped = retrain.cache_bottlenecks(
      module_pipeline.sess, image_lists, color_image_dir, str(tmp_path / 'bn'),
      *module_pipeline.tensors, module_name='m')
  assert skipped == [(path, 'it cannot be read (Permission denied)')]
  assert 'image_03.jpg' not in _all_names(image_lists['blue'])


def test_class_without_usable_training_images_is_one_clear_error(
    module_pipeline, color_image_dir, tmp_path):
  for path in glob.glob(os.path.join(color_image_dir, 'blue', '*')):
    with open(path, 'wb') as f:
      f.write(b'not an image')
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  skipped = retrain.cache_bottlenecks(
      module_pipeline.sess, image_lists, color_image_dir, str(tmp_path / 'bn'),
      *module_pipeline.tensors, module_name='m')
  assert len(skipped) == 24
  with pytest.raises(retrain.RetrainError) as error:
    retrain._check_categories(image_lists, skipped)
  assert str(error.value) == (
      "Class 'blue' (folder blue) has no usable training image (24 of its "
      'images were skipped, see the warnings above): add more images to it, '
      'or remove the folder.')


def test_corrupt_cache_files_are_recomputed_with_a_warning(
    module_pipeline, color_image_dir, tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='tensorflow')
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bn')
  args = (module_pipeline.sess, image_lists, color_image_dir, bottleneck_dir) + (
      module_pipeline.tensors)
  retrain.cache_bottlenecks(*args, module_name='m')
  paths = sorted(glob.glob(os.path.join(bottleneck_dir, 'green', '*.txt')))
  good = {path: open(path).read() for path in paths[:5]}
  corruptions = ['', '0.5,0.25,', 'abc,def', '1.0,' * 3 + '1.0',
                 ','.join(['0.5'] * (module_pipeline.bottleneck.shape[1] + 1))]
  for path, contents in zip(good, corruptions):
    with open(path, 'w') as f:
      f.write(contents)
  caplog.clear()
  retrain.cache_bottlenecks(*args, module_name='m')
  for path, contents in good.items():
    assert open(path).read() == contents
    assert ['Invalid bottleneck file %s, recreating it.' % path ==
            r.getMessage() for r in caplog.records].count(True) == 1


def test_file_names_too_long_for_a_cache_name_are_shortened():
  image_lists = {'red': {'dir': 'red', 'training': ['x' * 240 + '.jpg'],
                         'testing': [], 'validation': []}}
  path = retrain.get_bottleneck_path(image_lists, 'red', 0, '/cache',
                                     'training', 'https://tfhub.dev/m/1')
  assert len(os.path.basename(path).encode('utf-8')) <= 200
  assert path.startswith('/cache/red/xxxx') and path.endswith('.txt')
  image_lists['red']['training'] = ['short.jpg']
  assert retrain.get_bottleneck_path(
      image_lists, 'red', 0, '/cache', 'training', 'https://tfhub.dev/m/1') == (
          '/cache/red/short.jpg_https~tfhub.dev~m~1.txt')


# ------------------------------------------------------- writes and leftovers


def test_write_file_atomically_keeps_the_old_file_on_failure(tmp_path,
                                                            monkeypatch):
  path = str(tmp_path / 'labels.txt')
  retrain.write_file_atomically(path, 'old\n')

  class Failing(object):

    def __init__(self, name, mode):
      self._file = open(name, mode)

    def __enter__(self):
      return self

    def __exit__(self, *args):
      self._file.close()

    def write(self, contents):
      self._file.write(contents[:3])
      raise KeyboardInterrupt()

  monkeypatch.setattr(retrain.tf.gfile, 'GFile', Failing)
  with pytest.raises(KeyboardInterrupt):
    retrain.write_file_atomically(path, 'new contents\n')
  assert open(path).read() == 'old\n'
  assert os.listdir(str(tmp_path)) == ['labels.txt']


def _can_mount_a_tiny_filesystem():
  """Whether `unshare -rm` may mount a tmpfs (a user namespace of its own)."""
  try:
    return subprocess.run(
        ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs tmpfs /mnt'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=30).returncode == 0
  except (OSError, subprocess.TimeoutExpired):
    return False


@pytest.mark.skipif(not _can_mount_a_tiny_filesystem(),
                    reason='needs `unshare -rm` to mount a small tmpfs (user '
                    'namespaces)')
def test_a_full_disk_while_caching_is_one_line_and_keeps_whole_files(
    sample_module, tmp_path):
  tiny = str(tmp_path / 'tiny')
  os.makedirs(tiny)
  bottleneck_dir = os.path.join(tiny, 'bottleneck')
  # After the run, inside the namespace: the cache files and any leftovers.
  script = ('mount -t tmpfs -o size=200k tmpfs "$0" && "$@"; status=$?; '
            'cd "$0" && find . -type f | sort; exit $status')
  result = subprocess.run(
      ['unshare', '-rm', 'sh', '-c', script, tiny, sys.executable,
       os.path.join(REPO_DIR, 'retrain.py'), '--image_dir', SAMPLE_DIR,
       '--tfhub_module', sample_module, '--how_many_training_steps', '5'] +
      retrain_output_args(str(tmp_path / 'out'), bottleneck_dir),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      timeout=600)
  assert result.returncode == 1, result.stdout[-3000:]
  assert 'Traceback' not in result.stdout
  errors = [line for line in result.stdout.splitlines()
            if line.startswith('ERROR')]
  assert len(errors) == 1, result.stdout[-3000:]
  assert re.match(r'ERROR: No space left on device in %s/\w+: this run needs '
                  r'about \d+ MB more\. .* run the same command again: it '
                  r'continues where it stopped\.$' % re.escape(bottleneck_dir),
                  errors[0]), errors[0]
  files = [line for line in result.stdout.splitlines()
           if line.startswith('./bottleneck/')]
  assert len(files) > 5, result.stdout[-3000:]
  # Every cache file written is whole; no temporary file is left.
  assert not [name for name in files if '.tmp-' in name], files
  assert all(name.endswith('.txt') for name in files), files


def test_disk_full_errors_are_told_from_others():
  enospc = OSError(errno.ENOSPC, 'No space left on device', '/data/b/x.txt')
  assert retrain.disk_full_folder(enospc) == '/data/b'
  quota = tf.errors.ResourceExhaustedError(
      None, None, '/data/out/graph.pb.tmp-host-12-0123abcd; Disk quota '
      'exceeded')
  assert retrain.disk_full_folder(quota) == '/data/out'
  try:
    try:
      raise enospc
    except OSError:
      raise RuntimeError('while saving')
  except RuntimeError as wrapped:
    assert retrain.disk_full_folder(wrapped) == '/data/b'
  assert retrain.disk_full_folder(OSError(errno.EACCES, 'denied')) is None
  assert retrain.disk_full_folder(ValueError('No space')) is None


def test_stale_temporary_files_of_dead_runs_are_removed(tmp_path):
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  host = retrain._host_tag()
  names = {
      'a.txt.tmp-%s-%d-0123abcd' % (host, dead.pid): False,  # Removed.
      'a.txt.tmp-%s-%d-0123abcd' % (host, os.getpid()): True,  # Still alive.
      'a.txt.tmp-otherhost%s-%d-0123abcd' % (host, dead.pid): True,
      'a.txt': True,
      'notes.tmp-1-2': True,
  }
  for name in names:
    (tmp_path / name).write_text('x')
  (tmp_path / ('model.tmp-%s-%d-89abcdef' % (host, dead.pid))).mkdir()
  (tmp_path / ('model.tmp-%s-%d-89abcdef' % (host, dead.pid)) / 'f').write_text(
      'x')
  retrain._remove_stale_temporary_files(str(tmp_path), 'b.txt')
  assert len(os.listdir(str(tmp_path))) == len(names) + 1
  retrain._remove_stale_temporary_files(str(tmp_path))
  assert sorted(os.listdir(str(tmp_path))) == sorted(
      name for name, kept in names.items() if kept)


def test_saved_model_dir_filled_during_the_run_keeps_the_new_model(
    sample_module, tmp_path):
  spec = retrain.load_module_spec(sample_module)
  graph, bottleneck, _, _ = retrain.create_module_graph(spec)
  with graph.as_default():
    retrain.add_final_retrain_ops(3, 'final_result', bottleneck, False, True,
                                  learning_rate=0.01)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver().save(sess, str(tmp_path / 'ckpt' / 'model'))
  eval_session = retrain.build_eval_session(
      spec, 3, 'final_result', str(tmp_path / 'ckpt' / 'model'))
  target = tmp_path / 'saved' / '1'
  target.mkdir(parents=True)
  (target / 'saved_model.pb').write_text('someone else')
  with pytest.raises(retrain.RetrainError,
                     match='was created by something else during the run'):
    retrain.export_model(spec, 3, str(target), eval_session=eval_session)
  eval_session[0].close()
  assert (target / 'saved_model.pb').read_text() == 'someone else'
  kept = [p for p in os.listdir(str(tmp_path / 'saved')) if p != '1']
  assert len(kept) == 1 and kept[0].startswith('1-')
  assert os.path.isfile(str(tmp_path / 'saved' / kept[0] / 'saved_model.pb'))


def test_unwritable_destination_is_reported_at_start(color_image_dir,
                                                     tmp_path, monkeypatch):
  locked = tmp_path / 'locked'
  locked.mkdir()
  os.chmod(str(locked), 0o555)
  if IS_ROOT:
    # root may write anywhere: make the permission check see what others do.
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: (
        False if os.path.abspath(path) == str(locked) else
        real_access(path, mode)))
  flags = retrain.build_parser().parse_args(
      ['--image_dir', color_image_dir] +
      retrain_output_args(str(tmp_path / 'out')) +
      ['--output_graph', str(locked / 'sub' / 'graph.pb')])
  with pytest.raises(retrain.RetrainError) as error:
    retrain.check_flags(flags)
  assert str(error.value) == (
      '--output_graph %s cannot be written (no write permission in %s): '
      'choose another place.' % (locked / 'sub' / 'graph.pb', locked))
  assert not (tmp_path / 'out').exists()


def test_unreadable_folders_are_one_clear_error(color_image_dir, tmp_path,
                                                monkeypatch):
  flags = retrain.build_parser().parse_args(
      ['--image_dir', color_image_dir] +
      retrain_output_args(str(tmp_path / 'out')))
  for folder, expected in [
      (os.path.join(color_image_dir, 'blue'),
       'Class folder %s cannot be read (Permission denied): check its '
       'permissions, or remove it.'),
      (color_image_dir,
       '--image_dir %s cannot be read (Permission denied): check its '
       'permissions.')]:
    os.chmod(folder, 0)
    real_listdir = os.listdir

    def refusing_listdir(path, folder=folder, real_listdir=real_listdir):
      # Root lists a chmod 000 folder anyway: fail as for other users.
      if os.path.abspath(path) == folder:
        raise PermissionError(13, 'Permission denied', path)
      return real_listdir(path)

    with monkeypatch.context() as patch:
      patch.setattr(os, 'listdir', refusing_listdir)
      with pytest.raises(retrain.RetrainError) as error:
        retrain.check_flags(flags)
    os.chmod(folder, 0o755)
    assert str(error.value) == expected % folder
  assert not (tmp_path / 'out').exists()


# ------------------------------------------------------------ bad flags (CLI)

def _run_flag_cases(cases, tmp_path, env):
  """Runs retrain.run_main(args) for each case; returns [(code, output)].

  One process imports TensorFlow once and calls run_main per case, capturing
  everything written to the file descriptors 1 and 2.
  """
  cases_file = str(tmp_path / 'cases.json')
  results_file = str(tmp_path / 'results.json')
  with open(cases_file, 'w') as f:
    json.dump(cases, f)
  driver = '''
import json, os, sys
cases_file, results_file, capture_file = sys.argv[1:4]
sys.argv = ['retrain.py']
sys.path.insert(0, %r)
import retrain
results = []
for args in json.load(open(cases_file)):
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  with open(capture_file, 'w+b') as capture:
    os.dup2(capture.fileno(), 1)
    os.dup2(capture.fileno(), 2)
    try:
      code = retrain.run_main(args)
    except SystemExit as e:
      code = e.code
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
    capture.seek(0)
    results.append([code, capture.read().decode('utf-8', 'replace')])
json.dump(results, open(results_file, 'w'))
''' % REPO_DIR
  completed = subprocess.run(
      [sys.executable, '-c', driver, cases_file, results_file,
       str(tmp_path / 'capture.txt')], stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True, timeout=600, cwd=str(tmp_path),
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', **env), check=False)
  assert completed.returncode == 0, completed.stdout[-3000:]
  with open(results_file) as f:
    return json.load(f)


def test_bad_flags_and_folders_get_one_line_and_write_nothing(
    tmp_path, color_image_dir, sample_module):
  import half_plus_two  # pylint: disable=g-import-not-at-top
  work = tmp_path / 'work'
  work.mkdir()
  (work / 'a_file.txt').write_text('x')
  (work / 'empty').mkdir()
  (work / 'no_images' / 'daisy').mkdir(parents=True)
  (work / 'no_images' / 'daisy' / 'notes.txt').write_text('x')
  write_color_images(str(work / 'one_class' / 'roses'), (200, 0, 0), 3, 0)
  (work / 'frozen_graph.pb').write_bytes(b'\x0a\x00')
  (work / 'not_a_module').mkdir()
  (work / 'not_a_module' / 'README').write_text('x')
  with tf.Graph().as_default():
    x = tf.placeholder(tf.float32, [None], name='x')
    with tf.Session() as sess:
      tf.saved_model.simple_save(sess, str(work / 'tf2_saved_model'),
                                 inputs={'x': x}, outputs={'y': x * 2.0})
  half_plus_two.export_module(str(work / 'half_plus_two'))
  (work / 'saved_models' / '1').mkdir(parents=True)
  (work / 'saved_models' / '1' / 'saved_model.pb').write_text('precious')
  (work / 'home').mkdir()
  (work / 'home' / 'thesis.tex').write_text('precious')
  snapshot = sorted(glob.glob(str(work / '**'), recursive=True))

  images = ['--image_dir', color_image_dir]
  module = ['--tfhub_module', sample_module]
  cases = [  # (arguments, a piece of the one expected line)
      ([], 'Must set flag --image_dir'),
      (['--image_dir', str(work / 'missing')], 'not found'),
      (['--image_dir', str(work / 'a_file.txt')], 'is a file, not a folder'),
      (['--image_dir', str(work / 'empty')], 'No valid folders of images'),
      (['--image_dir', str(work / 'no_images')], 'No valid folders of images'),
      (['--image_dir', str(work / 'one_class')], 'Only one valid folder'),
      (images + ['--how_many_training_steps', '0'],
       '--how_many_training_steps must be a positive number'),
      (images + ['--how_many_training_steps', '-5'],
       '--how_many_training_steps must be a positive number'),
      (images + ['--train_batch_size', '0'], '--train_batch_size must be'),
      (images + ['--train_batch_size', '-1'], '--train_batch_size must be'),
      (images + ['--eval_step_interval', '0'], '--eval_step_interval must be'),
      (images + ['--test_batch_size', '0'], '--test_batch_size must be'),
      (images + ['--validation_batch_size', '-2'],
       '--validation_batch_size must be positive, or -1'),
      (images + ['--learning_rate', '0'], '--learning_rate must be positive'),
      (images + ['--testing_percentage', '100'], '--testing_percentage must'),
      (images + ['--testing_percentage', '-1'], '--testing_percentage must'),
      (images + ['--validation_percentage', '150'],
       '--validation_percentage must'),
      (images + ['--testing_percentage', '50', '--validation_percentage',
                 '50'], 'must be below 100'),
      (images + ['--random_crop', '-3'], '--random_crop must be'),
      (images + ['--random_brightness', '200'], '--random_brightness must'),
      (images + ['--intermediate_store_frequency', '-1'],
       '--intermediate_store_frequency must'),
      (images + ['--final_tensor_name', 'my result!'],
       'not a valid TensorFlow op name'),
      (images + ['--logging_verbosity', 'LOUD'],
       "argument --logging_verbosity: invalid choice: 'LOUD'"),
      (images + ['--how_many_training_steps', 'many'],
       "argument --how_many_training_steps: invalid int value: 'many'"),
      (images + ['--tfhub_module', str(work / 'missing_module')],
       'does not exist'),
      (images + ['--tfhub_module', str(work / 'frozen_graph.pb')],
       'frozen graph'),
      (images + ['--tfhub_module', str(work / 'tf2_saved_model')],
       'is a TF2 SavedModel'),
      (images + ['--tfhub_module', str(work / 'not_a_module')],
       'is neither a TF1 Hub module'),
      (images + ['--tfhub_module', str(work / 'half_plus_two')],
       'is not an image feature vector module'),
      (images + ['--tfhub_module',
                 'https://tfhub.dev/google/imagenet/inception_v3/'
                 'feature_vector/3'], 'Could not download the module'),
      (images + module + ['--saved_model_dir',
                          str(work / 'saved_models' / '1')],
       'already exists and is not empty: use a fresh numbered version'),
      (images + module + ['--summaries_dir', str(work / 'home')],
       'holds more than this tool'),
      (images + module + ['--summaries_dir', '/'],
       'holds more than this tool'),
      (images + module + ['--output_graph', str(work / 'empty')],
       'is a folder: give a file name'),
      (images + module + ['--bottleneck_dir', str(work / 'a_file.txt')],
       'is a file, not a folder'),
      (['--image_dir', str(work / NON_UTF8_NAME)],
       '\\xe9t\\xe9.jpg is not valid UTF-8, which TensorFlow cannot handle'),
  ]
  arguments = []
  for index, (args, _) in enumerate(cases):
    out_dir = str(tmp_path / 'out' / str(index))
    arguments.append(retrain_output_args(out_dir) + args)
  results = _run_flag_cases(arguments, tmp_path, {
      'TFHUB_CACHE_DIR': str(tmp_path / 'hub_cache')})

  for index, ((args, expected), (code, output)) in enumerate(
      zip(cases, results)):
    lines = output.strip().splitlines()
    assert code in (1, 2), (args, code, output)
    assert len(lines) == 1, (args, output)
    assert expected in lines[0], (args, lines[0])
    assert lines[0].startswith(('ERROR: ', 'retrain.py: error: ')), lines[0]
    assert not os.path.exists(str(tmp_path / 'out' / str(index))), args
  assert sorted(glob.glob(str(work / '**'), recursive=True)) == snapshot
  assert (work / 'saved_models' / '1' / 'saved_model.pb').read_text() == (
      'precious')


# ----------------------------------------------------- bad images (CLI, user)


def _unprivileged_prefix():
  """A command prefix to run as 'nobody', so that chmod 000 really hides a file.

  Returns:
    [] when not root, the setpriv prefix when it works, else None.
  """
  if not IS_ROOT:
    return []
  setpriv = shutil.which('setpriv')
  if not setpriv:
    return None
  prefix = [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups']
  try:
    completed = subprocess.run(
        prefix + [sys.executable, '-c', 'import numpy, tensorflow_hub'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
        check=False)
  except OSError:
    return None
  return prefix if completed.returncode == 0 else None


def _training_names(count, category='training'):
  """File names that the split puts into one category (10% / 10%)."""
  names = []
  index = 0
  while len(names) < count:
    name = 'tiny_%03d.jpg' % index
    percentage = retrain._percentage_hash(name)
    in_category = {'validation': percentage < 10,
                   'testing': 10 <= percentage < 20,
                   'training': percentage >= 20}[category]
    if in_category:
      names.append(name)
    index += 1
  return names


@pytest.fixture(scope='module')
def bad_images_run(sample_module):
  """A user's run on a folder with every kind of bad image, as in the issue."""
  root = tempfile.mkdtemp(prefix='retrain_bad_images_')
  try:
    images = os.path.join(root, 'images')
    for seed, (name, color) in enumerate([('red', (210, 40, 40)),
                                          ('green', (40, 200, 40)),
                                          ('blue', (40, 40, 210))]):
      write_color_images(os.path.join(images, name), color, 24, seed)
    # A class too small to have test or validation images.
    from PIL import Image  # pylint: disable=g-import-not-at-top
    os.makedirs(os.path.join(images, 'tiny'))
    for name in _training_names(3):
      Image.new('RGB', (30, 30), (250, 250, 250)).save(
          os.path.join(images, 'tiny', name))
    module = os.path.join(root, 'module')
    shutil.copytree(sample_module, module)
    for folder, _, files in os.walk(root):
      os.chmod(folder, 0o777)
      for name in files:
        os.chmod(os.path.join(folder, name), 0o666)
    expected = write_bad_images(os.path.join(images, 'red'))
    out = os.path.join(root, 'out', 'new', 'folders')
    prefix = _unprivileged_prefix()
    completed = subprocess.run(
        (prefix or []) + [
            sys.executable, os.path.join(REPO_DIR, 'retrain.py'),
            '--image_dir', images, '--tfhub_module', module,
            '--how_many_training_steps', '100', '--saved_model_dir',
            os.path.join(out, 'saved_models', '1')] +
        retrain_output_args(out), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=900, check=False,
        cwd=root, env=dict(os.environ, HOME=root, TF_CPP_MIN_LOG_LEVEL='3'))
    as_user = prefix is not None
    yield images, out, expected, completed, as_user
  finally:
    shutil.rmtree(root, ignore_errors=True)


def test_cli_run_on_bad_images_finishes_and_names_each_skipped_file(
    bad_images_run):
  images, out, expected, completed, as_user = bad_images_run
  output = completed.stdout
  assert completed.returncode == 0, output[-5000:]
  assert 'Traceback' not in output
  skips = _expected_skips(expected, unreadable_is_readable=not as_user)
  for name, reason in skips.items():
    shown = os.fsencode(os.path.join(images, 'red', name)).decode(
        'utf-8', 'backslashreplace')
    lines = [line for line in output.splitlines()
             if line.startswith('WARNING:tensorflow:Skipping %s: ' % shown)]
    assert len(lines) == 1, (name, output[-5000:])
    assert reason in lines[0], lines[0]
  used = (24 * 3 + 3 + len(expected) - len(skips))
  assert ('WARNING:tensorflow:Summary: %d image(s) were skipped (%d in red) '
          'and %d used; the warnings above name each skipped file and why.' % (
              len(skips), len(skips), used)) in output
  assert output.strip().splitlines()[-1].startswith(
      'WARNING:tensorflow:Summary:')
  # The class without test and validation images is named, and trained.
  assert ("Class 'tiny' has no testing image: add more images to folder tiny "
          'so that it is evaluated too.') in output
  assert "Class 'tiny' has no validation image" in output
  assert re.search(r'Final test accuracy = [0-9.]+% \(N=\d+\)', output)


def test_cli_run_on_bad_images_writes_every_output_and_no_bad_cache(
    bad_images_run):
  _, out, expected, completed, as_user = bad_images_run
  assert completed.returncode == 0, completed.stdout[-5000:]
  with open(os.path.join(out, 'output_labels.txt')) as f:
    assert f.read() == 'blue\ngreen\nred\ntiny\n'
  assert os.path.getsize(os.path.join(out, 'output_graph.pb')) > 0
  assert os.path.isfile(os.path.join(out, 'saved_models', '1',
                                     'saved_model.pb'))
  cached = os.listdir(os.path.join(out, 'bottleneck', 'red'))
  skips = _expected_skips(expected, unreadable_is_readable=not as_user)
  for name in expected:
    is_cached = any(entry.startswith(name[:150]) for entry in cached)
    assert is_cached == (name not in skips), name
  assert not _tmp_files(out)


# -------------------------------------------------------- concurrency (CLI)


def test_two_runs_sharing_one_bottleneck_dir_both_finish(sample_module,
                                                         tmp_path):
  cache = str(tmp_path / 'shared_cache')
  flags = ['--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
           '--how_many_training_steps', '200', '--random_seed', '5']
  processes = [subprocess.Popen(
      [sys.executable, os.path.join(REPO_DIR, 'retrain.py')] + flags +
      retrain_output_args(str(tmp_path / name), cache),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')) for name in 'ab']
  outputs = [p.communicate(timeout=900)[0] for p in processes]
  for process, output in zip(processes, outputs):
    assert process.returncode == 0, output[-3000:]
    assert 'Traceback' not in output
  graphs = [open(str(tmp_path / name / 'output_graph.pb'), 'rb').read()
            for name in 'ab']
  assert graphs[0] == graphs[1]
  files = glob.glob(os.path.join(cache, '*', '*'))
  assert len(files) == 250
  width = retrain.load_module_spec(sample_module).feature_width
  for path in files:
    assert retrain.read_bottleneck_file(path, width) is not None, path
  assert not _tmp_files(str(tmp_path))


# ---------------------------------------------------------- interruptions


@pytest.fixture(scope='module')
def big_sample(tmp_path_factory):
  """The sample four times over (links with new names): ~2 s of caching."""
  root = str(tmp_path_factory.mktemp('big_sample'))
  for class_name in sorted(os.listdir(SAMPLE_DIR)):
    class_dir = os.path.join(SAMPLE_DIR, class_name)
    if not os.path.isdir(class_dir):
      continue
    os.makedirs(os.path.join(root, class_name))
    for copy in range(4):
      for name in sorted(os.listdir(class_dir)):
        os.symlink(os.path.join(class_dir, name),
                   os.path.join(root, class_name, 'copy%d_%s' % (copy, name)))
  return root


def _start(args):
  return subprocess.Popen(
      [sys.executable, os.path.join(REPO_DIR, 'retrain.py')] + args,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))


def _read_until(process, pattern):
  """Reads the process's output until a line matches; returns the lines."""
  lines = []
  for line in process.stdout:
    lines.append(line)
    if re.search(pattern, line):
      break
  return lines


@pytest.mark.parametrize('signal_number,exit_code,message', [
    (signal.SIGINT, 130, 'Interrupted: stopped cleanly.'),
    (signal.SIGTERM, 143, 'Terminated: stopped cleanly.'),
])
@pytest.mark.parametrize('phase', ['caching', 'training'])
def test_ctrl_c_and_sigterm_stop_cleanly(sample_module, big_sample, tmp_path,
                                         signal_number, exit_code, message,
                                         phase):
  process = _start([
      '--image_dir', big_sample, '--tfhub_module', sample_module,
      '--how_many_training_steps', '1000000'] +
                   retrain_output_args(str(tmp_path)))
  lines = _read_until(process, r'to compute\.' if phase == 'caching'
                      else r'Step 100: ')
  process.send_signal(signal_number)
  rest, _ = process.communicate(timeout=300)
  output = ''.join(lines) + rest
  assert process.returncode == exit_code, output[-3000:]
  assert 'Traceback' not in output
  assert output.strip().splitlines()[-1] == (
      message + ' Cached bottlenecks are kept; run the same command again to '
      'continue.')
  cached = glob.glob(str(tmp_path / 'bottleneck' / '*' / '*'))
  if phase == 'caching':
    assert 'Step 0:' not in output
    assert len(cached) < 1000
  else:
    assert len(cached) == 1000
  width = retrain.load_module_spec(sample_module).feature_width
  for path in cached:
    assert retrain.read_bottleneck_file(path, width) is not None, path


@pytest.mark.parametrize('script', ['retrain.py', 'beam_bottlenecks.py'])
def test_ctrl_c_while_tensorflow_loads_is_one_line(script, tmp_path):
  if script == 'beam_bottlenecks.py':
    pytest.importorskip('apache_beam', reason='Apache Beam is not installed '
                        '(requirements-beam.txt)')
  process = subprocess.Popen(
      [sys.executable, os.path.join(REPO_DIR, script), '--image_dir',
       SAMPLE_DIR, '--bottleneck_dir', str(tmp_path / 'bottleneck')],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  # TensorFlow's library is being loaded: seconds before anything is done.
  deadline = time.time() + 60
  while time.time() < deadline and process.poll() is None:
    with open('/proc/%d/maps' % process.pid) as f:
      if 'libtensorflow_framework' in f.read():
        break
    time.sleep(0.005)
  process.send_signal(signal.SIGINT)
  output = process.communicate(timeout=120)[0]
  assert process.returncode == 130, output[-3000:]
  assert 'Traceback' not in output
  assert output.strip().splitlines()[-1].startswith('Interrupted: stopped ')
  assert not os.path.exists(str(tmp_path / 'bottleneck'))


def _outputs(out_dir):
  """Everything a run wrote that must not depend on interruptions."""
  files = {}
  for name in ('output_graph.pb', 'output_labels.txt',
               'intermediate/intermediate_500.pb',
               'intermediate/intermediate_1000.pb'):
    with open(os.path.join(out_dir, name), 'rb') as f:
      files[name] = f.read()
  for path in glob.glob(os.path.join(out_dir, 'bottleneck', '*', '*')):
    with open(path, 'rb') as f:
      files[os.path.relpath(path, out_dir)] = f.read()
  return files


def test_kill_9_at_random_moments_then_rerun_gives_the_same_outputs(
    sample_module, big_sample, tmp_path):
  flags = ['--image_dir', big_sample, '--tfhub_module', sample_module,
           '--how_many_training_steps', '1500', '--random_seed', '11',
           '--intermediate_store_frequency', '500']
  reference_dir = str(tmp_path / 'reference')
  reference = run_tool('retrain.py', flags + retrain_output_args(
      reference_dir))
  assert reference.returncode == 0, reference.stdout[-3000:]

  killed_dir = str(tmp_path / 'killed')
  cache_files = lambda: len(glob.glob(os.path.join(
      killed_dir, 'bottleneck', '*', '*.txt')))
  rng = random.Random(2026)
  # Two kills while caching, at random numbers of cached images (watched on
  # disk, so that the moment does not depend on the machine's speed), then
  # kills at a random training step, while an intermediate graph is written
  # and while the final graph is written.
  cached_at_kill = []
  for _ in range(2):
    target = min(cache_files() + rng.randint(100, 350), 999)
    process = _start(flags + retrain_output_args(killed_dir))
    while process.poll() is None and cache_files() < target:
      time.sleep(0.002)
    process.kill()
    process.communicate(timeout=300)
    cached_at_kill.append(cache_files())
  assert 0 < cached_at_kill[0] < cached_at_kill[1] < 1000, cached_at_kill
  for pattern in ('Step %d: ' % (10 * rng.randrange(20, 140)),
                  'Save intermediate result', 'Save final result'):
    process = _start(flags + retrain_output_args(killed_dir))
    _read_until(process, pattern)
    process.kill()
    process.communicate(timeout=300)
  final = run_tool('retrain.py', flags + retrain_output_args(killed_dir))
  assert final.returncode == 0, final.stdout[-3000:]
  assert '1000 bottlenecks found in the cache, 0 to compute.' in final.stdout

  accuracy = r'Final test accuracy = [0-9.]+% \(N=\d+\)'
  assert (re.search(accuracy, final.stdout).group(0) ==
          re.search(accuracy, reference.stdout).group(0))
  expected = _outputs(reference_dir)
  assert len([name for name in expected if name.startswith('bottleneck')]) == (
      1000)
  actual = _outputs(killed_dir)
  assert sorted(actual) == sorted(expected)
  for name in expected:
    assert actual[name] == expected[name], name
  assert not _tmp_files(killed_dir)


# ------------------------------------------------------------ resuming training


def _summary_steps(summaries_dir):
  """How often each (run, tag, step) is in the train and validation events."""
  counts = {}
  for run_name in ('train', 'validation'):
    for path in glob.glob(os.path.join(summaries_dir, run_name, 'events*')):
      for event in tf.train.summary_iterator(path):
        for value in event.summary.value:
          key = (run_name, value.tag, event.step)
          counts[key] = counts.get(key, 0) + 1
  return counts


def _resume_outputs(out_dir):
  """The exports of a run that must not depend on interruptions."""
  names = ['output_graph.pb', 'output_labels.txt', 'model.tflite',
           'intermediate/intermediate_20.pb',
           'saved_model/variables/variables.index',
           'saved_model/variables/variables.data-00000-of-00001']
  files = {}
  for name in names:
    with open(os.path.join(out_dir, name), 'rb') as f:
      files[name] = f.read()
  return files


@pytest.mark.parametrize('distorted', [False, True])
def test_kill_9_during_training_then_rerun_resumes_with_the_same_outputs(
    sample_module, tmp_path, distorted):
  steps = 40 if distorted else 240
  flags = ['--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
           '--how_many_training_steps', str(steps), '--random_seed', '7',
           '--save_every_steps', '3', '--intermediate_store_frequency', '20',
           '--optimizer', 'momentum', '--dropout_rate', '0.2']
  if distorted:
    flags += ['--train_batch_size', '10', '--eval_step_interval', '5',
              '--flip_left_right', '--random_crop', '10',
              '--random_brightness', '10']
  bottleneck_dir = str(tmp_path / 'bottleneck')

  def args(out_dir):
    return flags + retrain_output_args(out_dir, bottleneck_dir) + [
        '--saved_model_dir', os.path.join(out_dir, 'saved_model'),
        '--tflite_output_file', os.path.join(out_dir, 'model.tflite')]

  reference_dir = str(tmp_path / 'reference')
  reference = run_tool('retrain.py', args(reference_dir))
  assert reference.returncode == 0, reference.stdout[-3000:]
  assert 'Resuming' not in reference.stdout

  killed_dir = str(tmp_path / 'killed')
  rng = random.Random(12 + distorted)
  interval = 5 if distorted else 10
  kill_steps = sorted(interval * rng.randrange(1, steps // interval)
                      for _ in range(2))
  resumed_at = []
  for kill_step in kill_steps:
    process = _start(args(killed_dir))
    lines = _read_until(process, 'Step %d: ' % kill_step)
    process.kill()
    process.communicate(timeout=300)
    resumed_at += re.findall(r'Resuming training at step (\d+) from ', ''.join(
        lines))
  final = run_tool('retrain.py', args(killed_dir))
  assert final.returncode == 0, final.stdout[-3000:]
  resumed_at += re.findall(r'Resuming training at step (\d+) from \S+: same '
                           r'images, module and flags as the interrupted '
                           r'run\.', final.stdout)
  # Every rerun continued where the run before it had saved.
  assert len(resumed_at) == len(kill_steps), (kill_steps, resumed_at)
  assert 0 < int(resumed_at[-1]) <= steps, resumed_at

  accuracy = r'Final test accuracy = [0-9.]+% \(N=\d+\)'
  assert (re.search(accuracy, final.stdout).group(0) ==
          re.search(accuracy, reference.stdout).group(0))
  expected = _resume_outputs(reference_dir)
  actual = _resume_outputs(killed_dir)
  for name in expected:
    assert actual[name] == expected[name], name
  # One continuous curve: each step once, as in the uninterrupted run.
  reference_steps = _summary_steps(os.path.join(reference_dir,
                                                'retrain_logs'))
  assert set(reference_steps.values()) == {1}
  assert _summary_steps(os.path.join(killed_dir, 'retrain_logs')) == (
      reference_steps)
  assert not _tmp_files(killed_dir)
  # The finished run's state says so, and its resume checkpoints are gone.
  checkpoint = os.path.join(killed_dir, 'checkpoint', 'model')
  with open(checkpoint + '.resume.json') as f:
    assert json.load(f)['finished'] is True
  assert not glob.glob(checkpoint + '.resume-*')


def test_summaries_are_in_their_files_before_each_save_of_the_training_state(
    sample_module, tmp_path):
  """A kill right after a save loses no summary of the steps before it
  (the resumed run writes only the later steps): at each save, the train
  events on disk reach the step before it."""
  out_dir = str(tmp_path / 'out')
  args = ['--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
          '--how_many_training_steps', '9', '--save_every_steps', '3'
         ] + retrain_output_args(out_dir)
  driver = '''
import glob, json, os, sys
args, train_dir, results_file = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.argv = ['retrain.py']
sys.path.insert(0, %r)
import retrain
import tensorflow.compat.v1 as tf
on_disk = []
save = retrain.TrainingCheckpoint.save

def checked_save(self, step, log=False):
  steps = [-1]
  for path in glob.glob(os.path.join(train_dir, 'events*')):
    try:
      for record in tf.io.tf_record_iterator(path):
        event = tf.Event.FromString(record)
        if event.HasField('summary'):
          steps.append(event.step)
    except tf.errors.DataLossError:
      pass
  on_disk.append([step, max(steps)])
  save(self, step, log)

retrain.TrainingCheckpoint.save = checked_save
code = retrain.run_main(args)
json.dump([code, on_disk], open(results_file, 'w'))
''' % REPO_DIR
  results_file = str(tmp_path / 'results.json')
  completed = subprocess.run(
      [sys.executable, '-c', driver, json.dumps(args),
       os.path.join(out_dir, 'retrain_logs', 'train'), results_file],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'),
      check=False)
  assert completed.returncode == 0, completed.stdout[-3000:]
  with open(results_file) as f:
    code, on_disk = json.load(f)
  assert code == 0
  assert on_disk == [[3, 2], [6, 5], [9, 8]]


def _stop_at(args, step, signal_number=signal.SIGTERM):
  """Starts a run, stops it at step; returns everything it printed."""
  process = _start(args)
  lines = _read_until(process, 'Step %d: ' % step)
  process.send_signal(signal_number)
  rest, _ = process.communicate(timeout=300)
  assert process.returncode == 143, (''.join(lines) + rest)[-3000:]
  return ''.join(lines) + rest


def test_changed_flags_finished_runs_and_fresh_start_train_from_step_0(
    sample_module, tmp_path):
  flags = ['--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
           '--how_many_training_steps', '100', '--random_seed', '3',
           '--save_every_steps', '1000'] + retrain_output_args(str(tmp_path))
  state_path = str(tmp_path / 'checkpoint' / 'model.resume.json')
  # SIGTERM saves the state at the end of the step under way.
  output = _stop_at(flags, 30)
  saved_at = int(re.search(r'Saved the training state to \S+: the same '
                           r'command resumes training at step (\d+)\.',
                           output).group(1))
  assert saved_at > 30
  with open(state_path) as f:
    assert json.load(f)['step'] == saved_at

  output = _stop_at(flags + ['--learning_rate', '0.02'], 10)
  assert ('Starting training at step 0, not resuming from %s: --learning_rate '
          'was 0.01 in the interrupted run and is 0.02 now.' % state_path
         ) in output
  assert 'Step 0: ' in output
  # The interrupted run is now the one with --learning_rate 0.02.
  output = _stop_at(flags + ['--learning_rate', '0.02'], 60)
  assert re.search(r'Resuming training at step \d+ from ', output)

  fresh = run_tool('retrain.py', flags + ['--learning_rate', '0.02',
                                          '--fresh_start'])
  assert fresh.returncode == 0, fresh.stdout[-3000:]
  assert ('Starting training at step 0, not resuming from %s: --fresh_start '
          'is set.' % state_path) in fresh.stdout
  again = run_tool('retrain.py', flags + ['--learning_rate', '0.02'])
  assert again.returncode == 0, again.stdout[-3000:]
  assert ('Starting training at step 0, not resuming from %s: the run that '
          'saved it finished.' % state_path) in again.stdout
  assert 'Step 0: ' in again.stdout
