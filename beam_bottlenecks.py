# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
r"""Computes retrain.py's bottleneck cache with Apache Beam, on many workers.

Bottlenecks are where big image sets spend their hours, and each image is
independent of the others. This tool writes exactly the cache files that
retrain.py writes (same paths, same text format, written atomically), with an
Apache Beam pipeline: locally on several processes with the DirectRunner, or on
Dataflow, Flink or Spark by Beam's own pipeline options. retrain.py run
afterwards with the same --image_dir, --bottleneck_dir, --tfhub_module and
--bottleneck_precision finds every bottleneck cached and goes straight to
training.

  python beam_bottlenecks.py --image_dir ~/flower_photos \
      --bottleneck_dir /tmp/bottleneck \
      --direct_num_workers=4 --direct_running_mode=multi_processing

The images are listed and split with retrain.py's own code on the launching
machine, which also skips the images whose cache file exists already (one
listing per class folder). The rest go through the pipeline: read each image
(Beam's FileSystems, so gs:// paths work), batch them, and on each worker load
the module once (DoFn.setup), decode and resize the images with retrain.py's
own ops, run the module once per batch and write each cache file. Images that
cannot be read or decoded are skipped, logged with the reason and counted
(Beam metric bottlenecks/bad_images); they never fail the pipeline.

Every option that is not one of this tool's flags is passed to Beam's
PipelineOptions (--runner, --direct_num_workers, --project, --temp_location,
--setup_file, --flink_master, ...). Workers import retrain.py (with
tf2_modules.py for a TF2 SavedModel module) and this file: locally they find
them by themselves; remote workers get them with --setup_file ./setup.py (see
docs/beam.md).
"""

import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
import time
import uuid

REPO_DIR = os.path.dirname(os.path.abspath(__file__))


def _stopped_while_loading(signum, frame):
  del frame
  os.write(_USER_STDERR, b'\n%s: stopped before anything was done.\n' % (
      b'Terminated' if signum == signal.SIGTERM else b'Interrupted'))
  os._exit(128 + signum)  # pylint: disable=protected-access


# Ctrl-C or SIGTERM while TensorFlow and Beam load (seconds): one line, no
# traceback (retrain.py hides stderr meanwhile); run_main takes over then.
if __name__ == '__main__':
  _USER_STDERR = os.dup(2)
  for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, _stopped_while_loading)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np

import retrain  # Loads TensorFlow in TF1 mode, quietly, as retrain.py does.
import tensorflow.compat.v1 as tf

import image_checks

try:
  import apache_beam as beam
  from apache_beam.io.filesystem import CompressionTypes
  from apache_beam.io.filesystems import FileSystems
  from apache_beam.metrics import Metrics
  from apache_beam.metrics.metric import MetricsFilter
  from apache_beam.options.pipeline_options import PipelineOptions
  from apache_beam.options.pipeline_options import StandardOptions
  _BEAM_IMPORT_ERROR = None
except ImportError as _error:  # Reported in one line by run_main.
  beam = None
  _BEAM_IMPORT_ERROR = _error
# pylint: enable=g-import-not-at-top,wrong-import-position

# Beam metrics: namespace and counter names.
METRICS_NAMESPACE = 'bottlenecks'
COMPUTED = 'computed'
BAD_IMAGES = 'bad_images'

# retrain.py's flags that this tool shares, with their names and defaults.
SHARED_FLAGS = ('image_dir', 'bottleneck_dir', 'tfhub_module',
                'testing_percentage', 'validation_percentage',
                'bottleneck_precision', 'image_size')

# One logger, on the launcher and on every worker.
_LOG = logging.getLogger('beam_bottlenecks')

# Worker log lines that only Beam's own machinery needs.
_WORKER_NOISE = ('No semi_persistent_directory found',
                 'Discarding unparseable args')

# The job server's start and stop, which Beam logs as warnings with the whole
# java command line.
_JOB_SERVER_NOISE = ('Really starting service', 'Really destroying service')

_DoFn = beam.DoFn if beam is not None else object


# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------


