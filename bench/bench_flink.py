#!/usr/bin/env python
r"""Benchmarks beam_bottlenecks.py on Beam's Flink runner, next to the rest.

  python bench/bench_flink.py               # sample_cnn rows (about 15 minutes on 2 cores)
  python bench/bench_flink.py --inception   # + the Inception-sized module's per-worker rate
  python bench/bench_flink.py --listing_only --listing_files 100000

What it measures, on copies of flower_photos_sample/ under new names:

- retrain.py's own caching (cache_bottlenecks in this process);
- beam_bottlenecks.py with the DirectRunner on 1 and 2 local worker processes;
- beam_bottlenecks.py on Flink ([local]: the job server from
  tools/fetch_job_server.sh and its embedded Flink cluster) with parallelism 1
  and 2, LOOPBACK workers in the launching process ('thread') or as processes
  of their own ('process': --experiments=use_loopback_process_worker
  --sdk_worker_parallelism=N);
- for each Beam row: images/s end to end (the summary's pipeline seconds),
  images/s beyond start-up and the start-up itself, from a second run on 1/8
  of the images (start-up = small run's seconds - its images x marginal cost);
- the cost of listing the cache as beam_bottlenecks.py does it (one listing
  per class folder, os.scandir locally and Beam's FileSystems.match, as for
  gs://), and retrain.py's create_image_lists, on a synthetic tree of
  --listing_files empty images and as many cache files.

Results go to bench/results/bench_flink.json (not committed). Nothing here
asserts a time: this is a benchmark, not a test.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=g-import-not-at-top,wrong-import-position
import retrain  # First: it loads TensorFlow without its C++ start-up lines.
from bench import bench
import make_image_module
# pylint: enable=g-import-not-at-top,wrong-import-position


def fetch_flink_jar():
  """The Flink job server's jar, fetched by tools/fetch_job_server.sh."""
  return subprocess.run(
      ['bash', os.path.join(REPO_DIR, 'tools', 'fetch_job_server.sh'),
       'flink'], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def beam_options(kind, workers, jar):
  """Beam's options for one row: kind 'direct', 'flink-thread' or
  'flink-process', on `workers` workers."""
  if kind == 'direct':
    return bench.local_worker_options(workers)
  options = ['--runner=FlinkRunner', '--flink_master=[local]',
             '--flink_job_server_jar=' + jar, '--environment_type=LOOPBACK',
             '--parallelism=%d' % workers]
  if kind == 'flink-process':
    options += ['--experiments=use_loopback_process_worker',
                '--sdk_worker_parallelism=%d' % workers]
  return options


def beam_row(module_name, module_dir, image_dir, small_dir, kind, workers,
             jar):
  """End to end and beyond start-up, from a full and a small run."""
  row = {'module': module_name, 'runner': kind, 'workers': workers}
  row.update(bench.time_beam_beyond_startup(
      module_dir, image_dir, small_dir, beam_options(kind, workers, jar)))
  print('  %-13s %-13s %d worker(s): %6.1f images/s, %s beyond start-up, '
        'start-up %.1f s' % (
            module_name, kind, workers, row['images_per_s'],
            '%.1f images/s' % row['marginal_images_per_s']
            if row['marginal_images_per_s'] else '-',
            row['startup_seconds']), flush=True)
  return row


def caching_rate(module_dir, image_dir):
  runner = bench.ModuleRunner(module_dir)
  try:
    images, seconds = bench.time_caching(runner, image_dir)
  finally:
    runner.close()
  return images / seconds


def _rss_mb():
  """This process's resident memory now, in MB (Linux)."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmRSS:'):
        return int(line.split()[1]) / 1024.0
  return 0.0


def measure_listing(count, classes=5):
  """Listing costs on a synthetic tree of `count` images and cache files."""
  # pylint: disable=g-import-not-at-top
  import beam_bottlenecks
  # pylint: enable=g-import-not-at-top
  work = tempfile.mkdtemp(prefix='bench_listing_')
  try:
    image_dir = os.path.join(work, 'images')
    bottleneck_dir = os.path.join(work, 'bottleneck')
    start = time.time()
    for index in range(count):
      folder = os.path.join(image_dir, 'class_%d' % (index % classes))
      if index < classes:
        os.makedirs(folder)
      open(os.path.join(folder, 'image_%07d.jpg' % index), 'wb').close()
    make_seconds = time.time() - start
    rss_before = _rss_mb()
    start = time.time()
    image_lists = retrain.create_image_lists(image_dir, 10, 10)
    create_lists_seconds = time.time() - start
    module_name = 'https://tfhub.dev/google/imagenet/inception_v3/' \
                  'feature_vector/3'
    width = 2048
    start = time.time()
    for label_name, label_lists in image_lists.items():
      for category in retrain.CATEGORIES:
        for index in range(len(label_lists[category])):
          path = retrain.get_bottleneck_path(image_lists, label_name, index,
                                             bottleneck_dir, category,
                                             module_name)
          if index == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
          with open(path, 'w') as f:
            f.truncate(2 * width)  # Long enough to count; sparse, no data.
    write_cache_seconds = time.time() - start
    start = time.time()
    to_compute, cached = beam_bottlenecks.list_work(
        image_lists, image_dir, bottleneck_dir, module_name, width)
    list_work_seconds = time.time() - start
    rss_after = _rss_mb()
    assert (len(to_compute), cached) == (0, count), (len(to_compute), cached)
    # As for gs:// folders: Beam's FileSystems.match, one pattern per folder.
    is_local = retrain.is_local_path
    retrain.is_local_path = lambda path: False
    try:
      start = time.time()
      to_compute, cached = beam_bottlenecks.list_work(
          image_lists, image_dir, bottleneck_dir, module_name, width)
      match_seconds = time.time() - start
    finally:
      retrain.is_local_path = is_local
    assert (len(to_compute), cached) == (0, count), (len(to_compute), cached)
    return {'files': count, 'classes': classes,
            'make_images_seconds': make_seconds,
            'create_image_lists_seconds': create_lists_seconds,
            'write_cache_seconds': write_cache_seconds,
            'list_work_scandir_seconds': list_work_seconds,
            'list_work_filesystems_match_seconds': match_seconds,
            'launcher_memory_mb': rss_after - rss_before}
  finally:
    shutil.rmtree(work, ignore_errors=True)


def format_table(results):
  lines = ['%-13s %-14s %7s %7s %9s %17s %9s %9s' % (
      'module', 'runner', 'workers', 'images', 'images/s', 'beyond start-up',
      'start-up', 'command')]
  for row in results.get('rows', []):
    marginal = row.get('marginal_images_per_s')
    lines.append('%-13s %-14s %7s %7d %9.1f %17s %8.1fs %8.1fs' % (
        row['module'], row['runner'], row.get('workers', '-'), row['images'],
        row['images_per_s'],
        '%.1f images/s' % marginal if marginal else '-',
        row.get('startup_seconds', 0.0),
        row.get('wall_seconds', row.get('seconds', 0.0))))
  listing = results.get('listing')
  if listing:
    lines.append(
        'listing %d files in %d class folders: create_image_lists %.2f s, '
        'cache listing (list_work) %.2f s with os.scandir, %.2f s with Beam\'s '
        'FileSystems.match; %.0f MB of launcher memory' % (
            listing['files'], listing['classes'],
            listing['create_image_lists_seconds'],
            listing['list_work_scandir_seconds'],
            listing['list_work_filesystems_match_seconds'],
            listing['launcher_memory_mb']))
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--images', type=int, default=4800,
                      help='Images for the sample_cnn rows (default 4800).')
  parser.add_argument('--inception', action='store_true',
                      help='Add the Inception-sized module: retrain.py caching '
                      'and Flink with one process worker (per-worker rate).')
  parser.add_argument('--inception_images', type=int, default=320)
  parser.add_argument('--listing_files', type=int, default=100000)
  parser.add_argument('--listing_only', action='store_true')
  parser.add_argument('--kinds', default='direct,flink-thread,flink-process',
                      help='Beam rows to measure (comma-separated).')
  parser.add_argument('--output', default=os.path.join(
      REPO_DIR, 'bench', 'results', 'bench_flink.json'))
  args = parser.parse_args()

  results = {'machine': {'cpus': os.cpu_count(),
                         'processor': platform.processor() or
                                      platform.machine()},
             'rows': []}
  work = tempfile.mkdtemp(prefix='bench_flink_work_')
  try:
    if not args.listing_only:
      jar = fetch_flink_jar()
      modules = {'sample_cnn': (make_image_module.export_sample_cnn_module(
          os.path.join(work, 'sample_cnn')), args.images)}
      if args.inception:
        modules['inception_v3'] = (make_image_module.export_keras_module(
            os.path.join(work, 'inception_v3'), 'inception_v3'),
                                   args.inception_images)
      for name, (module_dir, count) in modules.items():
        image_dir = bench.make_image_dir(work, count)
        small_dir = bench.make_image_dir(work, max(count // 8, 16))
        rate = caching_rate(module_dir, image_dir)
        results['rows'].append({'module': name, 'runner': 'retrain.py',
                                'images': count, 'images_per_s': rate})
        print('  %-13s retrain.py caching: %.1f images/s' % (name, rate),
              flush=True)
        if name == 'inception_v3':
          plan = [('flink-process', 1)]
        else:
          plan = [(kind, workers) for kind in args.kinds.split(',')
                  for workers in (1, 2)]
        for kind, workers in plan:
          results['rows'].append(beam_row(name, module_dir, image_dir,
                                          small_dir, kind, workers, jar))
    print('Listing %d files ...' % args.listing_files, flush=True)
    results['listing'] = measure_listing(args.listing_files)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  table = '\n'.join(format_table(results))
  print(table)
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, 'w') as f:
    json.dump(results, f, indent=2)
  print('Wrote ' + args.output)


if __name__ == '__main__':
  main()
