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
import itertools
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
import bench  # Loads TensorFlow quietly, and retrain.
import make_image_module
from PIL import Image
# pylint: enable=g-import-not-at-top,wrong-import-position

MOBILENET_V2 = os.path.join(bench.SHARED_DIR, 'modules',
                            'mobilenet_v2_1.0_224_dequantized',
                            'frozen_graph.pb')
DEV_PHOTOS = os.path.join(bench.SHARED_DIR, 'photos', 'flower_photos_dev')
# Wall-time and memory growth allowed from the smallest size to the largest.
GOALS = {'wall_ratio': 4.4, 'memory_growth_gb': 0.2}


def variant(image, index):
  """The index-th distinct variant of a PIL image: a crop keeping 80-96% of
  each side at one of several places, mirrored for odd indices."""
  width, height = image.size
  keep = 0.96 - 0.04 * ((index // 2) % 5)
  place = (index // 10) % 5  # Centre, then the four corners.
  crop_width, crop_height = int(width * keep), int(height * keep)
  left = [(width - crop_width) // 2, 0, width - crop_width, 0,
          width - crop_width][place]
  top = [(height - crop_height) // 2, 0, 0, height - crop_height,
         height - crop_height][place]
  cropped = image.crop((left, top, left + crop_width, top + crop_height))
  if index % 2:
    cropped = cropped.transpose(Image.FLIP_LEFT_RIGHT)
  return cropped


def make_photos(source_dir, image_dir, count):
  """Fills image_dir with count photos made from source_dir's, spread evenly
  over its photos (at most 50 variants each); reuses a complete folder."""
  classes = bench.list_class_images(source_dir)
  # The classes take turns, so that a small count still has every class.
  sources = [source for turn in itertools.zip_longest(*[
      [(name, path) for path in paths] for name, paths in classes])
             for source in turn if source]
  per_photo = -(-count // len(sources))
  if per_photo > 50:
    sys.exit('ERROR: %d photos need more than 50 variants of each of the %d '
             'in %s.' % (count, len(sources), source_dir))
  done_mark = os.path.join(image_dir, '.complete')
  if os.path.exists(done_mark):
    return image_dir
  shutil.rmtree(image_dir, ignore_errors=True)
  made = 0
  for index in range(per_photo):
    for class_name, path in sources:
      if made == count:
        break
      os.makedirs(os.path.join(image_dir, class_name), exist_ok=True)
      stem = os.path.splitext(os.path.basename(path))[0]
      with Image.open(path) as image:
        variant(image.convert('RGB'), index).save(os.path.join(
            image_dir, class_name, '%s_nohash_%d.jpg' % (stem, index)),
                                                  quality=90)
      made += 1
  open(done_mark, 'w').close()
  return image_dir


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
  if not (os.path.exists(MOBILENET_V2) and os.path.isdir(DEV_PHOTOS)):
    sys.exit('ERROR: this benchmark needs %s and %s.' % (MOBILENET_V2,
                                                         DEV_PHOTOS))
  sizes = [int(size) for size in args.sizes.split(',')]
  module_dir = os.path.join(args.work, 'mobilenet_v2')
  if not os.path.exists(os.path.join(module_dir, 'tfhub_module.pb')):
    make_image_module.export_frozen_graph_module(
        module_dir, MOBILENET_V2, 'input:0', 'MobilenetV2/Logits/AvgPool:0',
        224, (-1.0, 1.0))
  rows = []
  for run_index in range(args.runs):
    for size in sizes:
      print('Making %d photos ...' % size, flush=True)
      image_dir = make_photos(DEV_PHOTOS, os.path.join(
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
