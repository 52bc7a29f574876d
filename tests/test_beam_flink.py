"""beam_bottlenecks.py on real engines: Beam's portable Flink and Spark runners.

The job servers are the real ones, fetched from Maven Central by
tools/fetch_job_server.sh into its cache folder (once; later runs reuse it),
and run an embedded Flink cluster ([local]) or Spark (local[*]) with the
Python workers in LOOPBACK environments. They need Java and Maven: without
them these tests are skipped, except in CI (CI=true), where they fail.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip('apache_beam')

# pylint: disable=g-import-not-at-top,wrong-import-position
from conftest import (REPO_DIR, SAMPLE_DIR,
                      assert_retrain_finds_the_cache_complete,
                      assert_same_cache_values, beam_summary_line,
                      cache_files, retrain_cache, run_tool)
# pylint: enable=g-import-not-at-top,wrong-import-position

FETCH = os.path.join(REPO_DIR, 'tools', 'fetch_job_server.sh')
CORRUPT_IMAGE = os.path.join('roses', 'corrupt_download.jpg')
# A run on the sample: start-up (job server, embedded cluster, workers loading
# TensorFlow and the module) and 250 images take well under a minute here.
RUN_TIMEOUT = 300
# How long the job server may outlive the command that started it.
JAVA_EXIT_SECONDS = 30


def _needs_java_and_maven():
  missing = [tool for tool in ('java', 'mvn') if shutil.which(tool) is None]
  if not missing:
    return
  message = ('%s not found: the Flink and Spark job servers need Java 11+ and '
             'Maven (apt-get install openjdk-17-jre-headless maven)' %
             ' and '.join(missing))
  if os.environ.get('CI'):
    pytest.fail(message)
  pytest.skip(message)


def _job_server_jar(runner):
  """tools/fetch_job_server.sh RUNNER: the jar (Maven fetches it the first time)."""
  _needs_java_and_maven()
  result = subprocess.run(['bash', FETCH, runner], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=900,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  jar = result.stdout.strip()
  assert os.path.isfile(jar), result.stdout + result.stderr
  return jar


@pytest.fixture(scope='module')
def flink_jar():
  return _job_server_jar('flink')


@pytest.fixture(scope='module')
def spark_jar():
  return _job_server_jar('spark')


# What Beam's worker pool runs as a LOOPBACK process worker.
SDK_WORKER = b'from apache_beam.runners.worker.sdk_worker import SdkHarness'

# Marks the processes that this test process's runs start (job servers and
# workers inherit it), so that another suite's on the machine do not count.
RUN_MARK = 'RETRAIN_BEAM_TEST_RUN=%d' % os.getpid()
os.environ['RETRAIN_BEAM_TEST_RUN'] = str(os.getpid())


def _java_processes(jar):
  """Ids of this test process's running processes whose command line names
  jar, and of its Python worker processes of LOOPBACK environments."""
  found = []
  for pid in os.listdir('/proc'):
    if not pid.isdigit():
      continue
    try:
      with open('/proc/%s/cmdline' % pid, 'rb') as f:
        args = f.read().split(b'\0')
      with open('/proc/%s/environ' % pid, 'rb') as f:
        if os.fsencode(RUN_MARK) not in f.read().split(b'\0'):
          continue
    except OSError:
      continue
    if os.fsencode(jar) in args or any(SDK_WORKER in arg for arg in args):
      found.append(int(pid))
  return found


def _wait_for_no_java(jar, seconds=JAVA_EXIT_SECONDS):
  """Waits until no job server of jar (nor Python worker) runs; returns the
  ids of those left."""
  deadline = time.time() + seconds
  while _java_processes(jar) and time.time() < deadline:
    time.sleep(0.5)
  return _java_processes(jar)


def _mtimes(bottleneck_dir):
  return {path: os.stat(os.path.join(bottleneck_dir, path)).st_mtime_ns
          for path in cache_files(bottleneck_dir)}


@pytest.fixture(scope='module')
def reference_cache(sample_module, tmp_path_factory):
  """{path: text} of what retrain.py's own caching writes for the sample."""
  files = retrain_cache(sample_module, SAMPLE_DIR,
                        str(tmp_path_factory.mktemp('reference') / 'bottleneck'))
  assert len(files) == 250
  return files