class ReadImage(_DoFn):
  """A JSON line [image path, cache path] -> (image path, cache path, bytes).

  Images that cannot be read are counted as bad and dropped.
  """

  def __init__(self):
    super().__init__()
    self._bad_images = Metrics.counter(METRICS_NAMESPACE, BAD_IMAGES)

  def setup(self):
    _quiet_about_hang_ups()

  def process(self, line):
    image_path, bottleneck_path = json.loads(line)
    try:
      with FileSystems.open(
          image_path,
          compression_type=CompressionTypes.UNCOMPRESSED) as image_file:
        image_data = image_file.read()
    except Exception as e:  # pylint: disable=broad-except
      # Whatever the file system says (gone since listing, no permission, a
      # network error after Beam's retries), one image never stops the rest.
      self._bad_images.inc()
      _LOG.warning('Skipping %s: cannot be read (%s)', image_path,
                   retrain.error_reason(e))
      return []
    return [(image_path, bottleneck_path, image_data)]


class ComputeBottlenecks(_DoFn):
  """Batches of (image path, cache path, bytes) -> cache files written.

  The module is loaded once per worker, in setup(): a TF1 graph with
  retrain.py's module graph and decoding ops, and one Session.
  """

  def __init__(self, module_handle, bottleneck_precision='float32',
               image_size=None):
    super().__init__()
    self._module_handle = module_handle
    self._bottleneck_precision = bottleneck_precision
    self._image_size = image_size
    self._computed = Metrics.counter(METRICS_NAMESPACE, COMPUTED)
    self._bad_images = Metrics.counter(METRICS_NAMESPACE, BAD_IMAGES)
    self._sess = None

  def setup(self):
    _quiet_about_hang_ups()
    # Importing retrain did this already in this process; it must hold in
    # every worker process, whatever imported TensorFlow first.
    tf.disable_v2_behavior()
    module_spec = retrain.load_module_spec(self._module_handle,
                                           image_size=self._image_size)
    self._sess, self._tensors = retrain.create_bottleneck_session(
        module_spec, self._bottleneck_precision)
    with self._sess.graph.as_default():
      # One batch of every image that a bundle's batch holds.
      self._decoding = retrain.add_batched_decoding(
          retrain.module_image_shape(module_spec), from_files=False)

  def process(self, batch):
    positions, images = [], []
    for indices, resized in retrain.decode_in_batches(
        self._sess, self._decoding, [data for _, _, data in batch]):
      positions.extend(int(index) for index in indices)
      images.extend(resized)
    decoded = set(positions)
    retried_positions, retried_images = retrain.retry_failed_images(
        self._sess, self._tensors,
        [(position, image_path, image_data) for position, (
            image_path, _, image_data) in enumerate(batch)
         if position not in decoded], self._skip, image_checks)
    positions += retried_positions
    images += retried_images
    if not images:
      return
    values = self._sess.run(self._tensors.bottleneck,
                            {self._tensors.resized_image: np.stack(images)})
    for position, bottleneck_values in zip(positions, values):
      retrain.write_bottleneck_file(batch[position][1], bottleneck_values)
      self._computed.inc()

  def _skip(self, unused_position, image_path, reason):
    self._bad_images.inc()
    _LOG.warning('Skipping %s: %s', image_path, reason)

  def teardown(self):
    if self._sess is not None:
      self._sess.close()
      self._sess = None


def build_pipeline(pipeline, work_list_path, module_handle,
                   bottleneck_precision, batch_size, image_size=None):
  """Adds the bottleneck transforms, reading the work list, to pipeline."""
  return (pipeline
          | 'ReadWorkList' >> beam.io.ReadFromText(work_list_path)
          | 'Spread' >> beam.Reshuffle()
          | 'ReadImages' >> beam.ParDo(ReadImage())
          | 'Batch' >> beam.BatchElements(min_batch_size=batch_size,
                                          max_batch_size=batch_size)
          | 'ComputeBottlenecks' >> beam.ParDo(
              ComputeBottlenecks(module_handle, bottleneck_precision,
                                 image_size)))


# ---------------------------------------------------------------------------
# Launcher
# ---------------------------------------------------------------------------


def build_parser():
  """This tool's flags: retrain.py's shared ones, same names and defaults."""
  parser = retrain.ArgumentParser(
      allow_abbrev=False,
      description=__doc__.split('\n')[0],
      epilog='Every other option goes to Apache Beam\'s PipelineOptions, '
      'e.g. --direct_num_workers=4 --direct_running_mode=multi_processing, or '
      '--runner DataflowRunner --project P --region R --temp_location gs://B/t '
      '--setup_file ./setup.py.')
  retrain_parser = retrain.build_parser()
  for action in retrain_parser._actions:  # pylint: disable=protected-access
    if action.dest in SHARED_FLAGS:
      parser._add_action(action)  # pylint: disable=protected-access
  parser.add_argument(
      '--batch_size', type=int, default=None,
      help="""Images per module run on a worker; by default retrain.py's
      caching batch size (about half a million input pixels).""")
  return parser


