"""Tests for each public function of retrain.py, on small real data."""

import glob
import logging
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import saved_model_pb2

import retrain
from conftest import decode_images, write_any_size_module, write_color_images

tf.disable_v2_behavior()

CATEGORIES = ('training', 'testing', 'validation')


def _all_names(label_lists):
  return sorted(sum((label_lists[c] for c in CATEGORIES), []))


# ----------------------------------------------------------------- image lists


def test_create_image_lists_classes_labels_and_extensions(tmp_path):
  root = tmp_path / 'photos'
  write_color_images(str(root / 'Blue  Things!'), (0, 0, 200), 3, 0)
  write_color_images(str(root / 'red_ones'), (200, 0, 0), 3, 1)
  (root / 'red_ones' / 'notes.txt').write_text('not an image')
  (root / 'red_ones' / 'UPPER.JPG').write_bytes(
      (root / 'red_ones' / 'image_01.jpg').read_bytes())
  (root / 'red_ones' / 'other.jpeg').write_bytes(
      (root / 'red_ones' / 'image_01.jpg').read_bytes())
  (root / 'red_ones' / 'nested').mkdir()
  (root / 'red_ones' / 'nested' / 'deep.jpg').write_bytes(b'x')
  (root / 'empty').mkdir()
  (root / 'stray.jpg').write_bytes(b'x')

  image_lists = retrain.create_image_lists(str(root), 10, 10)

  assert list(image_lists.keys()) == ['blue things ', 'red ones']
  assert image_lists['red ones']['dir'] == 'red_ones'
  assert _all_names(image_lists['red ones']) == sorted(
      ['image_00.png', 'image_01.jpg', 'image_02.jpg', 'UPPER.JPG',
       'other.jpeg'])
  assert _all_names(image_lists['blue things ']) == sorted(
      ['image_00.png', 'image_01.jpg', 'image_02.jpg'])


def test_create_image_lists_missing_dir_returns_none(tmp_path):
  assert retrain.create_image_lists(str(tmp_path / 'nope'), 10, 10) is None


def test_create_image_lists_label_collision_is_an_error(tmp_path):
  write_color_images(str(tmp_path / 'Roses'), (200, 0, 0), 2, 0)
  write_color_images(str(tmp_path / 'roses'), (200, 0, 0), 2, 1)
  with pytest.raises(retrain.RetrainError, match='both give the label'):
    retrain.create_image_lists(str(tmp_path), 10, 10)


def _make_named_files(folder, names):
  os.makedirs(folder, exist_ok=True)
  for name in names:
    with open(os.path.join(folder, name), 'wb') as f:
      f.write(b'\xff\xd8')


def test_split_is_stable_when_the_folder_moves_and_respects_percentages(
    tmp_path):
  names = ['photo_%04d.jpg' % i for i in range(2000)]
  _make_named_files(str(tmp_path / 'a' / 'cats'), names)
  _make_named_files(str(tmp_path / 'a' / 'dogs'), names[:50])
  first = retrain.create_image_lists(str(tmp_path / 'a'), 10, 20)
  shutil.move(str(tmp_path / 'a'), str(tmp_path / 'moved'))
  second = retrain.create_image_lists(str(tmp_path / 'moved') + '/', 10, 20)
  assert first == second
  counts = {c: len(first['cats'][c]) for c in CATEGORIES}
  assert sum(counts.values()) == 2000
  assert 150 <= counts['testing'] <= 250
  assert 330 <= counts['validation'] <= 470
  # The same file name lands in the same set in every class folder.
  for category in CATEGORIES:
    assert set(first['dogs'][category]) <= set(first['cats'][category])


def test_nohash_variants_stay_in_one_set(tmp_path):
  names = ['subject_%d_nohash_%d.jpg' % (s, v)
           for s in range(60) for v in range(4)]
  _make_named_files(str(tmp_path / 'x'), names)
  _make_named_files(str(tmp_path / 'y'), ['other.jpg'])
  image_lists = retrain.create_image_lists(str(tmp_path), 20, 20)
  for subject in range(60):
    homes = {c for c in CATEGORIES for name in image_lists['x'][c]
             if name.startswith('subject_%d_nohash_' % subject)}
    assert len(homes) == 1
  assert all(image_lists['x'][c] for c in CATEGORIES)


