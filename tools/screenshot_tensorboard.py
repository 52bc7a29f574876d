#!/usr/bin/env python
"""Renders TensorBoard's dashboards of a retrain.py run to a PNG.

Starts TensorBoard on 127.0.0.1 (a port the system picks) over --logdir,
waits until it serves the train and validation runs with their accuracy and
cross-entropy scalars, opens the Scalars dashboard in headless Chromium
(Debian's `chromium` package) and saves a screenshot:

  python tools/screenshot_tensorboard.py --logdir /tmp/retrain_logs \
      --output docs/tensorboard_scalars.png

With --dashboard images, it shows the Images dashboard instead: the
confusion matrix of the final test.

TensorBoard is stopped afterwards whatever happens. The TensorBoard class
is also what the tests use to read TensorBoard's HTTP data API.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

CHROMIUM_NAMES = ('chromium', 'chromium-browser', 'google-chrome',
                  'google-chrome-stable')
# Tag names as retrain.py writes them (tf.summary in name scopes adds _N).
ACCURACY_TAG = re.compile(r'^accuracy(_\d+)?$')
CROSS_ENTROPY_TAG = re.compile(r'^cross_entropy(_\d+)?$')


class TensorBoardError(Exception):
  """TensorBoard did not start or did not serve the expected data."""


class TensorBoard(object):
  """A TensorBoard server over logdir on 127.0.0.1, for a `with` block.

  Attributes:
    url: The server's address, e.g. 'http://127.0.0.1:40123/', once started.
  """

  def __init__(self, logdir, start_timeout=180):
    self.logdir = logdir
    self.url = None
    self._start_timeout = start_timeout
    self._process = None
    self._output = []

  def __enter__(self):
    # --port 0: the system picks a free port, which TensorBoard then prints.
    # --load_fast=false: the pure Python reader, no extra server process.
    self._process = subprocess.Popen(
        [sys.executable, '-m', 'tensorboard.main', '--logdir', self.logdir,
         '--host', '127.0.0.1', '--port', '0', '--load_fast=false',
         '--reload_interval', '2'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    found = threading.Event()

    def read_output():
      for line in self._process.stdout:
        self._output.append(line)
        match = re.search(r'TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)',
                          line)
        if match and not found.is_set():
          self.url = match.group(1)
          found.set()

    threading.Thread(target=read_output, daemon=True).start()
    deadline = time.time() + self._start_timeout
    while not found.wait(0.2):
      if self._process.poll() is not None or time.time() > deadline:
        self.__exit__(None, None, None)
        raise TensorBoardError('TensorBoard did not start: %s' %
                               ''.join(self._output)[-2000:])
    return self

  def __exit__(self, *unused_exc_info):
    if self._process is not None and self._process.poll() is None:
      self._process.terminate()
      try:
        self._process.wait(timeout=20)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
    return False

  def get_json(self, path, **query):
    """GETs a JSON answer of the server, e.g. get_json('data/runs')."""
    url = self.url + path
    if query:
      url += '?' + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=60) as response:
      return json.loads(response.read().decode('utf-8'))

  def wait_for_scalars(self, runs=('train', 'validation'), timeout=180):
    """Waits until each run has accuracy and cross-entropy scalars.

    Returns:
      The answer of data/plugin/scalars/tags: {run: {tag: description}}.

    Raises:
      TensorBoardError: if they do not appear within timeout seconds.
    """
    deadline = time.time() + timeout
    tags = {}
    while time.time() < deadline:
      tags = self.get_json('data/plugin/scalars/tags')
      if all(any(ACCURACY_TAG.match(tag) for tag in tags.get(run, {})) and
             any(CROSS_ENTROPY_TAG.match(tag) for tag in tags.get(run, {}))
             for run in runs):
        return tags
      time.sleep(1)
    raise TensorBoardError('TensorBoard did not show the accuracy and '
                           'cross-entropy of %s within %ds (it shows: %s)' %
                           (', '.join(runs), timeout, tags))


def find_chromium():
  """The path of a Chromium (or Chrome) executable, or None."""
  for name in CHROMIUM_NAMES:
    path = shutil.which(name)
    if path:
      return path
  return None


def screenshot(chromium, url, output, width=1400, height=640,
               budget_ms=20000):
  """Saves a PNG of url as headless Chromium renders it.

  Args:
    chromium: The Chromium executable.
    url: The page.
    output: The PNG file to write.
    width: Window width in pixels.
    height: Window height in pixels.
    budget_ms: Virtual time the page gets to load and draw before the shot.

  Raises:
    TensorBoardError: if Chromium fails or writes no image.
  """
  profile = tempfile.mkdtemp(prefix='chromium-profile-')
  output = os.path.abspath(output)
  try:
    result = subprocess.run(
        [chromium, '--headless', '--no-sandbox', '--disable-gpu',
         '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars',
         '--user-data-dir=' + profile, '--window-size=%d,%d' % (width, height),
         '--virtual-time-budget=%d' % budget_ms, '--screenshot=' + output,
         url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=300, check=False)
  finally:
    shutil.rmtree(profile, ignore_errors=True)
  if result.returncode != 0 or not os.path.isfile(output):
    raise TensorBoardError('Chromium failed (exit code %d): %s' %
                           (result.returncode, result.stdout[-2000:]))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--logdir', default='/tmp/retrain_logs',
                      help='The --summaries_dir of a retrain.py run.')
  parser.add_argument('--output', default='tensorboard_scalars.png',
                      help='The PNG file to write.')
  parser.add_argument('--dashboard', choices=('scalars', 'images'),
                      default='scalars',
                      help='scalars: accuracy and cross-entropy; images: the '
                      'confusion matrix of the final test.')
  parser.add_argument('--chromium', default=None,
                      help='Chromium executable (default: found on PATH).')
  parser.add_argument('--width', type=int, default=1400)
  parser.add_argument('--height', type=int, default=640)
  args = parser.parse_args(argv)
  chromium = args.chromium or find_chromium()
  if not chromium:
    print('ERROR: Chromium not found: install it (Debian: apt-get install '
          'chromium) or pass --chromium.', file=sys.stderr)
    return 1
  if not os.path.isdir(args.logdir):
    print('ERROR: --logdir %s is not a folder.' % args.logdir,
          file=sys.stderr)
    return 1
  try:
    with TensorBoard(args.logdir) as tensorboard:
      tensorboard.wait_for_scalars()
      if args.dashboard == 'scalars':
        # The classic Scalars dashboard, showing only these two charts.
        url = tensorboard.url + '#scalars&tagFilter=' + urllib.parse.quote(
            '^(accuracy|cross_entropy)')
      else:  # The final test's confusion matrix.
        url = tensorboard.url + '#images'
      screenshot(chromium, url, args.output, args.width, args.height)
  except TensorBoardError as e:
    print('ERROR: %s' % e, file=sys.stderr)
    return 1
  print('Wrote %s' % args.output)
  return 0


if __name__ == '__main__':
  sys.exit(main())