def check_flags(flags):
  """Checks this tool's flags with retrain.py's messages.

  Raises:
    retrain.RetrainError: with one sentence on what is wrong.
  """
  if not flags.image_dir:
    raise retrain.RetrainError('Must set flag --image_dir.')
  if not tf.gfile.Exists(flags.image_dir):
    raise retrain.RetrainError("Image directory '%s' not found." %
                               flags.image_dir)
  if not tf.gfile.IsDirectory(flags.image_dir):
    raise retrain.RetrainError('--image_dir %s is a file, not a folder of '
                               'class folders.' % flags.image_dir)
  retrain.check_split_and_image_size(flags)
  if flags.batch_size is not None and flags.batch_size <= 0:
    raise retrain.RetrainError('--batch_size must be a positive number, not '
                               '%s.' % flags.batch_size)
  retrain.check_writable('bottleneck_dir', flags.bottleneck_dir, True)


def pipeline_options(beam_args):
  """Beam's PipelineOptions from the arguments that are not this tool's.

  With the DirectRunner, an option that Beam does not know is a mistake (a
  misspelt --direct_num_workers would silently run on one process); other
  runners may take options of their own, so Beam's warning is left to them.

  Raises:
    retrain.RetrainError: for an unknown option with the DirectRunner.
  """
  options = PipelineOptions(beam_args)
  runner = options.view_as(StandardOptions).runner
  if runner is None or 'direct' in str(runner).lower():
    beam_logger = logging.getLogger('apache_beam.options.pipeline_options')
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # Its warning would say it twice.
    try:
      unknown = sorted(
          set(options.get_all_options(retain_unknown_options=True)) -
          set(options.get_all_options()))
    finally:
      beam_logger.setLevel(level)
    if unknown:
      raise retrain.RetrainError(
          'Unknown option --%s: neither a flag of this tool (see --help) nor '
          'an Apache Beam pipeline option.' % unknown[0])
  for name, runner_name in (('flink_job_server_jar', 'flink'),
                            ('spark_job_server_jar', 'spark')):
    jar = options.get_all_options().get(name)
    if jar and '://' not in jar and not os.path.isfile(jar):
      raise retrain.RetrainError(
          '--%s %s: no such file; tools/fetch_job_server.sh %s prints the '
          'path of one.' % (name, jar, runner_name))
  return options


def _existing_files(folder):
  """{file name: size} of the files directly in folder: one listing."""
  if retrain.is_local_path(folder):
    try:
      with os.scandir(folder) as entries:
        return {entry.name: entry.stat().st_size for entry in entries
                if entry.is_file()}
    except OSError:
      return {}
  pattern = re.sub(r'([*?\[])', r'[\1]', folder.rstrip('/')) + '/*'
  try:
    match = FileSystems.match([pattern])[0]
  except Exception:  # pylint: disable=broad-except
    return {}  # No such folder yet.
  return {FileSystems.split(metadata.path)[1]: metadata.size_in_bytes
          for metadata in match.metadata_list}


def list_work(image_lists, image_dir, bottleneck_dir, module_name,
              bottleneck_width):
  """Splits the images into those still to compute and those cached.

  A cache file counts as cached when it exists and is long enough to hold
  bottleneck_width values (files are written atomically, so a shorter one
  was damaged by something else). retrain.py still parses every file when it
  loads them and recomputes one that does not parse.

  Returns:
    ([(image path, cache path)] to compute, number already cached).
  """
  to_compute = []
  cached = 0
  minimum_size = 2 * bottleneck_width - 1  # 'd,d,...,d'
  listed = {}
  for label_name, label_lists in image_lists.items():
    for category in retrain.CATEGORIES:
      for index in range(len(label_lists[category])):
        bottleneck_path = retrain.get_bottleneck_path(
            image_lists, label_name, index, bottleneck_dir, category,
            module_name)
        folder, name = os.path.split(bottleneck_path)
        if folder not in listed:
          listed[folder] = _existing_files(folder)
        if listed[folder].get(name, -1) >= minimum_size:
          cached += 1
          continue
        to_compute.append((retrain.get_image_path(
            image_lists, label_name, index, image_dir, category),
                           bottleneck_path))
  return to_compute, cached


