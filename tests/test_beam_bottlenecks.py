"""beam_bottlenecks.py: retrain.py's bottleneck cache computed by an Apache Beam pipeline."""

import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

pytest.importorskip('apache_beam')

# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow.compat.v1 as tf

import beam_bottlenecks
import retrain
from conftest import (REPO_DIR, SAMPLE_DIR,
                      assert_retrain_finds_the_cache_complete,
                      assert_same_cache_values, beam_summary_line,
                      cache_files, retrain_cache, run_tool)
# pylint: enable=g-import-not-at-top,wrong-import-position

tf.disable_v2_behavior()

LOCAL_WORKERS = ['--direct_num_workers=2',
                 '--direct_running_mode=multi_processing']


@pytest.fixture(autouse=True)
def _keep_process_state(monkeypatch):
  """In-process runs set up logging and PYTHONPATH as the command line does;
  the other tests' process state stays as it was."""
  monkeypatch.setenv('PYTHONPATH', os.environ.get('PYTHONPATH', ''))
  tf_logger = logging.getLogger('tensorflow')
  saved = (tf_logger.propagate, tf_logger.level, list(tf_logger.filters))
  yield
  tf_logger.propagate, level, filters = saved
  tf_logger.setLevel(level)
  tf_logger.filters[:] = filters


@pytest.fixture(scope='module')
def pipeline_run(sample_module, tmp_path_factory):
  """The sample through the pipeline on two local worker processes."""
  out_dir = str(tmp_path_factory.mktemp('beam'))
  bottleneck_dir = os.path.join(out_dir, 'bottleneck')
  args = ['--image_dir', SAMPLE_DIR, '--bottleneck_dir', bottleneck_dir,
          '--tfhub_module', sample_module, '--batch_size', '24'] + LOCAL_WORKERS
  result = run_tool('beam_bottlenecks.py', args)
  return args, bottleneck_dir, result


def test_pipeline_writes_exactly_retrainscache_files(pipeline_run,
                                                      sample_module, tmp_path):
  _, bottleneck_dir, result = pipeline_run
  assert result.returncode == 0, result.stdout[-3000:]
  assert beam_summary_line(result.stdout).startswith(
      'Bottlenecks: 250 computed, 0 skipped (bad images), 0 already cached, '
      'of 250 images (')
  assert 'Traceback' not in result.stdout
  # Nothing but this tool's lines: neither Beam's raw 'Worker: ' lines nor the
  # workers' own log lines, nor a warning of Beam's at import.
  assert [line for line in result.stdout.splitlines() if not line.startswith((
      'INFO:tensorflow:Looking for images in', 'INFO:beam_bottlenecks:',
      'Bottlenecks: ', 'Next: '))] == []
  reference = retrain_cache(sample_module, SAMPLE_DIR,
                            str(tmp_path / 'reference'))
  assert len(reference) == 250
  # Same paths (no temporary or work-list file left behind), same values.
  assert_same_cache_values(cache_files(bottleneck_dir), reference)


def test_retrain_then_finds_every_bottleneck_cached(pipeline_run,
                                                    sample_module, tmp_path):
  _, bottleneck_dir, _ = pipeline_run
  assert_retrain_finds_the_cache_complete(sample_module, bottleneck_dir,
                                          str(tmp_path))


def test_second_run_does_no_work(pipeline_run, capsys):
  args, bottleneck_dir, _ = pipeline_run
  before = {path: os.stat(os.path.join(bottleneck_dir, path)).st_mtime_ns
            for path in cache_files(bottleneck_dir)}
  assert beam_bottlenecks.run_main(args) == 0
  output = capsys.readouterr().out
  assert beam_summary_line(output) == (
      'Bottlenecks: 0 computed, 0 skipped (bad images), 250 already cached, '
      'of 250 images: nothing to do.')
  after = {path: os.stat(os.path.join(bottleneck_dir, path)).st_mtime_ns
           for path in cache_files(bottleneck_dir)}
  assert after == before


