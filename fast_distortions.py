# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""Distorted training batches prepared in parallel, for retrain.py's
--flip_left_right, --random_crop, --random_scale and --random_brightness.

An optional extra of retrain.py, beside it: with a distortion flag, retrain.py
trains on DistortedBatches, which tf.data's threads read, decode (or take from
DecodedImages, --decoded_images_mb) and distort ahead of each step. A copy of
retrain.py alone distorts one image after the other, as the original did.
"""

import os
import random

import retrain
import tensorflow.compat.v1 as tf
from tensorflow.core.framework import tensor_pb2

# The pipeline decodes and distorts exactly as retrain.py's own graph does.
# pylint: disable=protected-access


class DistortedBatches(object):
  """Batches of random draws read (or taken from memory), decoded and
  distorted by tf.data's threads ahead of training; failures are dropped."""

  def __init__(self, image_shape, distortions, image_lists, image_dir,
               category, batch_size, seed=None, start_batch=0,
               memory_mb=retrain.DEFAULT_DECODED_IMAGES_MB):
    """Adds the pipeline to the default graph.

    Args:
      image_shape: (height, width, depth) the module takes.
      distortions: The Distortions to apply.
      image_lists, image_dir: The images (create_image_lists's), their folder.
      category: The set to draw from, normally 'training'.
      batch_size: Images per batch.
      seed: The seed of the draws; None draws one from Python's generator.
      start_batch: How many batches an interrupted run consumed.
      memory_mb: Megabytes of decoded images to keep; 0 keeps none.
    """
    self._image_lists = image_lists
    self._image_dir = image_dir
    self._category = category
    self._label_names = list(image_lists.keys())
    self._batch_size = batch_size
    self._usable = None  # The classes to draw from, at the first batch.
    # Draw k seeds its generator with (seed, k): resumed runs draw the same.
    self.seed = random.getrandbits(64) if seed is None else seed
    self._first_draw = start_batch * batch_size
    self._drawn = self._drawn_at_last_batch = 0
    self.memory = DecodedImages(memory_mb)

    def load(path, image_key, label_index, seed, keep):
      held = self.memory.table.lookup(image_key)
      image = tf.cond(
          tf.strings.length(held) > 0,
          lambda: tf.io.parse_tensor(held, tf.uint8),
          lambda: retrain._decode_image(tf.io.read_file(path),
                                        image_shape[2]))
      image.set_shape([None, None, image_shape[2]])

      def keep_image():
        with tf.control_dependencies([self.memory.table.insert(
            image_key, tf.io.serialize_tensor(image))]):
          return tf.size(image, out_type=tf.int64)

      kept_bytes = tf.cond(keep, keep_image, lambda: tf.constant(0, tf.int64))
      return (retrain._distort_image(retrain._to_float_4d(image), image_shape,
                                     distortions, seed),
              label_index, path, kept_bytes)

    with tf.name_scope('distorted_reader'):
      # Draws are handed over a batch at a time: each hand-over holds the GIL.
      dataset = tf.data.Dataset.from_generator(
          self._draws,
          output_types=(tf.string, tf.int64, tf.int64, tf.int32, tf.bool),
          output_shapes=([None], [None], [None], [None, 2], [None])).unbatch()
      dataset = retrain.parallel_map(dataset, load).apply(
          tf.data.experimental.ignore_errors())
      # Not a one-shot iterator: that cannot use the table.
      self._iterator = tf.data.make_initializable_iterator(
          dataset.batch(batch_size).prefetch(1))
      self._next_batch = self._iterator.get_next()

  def _draws(self):
    """Yields (paths, keys, label indices, seeds, whether to keep) batches."""
    while True:
      draws = []
      # A batch, what the pipeline's buffers refill, and the failures.
      while (len(draws) < self._batch_size and
             self._drawn - self._drawn_at_last_batch <=
             10 * self._batch_size + 1000):
        rng = random.Random('%d/%d' % (self.seed,
                                       self._first_draw + self._drawn))
        self._drawn += 1
        label_index = rng.choice(self._usable)
        path = retrain.get_image_path(
            self._image_lists, self._label_names[label_index],
            rng.randrange(retrain.MAX_NUM_IMAGES_PER_CLASS + 1),
            self._image_dir, self._category)
        seed = [rng.randrange(2 ** 31 - 1), rng.randrange(2 ** 31 - 1)]
        # Not a regular file (any more): it would fail, or block if a pipe.
        if (self.memory.is_held(path) or not retrain.is_local_path(path) or
            os.path.isfile(path)):
          draws.append((path, self.memory.key(path), label_index, seed,
                        self.memory.wants(path)))
      if not draws:
        return
      yield tuple(list(column) for column in zip(*draws))

  def next(self, sess):
    """Next (float images, int64 truths); RetrainError if most draws fail."""
    if self._usable is None:
      self._usable = [i for i, name in enumerate(self._label_names)
                      if self._image_lists[name][self._category]]
      sess.run(self._iterator.initializer)
    try:
      images, ground_truths, paths, kept_bytes = sess.run(self._next_batch)
    except tf.errors.OutOfRangeError:
      raise retrain.RetrainError(
          'The %s images in %s can no longer be read (were files removed or '
          'changed during the run?): check the folder and run the same '
          'command again.' % (self._category, self._image_dir))
    self._drawn_at_last_batch = self._drawn
    for path, size in zip(paths, kept_bytes):
      if size:
        self.memory.kept(os.fsdecode(path), size)
    multi_label = self._image_lists.get(retrain.MULTI_LABEL_GROUP)
    if multi_label:
      ground_truths = retrain.label_rows(multi_label, [os.path.relpath(
          os.fsdecode(path), self._image_dir) for path in paths])
    return images, ground_truths


class DecodedImages(object):
  """Decoded images by file path, up to a budget: tf.data fills the table."""

  def __init__(self, memory_mb):
    """Adds the table to the default graph."""
    self.budget_bytes = memory_mb * 2 ** 20
    self.used_bytes = 0
    # TensorFlow has no string -> string MutableHashTable: keys are numbers.
    self.table = tf.lookup.experimental.MutableHashTable(
        tf.int64, tf.string, default_value=b'')
    self._key = tf.placeholder(tf.int64, [])
    self._held_image = self.table.lookup(self._key)
    self._keys = {}
    self._asked = set()
    self._held = set()

  def key(self, path):
    """The table's key of path's image."""
    return self._keys.setdefault(path, len(self._keys))

  def wants(self, path):
    """Whether to keep path's image: asked once only, within the budget."""
    if path in self._asked or self.used_bytes >= self.budget_bytes:
      return False
    self._asked.add(path)
    return True

  def kept(self, path, size):
    """Notes that the pipeline keeps path's image, of size bytes."""
    self._held.add(path)
    self.used_bytes += size

  def is_held(self, path):
    return path in self._held

  def image(self, sess, path):
    """The image held for path (uint8 [height, width, depth]), or None."""
    if path in self._keys:
      serialized = sess.run(self._held_image, {self._key: self._keys[path]})
      if serialized:
        return tf.make_ndarray(tensor_pb2.TensorProto.FromString(serialized))
    return None

  def __len__(self):
    return len(self._held)
