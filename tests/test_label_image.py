"""label_image.py on retrain.py's outputs, as a user runs it.

A few runs go through `python label_image.py`; the others call its main() in
this process, which prints the same and saves starting Python each time.
"""

import os
import re

import pytest

import label_image
from conftest import SAMPLE_DIR, run_tool

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
  """{image path: top label} and the accuracy line's percentage."""
  tops = {}
  for line in output.strip().splitlines()[:-1]:
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