def test_bad_images_are_skipped_counted_and_logged(sample_module,
                                                   color_image_dir, tmp_path):
  random_bytes = os.path.join(color_image_dir, 'red', 'random.jpg')
  with open(random_bytes, 'wb') as f:
    f.write(np.random.RandomState(0).bytes(4000))
  truncated = os.path.join(color_image_dir, 'blue', 'truncated.jpg')
  with open(os.path.join(color_image_dir, 'blue', 'image_01.jpg'), 'rb') as f:
    jpeg = f.read()
  with open(truncated, 'wb') as f:
    f.write(jpeg[:len(jpeg) // 3])
  empty = os.path.join(color_image_dir, 'Green_Leaves', 'empty.png')
  open(empty, 'wb').close()
  bottleneck_dir = str(tmp_path / 'bottleneck')
  result = run_tool('beam_bottlenecks.py', [
      '--image_dir', color_image_dir, '--bottleneck_dir', bottleneck_dir,
      '--tfhub_module', sample_module] + LOCAL_WORKERS)
  assert result.returncode == 0, result.stdout[-3000:]
  assert beam_summary_line(result.stdout).startswith(
      'Bottlenecks: 72 computed, 3 skipped (bad images), 0 already cached, '
      'of 75 images (')
  for path, reason in ((random_bytes, 'it is not a JPEG, PNG or GIF image'),
                       (truncated, 'it is a damaged or truncated image'),
                       (empty, 'the file is empty')):
    assert 'WARNING:beam_bottlenecks:Skipping %s: %s' % (
        path, reason) in result.stdout
  assert 'Traceback' not in result.stdout
  written = cache_files(bottleneck_dir)
  assert len(written) == 72
  assert not [path for path in written if re.search(
      r'(random|truncated|empty)\.', path)]


def test_in_process_runner_reports_the_same_counts(sample_module,
                                                   color_image_dir, tmp_path,
                                                   caplog):
  bad = os.path.join(color_image_dir, 'red', 'broken.jpg')
  with open(bad, 'wb') as f:
    f.write(b'not an image')
  flags, beam_args = beam_bottlenecks.build_parser().parse_known_args([
      '--image_dir', color_image_dir, '--bottleneck_dir',
      str(tmp_path / 'bn'), '--tfhub_module', sample_module, '--batch_size',
      '10'])
  summary = beam_bottlenecks.run(flags, beam_args)
  assert {key: summary[key] for key in ('images', 'cached', 'computed',
                                        'bad_images')} == {
                                            'images': 73, 'cached': 0,
                                            'computed': 72, 'bad_images': 1}
  assert any(record.getMessage().startswith(
      'Skipping %s: it is not a JPEG, PNG or GIF image' % bad)
             for record in caplog.records)


@pytest.mark.parametrize('set_up', [
    beam_bottlenecks._configure_logging,  # The launching process.
    lambda: beam_bottlenecks.ReadImage().setup()],  # A worker process.
    ids=['launcher', 'worker'])
def test_job_server_hanging_up_as_the_job_ends_shows_no_traceback(
    set_up, monkeypatch, caplog):
  """Flink's and Spark's job servers may hang up on a LOOPBACK worker's data
  channel as a finished job ends: Beam logs it with a traceback, its reader
  thread raises, and the worker's main thread raises it again on its way
  out. None of it reaches the user, from the launching process or a worker
  process; other errors still do."""
  import grpc  # pylint: disable=g-import-not-at-top

  class HangUp(grpc.RpcError):

    def code(self):
      return grpc.StatusCode.CANCELLED

  shown = []  # What reaches the exception hooks that print.
  monkeypatch.setattr(threading, 'excepthook',
                      lambda args: shown.append(args.exc_value))
  monkeypatch.setattr(sys, 'excepthook',
                      lambda error_type, error, traceback: shown.append(error))
  data_plane = logging.getLogger('apache_beam.runners.worker.data_plane')
  monkeypatch.setattr(data_plane, 'filters', [])
  set_up()
  for error in (HangUp(), ValueError('real trouble')):
    try:
      raise error
    except Exception:  # pylint: disable=broad-except
      data_plane.exception('Failed to read inputs in the data plane.')

    def read(error=error):
      raise error

    # The data channel's reader, then an in-process worker's own thread as
    # it closes the channel.
    for name in ('read_grpc_client_inputs', 'run_worker_3-1'):
      thread = threading.Thread(target=read, name=name)
      thread.start()
      thread.join()
    # A worker's main thread raises it again as it closes the channel.
    sys.excepthook(type(error), error, None)
  reported = [record.exc_info[1] for record in caplog.records
              if record.name == data_plane.name]
  assert [type(error) for error in reported] == [ValueError]
  assert [type(error) for error in shown] == [ValueError] * 3


def test_bfloat16_values_are_cached_apart(sample_module, color_image_dir,
                                          tmp_path):
  bottleneck_dir = str(tmp_path / 'bn')
  flags, beam_args = beam_bottlenecks.build_parser().parse_known_args([
      '--image_dir', color_image_dir, '--bottleneck_dir', bottleneck_dir,
      '--tfhub_module', sample_module, '--bottleneck_precision', 'bfloat16'])
  summary = beam_bottlenecks.run(flags, beam_args)
  assert summary['computed'] == 72
  suffix = '_%s.txt' % retrain._module_cache_suffix(  # pylint: disable=protected-access
      sample_module + '~bfloat16')
  assert all(path.endswith(suffix) for path in cache_files(bottleneck_dir))


def test_variable_size_tf2_module_takes_image_size(tf2_modules,
                                                   color_image_dir, tmp_path):
  module = tf2_modules['variable_size']
  bottleneck_dir = str(tmp_path / 'bn')
  args = ['--image_dir', color_image_dir, '--bottleneck_dir', bottleneck_dir,
          '--tfhub_module', module]
  with pytest.raises(retrain.RetrainError, match='pass the size it was '
                     'trained for with --image_size'):
    beam_bottlenecks.run(*beam_bottlenecks.build_parser().parse_known_args(
        args))
  summary = beam_bottlenecks.run(
      *beam_bottlenecks.build_parser().parse_known_args(
          args + ['--image_size', '48']))
  assert summary['computed'] == 72
  written = cache_files(bottleneck_dir)
  # Named as retrain.py names them for that size, with its values.
  suffix = '_%s.txt' % retrain._module_cache_suffix(  # pylint: disable=protected-access
      module + '@48x48')
  assert len(written) == 72 and all(path.endswith(suffix) for path in written)
  reference = retrain_cache(module, color_image_dir, str(tmp_path / 'reference'),
                            image_size=48)
  assert_same_cache_values(written, reference)
  result = run_tool('beam_bottlenecks.py', args + ['--image_size', '48'])
  assert result.returncode == 0, result.stdout[-3000:]
  assert 'already cached' in beam_summary_line(result.stdout)
  assert '--image_size 48' in result.stdout  # In the suggested command.


def test_existing_cache_files_are_skipped_unless_too_short(color_image_dir,
                                                           tmp_path):
  image_lists = retrain.create_image_lists(color_image_dir, 10, 10)
  bottleneck_dir = str(tmp_path / 'bn')
  paths = {}
  for label_name, label_lists in image_lists.items():
    for category in retrain.CATEGORIES:
      for index, name in enumerate(label_lists[category]):
        paths[(label_lists['dir'], name)] = retrain.get_bottleneck_path(
            image_lists, label_name, index, bottleneck_dir, category, 'm')
  good, short, empty = [paths[('red', 'image_%02d.jpg' % i)]
                        for i in (1, 2, 3)]
  os.makedirs(os.path.dirname(good))
  for path, text in ((good, '0.5,1.0,0.0'), (short, '0.5'), (empty, '')):
    with open(path, 'w') as f:
      f.write(text)
  to_compute, cached = beam_bottlenecks.list_work(
      image_lists, color_image_dir, bottleneck_dir, 'm', bottleneck_width=3)
  assert cached == 1
  assert len(to_compute) == 71
  assert good not in [path for _, path in to_compute]
  assert (os.path.join(color_image_dir, 'red', 'image_02.jpg'),
          short) in to_compute


def test_flags_are_retrains_with_the_same_defaults():
  ours = vars(beam_bottlenecks.build_parser().parse_args([]))
  theirs = vars(retrain.build_parser().parse_args([]))
  for name in beam_bottlenecks.SHARED_FLAGS:
    assert ours[name] == theirs[name], name
  assert ours['tfhub_module'] == (
      'https://tfhub.dev/google/imagenet/inception_v3/feature_vector/3')
  assert ours['bottleneck_dir'] == '/tmp/bottleneck'
  flags, beam_args = beam_bottlenecks.build_parser().parse_known_args([
      '--image_dir', 'x', '--runner', 'DataflowRunner', '--project', 'p'])
  assert flags.image_dir == 'x'
  assert beam_args == ['--runner', 'DataflowRunner', '--project', 'p']


@pytest.mark.parametrize('args, message', [
    ([], 'Must set flag --image_dir.'),
    (['--image_dir', '/no/such/folder'],
     "Image directory '/no/such/folder' not found."),
    (['--image_dir', SAMPLE_DIR, '--tfhub_module', '/no/such/module'],
     '--tfhub_module /no/such/module does not exist'),
    (['--image_dir', SAMPLE_DIR, '--testing_percentage', '100'],
     '--testing_percentage must be in [0, 100), not 100.'),
    (['--image_dir', SAMPLE_DIR, '--batch_size', '0'],
     '--batch_size must be a positive number, not 0.'),
    (['--image_dir', SAMPLE_DIR, '--direct_num_worker=2'],
     'Unknown option --direct_num_worker: neither a flag of this tool'),
])
def test_mistakes_get_one_line_errors(args, message, sample_module, tmp_path,
                                      capsys):
  if '--tfhub_module' not in args:
    args = args + ['--tfhub_module', sample_module]
  args = args + ['--bottleneck_dir', str(tmp_path / 'bn')]
  assert beam_bottlenecks.run_main(args) == 1
  captured = capsys.readouterr()
  assert captured.err.startswith('ERROR: ' + message), captured.err
  assert captured.err.count('\n') == 1
  assert not os.path.exists(str(tmp_path / 'bn'))


@pytest.mark.parametrize('mistake', ['missing_image_dir', 'misspelt_option'])
def test_command_line_mistake_is_one_line_without_traceback(mistake, tmp_path,
                                                            sample_module):
  if mistake == 'missing_image_dir':
    args = ['--image_dir', str(tmp_path / 'missing')]
    expected = "ERROR: Image directory '%s' not found." % (tmp_path / 'missing')
  else:
    args = ['--image_dir', SAMPLE_DIR, '--direct_num_worker=2']
    expected = ('ERROR: Unknown option --direct_num_worker: neither a flag of '
                'this tool (see --help) nor an Apache Beam pipeline option.')
  result = run_tool('beam_bottlenecks.py', args + [
      '--tfhub_module', sample_module,
      '--bottleneck_dir', str(tmp_path / 'bn')])
  assert result.returncode == 1
  assert result.stdout.strip().splitlines()[-1] == expected
  # Nothing but the error (and retrain.py's folder listing lines) is printed.
  assert not [line for line in result.stdout.strip().splitlines()[:-1]
              if not line.startswith("INFO:tensorflow:Looking for images in")]


def test_setup_py_ships_the_worker_code(tmp_path):
  """--setup_file ./setup.py: the package Beam builds and workers install."""
  from apache_beam.runners.portability.stager import Stager  # pylint: disable=g-import-not-at-top
  source = tmp_path / 'source'
  source.mkdir()
  for name in ('setup.py', 'retrain.py', 'tf2_modules.py',
               'beam_bottlenecks.py', 'README.md'):
    shutil.copy(os.path.join(REPO_DIR, name), str(source / name))
  package = Stager._build_setup_package(  # pylint: disable=protected-access
      str(source / 'setup.py'), str(tmp_path))
  with tarfile.open(package) as tar:
    names = {os.path.basename(name) for name in tar.getnames()}
  assert {'retrain.py', 'tf2_modules.py', 'beam_bottlenecks.py'} <= names
  # The workers' TensorFlow, tensorflow-hub (with the setuptools it imports)
  # and numpy are requirements.txt's.
  with open(os.path.join(REPO_DIR, 'requirements.txt')) as f:
    pins = {re.split('[=<>]', line)[0]: line.strip() for line in f
            if re.match(r'^(tensorflow|tensorflow-hub|setuptools|numpy)\b',
                        line)}
  with open(os.path.join(REPO_DIR, 'setup.py')) as f:
    setup_text = f.read()
  assert len(pins) == 4
  for pin in pins.values():
    assert "'%s'" % pin in setup_text
  # A worker installs it (here offline, without its dependencies).
  target = tmp_path / 'site'
  subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet',
                  '--no-deps', '--no-index', '--no-build-isolation',
                  '--disable-pip-version-check', '--target', str(target),
                  package], check=True, capture_output=True)
  assert (target / 'retrain.py').exists()
  assert (target / 'beam_bottlenecks.py').exists()
  assert (target / 'tf2_modules.py').exists()