def _write_work_list(bottleneck_dir, to_compute):
  """Writes the work as JSON lines under bottleneck_dir; returns the path.

  Workers read it with ReadFromText: a list of millions of images would not
  fit into the pipeline's description (beam.Create embeds its data there, and
  Dataflow takes at most 10 MB), and bottleneck_dir is a place every worker
  can reach.
  """
  path = '%s/.beam_bottlenecks-work-%d-%s.jsonl' % (
      bottleneck_dir.rstrip('/'), os.getpid(), uuid.uuid4().hex[:8])
  with tf.gfile.GFile(path, 'w') as f:
    for entry in to_compute:
      f.write(json.dumps(entry) + '\n')
  return path


def _counter(result, name):
  """A counter's total over all steps from a pipeline result, or None."""
  try:
    results = result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(
            name))['counters']
  except Exception:  # pylint: disable=broad-except
    return None  # The runner does not report metrics.
  total = 0
  for metric in results:
    value = metric.committed
    if value is None:
      value = metric.attempted
    total += value or 0
  return total


class _WorkerLogLines(logging.Filter):
  """Shows local workers' log lines as plain lines, without Beam's noise.

  The DirectRunner's worker processes send their log records to the launcher,
  which logs each as one long 'Worker: severity ... message ...' line.
  """

  def filter(self, record):
    if record.msg != 'Worker: %s' or not record.args:
      return True
    try:
      # pylint: disable=g-import-not-at-top
      from google.protobuf import text_format
      from apache_beam.portability.api import beam_fn_api_pb2
      entry = text_format.Parse(record.args[0], beam_fn_api_pb2.LogEntry())
    except Exception:  # pylint: disable=broad-except
      return True
    if any(noise in entry.message for noise in _WORKER_NOISE):
      return False
    message = entry.message
    if entry.trace:
      message += '\n' + entry.trace
    _LOG.log(record.levelno, '%s', message)
    return False


def _is_hang_up(error):
  """Whether error is a gRPC stream that its peer cancelled."""
  import grpc  # pylint: disable=g-import-not-at-top
  return (isinstance(error, grpc.RpcError) and hasattr(error, 'code') and
          error.code() == grpc.StatusCode.CANCELLED)


class _JobServerLines(logging.Filter):
  """Drops Beam's lines on starting and stopping a portable runner's job
  server (Flink, Spark): its failures are logged and raised apart."""

  def filter(self, record):
    return not str(record.msg).startswith(_JOB_SERVER_NOISE)


class _DataPlaneHangUps(logging.Filter):
  """Drops Beam's report, with a traceback, that a worker's data channel was
  cancelled: a portable runner's job server (Flink, Spark) may hang up on a
  LOOPBACK worker, in this process or not, as a finished job ends. Had it hung up during the
  job, the job would fail, and say so."""

  def filter(self, record):
    return not (record.exc_info and _is_hang_up(record.exc_info[1]))


def _ignoring_hang_ups(excepthook):
  """threading.excepthook, quiet about the data channel's hang-up (see
  _DataPlaneHangUps), which its reader thread raises, and an in-process
  worker's thread again as it closes the channel."""
  def hook(args):
    if not _is_hang_up(args.exc_value):
      excepthook(args)
  hook.ignores_hang_ups = True
  return hook


def _ignoring_hang_up_at_exit(excepthook):
  """sys.excepthook, quiet about the same hang-up, which a worker's main
  thread raises again as it closes the data channel on its way out."""
  def hook(error_type, error, traceback):
    if not _is_hang_up(error):
      excepthook(error_type, error, traceback)
  hook.ignores_hang_ups = True
  return hook


def _configure_logging():
  """This tool's lines and worker lines as 'LEVEL:beam_bottlenecks:text'."""
  retrain.configure_logging('INFO')
  # Beam's PipelineOptions sets up the root logger (logging.basicConfig);
  # TensorFlow's logger has a handler of its own and would print twice.
  logging.basicConfig()
  logging.getLogger('tensorflow').propagate = False
  _LOG.setLevel(logging.INFO)
  for logger_name, filter_class in (
      ('apache_beam.runners.portability.local_job_service', _WorkerLogLines),
      ('apache_beam.utils.subprocess_server', _JobServerLines)):
    _add_filter(logger_name, filter_class)
  _quiet_about_hang_ups()


