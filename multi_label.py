# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""Multi-label image lists for retrain.py --image_labels FILE, and the loss
weights of --class_weights balanced (for class folders too).

An optional extra of retrain.py, beside it. FILE is a CSV file with the header
`image,labels`: each row names an image (relative to --image_dir) and its
labels, separated by spaces. The images are split into the training,
validation and testing sets by the same stable hash of the file name as class
folders are, and their bottlenecks are cached at the same paths.
"""

import collections
import csv
import os

import numpy as np
import retrain

_COLUMNS = ('image', 'labels')  # The CSV's header.


def read_image_labels(image_dir, labels_file, testing_percentage,
                      validation_percentage):
  """Reads --image_labels into retrain.py's image lists.

  Args:
    image_dir: The --image_dir, which the CSV's image paths are relative to.
    labels_file: The --image_labels CSV file.
    testing_percentage: Integer percentage of the images for the final test.
    validation_percentage: Integer percentage of the images for validation.

  Returns:
    An OrderedDict with one entry, retrain.MULTI_LABEL_GROUP: {'dir': '',
    'training', 'testing', 'validation': image paths relative to image_dir,
    'labels': every label (sorted), 'label_indices': {image path: indices
    into 'labels'}}.

  Raises:
    retrain.RetrainError: for an unreadable file, a missing column, an image
      that is listed twice or does not exist, an empty labels cell, or a
      label that fewer than 2 images have.
  """
  rows = _read_rows(labels_file)
  missing = [(line, image) for line, image, _ in rows
             if not os.path.isfile(os.path.join(image_dir, image))]
  if missing:
    raise retrain.RetrainError(
        '--image_labels %s, line %d: %s is not in --image_dir %s%s: fix the '
        'path (relative to --image_dir) or remove the row.' % (
            labels_file, missing[0][0], missing[0][1], image_dir,
            ' (and %d more listed images are missing)' % (len(missing) - 1)
            if len(missing) > 1 else ''))
  label_counts = collections.Counter(label for _, _, labels in rows
                               for label in labels)
  rare = sorted(label for label, count in label_counts.items() if count < 2)
  if rare:
    raise retrain.RetrainError(
        '--image_labels %s: the label %r is given to only one image%s: a '
        'label needs at least 2 images; add images or remove the label.' % (
            labels_file, rare[0], ' (and %d more labels too)' % (
                len(rare) - 1) if len(rare) > 1 else ''))
  _log_unlisted(image_dir, labels_file, {image for _, image, _ in rows})
  names = sorted(label_counts)
  lists = {'dir': '', 'training': [], 'testing': [], 'validation': [],
           'labels': names, 'label_indices': {}}
  for _, image, labels in sorted(rows, key=lambda row: row[1]):
    lists['label_indices'][image] = tuple(sorted(names.index(label)
                                                 for label in labels))
    # The split of class folders: by the hash of the file name.
    lists[retrain.category_of(os.path.basename(image), testing_percentage,
                              validation_percentage)].append(image)
  return collections.OrderedDict([(retrain.MULTI_LABEL_GROUP, lists)])


def _read_rows(labels_file):
  """[(line number, normalised image path, set of labels)] of the CSV."""
  try:
    with open(labels_file, newline='', encoding='utf-8-sig') as csv_file:
      reader = csv.reader(csv_file)
      header = [name.strip().lower() for name in next(reader, [])]
      absent = [name for name in _COLUMNS if name not in header]
      if absent:
        raise retrain.RetrainError(
            "--image_labels %s has no '%s' column: its first line must be the "
            'header image,labels.' % (labels_file, absent[0]))
      columns = [header.index(name) for name in _COLUMNS]
      rows = [(reader.line_num, [row[c].strip() if c < len(row) else ''
                                 for c in columns])
              for row in reader if any(cell.strip() for cell in row)]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise retrain.RetrainError('--image_labels %s cannot be read (%s): pass a '
                               'CSV file with the header image,labels.' % (
                                   labels_file, getattr(e, 'strerror', None)
                                   or retrain.error_reason(e)))
  result, first_line = [], {}
  for line, (image, labels) in rows:
    path = os.path.normpath(image) if image else ''
    if not path or os.path.isabs(path) or path.split(os.sep)[0] == '..':
      raise retrain.RetrainError(
          '--image_labels %s, line %d: %r is not a path inside --image_dir: '
          'give each image relative to --image_dir.' % (labels_file, line,
                                                        image))
    if not labels:
      raise retrain.RetrainError(
          '--image_labels %s, line %d: %s has no labels: give one or more, '
          'separated by spaces, or remove the row.' % (labels_file, line, path))
    if path in first_line:
      raise retrain.RetrainError(
          '--image_labels %s lists %s twice (lines %d and %d): give all its '
          'labels in one row.' % (labels_file, path, first_line[path], line))
    first_line[path] = line
    result.append((line, path, set(labels.split())))
  if not result:
    raise retrain.RetrainError('--image_labels %s lists no images: add rows '
                               'image,labels.' % labels_file)
  return result


def _log_unlisted(image_dir, labels_file, listed):
  """Logs one line with the number of images under image_dir not listed."""
  unlisted = 0
  for folder, _, names in os.walk(image_dir):
    for name in names:
      if name.lower().rsplit('.', 1)[-1] in retrain.IMAGE_EXTENSIONS and (
          os.path.relpath(os.path.join(folder, name), image_dir)
          not in listed):
        unlisted += 1
  if unlisted:
    retrain.tf.logging.info(
        '%d images in --image_dir %s are not in --image_labels %s: they are '
        'left out.' % (unlisted, image_dir, labels_file))


def check_labels(image_lists):
  """RetrainError if a label has no usable training image left."""
  multi_label = image_lists[retrain.MULTI_LABEL_GROUP]
  trained = retrain.label_rows(multi_label, multi_label['training']).sum(0)
  untrained = [name for name, count in zip(multi_label['labels'], trained)
               if not count]
  if untrained:
    raise retrain.RetrainError(
        "No usable training image has the label '%s'%s: give it to more "
        'images in --image_labels.' % (untrained[0], ' (nor %d other labels)'
                                       % (len(untrained) - 1)
                                       if len(untrained) > 1 else ''))


def loss_weights(image_lists):
  """--class_weights balanced's retrain.HeadOptions.loss_weights, logged:
  each class's weight is its share of the training images if all classes had
  the same, over its actual share; each label's (with --image_labels), its
  training images without it over those with it."""
  multi_label = image_lists.get(retrain.MULTI_LABEL_GROUP)
  if multi_label:
    with_label = retrain.label_rows(multi_label, multi_label['training']).sum(0)
    without_label = len(multi_label['training']) - with_label
    weights = np.where(without_label > 0, without_label / np.maximum(
        with_label, 1), 1.0)
  else:
    counts = np.array([len(lists['training'])
                       for lists in image_lists.values()], np.float64)
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
  retrain.tf.logging.info('--class_weights balanced: the loss weighs %s%s.' % (
      'the images with ' if multi_label else '', ', '.join(
          '%s %.3g' % pair for pair in zip(retrain.label_names_of(image_lists),
                                           weights))))
  return weights
