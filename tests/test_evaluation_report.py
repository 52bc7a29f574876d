"""The evaluation report: the per-class table in the log and the confusion
matrix in TensorBoard (README: What next; docs/exports.md: The evaluation
report)."""

import io
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorboard.backend.event_processing import event_accumulator

import evaluation_report
import retrain

tf.disable_v2_behavior()

SAMPLE_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']


def _report_lines(output):
  lines = [line.split('INFO:tensorflow:', 1)[1] for line in
           output.splitlines() if line.startswith('INFO:tensorflow:')]
  start = lines.index('=== PER-CLASS TEST RESULTS ===')
  return lines[start + 1:start + 1 + 2 * len(SAMPLE_CLASSES) + 4]


def test_final_evaluation_prints_the_per_class_table(trained_run):
  output = trained_run['output']
  accuracy, count = re.search(
      r'Final test accuracy = ([0-9.]+)% \(N=(\d+)\)', output).groups()
  lines = _report_lines(output)
  assert lines[0].split() == ['class', 'precision', 'recall', 'f1',
                              'support']
  rows = [line.split() for line in lines[1:1 + len(SAMPLE_CLASSES)]]
  assert [row[0] for row in rows] == SAMPLE_CLASSES
  assert lines[1 + len(SAMPLE_CLASSES)].startswith('macro avg ')
  assert sum(int(row[4]) for row in rows) == int(count)
  assert lines[2 + len(SAMPLE_CLASSES)] == (
      'Confusion matrix (rows: true class, columns: predicted class):')
  assert lines[3 + len(SAMPLE_CLASSES)].split() == SAMPLE_CLASSES
  confusion = np.array([[int(v) for v in line.split()[1:]]
                        for line in lines[4 + len(SAMPLE_CLASSES):]])
  assert confusion.shape == (5, 5)
  assert confusion.sum() == int(count)
  assert abs(100.0 * np.trace(confusion) / confusion.sum() -
             float(accuracy)) < 0.1
  for index, row in enumerate(rows):
    assert int(row[4]) == confusion[index].sum()
    if confusion[:, index].sum():
      assert abs(float(row[1]) - confusion[index, index] /
                 confusion[:, index].sum()) < 1e-3
    assert abs(float(row[2]) - confusion[index, index] /
               confusion[index].sum()) < 1e-3


def test_confusion_matrix_goes_to_tensorboard(trained_run):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(trained_run['summaries'], 'test'),
      size_guidance={event_accumulator.IMAGES: 0,
                     event_accumulator.TENSORS: 0})
  accumulator.Reload()
  assert accumulator.Tags()['images'] == ['confusion_matrix']
  event, = accumulator.Images('confusion_matrix')
  assert event.step == 999
  image = Image.open(io.BytesIO(event.encoded_image_string))
  assert image.format == 'PNG' and image.mode == 'RGB'
  assert image.size == (event.width, event.height)
  text, = accumulator.Tensors('evaluation_report')
  table = tf.make_ndarray(text.tensor_proto).item().decode()
  assert 'precision' in table and 'tulips' in table


def test_classification_report_numbers():
  truth = [0, 0, 0, 1, 1, 2, 2, 2]
  predicted = [0, 0, 1, 1, 1, 0, 2, 0]
  report = evaluation_report.classification_report(truth, predicted, 4)
  np.testing.assert_array_equal(report['confusion'], [
      [2, 1, 0, 0], [0, 2, 0, 0], [2, 0, 1, 0], [0, 0, 0, 0]])
  np.testing.assert_allclose(report['precision'][:3], [0.5, 2 / 3.0, 1.0])
  np.testing.assert_allclose(report['recall'][:3], [2 / 3.0, 1.0, 1 / 3.0])
  np.testing.assert_allclose(report['f1'][:3], [4 / 7.0, 0.8, 0.5])
  np.testing.assert_array_equal(report['support'], [3, 2, 3, 0])
  # Class 3: never predicted, no images: nothing to measure.
  assert np.isnan(report['precision'][3]) and np.isnan(report['recall'][3])
  assert np.isnan(report['f1'][3])
  lines = evaluation_report.format_classification_report(report, ['a', 'b', 'c', 'd'])
  assert lines[4].split() == ['d', '-', '-', '-', '0']
  assert lines[5].split() == ['macro', 'avg', '0.722', '0.667', '0.624', '8']
  assert lines[-4].split() == ['a', '2', '1', '0', '0']
  # A class with images that is never predicted: precision unknown, F1 0.
  report = evaluation_report.classification_report([0, 1], [0, 0], 2)
  assert np.isnan(report['precision'][1]) and report['recall'][1] == 0
  assert np.isnan(report['f1'][1])


@pytest.mark.parametrize('class_count', [2, 60])
def test_confusion_matrix_png_any_class_count(class_count):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  truth = rng.randint(class_count, size=300)
  report = evaluation_report.classification_report(truth, rng.randint(class_count,
                                                            size=300),
                                         class_count)
  names = ['class number %d with a long name' % i for i in range(class_count)]
  png, height, width = evaluation_report.confusion_matrix_png(report['confusion'],
                                                    names)
  image = Image.open(io.BytesIO(png))
  assert image.size == (width, height)
  assert 100 < width < 2000 and 100 < height < 2000


def test_summaries_dir_may_hold_the_test_run(tmp_path, monkeypatch):
  summaries = tmp_path / 'logs'
  for run in ('train', 'validation', 'test'):
    (summaries / run).mkdir(parents=True)
    (summaries / run / 'events.out').write_text('old')
  monkeypatch.setattr(retrain, 'FLAGS', retrain.build_parser().parse_args(
      ['--summaries_dir', str(summaries)]))
  assert retrain._clearable_summaries_dir(str(summaries))  # pylint: disable=protected-access
  retrain.prepare_file_system()
  assert os.listdir(str(summaries)) == []
  (summaries / 'notes').mkdir()
  assert not retrain._clearable_summaries_dir(str(summaries))  # pylint: disable=protected-access
