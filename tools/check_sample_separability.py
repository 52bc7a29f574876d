#!/usr/bin/env python
"""Checks that a module's features can learn the sample flower photos.

Computes the module's feature vector for every image (decoded and resized as
retrain.py does), splits the images into training, validation and testing
sets with retrain.py's file-name hash rule, trains a softmax layer the way
retrain.py does (plain gradient descent on the mean cross-entropy, batches
drawn with replacement, truncated-normal initial weights) and prints the
accuracy on each split.

Usage:
  python tools/check_sample_separability.py [--module DIR]
      [--image_dir DIR] [--steps 4000] [--learning_rate 0.01]
      [--batch_size 100] [--repeats 1]

Without --module, the default sample module of make_image_module.py is
built into a temporary folder first.
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow.compat.v1 as tf
import tensorflow_hub as hub

import make_image_module

tf.disable_v2_behavior()

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
MAX_NUM_IMAGES_PER_CLASS = 2**27 - 1  # As in retrain.py.


def which_split(file_name, validation_percentage, testing_percentage):
  """retrain.py's stable split: by SHA-1 of the name without _nohash_ part.

  Args:
    file_name: the image's file name (base name).
    validation_percentage: share of images for validation, in percent.
    testing_percentage: share of images for testing, in percent.

  Returns:
    'validation', 'testing' or 'training'.
  """
  hash_name = re.sub(r'_nohash_.*$', '', file_name)
  hashed = hashlib.sha1(hash_name.encode('utf-8')).hexdigest()
  percentage = ((int(hashed, 16) % (MAX_NUM_IMAGES_PER_CLASS + 1)) *
                (100.0 / MAX_NUM_IMAGES_PER_CLASS))
  if percentage < validation_percentage:
    return 'validation'
  if percentage < validation_percentage + testing_percentage:
    return 'testing'
  return 'training'


def list_images(image_dir):
  """Returns (class names, [(path, class index)]) sorted by name."""
  classes = sorted(name for name in os.listdir(image_dir)
                   if os.path.isdir(os.path.join(image_dir, name)))
  images = []
  for index, name in enumerate(classes):
    folder = os.path.join(image_dir, name)
    for file_name in sorted(os.listdir(folder)):
      if file_name.lower().endswith(IMAGE_EXTENSIONS):
        images.append((os.path.join(folder, file_name), index))
  return classes, images


def compute_features(module_dir, paths):
  """Runs the module on each image, decoded and resized like retrain.py.

  Args:
    module_dir: TF1 Hub format image module.
    paths: image files.

  Returns:
    float32 array [len(paths), D].
  """
  with tf.Graph().as_default():
    spec = hub.load_module_spec(module_dir)
    height, width = hub.get_expected_image_size(spec)
    depth = hub.get_num_image_channels(spec)
    jpeg_data = tf.placeholder(tf.string, name='jpeg_data')
    decoded = tf.image.decode_jpeg(jpeg_data, channels=depth)
    as_float = tf.image.convert_image_dtype(decoded, tf.float32)
    resized = tf.image.resize_bilinear(tf.expand_dims(as_float, 0),
                                       [height, width])
    module = hub.Module(spec)
    features = module(resized)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      rows = []
      for path in paths:
        with open(path, 'rb') as f:
          rows.append(session.run(features, {jpeg_data: f.read()})[0])
  return np.stack(rows).astype(np.float32)


def truncated_normal(rng, shape, stddev):
  """Like tf.truncated_normal: redraws values beyond two deviations."""
  values = rng.normal(0.0, stddev, shape)
  outside = np.abs(values) > 2 * stddev
  while outside.any():
    values[outside] = rng.normal(0.0, stddev, outside.sum())
    outside = np.abs(values) > 2 * stddev
  return values.astype(np.float32)


def train_softmax(features, labels, class_count, steps, learning_rate,
                  batch_size, seed):
  """Trains retrain.py's final layer with plain gradient descent.

  Batches are drawn as retrain.py draws cached bottlenecks: a random class,
  then a random image of that class, with replacement.

  Args:
    features: float32 [N, D] training features.
    labels: int [N] class indices.
    class_count: number of classes.
    steps: training steps.
    learning_rate: gradient descent step size.
    batch_size: examples per step.
    seed: random seed for the initial weights and the batches.

  Returns:
    (weights [D, C], biases [C]) as float32 arrays.
  """
  rng = np.random.default_rng(seed)
  picker = random.Random(seed)
  by_class = [np.flatnonzero(labels == c) for c in range(class_count)]
  weights = truncated_normal(rng, (features.shape[1], class_count), 0.001)
  biases = np.zeros(class_count, np.float32)
  learning_rate = np.float32(learning_rate)
  for _ in range(steps):
    batch = []
    for _ in range(batch_size):
      members = by_class[picker.randrange(class_count)]
      batch.append(
          members[picker.randrange(MAX_NUM_IMAGES_PER_CLASS + 1) %
                  len(members)])
    x, y = features[batch], labels[batch]
    logits = x @ weights + biases
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    probabilities[np.arange(len(y)), y] -= 1.0
    gradient = probabilities / np.float32(len(y))
    weights -= learning_rate * (x.T @ gradient)
    biases -= learning_rate * gradient.sum(axis=0)
  return weights, biases


def cross_entropy(features, labels, weights, biases):
  logits = features @ weights + biases
  logits = logits - logits.max(axis=1, keepdims=True)
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  return float(-log_p[np.arange(len(labels)), labels].mean())


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--module', help='Module folder (default: build the '
                      'default sample module into a temporary folder).')
  parser.add_argument('--image_dir',
                      default=os.path.join(REPO_ROOT, 'flower_photos_sample'),
                      help='Folder of class sub-folders (default: '
                      '%(default)s).')
  parser.add_argument('--steps', type=int, default=4000)
  parser.add_argument('--learning_rate', type=float, default=0.01)
  parser.add_argument('--batch_size', type=int, default=100)
  parser.add_argument('--testing_percentage', type=float, default=10)
  parser.add_argument('--validation_percentage', type=float, default=10)
  parser.add_argument('--repeats', type=int, default=1,
                      help='Train this many times with different seeds.')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--show_errors', action='store_true',
                      help='List the misclassified validation and test '
                      'images.')
  args = parser.parse_args(argv)
  if args.steps < 1 or args.batch_size < 1 or args.repeats < 1:
    parser.error('--steps, --batch_size and --repeats must be positive')
  if not os.path.isdir(args.image_dir):
    parser.error('--image_dir %s is not a folder' % args.image_dir)
  if args.module and not os.path.isdir(args.module):
    parser.error('--module %s is not a folder' % args.module)
  return args


def main(argv=None):
  args = parse_args(argv)
  tf.logging.set_verbosity(tf.logging.ERROR)
  classes, images = list_images(args.image_dir)
  if len(classes) < 2:
    print('check_sample_separability.py: error: %s needs at least two class '
          'folders with images' % args.image_dir, file=sys.stderr)
    return 1
  temp_dir = None
  try:
    module_dir = args.module
    if not module_dir:
      temp_dir = tempfile.mkdtemp()
      start = time.time()
      module_dir = make_image_module.export_sample_cnn_module(
          os.path.join(temp_dir, 'module'))
      print('Built the sample module in %.1f s' % (time.time() - start))
    start = time.time()
    features = compute_features(module_dir, [path for path, _ in images])
    elapsed = time.time() - start
  finally:
    if temp_dir:
      shutil.rmtree(temp_dir, ignore_errors=True)
  print('Features of %d images in %.1f s: D=%d, mean %.3f, zeros %.0f%%, '
        'mean squared norm %.1f' % (
            len(images), elapsed, features.shape[1], features.mean(),
            100.0 * (features == 0).mean(), (features**2).sum(axis=1).mean()))

  labels = np.array([label for _, label in images])
  splits = np.array([
      which_split(os.path.basename(path), args.validation_percentage,
                  args.testing_percentage) for path, _ in images
  ])
  names = ('training', 'validation', 'testing')
  print('Split: ' + ', '.join('%s %d' % (name, (splits == name).sum())
                              for name in names))
  train = splits == 'training'
  results = {name: [] for name in names}
  for repeat in range(args.repeats):
    start = time.time()
    weights, biases = train_softmax(features[train], labels[train],
                                    len(classes), args.steps,
                                    args.learning_rate, args.batch_size,
                                    args.seed + repeat)
    line = []
    for name in names:
      chosen = splits == name
      predictions = np.argmax(features[chosen] @ weights + biases, axis=1)
      accuracy = 100.0 * (predictions == labels[chosen]).mean()
      results[name].append(accuracy)
      line.append('%s %.1f%%' % (name, accuracy))
      if args.show_errors and name != 'training':
        for (path, label), guess in zip(
            [image for image, keep in zip(images, chosen) if keep],
            predictions):
          if guess != label:
            print('  %s: %s taken for %s' % (name, os.path.relpath(
                path, args.image_dir), classes[guess]))
    loss = cross_entropy(features[train], labels[train], weights, biases)
    print('Run %d (seed %d, %.1f s): %s; training cross-entropy %.3f' % (
        repeat, args.seed + repeat, time.time() - start, ', '.join(line),
        loss))
  if args.repeats > 1:
    print('Mean: ' + ', '.join('%s %.1f%%' % (name, np.mean(results[name]))
                               for name in names))
  return 0


if __name__ == '__main__':
  sys.exit(main())