def _sample_with_corrupt_image(root):
  """The sample's 250 photos plus one corrupt download among the roses."""
  image_dir = os.path.join(root, 'images')
  shutil.copytree(SAMPLE_DIR, image_dir,
                  ignore=shutil.ignore_patterns('*.txt'))
  with open(os.path.join(image_dir, CORRUPT_IMAGE), 'wb') as f:
    f.write(b'<html><body>503 Service Unavailable</body></html>\n')
  return image_dir


def _assert_same_as_retrain(bottleneck_dir, reference):
  # Same paths (no temporary, work-list or bad image's file), same values.
  assert_same_cache_values(cache_files(bottleneck_dir), reference)


def _beam_args(image_dir, bottleneck_dir, module):
  return ['--image_dir', image_dir, '--bottleneck_dir', bottleneck_dir,
          '--tfhub_module', module, '--batch_size', '24']


def _flink_args(jar):
  """docs/beam.md's Flink command: an embedded Flink cluster of 2 task slots,
  feeding 2 Python worker processes that this run starts and stops."""
  return ['--runner=FlinkRunner', '--flink_master=[local]',
          '--flink_job_server_jar=' + jar, '--environment_type=LOOPBACK',
          '--experiments=use_loopback_process_worker', '--parallelism=2',
          '--sdk_worker_parallelism=2']


@pytest.fixture(scope='module')
def flink_run(flink_jar, sample_module, tmp_path_factory):
  """The sample plus a corrupt image through the pipeline on Flink."""
  root = str(tmp_path_factory.mktemp('flink'))
  image_dir = _sample_with_corrupt_image(root)
  bottleneck_dir = os.path.join(root, 'bottleneck')
  args = _beam_args(image_dir, bottleneck_dir, sample_module) + _flink_args(
      flink_jar)
  start = time.time()
  result = run_tool('beam_bottlenecks.py', args, timeout=RUN_TIMEOUT)
  seconds = time.time() - start
  left = _wait_for_no_java(flink_jar)
  return {'args': args, 'jar': flink_jar, 'image_dir': image_dir,
          'bottleneck_dir': bottleneck_dir, 'result': result,
          'seconds': seconds, 'java_left': left}


def test_flink_writes_exactly_retrainscache_files(flink_run,
                                                   reference_cache):
  result = flink_run['result']
  assert result.returncode == 0, result.stdout[-3000:]
  # 250 and 1 are Flink's metrics (bottlenecks/computed and bad_images): only
  # the workers know which images failed.
  assert beam_summary_line(result.stdout).startswith(
      'Bottlenecks: 250 computed, 1 skipped (bad images), 0 already cached, '
      'of 251 images (')
  assert 'Traceback' not in result.stdout
  # Nor Beam's lines on starting and stopping the job server, its java command.
  assert flink_run['jar'] not in result.stdout
  _assert_same_as_retrain(flink_run['bottleneck_dir'], reference_cache)


def test_flink_skips_and_reports_the_bad_image(flink_run):
  output = flink_run['result'].stdout
  corrupt = os.path.join(flink_run['image_dir'], CORRUPT_IMAGE)
  # Worker processes log through Beam's worker pool, without our prefix.
  assert re.search(r'^(WARNING:beam_bottlenecks:)?Skipping %s: it is not a '
                   r'JPEG, PNG or GIF image' % re.escape(corrupt), output,
                   re.M), output[-3000:]
  assert not [path for path in cache_files(flink_run['bottleneck_dir'])
              if 'corrupt' in path]


def test_flink_job_server_is_gone_after_the_run(flink_run):
  assert flink_run['java_left'] == []
  assert flink_run['seconds'] < RUN_TIMEOUT


def test_flink_second_run_retries_only_the_bad_image(flink_run, flink_jar):
  """Bad images are not remembered (as in retrain.py): a second run looks at
  the corrupt one again, and at nothing else."""
  before = _mtimes(flink_run['bottleneck_dir'])
  result = run_tool('beam_bottlenecks.py', flink_run['args'],
                    timeout=RUN_TIMEOUT)
  assert result.returncode == 0, result.stdout[-3000:]
  assert beam_summary_line(result.stdout).startswith(
      'Bottlenecks: 0 computed, 1 skipped (bad images), 250 already cached, '
      'of 251 images')
  assert '250 bottlenecks already cached, 1 to compute.' in result.stdout
  assert _mtimes(flink_run['bottleneck_dir']) == before
  assert _wait_for_no_java(flink_jar) == []