def test_get_image_path_and_bottleneck_path():
  image_lists = {'roses': {'dir': 'Roses', 'training': ['a.jpg', 'b.jpg'],
                           'testing': [], 'validation': ['c.png']}}
  assert retrain.get_image_path(image_lists, 'roses', 3, '/img',
                                'training') == '/img/Roses/b.jpg'
  assert retrain.get_image_path(image_lists, 'roses', 10, '/img',
                                'validation') == '/img/Roses/c.png'
  assert retrain.get_bottleneck_path(
      image_lists, 'roses', 0, '/bn', 'training',
      'https://tfhub.dev/google/x/feature_vector/3') == (
          '/bn/Roses/a.jpg_https~tfhub.dev~google~x~feature_vector~3.txt')
  assert retrain.get_bottleneck_path(
      image_lists, 'roses', 0, '/bn', 'training', 'C:\\mods\\m') == (
          '/bn/Roses/a.jpg_C~~mods~m.txt')


def test_ensure_dir_exists(tmp_path):
  target = tmp_path / 'a' / 'b' / 'c'
  retrain.ensure_dir_exists(str(target))
  retrain.ensure_dir_exists(str(target))
  assert target.is_dir()


# ---------------------------------------------------------------- module graph


def test_create_module_graph(sample_module, quantized_module):
  spec = retrain.load_module_spec(sample_module)
  height, width = spec.image_size
  graph, bottleneck, resized_input, wants_quantization = (
      retrain.create_module_graph(spec))
  assert resized_input.graph is graph and bottleneck.graph is graph
  assert resized_input.get_shape().as_list() == [None, height, width, 3]
  assert bottleneck.get_shape().as_list()[0] is None
  assert bottleneck.get_shape().as_list()[1] > 0
  assert not wants_quantization
  assert retrain.create_module_graph(
      retrain.load_module_spec(quantized_module))[3]


