#!/usr/bin/env python
r"""How a whole retrain.py run grows with the number of photos.

  python bench/growth.py                     # 2,500 and 10,000 photos
  python bench/growth.py --sizes 500,2000 --runs 2

Makes each folder from the real dev photos (../shared/photos/flower_photos_dev)
by flips and crops: every photo gives distinct files named
<photo>_nohash_<k>.jpg, so that the variants of one photo stay in one set
(retrain.py's split ignores what follows '_nohash_'). Then it times our
retrain.py cold (fresh cache and outputs) on each, with the real MobileNet v2
1.0@224 (../shared/modules) and every other flag at its default, and prints:
wall seconds, peak memory (the process's maximum resident set), and where the
time went (start-up, caching, training, finish: bench.py's our_phases).

The goal it checks (issue 27): from the smallest to the largest size, wall
time grows at most 4.4x and peak memory at most 0.2 GB. Nothing here asserts:
it is a benchmark.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
import bench  # Loads TensorFlow quietly, and retrain.
# pylint: enable=g-import-not-at-top,wrong-import-position

DEV_PHOTOS = os.path.join(bench.SHARED_DIR, 'photos', 'flower_photos_dev')
# Wall-time and memory growth allowed from the smallest size to the largest.
GOALS = {'wall_ratio': 4.4, 'memory_growth_gb': 0.2}


def timed_run(image_dir, module_dir, out_dir):
  """One cold run of our retrain.py under /usr/bin/time; returns its wall
  seconds, peak memory (GB) and phases."""
  scenario = bench.Scenario('growth', module_dir, [], [], None, None)
  command = bench.whole_command(
      bench.Command('ours', sys.executable, bench.RETRAIN_SCRIPT), scenario,
      image_dir, out_dir, True)
  rss_file = os.path.join(out_dir, 'peak_rss_kb')
  os.makedirs(out_dir, exist_ok=True)
  seconds, stamped = bench.time_whole_command(
      ['/usr/bin/time', '-f', '%M', '-o', rss_file] + command)
  with open(rss_file) as f:
    peak_gb = int(f.read().split()[-1]) / 2 ** 20
  return {'seconds': seconds, 'peak_rss_gb': peak_gb,
          'phases': bench.our_phases(stamped, seconds)}


def format_table(rows):
  """The runs as a Markdown table, and the growth against GOALS."""
  lines = ['| photos | wall | peak memory | start-up | caching | training | '
           'finish |', '|---|---|---|---|---|---|---|']
  for row in rows:
    phases = row['phases']
    lines.append('| %d | %.1f s | %.2f GB | %.1f s | %.1f s | %.1f s | '
                 '%.1f s |' % (row['photos'], row['seconds'],
                               row['peak_rss_gb'], phases['startup'],
                               phases['caching'], phases['training'],
                               phases['finish']))
  first = [row for row in rows if row['photos'] == rows[0]['photos']]
  last = [row for row in rows if row['photos'] == rows[-1]['photos']]
  mean = lambda runs, key: sum(run[key] for run in runs) / len(runs)
  wall_ratio = mean(last, 'seconds') / mean(first, 'seconds')
  memory_growth = mean(last, 'peak_rss_gb') - mean(first, 'peak_rss_gb')
  lines.append('')
  lines.append('%d -> %d photos: wall x%.2f (goal <= x%.1f), peak memory '
               '%+.2f GB (goal <= +%.1f GB); per extra photo %.1f ms.' % (
                   rows[0]['photos'], rows[-1]['photos'], wall_ratio,
                   GOALS['wall_ratio'], memory_growth,
                   GOALS['memory_growth_gb'],
                   1000 * (mean(last, 'seconds') - mean(first, 'seconds')) /
                   max(rows[-1]['photos'] - rows[0]['photos'], 1)))
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--sizes', default='2500,10000',
                      help='Comma-separated photo counts, smallest first.')
  parser.add_argument('--runs', type=int, default=1,
                      help='Cold runs of each size.')
  parser.add_argument('--work', default=os.path.join(
      tempfile.gettempdir(), 'retrain_growth'),
                      help='Where the photo folders are made (and kept for '
                      'the next time) and the runs write.')
  parser.add_argument('--output', default=os.path.join(
      bench.REPO_DIR, 'bench', 'results', 'growth.json'))
  args = parser.parse_args()
  shared_modules = os.path.join(bench.SHARED_DIR, 'modules')
  module_dir = bench.mobilenet_v2_module(
      os.path.join(args.work, 'mobilenet_v2'), shared_modules)
  if module_dir is None or not os.path.isdir(DEV_PHOTOS):
    sys.exit('ERROR: this benchmark needs MobileNet v2 in %s and %s.' % (
        shared_modules, DEV_PHOTOS))
  sizes = [int(size) for size in args.sizes.split(',')]
  rows = []
  for run_index in range(args.runs):
    for size in sizes:
      print('Making %d photos ...' % size, flush=True)
      image_dir = bench.make_photos(DEV_PHOTOS, os.path.join(
          args.work, 'photos_%d' % size), size)
      out_dir = os.path.join(args.work, 'run')
      shutil.rmtree(out_dir, ignore_errors=True)
      row = dict(timed_run(image_dir, module_dir, out_dir), photos=size)
      shutil.rmtree(out_dir, ignore_errors=True)
      print('  run %d, %d photos: %.1f s, %.2f GB' % (
          run_index + 1, size, row['seconds'], row['peak_rss_gb']),
            flush=True)
      rows.append(row)
  rows.sort(key=lambda row: row['photos'])
  print()
  print(format_table(rows))
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w') as f:
    json.dump(rows, f, indent=2)


if __name__ == '__main__':
  main()
