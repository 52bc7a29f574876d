# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""The per-class report of retrain.py's final test: a table of precision,
recall and F1 per class with the confusion matrix, in the log and in
TensorBoard (the run 'test'), with the matrix as a picture. For a multi-label
run (--image_labels), the table is per label at the threshold, with micro and
macro F1, exact-set accuracy and average precision, and TensorBoard gets a
precision-recall curve per label.

retrain.py imports it after the final test; without this file beside it, the
run logs one line instead and goes on.
"""

import io
import os

import numpy as np
import tensorflow.compat.v1 as tf
from PIL import Image, ImageDraw, ImageFont
from tensorboard.plugins.pr_curve import summary as pr_curve


def report_test_results(ground_truth, predictions, label_names,
                        summaries_dir, global_step):
  """Logs the per-class table and writes it and the picture to TensorBoard.

  Args:
    ground_truth: The true class index of each test image.
    predictions: The predicted class index of each test image.
    label_names: The class names, in class-index order.
    summaries_dir: The --summaries_dir; the run 'test' is written.
    global_step: The step to file the summaries under.

  Returns:
    The classification_report.
  """
  report = classification_report(ground_truth, predictions, len(label_names))
  lines = format_classification_report(report, label_names)
  tf.logging.info('=== PER-CLASS TEST RESULTS ===')
  for line in lines:
    tf.logging.info(line)
  text_metadata = tf.SummaryMetadata(
      plugin_data=tf.SummaryMetadata.PluginData(plugin_name='text'))
  png, height, width = confusion_matrix_png(report['confusion'], label_names)
  summary = tf.Summary(value=[
      tf.Summary.Value(tag='confusion_matrix', image=tf.Summary.Image(
          height=height, width=width, colorspace=3, encoded_image_string=png)),
      tf.Summary.Value(tag='evaluation_report', metadata=text_metadata,
                       tensor=tf.make_tensor_proto('\n'.join(
                           '    ' + line for line in lines)))])
  with tf.summary.FileWriter(os.path.join(summaries_dir, 'test')) as writer:
    writer.add_summary(summary, global_step)
  return report


def report_multi_label_results(ground_truth, scores, label_names, threshold,
                               summaries_dir, global_step):
  """Logs the per-label table and writes it, its figures and a PR curve per
  label to TensorBoard.

  Args:
    ground_truth: 0/1 array [images, labels]: the labels of each test image.
    scores: The score in [0, 1] of each label of each test image.
    label_names: The label names, in column order.
    threshold: A label is predicted when its score is at least this.
    summaries_dir: The --summaries_dir; the run 'test' is written.
    global_step: The step to file the summaries under.

  Returns:
    The multi_label_report.
  """
  report = multi_label_report(ground_truth, scores, threshold)
  lines = format_multi_label_report(report, label_names, threshold)
  tf.logging.info('=== PER-LABEL TEST RESULTS ===')
  for line in lines:
    tf.logging.info(line)
  text_metadata = tf.SummaryMetadata(
      plugin_data=tf.SummaryMetadata.PluginData(plugin_name='text'))
  summary = tf.Summary(value=[
      tf.Summary.Value(tag='evaluation_report', metadata=text_metadata,
                       tensor=tf.make_tensor_proto('\n'.join(
                           '    ' + line for line in lines)))] + [
      tf.Summary.Value(tag=name, simple_value=report[name])
      for name in ('micro_f1', 'macro_f1', 'exact_set_accuracy',
                   'mean_average_precision')])
  with tf.summary.FileWriter(os.path.join(summaries_dir, 'test')) as writer:
    writer.add_summary(summary, global_step)
    for index, name in enumerate(label_names):
      writer.add_summary(pr_curve.pb(
          name, np.asarray(ground_truth)[:, index] > 0.5,
          np.clip(np.asarray(scores, np.float32)[:, index], 0, 1)),
                         global_step)
  return report


def multi_label_report(ground_truth, scores, threshold):
  """Per label 'precision', 'recall', 'f1' (NaN with nothing to divide by),
  'support' and 'average_precision'; overall 'micro_f1', 'macro_f1',
  'exact_set_accuracy' and 'mean_average_precision' (over labels with test
  images), as a dict."""
  truth = np.asarray(ground_truth) > 0.5
  scores = np.asarray(scores, np.float64)
  predicted = scores >= threshold
  true_positives = (predicted & truth).sum(0).astype(np.float64)
  predicted_count = predicted.sum(0)
  support = truth.sum(0)
  with np.errstate(divide='ignore', invalid='ignore'):
    precision = np.where(predicted_count > 0,
                         true_positives / predicted_count, np.nan)
    recall = np.where(support > 0, true_positives / support, np.nan)
    f1 = np.where(support + predicted_count > 0,
                  2 * true_positives / (support + predicted_count), np.nan)
  micro_f1 = 2 * true_positives.sum() / max(
      support.sum() + predicted_count.sum(), 1)
  average_precision = np.array([
      _average_precision(truth[:, index], scores[:, index])
      for index in range(truth.shape[1])])
  return {
      'precision': precision, 'recall': recall, 'f1': f1,
      'support': support, 'average_precision': average_precision,
      'micro_f1': float(micro_f1),
      'macro_f1': _nanmean(f1),
      'exact_set_accuracy': float((predicted == truth).all(1).mean())
                            if len(truth) else float('nan'),
      'mean_average_precision': _nanmean(average_precision)}


def _average_precision(truth, scores):
  """The mean of the precisions at each true image, ranked by score (NaN
  without true images)."""
  if not truth.any():
    return np.nan
  ranked = truth[np.argsort(-scores, kind='stable')]
  hits = np.cumsum(ranked)
  return float((hits / np.arange(1, len(ranked) + 1))[ranked].mean())


def _nanmean(values):
  return float('nan') if np.all(np.isnan(values)) else float(
      np.nanmean(values))


def format_multi_label_report(report, label_names, threshold):
  """The lines of multi_label_report's table: per label, then overall."""
  keys = ('precision', 'recall', 'f1', 'average_precision')
  name_width = max([len(name) for name in label_names] + [len('label')])
  number = lambda value: '-' if np.isnan(value) else '%.3f' % value
  lines = ['%-*s %9s %9s %9s %9s %9s' % (name_width, 'label', 'precision',
                                         'recall', 'f1', 'avg prec',
                                         'support')]
  for index, name in enumerate(label_names):
    lines.append('%-*s %s %9d' % (name_width, name, ' '.join(
        '%9s' % number(report[key][index]) for key in keys),
                                  report['support'][index]))
  lines.append('At threshold %g: micro-F1 %s, macro-F1 %s, exact-set '
               'accuracy %s, mean average precision %s' % (
                   threshold, number(report['micro_f1']),
                   number(report['macro_f1']),
                   number(report['exact_set_accuracy']),
                   number(report['mean_average_precision'])))
  return lines