def _quiet_about_hang_ups():
  """In this process, a job server's hang-up on a finished job's data channel
  prints no traceback (see _DataPlaneHangUps); worker processes call it too."""
  _add_filter('apache_beam.runners.worker.data_plane', _DataPlaneHangUps)
  if not getattr(threading.excepthook, 'ignores_hang_ups', False):
    threading.excepthook = _ignoring_hang_ups(threading.excepthook)
  if not getattr(sys.excepthook, 'ignores_hang_ups', False):
    sys.excepthook = _ignoring_hang_up_at_exit(sys.excepthook)


def _add_filter(logger_name, filter_class):
  logger = logging.getLogger(logger_name)
  if not any(isinstance(f, filter_class) for f in logger.filters):
    logger.addFilter(filter_class())


def _let_local_workers_import(folder):
  """Local worker processes import retrain.py and this file from folder.

  They run this Python too: Beam starts the workers of a portable runner's
  LOOPBACK environment (--experiments=use_loopback_process_worker) as
  'python' from PATH, which may lack Beam and wait for ever.
  """
  paths = [path for path in os.environ.get('PYTHONPATH', '').split(os.pathsep)
           if path]
  if folder not in paths:
    os.environ['PYTHONPATH'] = os.pathsep.join([folder] + paths)
  python_dir = os.path.dirname(sys.executable)
  paths = os.environ.get('PATH', '').split(os.pathsep)
  if python_dir and paths[0] != python_dir:
    os.environ['PATH'] = os.pathsep.join([python_dir] + paths)


def run(flags, beam_args):
  """Lists, skips what is cached, runs the pipeline and prints a summary.

  Returns:
    A dict with 'images', 'cached', 'computed', 'bad_images' (None where the
    runner reports no metrics) and 'seconds' (of the pipeline).

  Raises:
    retrain.RetrainError: for a mistake of the user's.
  """
  check_flags(flags)
  options = pipeline_options(beam_args)
  module_spec = retrain.load_module_spec(flags.tfhub_module,
                                         image_size=flags.image_size)
  height, width, _ = retrain.module_image_shape(module_spec)
  bottleneck_width = module_spec.feature_width
  image_dir, bottleneck_dir = flags.image_dir, flags.bottleneck_dir
  if retrain.is_local_path(image_dir):
    image_dir = os.path.abspath(image_dir)
  if retrain.is_local_path(bottleneck_dir):
    bottleneck_dir = os.path.abspath(bottleneck_dir)
  # The cache file names carry --tfhub_module as given, as in retrain.py;
  # workers load a relative local module folder by its absolute path.
  module_name = retrain.module_cache_name(flags.tfhub_module,
                                          flags.bottleneck_precision,
                                          module_spec)
  module_handle = flags.tfhub_module
  if not (retrain.is_module_url(module_handle) or
          module_handle.startswith('file://')):
    module_handle = os.path.abspath(module_handle)

  image_lists = retrain.create_image_lists(
      image_dir, flags.testing_percentage, flags.validation_percentage)
  if not image_lists:
    raise retrain.RetrainError('No valid folders of images found at ' +
                               flags.image_dir)
  to_compute, cached = list_work(image_lists, image_dir, bottleneck_dir,
                                 module_name, bottleneck_width)
  summary = {'images': len(to_compute) + cached, 'cached': cached,
             'computed': 0, 'bad_images': 0, 'seconds': 0.0}
  _LOG.info('%d images in %d classes: %d bottlenecks already cached, %d to '
            'compute.', summary['images'], len(image_lists), cached,
            len(to_compute))
  if not to_compute:
    return summary

  batch_size = flags.batch_size or retrain.default_caching_batch_size(
      height, width)
  tf.gfile.MakeDirs(bottleneck_dir)
  for folder in sorted(set(os.path.dirname(path) for _, path in to_compute)):
    tf.gfile.MakeDirs(folder)
  _let_local_workers_import(REPO_DIR)
  work_list_path = _write_work_list(bottleneck_dir, to_compute)
  try:
    start = time.time()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, work_list_path, module_handle,
                   flags.bottleneck_precision, batch_size, flags.image_size)
    sigint_handler = signal.getsignal(signal.SIGINT)
    result = pipeline.run()
    if signal.getsignal(signal.SIGINT) is not sigint_handler:
      # A portable runner's job server (Flink, Spark) took Ctrl-C to stop
      # itself at once, under its running threads; it stops at exit instead.
      signal.signal(signal.SIGINT, sigint_handler)
    result.wait_until_finish()
    summary['seconds'] = time.time() - start
  finally:
    if tf.gfile.Exists(work_list_path):
      tf.gfile.Remove(work_list_path)
  summary['computed'] = _counter(result, COMPUTED)
  summary['bad_images'] = _counter(result, BAD_IMAGES)
  return summary


