"""Multi-label retraining (--image_labels) and --class_weights (README:
Multi-label images and imbalanced classes)."""

import csv
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorboard.backend.event_processing import event_accumulator

import evaluation_report
import retrain
from conftest import (SAMPLE_DIR, decode_images, graph_probabilities,
                      retrain_output_args, run_retrain_alone, run_tool,
                      write_color_images)

tf.disable_v2_behavior()

COLORS = {'red': (210, 40, 40), 'green': (40, 200, 40), 'blue': (40, 40, 210)}


def _write_labelled_images(root):
  """Noise images of one colour (labelled with it) and of two colours side by
  side (labelled with both), listed in root/labels.csv; returns its rows."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rows = []
  for seed, (name, color) in enumerate(sorted(COLORS.items())):
    write_color_images(os.path.join(root, 'single', name), color, 16, seed)
    rows += [(os.path.join('single', name, file_name), name) for file_name in
             sorted(os.listdir(os.path.join(root, 'single', name)))]
  rng = np.random.RandomState(7)
  os.makedirs(os.path.join(root, 'pairs'))
  names = sorted(COLORS)
  for index in range(36):
    first, second = names[index % 3], names[(index + 1 + index // 3 % 2) % 3]
    pixels = np.concatenate([
        np.clip(rng.randn(48, 24, 3) * 35 + COLORS[name], 0, 255)
        for name in (first, second)], axis=1)
    path = os.path.join('pairs', 'pair_%02d.jpg' % index)
    Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(root, path))
    rows.append((path, '%s %s' % (first, second)))
  _write_csv(os.path.join(root, 'labels.csv'), rows)
  return rows


def _write_csv(path, rows, header=('image', 'labels')):
  with open(path, 'w', newline='') as csv_file:
    writer = csv.writer(csv_file)
    writer.writerow(header)
    writer.writerows(rows)


@pytest.fixture(scope='module')
def labelled_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('labelled'))
  _write_labelled_images(root)
  return root


@pytest.fixture(scope='module')
def multi_label_run(sample_module, labelled_dir, tmp_path_factory):
  """A seeded multi-label run with distortions and the SavedModel."""
  out_dir = str(tmp_path_factory.mktemp('multi_label_run'))
  with open(os.path.join(labelled_dir, 'stray.png'), 'wb') as stray:
    stray.write(open(os.path.join(
        labelled_dir, 'single', 'red', 'image_00.png'), 'rb').read())
  result = run_tool('retrain.py', [
      '--image_dir', labelled_dir, '--tfhub_module', sample_module,
      '--image_labels', os.path.join(labelled_dir, 'labels.csv'),
      '--how_many_training_steps', '300', '--random_seed', '2',
      '--learning_rate', '0.1', '--flip_left_right',
      '--saved_model_dir', os.path.join(out_dir, 'saved_model')] +
                    retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  return {'dir': out_dir, 'output': result.stdout, 'images': labelled_dir}


def test_multi_label_model_scores_each_label(multi_label_run):
  out_dir = multi_label_run['dir']
  with open(os.path.join(out_dir, 'output_labels.txt')) as labels_file:
    assert labels_file.read() == 'blue\ngreen\nred\n'
  graph_def = tf.GraphDef()
  with open(os.path.join(out_dir, 'output_graph.pb'), 'rb') as graph_file:
    graph_def.ParseFromString(graph_file.read())
  assert [node.op for node in graph_def.node
          if node.name == 'final_result'] == ['Sigmoid']
  images = multi_label_run['images']
  pair = os.path.join(images, 'pairs', 'pair_00.jpg')  # blue and green.
  single = os.path.join(images, 'single', 'red', 'image_01.jpg')
  scores = graph_probabilities(os.path.join(out_dir, 'output_graph.pb'),
                               decode_images([pair, single], 128))
  assert np.all((scores >= 0) & (scores <= 1))
  assert abs(scores[0].sum() - 1) > 0.05
  assert list(scores[0] >= 0.5) == [True, True, False]
  assert list(scores[1] >= 0.5) == [False, False, True]


def test_multi_label_run_reports_per_label_metrics(multi_label_run):
  output = multi_label_run['output']
  assert re.search(r'1 images in --image_dir \S+ are not in --image_labels',
                   output)
  accuracy = float(re.search(
      r'Final test accuracy = ([0-9.]+)% \(N=\d+\), each image with exactly '
      'its labels at or above 0.5', output).group(1))
  assert accuracy >= 50
  lines = [line.split('INFO:tensorflow:', 1)[1] for line in
           output.splitlines() if line.startswith('INFO:tensorflow:')]
  start = lines.index('=== PER-LABEL TEST RESULTS ===')
  assert lines[start + 1].split() == ['label', 'precision', 'recall', 'f1',
                                      'avg', 'prec', 'support']
  assert [line.split()[0] for line in lines[start + 2:start + 5]] == [
      'blue', 'green', 'red']
  overall = re.match(
      r'At threshold 0.5: micro-F1 ([0-9.]+), macro-F1 ([0-9.]+), exact-set '
      r'accuracy ([0-9.]+), mean average precision ([0-9.]+)',
      lines[start + 5])
  assert overall, lines[start + 5]
  assert abs(float(overall.group(3)) * 100 - accuracy) < 0.1
  assert float(overall.group(1)) >= 0.6


def test_pr_curves_and_figures_go_to_tensorboard(multi_label_run):
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(multi_label_run['dir'], 'retrain_logs', 'test'),
      size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  tags = accumulator.Tags()['tensors']
  assert {'blue/pr_curves', 'green/pr_curves', 'red/pr_curves',
          'evaluation_report'} <= set(tags)
  curve = tf.make_ndarray(accumulator.Tensors('red/pr_curves')[0]
                          .tensor_proto)
  assert curve.shape[0] == 6  # TP, FP, TN, FN, precision, recall.
  assert {'micro_f1', 'exact_set_accuracy',
          'mean_average_precision'} <= set(accumulator.Tags()['scalars'])


def test_label_image_prints_every_label_above_the_threshold(multi_label_run):
  out_dir = multi_label_run['dir']
  result = run_tool('label_image.py', [
      '--graph', os.path.join(out_dir, 'output_graph.pb'),
      '--labels', os.path.join(out_dir, 'output_labels.txt'),
      '--image', os.path.join(multi_label_run['images'], 'pairs',
                              'pair_00.jpg')])
  assert result.returncode == 0, result.stdout
  first_line = result.stdout.splitlines()[0]
  assert first_line.startswith('Labels scored at least 0.5: ')
  assert sorted(first_line.split(': ')[1].split()) == ['blue', 'green']
  csv_file = os.path.join(out_dir, 'report.csv')
  result = run_tool('label_image.py', [
      '--saved_model_dir', os.path.join(out_dir, 'saved_model'),
      '--labels', os.path.join(out_dir, 'output_labels.txt'),
      '--image', os.path.join(multi_label_run['images'], 'pairs'),
      '--output_csv', csv_file])
  assert result.returncode == 0, result.stdout
  with open(csv_file) as report:
    rows = {os.path.basename(row['path']): row['label'].split()
            for row in csv.DictReader(report)}
  assert sorted(rows['pair_00.jpg']) == ['blue', 'green']
  assert sum(len(labels) == 2 for labels in rows.values()) >= 30


@pytest.mark.parametrize('rows, header, expected', [
    ([('single/red/image_01.jpg', '')], ('image', 'labels'),
     r'line 2: single/red/image_01.jpg has no labels: give one or more'),
    ([('single/red/image_01.jpg', 'red')], ('image', 'tags'),
     r"has no 'labels' column: its first line must be the header "
     r'image,labels\.'),
    ([('single/red/image_01.jpg', 'red'), ('single/red/nope.jpg', 'red'),
      ('gone.jpg', 'red')], ('image', 'labels'),
     r'line 3: single/red/nope.jpg is not in --image_dir \S+ \(and 1 more '
     r'listed images are missing\)'),
    ([('single/red/image_01.jpg', 'red'), ('single/red/image_02.jpg',
                                           'red blue')], ('image', 'labels'),
     r"the label 'blue' is given to only one image: a label needs at least 2 "
     'images'),
])
def test_bad_labels_file_is_one_line_and_trains_nothing(
    sample_module, labelled_dir, tmp_path, rows, header, expected):
  labels_file = str(tmp_path / 'labels.csv')
  _write_csv(labels_file, rows, header)
  result = run_tool('retrain.py', [
      '--image_dir', labelled_dir, '--tfhub_module', sample_module,
      '--image_labels', labels_file] + retrain_output_args(str(tmp_path)))
  assert result.returncode == 1
  errors = [line for line in result.stdout.splitlines() if 'ERROR' in line]
  assert len(errors) == 1 and re.search(expected, errors[0]), result.stdout
  assert 'Traceback' not in result.stdout
  assert not os.path.exists(tmp_path / 'bottleneck')
  assert not os.path.exists(tmp_path / 'output_graph.pb')


def _imbalanced_dir(root):
  for seed, (name, count) in enumerate([('red', 40), ('green', 8),
                                        ('blue', 8)]):
    write_color_images(os.path.join(root, name), COLORS[name], count, seed)
  return root


def test_balanced_class_weights_are_logged_from_the_training_set(
    sample_module, tmp_path):
  image_dir = _imbalanced_dir(str(tmp_path / 'images'))
  result = run_tool('retrain.py', [
      '--image_dir', image_dir, '--tfhub_module', sample_module,
      '--class_weights', 'balanced', '--how_many_training_steps', '20'] +
                    retrain_output_args(str(tmp_path)))
  assert result.returncode == 0, result.stdout[-3000:]
  lists = retrain.create_image_lists(image_dir, 10, 10)
  counts = {label: len(lists[label]['training']) for label in lists}
  logged = dict(re.findall(r'(\w+) ([0-9.]+)', re.search(
      r'--class_weights balanced: the loss weighs (.*)\.', result.stdout)
                           .group(1)))
  total = sum(counts.values())
  for label, count in counts.items():
    assert abs(float(logged[label]) - total / (3.0 * count)) < 0.01 * float(
        logged[label])
  assert float(logged['green']) > 3 * float(logged['red'])


@pytest.mark.parametrize('multi_label', [False, True])
def test_weighted_loss_is_the_weighted_cross_entropy(multi_label):
  logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.3, -2.0]], np.float32)
  weights = np.array([0.5, 3.0, 1.0], np.float32)
  truth = (np.array([[1, 0, 1], [0, 1, 0]], np.float32) if multi_label
           else np.array([0, 1], np.int64))
  with tf.Graph().as_default():
    ground_truth = tf.placeholder(tf.float32 if multi_label else tf.int64)
    loss = retrain._cross_entropy(  # pylint: disable=protected-access
        retrain.HeadOptions(0.1, loss_weights=weights,
                            multi_label=multi_label),
        ground_truth, tf.constant(logits))
    with tf.Session() as sess:
      value = sess.run(loss, {ground_truth: truth})
  if multi_label:
    probabilities = 1 / (1 + np.exp(-logits))
    expected = -(weights * truth * np.log(probabilities) +
                 (1 - truth) * np.log(1 - probabilities)).mean()
  else:
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(weights[truth] * log_softmax[[0, 1], truth]).sum() / 2
  assert abs(value - expected) < 1e-5


def test_multi_label_report_counts():
  truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
  scores = np.array([[.9, .2], [.1, .7], [.6, .4], [.3, .1]])
  report = evaluation_report.multi_label_report(truth, scores, 0.5)
  assert list(report['precision']) == [1.0, 1.0]
  assert list(report['recall']) == [1.0, 0.5]
  assert abs(report['micro_f1'] - 6 / 7) < 1e-9  # 2*3 / (4 + 3).
  assert report['exact_set_accuracy'] == 0.75
  # Label 1's true images rank first and second: average precision 1.
  assert list(report['average_precision']) == [1.0, 1.0]
  scores[1, 1] = 0.05  # Now ranked below two images without the label.
  report = evaluation_report.multi_label_report(truth, scores, 0.5)
  assert abs(report['average_precision'][1] - (1 + 2 / 4) / 2) < 1e-9


def test_single_label_runs_ignore_the_new_flags_by_default(sample_module,
                                                            tmp_path):
  hashes = []
  for name, extra in (('default', []), ('explicit', [
      '--class_weights', 'none', '--multi_label_threshold', '0.7'])):
    out_dir = str(tmp_path / name)
    result = run_tool('retrain.py', [
        '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
        '--how_many_training_steps', '30', '--random_seed', '3'] + extra +
                      retrain_output_args(out_dir, str(tmp_path / 'cache')))
    assert result.returncode == 0, result.stdout[-3000:]
    with open(os.path.join(out_dir, 'output_graph.pb'), 'rb') as graph:
      hashes.append(graph.read())
  assert hashes[0] == hashes[1]


def test_tflite_and_onnx_exports_carry_the_sigmoid(sample_module, labelled_dir,
                                                   tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  import onnx_export  # pylint: disable=g-import-not-at-top
  missing = [name for name in onnx_export.CONVERT_PACKAGES
             if importlib.util.find_spec(name) is None]
  if missing:
    pytest.skip('requirements-onnx.txt is not installed (%s missing)' %
                ', '.join(missing))
  out_dir = str(tmp_path)
  result = run_tool('retrain.py', [
      '--image_dir', labelled_dir, '--tfhub_module', sample_module,
      '--image_labels', os.path.join(labelled_dir, 'labels.csv'),
      '--how_many_training_steps', '100', '--random_seed', '2',
      '--tflite_output_file', os.path.join(out_dir, 'model.tflite'),
      '--onnx_output_file', os.path.join(out_dir, 'model.onnx')] +
                    retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  for kind in ('TF Lite \\(float32\\)', 'ONNX'):
    count, agreeing, total = re.search(
        kind + r' test accuracy = [0-9.]+% \(N=(\d+)\), frozen graph [0-9.]+%, '
        r'label-set agreement (\d+)/(\d+)', result.stdout).groups()
    assert count == total == agreeing
  pair = os.path.join(labelled_dir, 'pairs', 'pair_00.jpg')
  outputs = {}
  for flag, model in (('--graph', 'output_graph.pb'),
                      ('--onnx_file', 'model.onnx'),
                      ('--tflite_file', 'model.tflite')):
    extra = ['--multi_label_threshold', '0.5'] if 'tflite' in flag else []
    run = run_tool('label_image.py', [
        flag, os.path.join(out_dir, model), '--image', pair, '--labels',
        os.path.join(out_dir, 'output_labels.txt')] + extra)
    assert run.returncode == 0, run.stdout
    outputs[flag] = run.stdout.splitlines()[0]
  assert outputs['--graph'].startswith('Labels scored at least 0.5: ')
  assert len(set(outputs.values())) == 1, outputs


@pytest.mark.parametrize('flags, asked_by', [
    (['--image_labels', 'labels.csv'], '--image_labels'),
    (['--class_weights', 'balanced'], '--class_weights balanced')])
def test_retrain_py_copied_alone_names_multi_label_py(sample_module, tmp_path,
                                                      flags, asked_by):
  alone = str(tmp_path / 'alone')
  result = run_retrain_alone(alone, [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module] + flags +
                             retrain_output_args(str(tmp_path / 'out')))
  assert result.returncode == 1
  assert result.stdout.strip() == (
      'ERROR: %s needs multi_label.py beside retrain.py, in %s: copy it from '
      'the project that retrain.py comes from.' % (asked_by, alone))
  assert not os.path.exists(tmp_path / 'out')