def classification_report(ground_truth, predictions, class_count):
  """The confusion matrix ('confusion', rows: true class) and per class
  'precision', 'recall', 'f1' (NaN with nothing to divide by) and 'support'
  of class indices, as a dict of numpy arrays."""
  confusion = np.zeros([class_count, class_count], np.int64)
  np.add.at(confusion, (np.asarray(ground_truth, np.int64),
                        np.asarray(predictions, np.int64)), 1)
  true_positives = np.diag(confusion).astype(np.float64)
  predicted = confusion.sum(axis=0)
  support = confusion.sum(axis=1)
  with np.errstate(divide='ignore', invalid='ignore'):
    precision = np.where(predicted > 0, true_positives / predicted, np.nan)
    recall = np.where(support > 0, true_positives / support, np.nan)
    f1 = np.where(precision + recall == 0, 0.0,
                  2 * precision * recall / (precision + recall))
  return {'confusion': confusion, 'precision': precision, 'recall': recall,
          'f1': f1, 'support': support}


def format_classification_report(report, label_names):
  """The lines of classification_report's two tables: per class with a macro
  average, then the confusion matrix (label_names in class-index order)."""
  keys = ('precision', 'recall', 'f1')
  rows = [(name, [report[key][index] for key in keys],
           report['support'][index])
          for index, name in enumerate(label_names)]
  averages = [np.nan if np.all(np.isnan(report[key]))
              else np.nanmean(report[key]) for key in keys]
  rows.append(('macro avg', averages, report['support'].sum()))
  name_width = max(len(name) for name, _, _ in rows)
  lines = ['%-*s %9s %9s %9s %9s' % (name_width, 'class', 'precision',
                                     'recall', 'f1', 'support')]
  for name, values, support in rows:
    lines.append('%-*s %s %9d' % (name_width, name, ' '.join(
        '%9s' % ('-' if np.isnan(value) else '%.3f' % value)
        for value in values), support))
  lines.append('Confusion matrix (rows: true class, columns: predicted '
               'class):')
  column_width = max([len(name) for name in label_names] +
                     [len(str(report['confusion'].max()))])
  lines.append(' ' * name_width + ''.join(
      ' %*s' % (column_width, name) for name in label_names))
  for name, counts in zip(label_names, report['confusion']):
    lines.append('%-*s' % (name_width, name) + ''.join(
        ' %*d' % (column_width, count) for count in counts))
  return lines