def test_flink_second_run_without_the_bad_image_does_nothing(flink_run,
                                                             flink_jar,
                                                             sample_module):
  """The cache file names depend on class folder and image name alone, so the
  sample itself finds its 250 bottlenecks in the cache that Flink wrote."""
  bottleneck_dir = flink_run['bottleneck_dir']
  before = _mtimes(bottleneck_dir)
  result = run_tool('beam_bottlenecks.py', _beam_args(
      SAMPLE_DIR, bottleneck_dir, sample_module) + _flink_args(flink_jar),
                    timeout=RUN_TIMEOUT)
  assert result.returncode == 0, result.stdout[-3000:]
  assert beam_summary_line(result.stdout) == (
      'Bottlenecks: 0 computed, 0 skipped (bad images), 250 already cached, '
      'of 250 images: nothing to do.')
  assert _mtimes(bottleneck_dir) == before


def test_retrain_then_computes_nothing(flink_run, sample_module, tmp_path):
  bottleneck_dir = flink_run['bottleneck_dir']
  before = _mtimes(bottleneck_dir)
  assert_retrain_finds_the_cache_complete(sample_module, bottleneck_dir,
                                          str(tmp_path))
  assert _mtimes(bottleneck_dir) == before


@pytest.mark.parametrize('stop', ['SIGINT', 'SIGTERM', 'SIGKILL'])
def test_flink_job_server_stops_with_the_command(stop, flink_jar,
                                                 sample_module, tmp_path):
  """Ctrl-C and SIGTERM stop cleanly (130, 143); after kill -9 the job server
  notices that its parent is gone and stops too."""
  image_dir = _sample_with_corrupt_image(str(tmp_path))
  bottleneck_dir = str(tmp_path / 'bottleneck')
  process = subprocess.Popen(
      [sys.executable, os.path.join(REPO_DIR, 'beam_bottlenecks.py')] +
      _beam_args(image_dir, bottleneck_dir, sample_module) +
      _flink_args(flink_jar), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  try:
    deadline = time.time() + 120
    while not _java_processes(flink_jar) and time.time() < deadline:
      assert process.poll() is None, process.communicate()[0][-3000:]
      time.sleep(0.2)
    assert _java_processes(flink_jar), 'the job server never started'
    time.sleep(3)  # The job is being submitted or running.
    start = time.time()
    process.send_signal(getattr(signal, stop))
    output = process.communicate(timeout=60)[0]
    seconds = time.time() - start
  finally:
    if process.poll() is None:
      process.kill()
      process.communicate()
  assert _wait_for_no_java(flink_jar) == []
  if stop == 'SIGKILL':
    return
  assert (process.returncode, seconds < 30) == (
      {'SIGINT': 130, 'SIGTERM': 143}[stop], True), output[-3000:]
  assert output.rstrip().splitlines()[-1] == (
      '%s: the bottleneck files written so far are kept; run the same command '
      'again to continue.' % {'SIGINT': 'Interrupted',
                              'SIGTERM': 'Terminated'}[stop])
  assert 'Traceback' not in output


def test_missing_job_server_jar_is_one_line(sample_module, tmp_path):
  result = run_tool('beam_bottlenecks.py', _beam_args(
      SAMPLE_DIR, str(tmp_path / 'bn'), sample_module) + [
          '--runner=FlinkRunner', '--flink_master=[local]',
          '--flink_job_server_jar=' + str(tmp_path / 'none.jar')])
  assert result.returncode == 1
  assert result.stdout.strip().splitlines()[-1] == (
      'ERROR: --flink_job_server_jar %s: no such file; '
      'tools/fetch_job_server.sh flink prints the path of one.' %
      (tmp_path / 'none.jar'))
  assert not os.path.exists(str(tmp_path / 'bn'))


def test_spark_writes_exactly_retrainscache_files(spark_jar, sample_module,
                                                   reference_cache, tmp_path):
  """Spark's portable runner reports attempted metrics only (no committed
  values); the summary counts those."""
  image_dir = _sample_with_corrupt_image(str(tmp_path))
  bottleneck_dir = str(tmp_path / 'bottleneck')
  result = run_tool('beam_bottlenecks.py', _beam_args(
      image_dir, bottleneck_dir, sample_module) + [
          '--runner=SparkRunner', '--spark_master_url=local[*]',
          '--spark_job_server_jar=' + spark_jar,
          '--environment_type=LOOPBACK'], timeout=RUN_TIMEOUT)
  assert _wait_for_no_java(spark_jar) == []
  assert result.returncode == 0, result.stdout[-3000:]
  assert beam_summary_line(result.stdout).startswith(
      'Bottlenecks: 250 computed, 1 skipped (bad images), 0 already cached, '
      'of 251 images (')
  assert 'WARNING:beam_bottlenecks:Skipping %s: it is not a JPEG, PNG or GIF '\
         'image' % os.path.join(image_dir, CORRUPT_IMAGE) in result.stdout
  assert 'Traceback' not in result.stdout
  assert spark_jar not in result.stdout
  _assert_same_as_retrain(bottleneck_dir, reference_cache)


def _copy_of_the_fetch_recipe(root):
  """tools/fetch_job_server.sh, tools/job_server/ and requirements-beam.txt
  in a folder of their own; returns the script's path there."""
  shutil.copytree(os.path.join(REPO_DIR, 'tools', 'job_server'),
                  os.path.join(root, 'tools', 'job_server'),
                  ignore=shutil.ignore_patterns('target'))
  shutil.copy(FETCH, os.path.join(root, 'tools'))
  shutil.copy(os.path.join(REPO_DIR, 'requirements-beam.txt'), root)
  return os.path.join(root, 'tools', 'fetch_job_server.sh')


def _fetch_with_stand_in_maven(script, runner, kind, tmp_path):
  """Runs script with java and mvn stand-ins: mvn logs its arguments and
  'builds' an empty job server. Returns (jar path printed, mvn's arguments)."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir(exist_ok=True)
  log = tmp_path / 'mvn-args'
  (bin_dir / 'java').write_text('#!/bin/sh\n')
  (bin_dir / 'mvn').write_text(
      '#!/bin/sh\necho "$@" >> "%s"\nfor arg; do case "$arg" in\n'
      '  -Djob.server.dir=*) mkdir -p "${arg#*=}" &&'
      ' touch "${arg#*=}/job-server.jar";;\nesac; done\n' % log)
  for stand_in in ('java', 'mvn'):
    os.chmod(str(bin_dir / stand_in), 0o755)
  env = dict(os.environ, RETRAIN_JOB_SERVER_DIR=str(tmp_path / 'cache'),
             PATH=str(bin_dir) + os.pathsep + os.environ['PATH'])
  result = subprocess.run(['bash', script, runner, kind], env=env, text=True,
                          capture_output=True, timeout=60, check=False)
  assert result.returncode == 0, result.stderr
  return result.stdout.strip(), log.read_text() if log.exists() else ''


def test_official_job_server_is_requirements_beams_release(tmp_path):
  """Beam's own jar is fetched for the Beam that requirements-beam.txt pins,
  so the SDK and the job server cannot drift apart."""
  with open(os.path.join(REPO_DIR, 'requirements-beam.txt')) as f:
    version, = re.findall(r'^apache-beam==([0-9.]+)$', f.read(), re.M)
  jar, mvn_args = _fetch_with_stand_in_maven(FETCH, 'flink', 'official',
                                             tmp_path)
  assert jar == str(tmp_path / 'cache' /
                    ('beam-runners-flink-1.19-job-server-%s.jar' % version))
  assert ('-Dartifact=org.apache.beam:beam-runners-flink-1.19-job-server:%s:'
          'jar' % version) in mvn_args.split()


def test_changed_job_server_recipe_is_built_anew(tmp_path):
  """An assembled job server is reused while tools/job_server/ is unchanged;
  a changed recipe (another Beam runner, say) never finds the old build."""
  script = _copy_of_the_fetch_recipe(str(tmp_path / 'repo'))
  pom = os.path.join(os.path.dirname(script), 'job_server', 'pom.xml')
  with open(pom) as f:
    runner_version, = re.findall(r'<beam.version>(.+)</beam.version>',
                                 f.read())
  first, mvn_args = _fetch_with_stand_in_maven(script, 'spark', 'assembled',
                                               tmp_path)
  assert re.search(r'/spark-3-job-server-%s-\d+/job-server\.jar$' %
                   re.escape(runner_version), first), first
  again, mvn_args_again = _fetch_with_stand_in_maven(script, 'spark',
                                                     'assembled', tmp_path)
  assert (again, mvn_args_again) == (first, mvn_args)  # Maven did not run.
  with open(pom, 'a') as f:
    f.write('<!-- changed -->\n')
  changed, mvn_args = _fetch_with_stand_in_maven(script, 'spark', 'assembled',
                                                 tmp_path)
  assert changed != first
  assert mvn_args.count(' -P spark ') == 2
