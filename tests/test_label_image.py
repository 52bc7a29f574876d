"""label_image.py on retrain.py's outputs, as a user runs it.

A few runs go through `python label_image.py`; the others call its main() in
this process, which prints the same and saves starting Python each time.
"""

import collections
import os
import re
import shutil

import pytest

import label_image
from conftest import SAMPLE_DIR, read_csv, run_tool

LABELS = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
ROSE = os.path.join(SAMPLE_DIR, 'roses', 'rose_003.jpg')
LINE = re.compile(r'^(\w+) ([01]\.\d{5})$')


def _run_label_image(trained_run, *args):
  """Runs `python label_image.py`; returns (exit code, stdout and stderr)."""
  result = run_tool('label_image.py', ['--labels', trained_run['labels']] +
                    list(args), timeout=300)
  return result.returncode, result.stdout


@pytest.fixture()
def label(trained_run, capsys):
  """Calls label_image.main(); returns (exit code, stdout and stderr)."""

  def call(*args):
    capsys.readouterr()
    code = label_image.main(['--labels', trained_run['labels']] + list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err

  return call


def _scores(output):
  """{label: score} from the lines of one image."""
  lines = output.strip().splitlines()
  matches = [LINE.match(line) for line in lines]
  assert all(matches), output
  return {m.group(1): float(m.group(2)) for m in matches}


def _folder_results(output):
  """{image path: top label}, the accuracy line's percentage and count."""
  tops = {}
  lines = output.strip().splitlines()
  for line in lines[:lines.index('Accuracy per class:')]:
    path, results = line.split(': ', 1)
    tops[path] = results.split(' ')[0]
  accuracy = re.match(r'^Accuracy: ([0-9.]+)% \((\d+) of (\d+) images in '
                      r'class folders\)$', output.strip().splitlines()[-1])
  assert accuracy, output[-500:]
  return tops, float(accuracy.group(1)), int(accuracy.group(3))


def test_one_image_prints_top_k_label_score_lines(trained_run, label):
  code, output = _run_label_image(trained_run, '--graph',
                                  trained_run['graph'], '--image', ROSE)
  assert code == 0, output
  lines = output.strip().splitlines()
  assert len(lines) == 5  # --top_k 5
  scores = _scores(output)
  assert sorted(scores) == LABELS
  values = [float(line.split(' ')[1]) for line in lines]
  assert values == sorted(values, reverse=True)
  assert abs(sum(values) - 1.0) < 1e-3
  assert lines[0].startswith('roses ')

  code, output = label('--graph', trained_run['graph'], '--image', ROSE,
                       '--top_k', '2')
  assert code == 0 and len(output.strip().splitlines()) == 2


def test_explicit_defaults_are_honoured(trained_run, label):
  _, default = label('--graph', trained_run['graph'], '--image', ROSE)
  _, explicit = label('--graph', trained_run['graph'], '--image', ROSE,
                      '--input_mean', '0', '--input_std', '255',
                      '--input_height', '128', '--input_width', '128')
  assert explicit == default
  # The old tutorials' normalisation gives other (wrong) numbers: the flags
  # are really used.
  _, old_style = label('--graph', trained_run['graph'], '--image', ROSE,
                       '--input_mean', '128', '--input_std', '128')
  assert _scores(old_style) != _scores(default)
  code, output = label('--graph', trained_run['graph'], '--image', ROSE,
                       '--input_height', '0')
  assert code == 1
  assert output.strip() == ('ERROR: --input_height must be a positive number '
                            'of pixels.')


def test_folder_prints_one_line_per_image_and_the_accuracy(trained_run,
                                                          label):
  code, output = label('--graph', trained_run['graph'], '--image', SAMPLE_DIR)
  assert code == 0, output[-2000:]
  tops, accuracy, count = _folder_results(output)
  images = [name for label in os.listdir(SAMPLE_DIR)
            if os.path.isdir(os.path.join(SAMPLE_DIR, label))
            for name in os.listdir(os.path.join(SAMPLE_DIR, label))]
  assert count == len(tops) == len(images)
  assert accuracy >= 90.0
  correct = sum(top == path.split(os.sep)[-2] for path, top in tops.items())
  assert abs(100.0 * correct / count - accuracy) < 0.1


def test_wrong_layer_name_is_one_line_naming_the_layers(trained_run, label):
  code, output = _run_label_image(trained_run, '--graph',
                                  trained_run['graph'], '--image', ROSE,
                                  '--input_layer', 'input')
  assert code == 1
  assert output.strip() == (
      "ERROR: The graph has no layer 'input' (placeholders: Placeholder, "
      'input/BottleneckInputPlaceholder; outputs: final_result).')
  code, output = label('--graph', trained_run['graph'], '--image', ROSE,
                       '--output_layer', 'InceptionV3/Predictions/Reshape_1')
  assert code == 1 and len(output.strip().splitlines()) == 1
  assert 'outputs: final_result' in output


@pytest.mark.parametrize('signature', ['serving_default', 'serving_bytes'])
def test_saved_model_agrees_with_the_graph(trained_run, label, signature):
  folder = os.path.join(SAMPLE_DIR, 'tulips')
  _, graph_output = label('--graph', trained_run['graph'], '--image', folder)
  code, output = label('--saved_model_dir', trained_run['saved_model'],
                       '--signature', signature, '--image', folder)
  assert code == 0, output[-2000:]
  graph_lines = graph_output.strip().splitlines()
  lines = output.strip().splitlines()
  assert len(lines) == len(graph_lines) > 20
  for line, graph_line in zip(lines, graph_lines):
    path, results = line.split(': ')
    graph_path, graph_results = graph_line.split(': ')
    assert path == graph_path
    pairs = [item.split(' ') for item in results.split(', ')]
    graph_pairs = [item.split(' ') for item in graph_results.split(', ')]
    assert pairs[0][0] == graph_pairs[0][0]
    for (_, score), (_, graph_score) in zip(sorted(pairs), sorted(graph_pairs)):
      assert abs(float(score) - float(graph_score)) < 2e-4
  assert lines[-1] == graph_lines[-1]  # The accuracy.


def test_saved_model_unknown_signature_is_one_line(trained_run, label):
  code, output = label('--saved_model_dir', trained_run['saved_model'],
                       '--signature', 'predict', '--image', ROSE)
  assert code == 1
  assert output.strip() == ('ERROR: The SavedModel has no signature predict '
                            '(it has: serving_bytes, serving_default).')


@pytest.mark.parametrize('mode', ['graph', 'serving_bytes'])
def test_undecodable_image_is_skipped_with_the_reason(trained_run, label,
                                                      tmp_path, mode):
  (tmp_path / 'broken.jpg').write_bytes(b'not an image')
  (tmp_path / 'rose.jpg').write_bytes(open(ROSE, 'rb').read())
  if mode == 'graph':
    args = ['--graph', trained_run['graph']]
  else:
    args = ['--saved_model_dir', trained_run['saved_model'], '--signature',
            'serving_bytes']
  code, output = label(*(args + ['--image', str(tmp_path), '--top_k', '1']))
  assert code == 0, output
  skipped, classified = output.strip().splitlines()
  # TensorFlow's reason names the formats it decodes (more in 2.21 than 2.15).
  assert re.fullmatch(
      re.escape('%s: skipped, cannot be decoded (Unknown image file format. '
                'One of JPEG, ' % (tmp_path / 'broken.jpg')) +
      r'[A-Za-z, ]+ required\.\)', skipped), skipped
  assert classified == '%s: roses %s' % (tmp_path / 'rose.jpg',
                                         output.split('roses ')[1][:7])


def test_tflite_file_classifies_a_folder_like_the_graph(trained_run, label):
  folder = SAMPLE_DIR
  _, graph_output = label('--graph', trained_run['graph'], '--image', folder)
  code, output = label('--tflite_file', trained_run['tflite'], '--image',
                       folder)
  assert code == 0, output[-2000:]
  graph_tops, graph_accuracy, count = _folder_results(graph_output)
  tops, accuracy, tflite_count = _folder_results(output)
  assert tflite_count == count == 250
  assert tops == graph_tops
  assert accuracy == graph_accuracy


@pytest.mark.parametrize('flag,model', [
    ('--tflite_file', 'tflite'),  # The labels in its TF Lite metadata.
    ('--saved_model_dir', 'saved_model'),  # Its serving_bytes signature's.
])
def test_model_brings_its_own_labels(trained_run, capsys, flag, model):
  code = label_image.main([flag, trained_run[model], '--image', ROSE])
  output = capsys.readouterr().out
  assert code == 0, output
  assert sorted(_scores(output)) == LABELS
  assert output.startswith('roses ')


def test_missing_labels_file_names_the_flag_once(trained_run, capsys,
                                                 tmp_path):
  missing = str(tmp_path / 'no_labels.txt')
  code = label_image.main(['--graph', trained_run['graph'], '--labels',
                           missing, '--image', ROSE])
  output = capsys.readouterr().err
  assert code == 1
  assert output.strip() == (
      'ERROR: The labels file %s does not exist: pass --labels, the file '
      'that retrain.py --output_labels wrote.' % missing)
  assert output.count(missing) == 1


def test_not_a_tflite_file_is_one_line(trained_run, label):
  code, output = label('--tflite_file', trained_run['labels'], '--image', ROSE)
  assert code == 1
  assert output.strip() == ('ERROR: %s is not a TF Lite model (.tflite) '
                            'file.' % trained_run['labels'])


# ---------------------------------------------------------------------------
# --output_csv, --min_score and the report of class folders.
# ---------------------------------------------------------------------------


@pytest.fixture()
def photo_folder(tmp_path):
  """Class folders of sample photos (one nested deeper), a folder that is no
  class, and a broken image; returns (folder, {path: class or None})."""
  folder = tmp_path / 'photos'
  expected = {}
  for name in ('daisy', 'roses', 'tulips', 'new_photos'):
    source = os.path.join(SAMPLE_DIR, 'daisy' if name == 'new_photos' else
                          name)
    target = folder / name / ('deeper' if name == 'tulips' else '')
    target.mkdir(parents=True, exist_ok=True)
    for file_name in sorted(os.listdir(source))[:4]:
      shutil.copy(os.path.join(source, file_name), str(target))
      expected[str(target / file_name)] = (
          None if name == 'new_photos' else name)
  (folder / 'roses' / 'broken.jpg').write_bytes(b'not an image')
  expected[str(folder / 'roses' / 'broken.jpg')] = 'roses'
  return str(folder), expected


def test_output_csv_has_a_row_per_image_and_the_top_k_columns(
    trained_run, label, photo_folder, tmp_path):
  folder, expected = photo_folder
  report = str(tmp_path / 'reports' / 'report.csv')  # A new folder.
  code, output = label('--graph', trained_run['graph'], '--image', folder,
                       '--output_csv', report, '--top_k', '3')
  assert code == 0, output
  header, rows = read_csv(report)
  assert header == ['path', 'label', 'score', 'label_2', 'score_2', 'label_3',
                    'score_3', 'error']
  assert sorted(row[0] for row in rows) == sorted(expected)
  broken = [row for row in rows if row[0].endswith('broken.jpg')][0]
  assert broken[1:7] == [''] * 6
  assert broken[7].startswith('Unknown image file format.')
  # The same labels and scores as the printed lines, which it replaces.
  _, printed = label('--graph', trained_run['graph'], '--image', folder,
                     '--top_k', '3')
  for row in rows:
    if row is not broken:
      assert len(set(row[1:7:2])) == 3 and set(row[1:7:2]) <= set(LABELS)
      assert float(row[2]) >= float(row[4]) >= float(row[6]) and row[7] == ''
      line = '%s: %s %s, %s %s, %s %s' % tuple(row[:7])
      assert line in printed.splitlines()
      assert line not in output
  assert 'Wrote 17 rows to %s (1 image(s) cannot be read: see the column ' \
         'error).' % report in output
  assert '17/17 images classified' in output


def test_min_score_makes_the_label_unknown(trained_run, label, tmp_path):
  plain, strict = str(tmp_path / 'plain.csv'), str(tmp_path / 'strict.csv')
  folder = os.path.join(SAMPLE_DIR, 'roses')
  label('--graph', trained_run['graph'], '--image', folder, '--output_csv',
        plain, '--top_k', '2')
  _, plain_rows = read_csv(plain)
  scores = sorted(float(row[2]) for row in plain_rows)
  min_score = scores[len(scores) // 4]  # About a quarter below it.
  code, output = label('--graph', trained_run['graph'], '--image', folder,
                       '--output_csv', strict, '--top_k', '2', '--min_score',
                       str(min_score))
  assert code == 0, output
  header, strict_rows = read_csv(strict)
  assert header == ['path', 'label', 'score', 'label_2', 'score_2', 'error']
  unknown = 0
  for plain_row, row in zip(plain_rows, strict_rows):
    if float(row[2]) < min_score:
      unknown += 1
      assert row == plain_row[:1] + ['unknown'] + plain_row[2:]
    else:
      assert row == plain_row
  assert 5 <= unknown <= len(plain_rows) // 2
  code, output = label('--graph', trained_run['graph'], '--image', folder,
                       '--min_score', '1.5')
  assert (code, output.strip()) == (
      1, 'ERROR: --min_score must be between 0 and 1.')


CLASS_LINE = re.compile(r'^  (\w+) +([0-9.]+)% \((\d+) of (\d+)\)$')
CONFUSION_LINE = re.compile(r'^  (\w+) -> (\w+): (\d+)$')


def test_class_folders_get_accuracy_per_class_and_confusions(
    trained_run, label, tmp_path):
  report = str(tmp_path / 'report.csv')
  code, output = label('--graph', trained_run['graph'], '--image',
                       SAMPLE_DIR, '--output_csv', report, '--top_k', '1',
                       '--min_score', '0.95')
  assert code == 0, output
  _, rows = read_csv(report)
  outcomes = [(row[0].split(os.sep)[-2], row[1]) for row in rows]
  lines = output.strip().splitlines()
  start = lines.index('Accuracy per class:')
  classes = [CLASS_LINE.match(line).groups() for line in
             lines[start + 1:start + 1 + len(LABELS)]]
  assert [name for name, _, _, _ in classes] == LABELS
  for name, percent, right, count in classes:
    truths = [predicted for truth, predicted in outcomes if truth == name]
    assert int(count) == len(truths)
    assert int(right) == truths.count(name)
    assert float(percent) == round(100.0 * int(right) / int(count), 1)
  assert lines[start + 1 + len(LABELS)] == (
      'Most common confusions (true class -> predicted label):')
  confusions = [CONFUSION_LINE.match(line).groups()
                for line in lines[start + 2 + len(LABELS):-1]]
  counted = collections.Counter(outcome for outcome in outcomes
                                if outcome[0] != outcome[1])
  assert [(truth, predicted, int(count))
          for truth, predicted, count in confusions] == sorted(
              ((truth, predicted, count)
               for (truth, predicted), count in counted.items()),
              key=lambda item: (-item[2], item[:2]))[:5]
  assert any(predicted == 'unknown' for _, predicted, _ in confusions)
  right = sum(truth == predicted for truth, predicted in outcomes)
  assert lines[-1] == ('Accuracy: %.1f%% (%d of 250 images in class '
                       'folders)' % (100.0 * right / 250, right))


def test_interrupted_run_leaves_the_old_csv_alone(trained_run, label,
                                                  tmp_path, monkeypatch):
  report = tmp_path / 'report.csv'
  report.write_text('the previous report\n')
  classify_file = label_image._classify_file
  calls = []

  def interrupted_at_the_third(predict, path):
    calls.append(path)
    if len(calls) == 3:
      raise KeyboardInterrupt()
    return classify_file(predict, path)

  monkeypatch.setattr(label_image, '_classify_file', interrupted_at_the_third)
  code, output = label('--graph', trained_run['graph'], '--image', SAMPLE_DIR,
                       '--output_csv', str(report))
  assert code == 130
  assert output.strip() == 'Interrupted: %s is not written.' % report
  assert report.read_text() == 'the previous report\n'
  assert os.listdir(str(tmp_path)) == ['report.csv']  # No temporary file.


def test_output_csv_that_is_a_folder_is_one_line(trained_run, label,
                                                 tmp_path):
  code, output = label('--graph', trained_run['graph'], '--image', ROSE,
                       '--output_csv', str(tmp_path))
  assert (code, output.strip()) == (
      1, 'ERROR: --output_csv %s is a folder: give a file name.' % tmp_path)