def confusion_matrix_png(confusion, label_names):
  """Draws a confusion matrix as a PNG image, for TensorBoard.

  Each cell shows its count, shaded by the share of the true class's images
  it holds: green on the diagonal (right), red elsewhere (wrong), so that
  the errors stand out.

  Args:
    confusion: Integer array [classes, classes], rows: true class, columns:
      predicted class.
    label_names: The class names, in class-index order.

  Returns:
    (PNG bytes, height, width).
  """
  count = len(label_names)
  cell = int(np.clip(720 // max(count, 1), 12, 56))
  font_size = int(np.clip(cell * 0.4, 9, 15))
  try:
    font = ImageFont.load_default(size=font_size)
  except (TypeError, ImportError, OSError):  # Pillow without FreeType.
    font = ImageFont.load_default()
  names = [name if len(name) <= 24 else name[:23] + '~' for name in label_names]
  measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))

  def text_size(text):
    left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
    return right - left, bottom - top

  pad = 6
  line = text_size('Mg')[1] + pad
  names_width = max(text_size(name)[0] for name in names) + 2 * pad
  left = names_width + line
  column_labels_top = 2 * line + 2 * pad
  top = column_labels_top + names_width
  width = left + count * cell + pad
  height = top + count * cell + pad
  image = Image.new('RGB', (max(width, 360), height), 'white')
  draw = ImageDraw.Draw(image)
  draw.text((pad, pad), 'Confusion matrix on the test set', fill='black',
            font=font)
  draw.text((left, line + 2 * pad), 'predicted class', fill='black',
            font=font)
  side = Image.new('RGB', (text_size('true class')[0] + pad, line), 'white')
  ImageDraw.Draw(side).text((0, 0), 'true class', fill='black', font=font)
  image.paste(side.rotate(90, expand=True), (pad, top))
  totals = np.maximum(confusion.sum(axis=1), 1)
  show_numbers = cell >= 2 * font_size
  for row in range(count):
    column_label = Image.new('RGB', (names_width, line), 'white')
    ImageDraw.Draw(column_label).text((pad, 0), names[row], fill='black',
                                      font=font)
    image.paste(column_label.rotate(90, expand=True),
                (left + row * cell + (cell - line) // 2, column_labels_top))
    draw.text((line + pad, top + row * cell + (cell - line) // 2 + pad // 2),
              names[row], fill='black', font=font)
    for column in range(count):
      share = confusion[row, column] / float(totals[row])
      base = (44, 160, 44) if row == column else (214, 39, 40)
      color = tuple(int(255 - share * (255 - c)) for c in base)
      x, y = left + column * cell, top + row * cell
      draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=color,
                     outline=(200, 200, 200))
      if show_numbers:
        text = str(confusion[row, column])
        text_width, text_height = text_size(text)
        draw.text((x + (cell - text_width) / 2, y + (cell - text_height) / 2),
                  text, fill='white' if share > 0.5 else 'black', font=font)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return buffer.getvalue(), image.height, image.width