def test_load_module_spec_errors(tmp_path, sample_module):
  with pytest.raises(retrain.RetrainError, match='does not exist'):
    retrain.load_module_spec(str(tmp_path / 'missing'))
  (tmp_path / 'graph.pb').write_bytes(b'')
  with pytest.raises(retrain.RetrainError, match='frozen graph'):
    retrain.load_module_spec(str(tmp_path / 'graph.pb'))
  (tmp_path / 'tf2').mkdir()
  (tmp_path / 'tf2' / 'saved_model.pb').write_bytes(b'')
  with pytest.raises(retrain.RetrainError,
                     match='Could not load the TF2 SavedModel'):
    retrain.load_module_spec(str(tmp_path / 'tf2'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(retrain.RetrainError, match='neither a TF1 Hub module'):
    retrain.load_module_spec(str(tmp_path / 'empty'))
  assert retrain.load_module_spec(sample_module) is not None
  assert retrain.load_module_spec(sample_module, image_size=128) is not None
  with pytest.raises(retrain.RetrainError, match='--image_size 224 does not '
                     'fit'):
    retrain.load_module_spec(sample_module, image_size=224)


def test_damaged_tf1_modules_are_one_line_errors(tmp_path, sample_module):
  def copy(name):
    shutil.copytree(sample_module, str(tmp_path / name))
    return tmp_path / name

  garbage = copy('garbage')
  (garbage / 'saved_model.pb').write_bytes(b'\x00not a SavedModel' * 20)
  no_variables = copy('no_variables')
  shutil.rmtree(str(no_variables / 'variables'))
  truncated = copy('truncated')
  data, = (truncated / 'variables').glob('variables.data-*')
  data.write_bytes(data.read_bytes()[:1000])
  tagged = copy('tagged')
  saved_model = saved_model_pb2.SavedModel()
  saved_model.ParseFromString((tagged / 'saved_model.pb').read_bytes())
  saved_model.meta_graphs[0].meta_info_def.tags.append('serve')
  (tagged / 'saved_model.pb').write_bytes(saved_model.SerializeToString())
  for folder, reason in [
      (garbage, 'its saved_model.pb cannot be read'),
      (no_variables, 'its variables/ cannot be read'),
      (truncated, 'its variables/ cannot be read'),
      (tagged, 'no graph with the tags {} of a TF1 Hub module')]:
    with pytest.raises(retrain.RetrainError) as raised:
      retrain.load_module_spec(str(folder))
    message = str(raised.value)
    assert message.startswith('Could not load the module %s: ' % folder)
    assert reason in message and '\n' not in message, message


def test_tf1_module_of_any_size_takes_image_size_or_its_attached_size(
    tmp_path):
  any_size = write_any_size_module(str(tmp_path / 'any_size'))
  with pytest.raises(retrain.RetrainError, match='takes images of any size: '
                     'pass the size it was trained for with --image_size'):
    retrain.load_module_spec(any_size)
  spec = retrain.load_module_spec(any_size, image_size=64)
  assert (spec.image_size, spec.variable_size, spec.feature_width) == (
      (64, 64), True, 3)
  assert retrain.module_cache_name(any_size, module_spec=spec) == (
      any_size + '@64x64')
  sized = write_any_size_module(str(tmp_path / 'sized'), (96, 80))
  spec = retrain.load_module_spec(sized)
  assert (spec.image_size, spec.variable_size) == ((96, 80), False)
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [None, 96, 80, 3])
    features = spec.apply_fn()(images)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(features, {images: np.full([2, 96, 80, 3], 0.25)})
  np.testing.assert_allclose(values, np.full([2, 3], 0.5))


def test_modules_that_take_no_rgb_images_are_refused(tmp_path):
  from conftest import run_tool  # pylint: disable=g-import-not-at-top
  export_path = str(tmp_path / 'hp2')
  assert run_tool('half_plus_two.py', [export_path]).returncode == 0
  with pytest.raises(retrain.RetrainError, match='not an image feature'):
    retrain.load_module_spec(export_path)
  grey = write_any_size_module(str(tmp_path / 'grey'), channels=1)
  with pytest.raises(retrain.RetrainError, match='not an image feature'):
    retrain.load_module_spec(grey, image_size=32)


# ----------------------------------------------------------------- bottlenecks


def test_add_jpeg_decoding_and_run_bottleneck_on_image(module_pipeline,
                                                       color_image_dir):
  assert module_pipeline.jpeg_data.op.name == 'DecodeJPGInput'
  height, width = module_pipeline.spec.image_size
  for name in ('image_00.png', 'image_01.jpg'):
    path = os.path.join(color_image_dir, 'red', name)
    image_data = open(path, 'rb').read()
    resized = module_pipeline.sess.run(module_pipeline.decoded_image,
                                      {module_pipeline.jpeg_data: image_data})
    assert resized.shape == (1, height, width, 3)
    assert 0.0 <= resized.min() and resized.max() <= 1.0
    values = retrain.run_bottleneck_on_image(
        module_pipeline.sess, image_data, *module_pipeline.tensors)
    assert values.shape == (module_pipeline.feature_width,)
    direct = module_pipeline.sess.run(module_pipeline.bottleneck,
                                     {module_pipeline.resized_input: resized})
    np.testing.assert_allclose(values, direct[0], rtol=1e-6)


def test_cache_bottlenecks_batched_matches_one_at_a_time(module_pipeline,
                                                         color_image_dir,
                                                         tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bottleneck')
  graph_version = module_pipeline.sess.graph.version
  skipped = retrain.cache_bottlenecks(
      module_pipeline.sess, image_lists, color_image_dir, bottleneck_dir,
      *module_pipeline.tensors, module_name='my/module:1', batch_size=16)
  assert skipped == []
  # The images are decoded in a graph of their own: the module's Session
  # does not have to take in its graph again.
  assert module_pipeline.sess.graph.version == graph_version
  count = 0
  for label_name, label_lists in image_lists.items():
    for category in CATEGORIES:
      for index in range(len(label_lists[category])):
        path = retrain.get_bottleneck_path(image_lists, label_name, index,
                                           bottleneck_dir, category,
                                           'my/module:1')
        assert path.endswith('_my~module~1.txt')
        cached = np.array(open(path).read().split(','), np.float32)
        assert cached.shape == (module_pipeline.feature_width,)
        image_data = open(retrain.get_image_path(
            image_lists, label_name, index, color_image_dir, category),
                          'rb').read()
        single = retrain.run_bottleneck_on_image(
            module_pipeline.sess, image_data, *module_pipeline.tensors)
        np.testing.assert_allclose(cached, single, rtol=1e-5, atol=1e-6)
        count += 1
  assert count == 72
  assert not [n for n in os.listdir(os.path.join(bottleneck_dir, 'red'))
              if '.tmp-' in n]


class _ModuleRunLog(object):
  """A Session stand-in that watches the module's runs: how many at once,
  their batch sizes, and how many files are written while one runs."""

  def __init__(self, sess, bottleneck):
    self._sess = sess
    self._bottleneck = bottleneck
    self._lock = threading.Lock()
    self.running = 0
    self.most_at_once = 0
    self.batch_sizes = []
    self.writes_during_a_run = 0

  def run(self, fetches, feed_dict=None):
    if fetches is not self._bottleneck:
      return self._sess.run(fetches, feed_dict)
    with self._lock:
      self.running += 1
      self.most_at_once = max(self.most_at_once, self.running)
    try:
      time.sleep(0.05)  # Long enough for the files to be written meanwhile.
      return self._sess.run(fetches, feed_dict)
    finally:
      with self._lock:
        self.running -= 1
        self.batch_sizes.append(len(next(iter(feed_dict.values()))))

  def count_write(self):
    self.writes_during_a_run += self.running > 0


def test_cache_bottlenecks_runs_two_batches_at_once_beside_the_writes(
    module_pipeline, color_image_dir, tmp_path, monkeypatch):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bn')
  log = _ModuleRunLog(module_pipeline.sess, module_pipeline.bottleneck)
  write = retrain.write_bottleneck_file

  def logged_write(path, values):
    log.count_write()
    write(path, values)

  monkeypatch.setattr(retrain, 'write_bottleneck_file', logged_write)
  retrain.cache_bottlenecks(
      log, image_lists, color_image_dir, bottleneck_dir,
      *module_pipeline.tensors, module_name='m', batch_size=16)
  # Two at once, never more: the decoder stays at most a batch ahead.
  assert log.most_at_once == 2
  # A blank image (the module's first run prepares its graph), then the 72
  # images in the same batches as one at a time.
  assert sorted(log.batch_sizes) == [1, 8, 16, 16, 16, 16]
  # The files of a batch are written while the module runs the next ones.
  assert log.writes_during_a_run >= 16
  # Each file holds what its batch gives when the batches run in turn.
  images, bottleneck_paths = [], []
  for label_name in image_lists:
    for category in retrain.CATEGORIES:
      for index in range(len(image_lists[label_name][category])):
        args = (image_lists, label_name, index)
        images.append(retrain.get_image_path(*args, color_image_dir,
                                             category))
        bottleneck_paths.append(retrain.get_bottleneck_path(
            *args, bottleneck_dir, category, 'm'))
  image_shape = [module_pipeline.image_height, module_pipeline.image_width, 3]
  for indices, batch in retrain.decode_images(images, image_shape, 16):
    values = module_pipeline.sess.run(module_pipeline.bottleneck,
                                      {module_pipeline.resized_input: batch})
    for index, row in zip(indices, values):
      np.testing.assert_array_equal(
          retrain.read_bottleneck_file(bottleneck_paths[index]), row)


def test_cache_bottlenecks_skips_and_names_bad_images(module_pipeline,
                                                      color_image_dir,
                                                      tmp_path, caplog):
  bad = os.path.join(color_image_dir, 'red', 'broken.jpg')
  with open(bad, 'wb') as f:
    f.write(b'this is not a jpeg at all')
  empty = os.path.join(color_image_dir, 'blue', 'empty.jpg')
  open(empty, 'wb').close()
  image_lists = retrain.create_image_lists(color_image_dir, 0, 0)
  skipped = retrain.cache_bottlenecks(
      module_pipeline.sess, image_lists, color_image_dir,
      str(tmp_path / 'bn'), *module_pipeline.tensors, module_name='m')
  assert sorted(path for path, _ in skipped) == sorted([bad, empty])
  # The reason itself, not TensorFlow's 'Graph execution error:' preamble.
  assert dict(skipped)[bad] == ('it is not a JPEG, PNG or GIF image (unknown '
                                'file format)')
  assert 'broken.jpg' not in _all_names(image_lists['red'])
  assert 'empty.jpg' not in _all_names(image_lists['blue'])
  assert len(_all_names(image_lists['red'])) == 24
  assert not os.path.exists(os.path.join(str(tmp_path / 'bn'), 'red',
                                         'broken.jpg_m.txt'))


def test_get_or_create_bottleneck_reuses_and_repairs_the_cache(
    module_pipeline, color_image_dir, tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bn')
  args = (module_pipeline.sess, image_lists, 'red', 0, color_image_dir,
          'training', bottleneck_dir) + module_pipeline.tensors + ('mod',)
  first = retrain.get_or_create_bottleneck(*args)
  path = retrain.get_bottleneck_path(image_lists, 'red', 0, bottleneck_dir,
                                     'training', 'mod')
  assert os.path.isfile(path)
  assert first.shape == (module_pipeline.feature_width,)
  # A truncated cache file (from a crashed run) is recomputed.
  with open(path, 'w') as f:
    f.write('0.5,0.25,')
  repaired = retrain.get_or_create_bottleneck(*args)
  np.testing.assert_allclose(repaired, first, rtol=1e-6)
  assert len(open(path).read().split(',')) == module_pipeline.feature_width


def test_create_bottleneck_file(module_pipeline, color_image_dir, tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  path = str(tmp_path / 'one.txt')
  values = retrain.create_bottleneck_file(
      path, image_lists, 'blue', 1, color_image_dir, 'training',
      module_pipeline.sess, *module_pipeline.tensors)
  np.testing.assert_array_equal(
      np.array(open(path).read().split(','), np.float32), values)


def test_get_random_cached_bottlenecks(module_pipeline, color_image_dir,
                                       tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bn')
  retrain.cache_bottlenecks(module_pipeline.sess, image_lists, color_image_dir,
                            bottleneck_dir, *module_pipeline.tensors,
                            module_name='m')
  bottlenecks, truths, names = retrain.get_random_cached_bottlenecks(
      module_pipeline.sess, image_lists, 50, 'training', bottleneck_dir,
      color_image_dir, *module_pipeline.tensors, module_name='m')
  assert bottlenecks.shape == (50, module_pipeline.feature_width)
  assert set(truths) <= {0, 1, 2} and len(set(truths)) > 1
  assert names == []
  everything, truths, names = retrain.get_random_cached_bottlenecks(
      module_pipeline.sess, image_lists, -1, 'testing', bottleneck_dir,
      color_image_dir, *module_pipeline.tensors, module_name='m')
  expected = [os.path.join(color_image_dir, image_lists[label]['dir'], name)
              for label in image_lists for name in image_lists[label]['testing']]
  assert names == expected
  assert everything.shape == (len(expected), module_pipeline.feature_width)
  assert list(truths) == [list(image_lists).index(label) for label in
                          image_lists for _ in image_lists[label]['testing']]


def test_bottleneck_memory_serves_batches_without_the_cache_files(
    module_pipeline, color_image_dir, tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bn')
  memory = retrain.BottleneckMemory()
  retrain.cache_bottlenecks(module_pipeline.sess, image_lists,
                            color_image_dir, bottleneck_dir,
                            *module_pipeline.tensors, module_name='m',
                            memory=memory)
  cached = {}
  for label_name in image_lists:
    paths = [retrain.get_bottleneck_path(image_lists, label_name, index,
                                         bottleneck_dir, 'training', 'm')
             for index in range(len(image_lists[label_name]['training']))]
    cached[label_name] = np.array([retrain.read_bottleneck_file(path)
                                   for path in paths])
    np.testing.assert_array_equal(memory.get(paths[0]),
                                  cached[label_name][0])
  shutil.rmtree(bottleneck_dir)
  bottlenecks, truths, _ = retrain.get_random_cached_bottlenecks(
      module_pipeline.sess, image_lists, 200, 'training', bottleneck_dir,
      color_image_dir, *module_pipeline.tensors, module_name='m',
      memory=memory)
  # Drawn from memory: no file was read, none recomputed.
  assert not os.path.exists(bottleneck_dir)
  labels = list(image_lists)
  for values, truth in zip(bottlenecks, truths):
    assert (cached[labels[truth]] == values).all(axis=1).any()


# ----------------------------------------------------------------- distortions


def test_should_distort_images():
  assert not retrain.should_distort_images(False, 0, 0, 0)
  assert retrain.should_distort_images(True, 0, 0, 0)
  assert retrain.should_distort_images(False, 5, 0, 0)
  assert retrain.should_distort_images(False, 0, 5, 0)
  assert retrain.should_distort_images(False, 0, 0, 5)


def test_add_input_distortions_and_distorted_bottlenecks(module_pipeline,
                                                         color_image_dir):
  with module_pipeline.graph.as_default():
    jpeg_input, distorted = retrain.add_input_distortions(
        True, 20, 20, 20, module_pipeline.spec)
  assert jpeg_input.op.name == 'DistortJPGInput'
  assert distorted.op.name == 'DistortResult'
  height, width = module_pipeline.spec.image_size
  image_data = open(os.path.join(color_image_dir, 'red', 'image_03.jpg'),
                    'rb').read()
  first = module_pipeline.sess.run(distorted, {jpeg_input: image_data})
  second = module_pipeline.sess.run(distorted, {jpeg_input: image_data})
  assert first.shape == (1, height, width, 3)
  assert not np.array_equal(first, second)  # Random each time.
  # Brightness within +-20% of a [0, 1] image.
  assert first.min() >= 0.0 and first.max() <= 1.2 + 1e-6

  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottlenecks, truths = retrain.get_random_distorted_bottlenecks(
      module_pipeline.sess, image_lists, 30, 'training', color_image_dir,
      jpeg_input, distorted, module_pipeline.resized_input,
      module_pipeline.bottleneck)
  assert bottlenecks.shape == (30, module_pipeline.feature_width)
  assert truths.shape == (30,) and set(truths) <= {0, 1, 2}


def test_flip_only_distortion_mirrors_or_keeps_the_image(module_pipeline,
                                                         color_image_dir):
  with module_pipeline.graph.as_default():
    tf.set_random_seed(3)  # The same draws in every run of the test.
    jpeg_input, distorted = retrain.add_input_distortions(
        True, 0, 0, 0, module_pipeline.spec)
  image_data = open(os.path.join(color_image_dir, 'blue', 'image_02.jpg'),
                    'rb').read()
  plain = module_pipeline.sess.run(module_pipeline.decoded_image,
                                  {module_pipeline.jpeg_data: image_data})
  seen = set()
  for _ in range(12):
    result = module_pipeline.sess.run(distorted, {jpeg_input: image_data})
    if np.allclose(result, plain, atol=1e-5):
      seen.add('same')
    elif np.allclose(result, plain[:, :, ::-1, :], atol=1e-5):
      seen.add('mirrored')
    else:
      seen.add('other')
  assert seen == {'same', 'mirrored'}


# ------------------------------------------------------------------- new layer


def test_variable_summaries():
  with tf.Graph().as_default():
    retrain.variable_summaries(tf.Variable([1.0, 2.0, 3.0]))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      summary = tf.Summary.FromString(sess.run(tf.summary.merge_all()))
  # TF names ops uniquely ignoring case, so 'mean' becomes 'mean_1' beside
  # the 'Mean' op, in the original's TensorBoard tags too.
  values = {re.sub(r'_1$', '', value.tag): value for value in summary.value}
  assert set(values) == {'summaries/mean', 'summaries/stddev', 'summaries/max',
                         'summaries/min', 'summaries/histogram'}
  assert values['summaries/mean'].simple_value == pytest.approx(2.0)
  assert values['summaries/stddev'].simple_value == pytest.approx(
      np.std([1.0, 2.0, 3.0]))
  assert values['summaries/max'].simple_value == 3.0
  assert values['summaries/min'].simple_value == 1.0
  assert values['summaries/histogram'].histo.num == 3


def _bottleneck_placeholder(width=8):
  return tf.placeholder(tf.float32, [None, width])


def test_add_final_retrain_ops_training_learns():
  rng = np.random.RandomState(0)
  features = rng.rand(60, 8).astype(np.float32)
  labels = (features[:, 0] > features[:, 1]).astype(np.int64)
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    (train_step, cross_entropy, bottleneck_input, ground_truth_input,
     final_tensor) = retrain.add_final_retrain_ops(
         2, 'final_result', _bottleneck_placeholder(), False, True,
         learning_rate=0.5)
    assert bottleneck_input.op.name == 'input/BottleneckInputPlaceholder'
    assert bottleneck_input.op.type == 'PlaceholderWithDefault'
    assert ground_truth_input.op.name == 'input/GroundTruthInput'
    assert final_tensor.op.name == 'final_result'
    assert final_tensor.op.type == 'Softmax'
    evaluation_step, prediction = retrain.add_evaluation_step(
        final_tensor, ground_truth_input)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      weights = sess.run(tf.get_default_graph().get_tensor_by_name(
          'final_retrain_ops/weights/final_weights:0'))
      assert weights.shape == (8, 2) and np.abs(weights).max() <= 0.002
      feed = {bottleneck_input: features, ground_truth_input: labels}
      before = sess.run(cross_entropy, feed)
      for _ in range(300):
        sess.run(train_step, feed)
      after, accuracy, predicted = sess.run(
          [cross_entropy, evaluation_step, prediction], feed)
  assert after < before * 0.8
  assert accuracy >= 0.8
  assert predicted.shape == (60,)


def test_add_final_retrain_ops_eval_and_quantized():
  with tf.Graph().as_default():
    train_step, cross_entropy, _, _, final_tensor = (
        retrain.add_final_retrain_ops(3, 'probs', _bottleneck_placeholder(),
                                      False, False))
    assert train_step is None and cross_entropy is None
    assert final_tensor.op.name == 'probs'
  with tf.Graph().as_default() as graph:
    retrain.add_final_retrain_ops(3, 'final_result', _bottleneck_placeholder(),
                                  True, True, learning_rate=0.01)
    ops = [op.type for op in graph.get_operations()]
  assert ops.count('FakeQuantWithMinMaxVars') >= 2


def test_add_evaluation_step_counts_correct_predictions():
  with tf.Graph().as_default():
    probabilities = tf.constant([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    truth = tf.constant([0, 0, 0], tf.int64)
    evaluation_step, prediction = retrain.add_evaluation_step(probabilities,
                                                              truth)
    with tf.Session() as sess:
      accuracy, predicted = sess.run([evaluation_step, prediction])
  assert accuracy == pytest.approx(2.0 / 3.0)
  assert list(predicted) == [0, 1, 0]


# ---------------------------------------------------- eval and export helpers


def test_training_the_new_layer_leaves_the_module_as_it_was(sample_module,
                                                            color_image_dir):
  spec = retrain.load_module_spec(sample_module)
  graph, bottleneck, resized_input, quantize = retrain.create_module_graph(
      spec)
  with graph.as_default():
    train_step, _, _, ground_truth_input, _ = retrain.add_final_retrain_ops(
        3, 'final_result', bottleneck, quantize, True, learning_rate=0.5)
    # The global step counts the train steps (resuming reads it).
    module_variables = [v for v in tf.global_variables()
                        if not v.name.startswith('final_retrain_ops/') and
                        v.name != 'global_step:0']
    assert module_variables
    assert {v.name for v in tf.trainable_variables()} == {
        'final_retrain_ops/weights/final_weights:0',
        'final_retrain_ops/biases/final_biases:0'}
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(module_variables)
      images = decode_images(sorted(glob.glob(os.path.join(
          color_image_dir, '*', '*')))[:12], 128)
      for _ in range(5):
        sess.run(train_step, {resized_input: images,
                              ground_truth_input: np.arange(12) % 3})
      after = sess.run(module_variables)
  for old, new in zip(before, after):
    np.testing.assert_array_equal(old, new)


def test_run_final_eval_with_the_original_signature_reads_the_flags(
    module_pipeline, color_image_dir, tmp_path, monkeypatch, caplog):
  caplog.set_level(logging.INFO, logger='tensorflow')
  image_lists = retrain.create_image_lists(color_image_dir, 30, 0)
  bottleneck_dir = str(tmp_path / 'bn')
  retrain.cache_bottlenecks(module_pipeline.sess, image_lists,
                            color_image_dir, bottleneck_dir,
                            *module_pipeline.tensors, module_name='m')
  with module_pipeline.graph.as_default():
    retrain.add_final_retrain_ops(3, 'final_result', module_pipeline.bottleneck,
                                  False, True, learning_rate=0.01)
    module_pipeline.sess.run(tf.global_variables_initializer())
    checkpoint = str(tmp_path / 'ckpt' / 'model')
    tf.train.Saver().save(module_pipeline.sess, checkpoint)
  monkeypatch.setattr(retrain, 'FLAGS', retrain.build_parser().parse_args([
      '--image_dir', color_image_dir, '--bottleneck_dir', bottleneck_dir,
      '--tfhub_module', 'm', '--checkpoint_path', checkpoint,
      '--summaries_dir', str(tmp_path / 'logs'),
      '--print_misclassified_test_images']))
  accuracy, predictions, truths, names = retrain.run_final_eval(
      module_pipeline.sess, module_pipeline.spec, 3, image_lists,
      *module_pipeline.tensors)
  test_images = sum(len(lists['testing']) for lists in image_lists.values())
  assert len(predictions) == len(truths) == len(names) == test_images > 0
  assert accuracy == pytest.approx(np.mean(predictions == truths))
  messages = [record.getMessage() for record in caplog.records]
  assert 'Final test accuracy = %.1f%% (N=%d)' % (
      accuracy * 100, test_images) in messages
  assert '=== MISCLASSIFIED TEST IMAGES ===' in messages
  assert glob.glob(str(tmp_path / 'logs' / 'test' / 'events.out.*'))


def test_eval_session_freezes_and_exports(sample_module, tmp_path):
  """A checkpoint of a training graph restores into the eval graph."""
  spec = retrain.load_module_spec(sample_module)
  graph, bottleneck, _, quantize = retrain.create_module_graph(spec)
  with graph.as_default():
    retrain.add_final_retrain_ops(4, 'final_result', bottleneck, quantize,
                                  True, learning_rate=0.01)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      trained_biases = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
      sess.run(tf.assign(graph.get_tensor_by_name(
          'final_retrain_ops/biases/final_biases:0'), trained_biases))
      checkpoint = str(tmp_path / 'ckpt' / 'model')
      tf.train.Saver().save(sess, checkpoint)
  eval_session = retrain.build_eval_session(spec, 4, 'final_result',
                                            checkpoint)
  eval_sess = eval_session[0]
  np.testing.assert_array_equal(
      eval_sess.run('final_retrain_ops/biases/final_biases:0'), trained_biases)
  assert eval_session[1].op.name == 'Placeholder'
  graph_file = str(tmp_path / 'frozen.pb')
  retrain.save_graph_to_file(graph_file, spec, 4, eval_session=eval_session)
  graph_def = tf.GraphDef()
  graph_def.ParseFromString(open(graph_file, 'rb').read())
  assert not [n for n in graph_def.node if n.op in ('VariableV2',
                                                      'VarHandleOp')]
  height, width = spec.image_size
  with tf.Graph().as_default():
    probabilities, = tf.import_graph_def(
        graph_def, return_elements=['final_result:0'], name='')
    with tf.Session() as sess:
      result = sess.run(probabilities, {'Placeholder:0': np.random.rand(
          2, height, width, 3).astype(np.float32)})
  assert result.shape == (2, 4)
  np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=1e-5)
  saved_model_dir = str(tmp_path / 'saved' / '1')
  retrain.export_model(spec, 4, saved_model_dir, eval_session=eval_session)
  assert os.path.isfile(os.path.join(saved_model_dir, 'saved_model.pb'))
  assert os.listdir(str(tmp_path / 'saved')) == ['1']


# -------------------------------------------------------------- file system


def test_prepare_file_system_and_summaries_dir_safety(tmp_path, monkeypatch):
  summaries = tmp_path / 'logs'
  (summaries / 'train').mkdir(parents=True)
  (summaries / 'train' / 'events.out').write_text('old')
  (summaries / 'validation').mkdir()
  (summaries / 'test').mkdir()
  monkeypatch.setattr(retrain, 'FLAGS', retrain.build_parser().parse_args(
      ['--summaries_dir', str(summaries), '--intermediate_store_frequency',
       '5', '--intermediate_output_graphs_dir', str(tmp_path / 'inter')]))
  assert retrain._clearable_summaries_dir(str(summaries))
  retrain.prepare_file_system()
  assert os.listdir(str(summaries)) == []
  assert (tmp_path / 'inter').is_dir()
  (tmp_path / 'home').mkdir()
  (tmp_path / 'home' / 'thesis.tex').write_text('precious')
  assert not retrain._clearable_summaries_dir(str(tmp_path / 'home'))


def test_logging_level_verbosity():
  assert retrain.logging_level_verbosity('DEBUG') == tf.logging.DEBUG
  assert retrain.logging_level_verbosity('INFO') == tf.logging.INFO
  assert retrain.logging_level_verbosity('WARN') == tf.logging.WARN
  assert retrain.logging_level_verbosity('ERROR') == tf.logging.ERROR
  assert retrain.logging_level_verbosity('FATAL') == tf.logging.FATAL
  with pytest.raises(RuntimeError, match='Not supported logs verbosity'):
    retrain.logging_level_verbosity('LOUD')


def test_flags_keep_the_original_names_and_defaults():
  flags = vars(retrain.build_parser().parse_args([]))
  assert flags == {
      'image_dir': '',
      'output_graph': '/tmp/output_graph.pb',
      'intermediate_output_graphs_dir': '/tmp/intermediate_graph/',
      'intermediate_store_frequency': 0,
      'output_labels': '/tmp/output_labels.txt',
      'summaries_dir': '/tmp/retrain_logs',
      'how_many_training_steps': 4000,
      'learning_rate': 0.01,
      'testing_percentage': 10,
      'validation_percentage': 10,
      'eval_step_interval': 10,
      'train_batch_size': 100,
      'test_batch_size': -1,
      'validation_batch_size': 100,
      'print_misclassified_test_images': False,
      'bottleneck_dir': '/tmp/bottleneck',
      'final_tensor_name': 'final_result',
      'flip_left_right': False,
      'random_crop': 0,
      'random_scale': 0,
      'random_brightness': 0,
      'tfhub_module':
          'https://tfhub.dev/google/imagenet/inception_v3/feature_vector/3',
      'saved_model_dir': '',
      'logging_verbosity': 'INFO',
      'checkpoint_path': '/tmp/_retrain_checkpoint',
      'bottleneck_precision': 'float32',
      'random_seed': None,
      # Added: see README.md "What next".
      'tflite_output_file': '',
      'tflite_quantize': 'none',
      'tflite_calibration_images': 150,
      'image_size': None,
      # Added by issue 12: resuming, and the head options of the peers.
      'save_every_steps': 0,
      'fresh_start': False,
      'optimizer': 'gradient_descent',
      'momentum': 0.9,
      'dropout_rate': 0.0,
      'l2_regularizer': 0.0,
      'label_smoothing': 0.0,
      'assert_accuracy_at_least': None,
      # Added by issue 14: decoded images kept for distorted training.
      'decoded_images_mb': 2048,
      # Added by issue 25: the ONNX export.
      'onnx_output_file': '',
      # Added by issue 26: multi-label images and class weights.
      'image_labels': '',
      'multi_label_threshold': 0.5,
      'class_weights': 'none',
  }
