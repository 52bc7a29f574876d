"""TensorBoard: a real server reading the runs over HTTP, and the screenshot
script (README: What next; docs/exports.md: TensorBoard)."""

import os
import re
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import REPO_DIR, run_tool

sys.path.insert(0, os.path.join(REPO_DIR, 'tools'))
import screenshot_tensorboard  # pylint: disable=g-import-not-at-top,wrong-import-position

tf.disable_v2_behavior()


def _points_up_to(board, run, tag, last_step, timeout=120):
  """The [wall time, step, value] points of a scalar once TensorBoard serves
  last_step: it reads event files in passes, and serves what it has read."""
  deadline = time.time() + timeout
  while True:
    points = board.get_json('data/plugin/scalars/scalars', run=run, tag=tag)
    if (points and points[-1][1] >= last_step) or time.time() > deadline:
      return points
    time.sleep(1)


def test_tensorboard_serves_the_runs_over_http(trained_run):
  with screenshot_tensorboard.TensorBoard(trained_run['summaries']) as board:
    assert board.url.startswith('http://127.0.0.1:')
    tags = board.wait_for_scalars(('train', 'validation'))
    assert sorted(board.get_json('data/runs')) == ['test', 'train',
                                                   'validation']
    for run, count in (('train', 1000), ('validation', 101)):
      accuracy = [t for t in tags[run] if re.match(r'^accuracy(_\d+)?$', t)]
      cross_entropy = [t for t in tags[run]
                       if re.match(r'^cross_entropy(_\d+)?$', t)]
      assert len(accuracy) == 1 and len(cross_entropy) == 1, tags[run]
      points = _points_up_to(board, run, accuracy[0], 999)
      # One point for each step written.
      assert len(points) == count
      assert points[-1][1] == 999 and points[-1][2] >= 0.9
    images = board.get_json('data/plugin/images/tags')
    assert 'confusion_matrix' in images['test']


def test_screenshot_script_without_chromium_says_what_to_do(tmp_path,
                                                            monkeypatch,
                                                            capsys):
  monkeypatch.setattr(screenshot_tensorboard, 'find_chromium', lambda: None)
  assert screenshot_tensorboard.main(['--logdir', str(tmp_path)]) == 1
  assert 'Chromium not found' in capsys.readouterr().err


@pytest.mark.skipif(not screenshot_tensorboard.find_chromium(),
                    reason='Chromium is not installed (Debian: apt-get '
                    'install chromium); it is not in requirements.txt.')
def test_screenshot_of_the_scalars_dashboard(trained_run, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  output = str(tmp_path / 'scalars.png')
  result = run_tool(os.path.join('tools', 'screenshot_tensorboard.py'), [
      '--logdir', trained_run['summaries'], '--output', output], timeout=600)
  assert result.returncode == 0, result.stdout[-3000:]
  image = Image.open(output).convert('RGB')
  assert image.size == (1400, 640)
  pixels = np.asarray(image).reshape(-1, 3).astype(int)
  # TensorBoard's orange header bar and the blue validation curve are drawn.
  assert np.sum(np.all(np.abs(pixels - [245, 124, 0]) < 20, axis=1)) > 10000
  assert np.sum(np.all(np.abs(pixels - [0, 119, 187]) < 40, axis=1)) > 100