class _Terminated(BaseException):
  """Raised in the main thread when SIGTERM arrives."""


def _stop_quietly(signum, frame):
  """Ctrl-C or SIGTERM: one line at the end, not every thread's traceback.

  Raises KeyboardInterrupt (SIGINT) or _Terminated (SIGTERM) in the main
  thread; the job server of a portable runner (Flink, Spark) is stopped when
  the process exits. The runner's own threads then fail on closed channels,
  which is no news.
  """
  del frame
  threading.excepthook = lambda args: None
  logging.getLogger('apache_beam').setLevel(logging.CRITICAL)
  if signum == signal.SIGTERM:
    raise _Terminated()
  raise KeyboardInterrupt()


def format_summary(summary):
  def count(value):
    return 'unknown' if value is None else str(value)
  line = ('Bottlenecks: %s computed, %s skipped (bad images), %d already '
          'cached, of %d images' % (count(summary['computed']),
                                    count(summary['bad_images']),
                                    summary['cached'], summary['images']))
  if summary['computed'] and summary['seconds']:
    line += ' (%.1f s, %.1f images/s)' % (
        summary['seconds'], summary['computed'] / summary['seconds'])
  elif not summary['images'] - summary['cached']:
    line += ': nothing to do'
  return line + '.'


def _next_command(flags):
  args = ['python', 'retrain.py', '--image_dir', flags.image_dir,
          '--bottleneck_dir', flags.bottleneck_dir,
          '--tfhub_module', flags.tfhub_module]
  if flags.bottleneck_precision != 'float32':
    args += ['--bottleneck_precision', flags.bottleneck_precision]
  if flags.image_size is not None:
    args += ['--image_size', str(flags.image_size)]
  return ' '.join(shlex.quote(arg) for arg in args)


def run_main(argv=None):
  """Parses the command line and runs; returns the process exit code.

  Args:
    argv: Command line arguments without the program name; sys.argv[1:] if
      None.

  Returns:
    0 on success (also when bad images were skipped), 1 for a user mistake or
    a failed pipeline, 130 after Ctrl-C.
  """
  flags, beam_args = build_parser().parse_known_args(argv)
  if beam is None:
    sys.stderr.write(
        'ERROR: Apache Beam is not installed (%s): pip install -r '
        'requirements.txt -r requirements-beam.txt\n' % _BEAM_IMPORT_ERROR)
    return 1
  _configure_logging()
  signal.signal(signal.SIGINT, _stop_quietly)
  signal.signal(signal.SIGTERM, _stop_quietly)
  try:
    summary = run(flags, beam_args)
  except retrain.RetrainError as e:
    sys.stderr.write('ERROR: %s\n' % e)
    return 1
  except KeyboardInterrupt:
    sys.stderr.write('\nInterrupted: the bottleneck files written so far are '
                     'kept; run the same command again to continue.\n')
    return 130
  except _Terminated:
    sys.stderr.write('Terminated: the bottleneck files written so far are '
                     'kept; run the same command again to continue.\n')
    return 143
  except Exception as e:  # pylint: disable=broad-except
    # A failed pipeline: the runner's message holds the workers' details.
    sys.stderr.write('ERROR: The pipeline failed: %s\n' % str(e).strip())
    return 1
  print(format_summary(summary))
  if summary['computed'] or summary['cached']:
    print('Next: ' + _next_command(flags))
  return 0


if __name__ == '__main__':
  # The pipeline's functions are pickled by reference to this module, which
  # workers import (with retrain.py) instead of a copy of __main__.
  import beam_bottlenecks  # pylint: disable=g-import-not-at-top,import-self
  sys.exit(beam_bottlenecks.run_main())
