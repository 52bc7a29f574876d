#!/usr/bin/env python
r"""Benchmarks retrain.py on this machine and prints one table (and JSON).

  python bench/bench.py                 # everything, a few minutes on 2 cores
  python bench/bench.py --quick         # smaller sizes, for a smoke test
  python bench/bench.py --whole_commands [--image_dir DIR [--images N]]
                        [--runs 2] [--quick]   # whole commands, as users time
  python bench/bench.py --whole_commands --stacks   # today's stack vs classic
  python bench/bench.py --whole_commands --user_sized [--runs 3]
                        # MobileNet v2 on 2,000 photos, against the original

--whole_commands times what users time: whole processes, cold (fresh output
and bottleneck folders each run), on real photos (flower_photos_sample/ by
default, or --image_dir, of which --images N takes the first N), spawn to
exit. Each scenario runs --runs times as our retrain.py with its flags and as
bench/original_retrain.py, the original TF Hub retrain.py's path re-implemented
(one image at a time, two Session calls per image, text files re-read every
step, the eval graph rebuilt for the test and each export), with the same
flags and module. The original needs hub.Module, so it runs on the classic
stack: --classic_python, by default .venv-classic/bin/python (run_tests.sh
sets it up; or RETRAIN_STACK=classic with tools/setup_venv.sh).

- an Inception-v3-sized module (random weights), 10 steps, float32, and the
  same with --bottleneck_precision bfloat16 (ours only: the original has no
  bfloat16, so that row compares with its float32 times);
- MobileNet v1 0.25@128 (from --shared_modules; the sample module stands in
  when it is missing, and the row says so) with the defaults (4000 steps), and
  with all four distortions for 100 steps.

It prints a table of the original's and our times, the ratio (original mean /
ours mean) and the target ratio, and, from our run's own log lines stamped as
they arrive, its fixed costs (start-up to the cache scan's "... to compute."
line, plus the last "Step" line to exit) and its caching images/s (the scan
line to the last "N/N bottlenecks computed" line); the JSON
(bench/results/bench_whole.json) has every phase of every run. With --quick:
the sample module, a few steps, one run (about a minute and a half).

--whole_commands --user_sized times only the user-sized run: the real MobileNet
v2 1.0@224 of --shared_modules at every default on 2,000 photos made from the
500 dev photos (four flips and crops of each, kept in the temporary folder's
retrain_growth/photos_2000 for the next time, as bench/growth.py makes them),
our retrain.py against the original, which it should beat 9 times.

--whole_commands --stacks times our retrain.py on the classic stack
(--classic_python) against our retrain.py on the Python that runs the bench
(today's stack), side by side: an Inception-v3-sized module cold, MobileNet
v1 0.25@128 with the defaults and, where ../shared has them, MobileNet v2
1.0@224 with the defaults on the 500 real photos of --dev_photos.

Without --whole_commands, it measures, all in one run, through retrain.py's own
functions:

- fp32 and bf16 matmul peak GFLOP/s (one large matmul, best of several);
- each module's GFLOP per image, counted by TensorFlow's profiler on the graph;
- bottleneck caching images/s (cache_bottlenecks: parallel decoding, batched
  module runs, cache files written) and the achieved GFLOP/s as a fraction of
  the matching matmul peak, for the sample module and an Inception-v3-sized
  module, in float32 and bfloat16, next to the original one-image-at-a-time
  path (run_bottleneck_on_image per image);
- training ms/step from the cache (run_training_loop, summaries every step)
  next to the floor: one bare sess.run of the train op and the merged summary
  per step with the batch fed from memory;
- distorted training ms/step next to the module's forward time for one batch;
- memory for 100k cached 2048-wide bottlenecks plus the module, and peak RSS;
- how caching time grows for 300 -> 1200 -> 4800 images;
- beam_bottlenecks.py (Apache Beam, DirectRunner with 1 and 2 local worker
  processes) images/s on the same images as the caching rows, end to end and
  per image beyond its start-up (skipped when apache_beam is not installed;
  --beam_only measures just that, --beam_inception adds the Inception-sized
  module).

Those images are copies of flower_photos_sample/ under new names. Nothing here
asserts a time: this is a benchmark, not a test.
"""

import argparse
import collections
import importlib.util
import itertools
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from PIL import Image
# First: it loads TensorFlow without its C++ start-up lines.
import retrain
import tensorflow.compat.v1 as tf

import fast_distortions
import make_image_module
# pylint: enable=g-import-not-at-top,wrong-import-position

SAMPLE_DIR = os.path.join(REPO_DIR, 'flower_photos_sample')


# ------------------------------------------------------------------ helpers


def list_class_images(source_dir):
  """The image files of each class folder of source_dir, in sorted order.

  Args:
    source_dir: A folder of class folders of images.

  Returns:
    A list of (class folder name, sorted list of image paths), by class name.
  """
  classes = []
  for class_name in sorted(os.listdir(source_dir)):
    class_dir = os.path.join(source_dir, class_name)
    if os.path.isdir(class_dir):
      classes.append((class_name, [
          os.path.join(class_dir, name) for name in sorted(os.listdir(class_dir))
          if name.rsplit('.', 1)[-1].lower() in retrain.IMAGE_EXTENSIONS]))
  return classes


def make_image_dir(root, count):
  """Copies the sample photos under new names until count images exist."""
  sources = [(class_name, path)
             for class_name, paths in list_class_images(SAMPLE_DIR)
             for path in paths]
  image_dir = os.path.join(root, 'images_%d' % count)
  for index in range(count):
    class_name, source = sources[index % len(sources)]
    os.makedirs(os.path.join(image_dir, class_name), exist_ok=True)
    extension = os.path.splitext(source)[1]
    shutil.copyfile(source, os.path.join(image_dir, class_name,
                                         'copy_%06d%s' % (index, extension)))
  return image_dir


class ModuleRunner(object):
  """The module with its decoding ops and one Session, as retrain.py's
  create_bottleneck_session opens them."""

  def __init__(self, module_dir, precision='float32'):
    self.spec = retrain.load_module_spec(module_dir)
    self.sess, self.tensors = retrain.create_bottleneck_session(self.spec,
                                                                precision)
    self.graph = self.sess.graph
    (self.jpeg_data, self.decoded_image, self.resized_input,
     self.bottleneck) = self.tensors
    self.wants_quantization = any(op.type in retrain.FAKE_QUANT_OPS
                                  for op in self.graph.get_operations())
    self.height, self.width, _ = retrain.module_image_shape(self.spec)
    self.feature_width = self.spec.feature_width

  def forward(self, images):
    return self.sess.run(self.bottleneck, {self.resized_input: images})

  def warm_up(self, batch_size):
    self.forward(np.zeros([batch_size, self.height, self.width, 3],
                          np.float32))

  def close(self):
    self.sess.close()


def machine_info():
  """The CPU count, processor and TensorFlow version, for the results."""
  return {'cpus': os.cpu_count(),
          'processor': platform.processor() or platform.machine(),
          'tensorflow': tf.__version__}


def matmul_peak(dtype, size, repeats):
  """Best GFLOP/s of one size x size matmul in dtype."""
  with tf.Graph().as_default():
    a = tf.Variable(tf.random.normal([size, size], dtype=tf.float32))
    b = tf.Variable(tf.random.normal([size, size], dtype=tf.float32))
    a_cast, b_cast = tf.cast(a, dtype), tf.cast(b, dtype)
    # The operands are cast once into variables: only the matmul is timed.
    a_var = tf.Variable(a_cast, dtype=dtype)
    b_var = tf.Variable(b_cast, dtype=dtype)
    product = tf.matmul(a_var, b_var)
    done = tf.reduce_sum(tf.slice(product, [0, 0], [1, 1]))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(done)
      best = float('inf')
      for _ in range(repeats):
        start = time.time()
        sess.run(done)
        best = min(best, time.time() - start)
  return 2.0 * size ** 3 / best / 1e9


def module_gflop_per_image(module_dir):
  """Floating point operations of one image through the module, in GFLOP."""
  spec = retrain.load_module_spec(module_dir)
  height, width = spec.image_size
  with tf.Graph().as_default() as graph:
    spec.apply_fn()(tf.placeholder(tf.float32, [1, height, width, 3]))
    options = tf.profiler.ProfileOptionBuilder(
        tf.profiler.ProfileOptionBuilder.float_operation()).with_empty_output(
        ).build()
    profile = tf.profiler.profile(graph, options=options)
  return profile.total_float_ops / 1e9


def time_caching(runner, image_dir, batch_size=None):
  """Seconds for cache_bottlenecks over every image of image_dir."""
  image_lists = retrain.create_image_lists(image_dir, 10, 10)
  count = sum(len(lists[c]) for lists in image_lists.values()
              for c in retrain.CATEGORIES)
  bottleneck_dir = tempfile.mkdtemp(prefix='bench_bottlenecks_')
  runner.warm_up(batch_size or retrain.default_caching_batch_size(
      runner.height, runner.width))
  start = time.time()
  retrain.cache_bottlenecks(runner.sess, image_lists, image_dir,
                            bottleneck_dir, *runner.tensors,
                            module_name='bench', batch_size=batch_size)
  seconds = time.time() - start
  shutil.rmtree(bottleneck_dir)
  return count, seconds


def time_one_at_a_time(runner, image_dir, count):
  """Images/s of the original path: two Session calls per image."""
  paths = []
  for root, _, names in os.walk(image_dir):
    paths.extend(os.path.join(root, name) for name in sorted(names))
  paths = sorted(paths)[:count]
  runner.warm_up(1)
  start = time.time()
  for path in paths:
    with open(path, 'rb') as f:
      retrain.run_bottleneck_on_image(runner.sess, f.read(), *runner.tensors)
  return len(paths) / (time.time() - start)


def _training_flags(image_dir, out_dir, steps, distort):
  args = ['--image_dir', image_dir, '--how_many_training_steps', str(steps),
          '--summaries_dir', os.path.join(out_dir, 'logs'),
          '--bottleneck_dir', os.path.join(out_dir, 'bottlenecks'),
          '--tfhub_module', 'bench', '--random_seed', '1']
  if distort:
    args += ['--flip_left_right', '--random_crop', '10', '--random_scale',
             '10', '--random_brightness', '10']
  return retrain.build_parser().parse_args(args)


def time_training(module_dir, image_dir, steps, distort, batch_size=100):
  """ms/step of run_training_loop, its floor and the module's forward time.

  Returns:
    dict with 'step_ms' (the real loop: batches drawn from memory or
    distorted, summaries every step, evaluation every 10 steps), 'fixed_ms'
    (what a run of the loop costs besides its steps), 'floor_ms'
    (bare sess.run of merged summaries + train op on a fixed fed batch) and,
    with distort, 'forward_ms' (the module on one batch of batch_size).
  """
  out_dir = tempfile.mkdtemp(prefix='bench_training_')
  flags = _training_flags(image_dir, out_dir, steps, distort)
  image_lists = retrain.create_image_lists(image_dir, 10, 10)
  runner = ModuleRunner(module_dir)
  with runner.graph.as_default():
    tf.set_random_seed(1)
    (train_step, cross_entropy, bottleneck_input, ground_truth_input,
     final_tensor) = retrain.add_final_retrain_ops(
         len(image_lists), 'final_result', runner.bottleneck,
         runner.wants_quantization, True, learning_rate=0.01)
    distortion_tensors = distorted = None
    if distort:
      distortion_tensors = retrain.add_input_distortions(
          True, 10, 10, 10, runner.spec)
      distorted = fast_distortions.DistortedBatches(
          (runner.height, runner.width, 3), retrain.Distortions(
              True, 10, 10, 10), image_lists, image_dir, 'training',
          batch_size)
    evaluation_step, _ = retrain.add_evaluation_step(final_tensor,
                                                     ground_truth_input)
    merged = tf.summary.merge_all()
    runner.sess.run(tf.global_variables_initializer())
  cache = retrain.BottleneckCache(image_dir, flags.bottleneck_dir, 'bench',
                                 retrain.BottleneckMemory())
  retrain.cache_bottlenecks(runner.sess, image_lists, image_dir,
                            cache.bottleneck_dir, *runner.tensors,
                            module_name=cache.module_name,
                            memory=cache.memory)
  training_ops = retrain.TrainingOps(train_step, cross_entropy,
                                     bottleneck_input, ground_truth_input,
                                     evaluation_step, merged)
  sources = retrain.BatchSources(runner.sess, image_lists, runner.tensors,
                                 cache, distorted, distortion_tensors)

  def loop_seconds(how_many_steps):
    schedule = retrain.TrainingSchedule(
        how_many_steps, batch_size, flags.validation_batch_size,
        flags.eval_step_interval, 0, flags.summaries_dir)
    start = time.time()
    retrain.run_training_loop(runner.sess, training_ops, schedule, sources,
                              lambda step: None)
    return time.time() - start

  loop_seconds(1)  # Warm-up, outside the timing.
  # Two lengths of run separate the cost per step from the fixed cost of a
  # run (writing the graph to the train summaries, starting the pipelines).
  short_steps = max(1, steps // 5)
  short_run = loop_seconds(short_steps)
  long_run = loop_seconds(steps)
  step_seconds = (long_run - short_run) / (steps - short_steps)
  step_ms = step_seconds * 1000
  fixed_ms = (short_run - short_steps * step_seconds) * 1000

  bottlenecks, truths, _ = retrain.get_random_cached_bottlenecks(
      runner.sess, image_lists, batch_size, 'training',
      cache.bottleneck_dir, image_dir, *runner.tensors,
      module_name='bench', memory=cache.memory)
  feed = {bottleneck_input: bottlenecks, ground_truth_input: truths}
  writer = tf.summary.FileWriter(os.path.join(out_dir, 'floor'))
  runner.sess.run([merged, train_step], feed)
  floor_steps = max(steps, 50)
  start = time.time()
  for step in range(floor_steps):
    summary, _ = runner.sess.run([merged, train_step], feed)
    writer.add_summary(summary, step)
  writer.close()
  result = {'step_ms': step_ms, 'fixed_ms': fixed_ms,
            'floor_ms': (time.time() - start) / floor_steps * 1000}
  if distort:
    images = np.random.rand(batch_size, runner.height, runner.width,
                            3).astype(np.float32)
    runner.forward(images)
    repeats = 3
    start = time.time()
    for _ in range(repeats):
      runner.forward(images)
    result['forward_ms'] = (time.time() - start) / repeats * 1000
  runner.close()
  shutil.rmtree(out_dir)
  return result


def _peak_rss_mb():
  """This process's peak resident memory (VmHWM; unlike ru_maxrss, a child
  process does not inherit its parent's value)."""
  with open('/proc/self/status') as status:
    for line in status:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024.0
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_for_cached_bottlenecks(module_dir, count, width):
  """Peak RSS (MB) of a fresh process: the module, one caching batch through
  it, and count bottlenecks held the way training holds them."""
  # The real cache_bottlenecks runs; only reading the cache files is
  # replaced by random values of the module's width.
  script = (
      'import os, sys\n'
      'sys.path.insert(0, %r)\n'
      'os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"\n'
      'import tempfile, numpy as np, retrain\n'
      'from bench import bench\n'
      'runner = bench.ModuleRunner(%r)\n'
      'runner.warm_up(retrain.default_caching_batch_size(runner.height,'
      ' runner.width))\n'
      'classes = 5\n'
      'lists = {"c%%d" %% c: {"dir": "c%%d" %% c, "testing": [],'
      ' "validation": [], "training": ["i%%d.jpg" %% i for i in'
      ' range(%d // classes)]} for c in range(classes)}\n'
      'rng = np.random.RandomState(0)\n'
      'retrain.tf.gfile.Exists = lambda path: True\n'
      'retrain.read_bottleneck_file = lambda path, width=None: rng.rand('
      '%d).astype(np.float32)\n'
      'cache_dir = tempfile.mkdtemp()\n'
      'memory = retrain.BottleneckMemory()\n'
      'retrain.cache_bottlenecks(runner.sess, lists, "/img", cache_dir,'
      ' *runner.tensors, module_name="m", memory=memory)\n'
      'batch, _, _ = retrain.get_random_cached_bottlenecks(runner.sess, lists,'
      ' 100, "training", cache_dir, "/img", *runner.tensors,'
      ' module_name="m", memory=memory)\n'
      'print(bench._peak_rss_mb())\n' % (REPO_DIR, module_dir, count, width))
  output = subprocess.run([sys.executable, '-c', script], check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, cwd=REPO_DIR).stdout
  return float(output.strip().splitlines()[-1])


def beam_available():
  return importlib.util.find_spec('apache_beam') is not None


def local_worker_options(workers):
  """Beam options for the DirectRunner on `workers` local worker processes."""
  return ['--direct_num_workers=%d' % workers,
          '--direct_running_mode=multi_processing']


def time_beam(module_dir, image_dir, runner_options):
  """One beam_bottlenecks.py run over image_dir into a new cache folder.

  Args:
    module_dir: The module.
    image_dir: The images.
    runner_options: Beam's options for the runner (e.g. local_worker_options).

  Returns:
    dict with 'images' (computed), 'seconds' (the pipeline, from its start to
    its end: starting the runner and the workers and loading the module in
    each included) and 'wall_seconds' (the whole command, with Python's
    imports and listing the images).
  """
  bottleneck_dir = tempfile.mkdtemp(prefix='bench_beam_')
  command = [sys.executable, os.path.join(REPO_DIR, 'beam_bottlenecks.py'),
             '--image_dir', image_dir, '--bottleneck_dir', bottleneck_dir,
             '--tfhub_module', module_dir] + list(runner_options)
  start = time.time()
  output = subprocess.run(command, check=False, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          cwd=REPO_DIR).stdout
  wall_seconds = time.time() - start
  shutil.rmtree(bottleneck_dir)
  match = re.search(r'^Bottlenecks: (\d+) computed, .*\(([0-9.]+) s, ', output,
                    re.M)
  if not match:
    raise RuntimeError('beam_bottlenecks.py printed no summary:\n' +
                       output[-3000:])
  return {'images': int(match.group(1)), 'seconds': float(match.group(2)),
          'wall_seconds': wall_seconds}


def time_beam_beyond_startup(module_dir, image_dir, small_dir, runner_options):
  """A full and a small run: end to end, and per image beyond the fixed
  start-up cost.

  Returns:
    dict with 'images', 'seconds', 'wall_seconds' and 'images_per_s' of the
    full run, 'marginal_images_per_s' (None if the small run was not faster
    per image), 'startup_seconds', and the small run's 'small_images',
    'small_seconds' and 'small_wall_seconds'.
  """
  full = time_beam(module_dir, image_dir, runner_options)
  small = time_beam(module_dir, small_dir, runner_options)
  per_image = ((full['seconds'] - small['seconds']) /
               max(full['images'] - small['images'], 1))
  return {
      'images': full['images'], 'seconds': full['seconds'],
      'wall_seconds': full['wall_seconds'],
      'images_per_s': full['images'] / full['seconds'],
      'marginal_images_per_s': 1.0 / per_image if per_image > 0 else None,
      'startup_seconds': small['seconds'] - small['images'] * max(per_image, 0),
      'small_images': small['images'], 'small_seconds': small['seconds'],
      'small_wall_seconds': small['wall_seconds']}


def beam_rows(work, name, module_dir, count, caching_images_per_s):
  """Beam rows for 1 and 2 workers: end to end, and per image beyond the
  fixed start-up cost (from a second, small run of 1/8 of the images)."""
  image_dir = make_image_dir(work, count)
  small_dir = make_image_dir(work, max(count // 8, 16))
  rows = []
  for workers in (1, 2):
    row = {'module': name, 'workers': workers,
           'retrain_caching_images_per_s': caching_images_per_s}
    row.update(time_beam_beyond_startup(module_dir, image_dir, small_dir,
                                        local_worker_options(workers)))
    rows.append(row)
    print('  beam %s, %d worker(s): %.1f images/s' % (
        name, workers, rows[-1]['images_per_s']), flush=True)
  return rows


def run_beam_only(args):
  """Only the Beam rows, next to retrain.py's caching on the same images."""
  work = tempfile.mkdtemp(prefix='retrain_bench_')
  results = {'machine': machine_info(),
             'quick': args.quick, 'beam': []}
  try:
    print('Building modules ...', flush=True)
    modules = {'sample_cnn': make_image_module.export_sample_cnn_module(
        os.path.join(work, 'sample_cnn'))}
    if args.beam_inception:
      modules['inception_v3'] = make_image_module.export_keras_module(
          os.path.join(work, 'inception_v3'), 'inception_v3',
          image_size=args.inception_size)
    for name, module_dir in modules.items():
      count = _beam_counts(args)[name]
      runner = ModuleRunner(module_dir)
      images, seconds = time_caching(runner, make_image_dir(work, count))
      runner.close()
      print('  retrain.py caching %s: %.1f images/s' % (name,
                                                         images / seconds))
      results['beam'].extend(beam_rows(work, name, module_dir, count,
                                       images / seconds))
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return results


def _beam_counts(args):
  return {'sample_cnn': 300 if args.quick else 1200,
          'inception_v3': 64 if args.quick else 320}


def format_beam_table(results):
  """The Beam rows as plain text lines."""
  lines = ['%-13s %7s %7s %9s %17s %10s %22s' % (
      'beam', 'workers', 'images', 'images/s', 'beyond start-up',
      'start-up', 'retrain.py caching')]
  for row in results['beam']:
    marginal = row['marginal_images_per_s']
    lines.append('%-13s %7d %7d %9.1f %17s %9.1fs %15.1f images/s' % (
        row['module'], row['workers'], row['images'], row['images_per_s'],
        '%.1f images/s' % marginal if marginal else '-',
        row['startup_seconds'], row['retrain_caching_images_per_s']))
  return lines


# ----------------------------------------------------------- whole commands

ORIGINAL_SCRIPT = os.path.join(REPO_DIR, 'bench', 'original_retrain.py')
RETRAIN_SCRIPT = os.path.join(REPO_DIR, 'retrain.py')
# The classic stack's venv (tools/setup_venv.sh with RETRAIN_STACK=classic):
# the original needs its hub.Module.
CLASSIC_PYTHON = os.path.join(REPO_DIR, '.venv-classic', 'bin', 'python')
SHARED_DIR = os.path.join(os.path.dirname(REPO_DIR), 'shared')
# The user-sized run (--user_sized): photos made from the dev photos.
USER_SIZED_PHOTOS = 2000
DISTORTION_FLAGS = ['--flip_left_right', '--random_crop', '10',
                    '--random_scale', '10', '--random_brightness', '10']

# One row of the whole-command table: flags go to both commands, our_flags to
# ours only; baseline_from names the row whose baseline runs this row is
# compared with (None: the baseline runs with this row's flags); image_dir
# is the row's own photos (None: the table's).
Scenario = collections.namedtuple('Scenario', [
    'name', 'module_dir', 'flags', 'our_flags', 'target', 'baseline_from',
    'image_dir'], defaults=[None])

# A command that the whole-command table times: its name in the table, the
# Python that runs it and the script.
Command = collections.namedtuple('Command', ['name', 'python', 'script'])


def copy_first_images(source_dir, root, count):
  """Copies the first count images of source_dir, spread over its classes.

  The classes take turns, each giving its next image in sorted order, so
  that every class gets a share.

  Args:
    source_dir: A folder of class folders of images.
    root: Where to create the copy.
    count: How many images to copy.

  Returns:
    The new image folder.
  """
  classes = list_class_images(source_dir)
  image_dir = os.path.join(root, 'first_%d' % count)
  copied, depth = 0, 0
  while copied < count and any(depth < len(paths) for _, paths in classes):
    for class_name, paths in classes:
      if copied < count and depth < len(paths):
        os.makedirs(os.path.join(image_dir, class_name), exist_ok=True)
        shutil.copy(paths[depth], os.path.join(image_dir, class_name))
        copied += 1
    depth += 1
  return image_dir


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
  classes = list_class_images(source_dir)
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


def whole_command_images(work, args):
  """The image folder of the whole-command runs, as the flags ask.

  The sample photos are used under their own names: their '_nohash_' names
  give every class validation and test images, which the original needs
  (make_image_dir's new names can leave a class without any).
  """
  image_dir = args.image_dir or SAMPLE_DIR
  if args.images:
    return copy_first_images(image_dir, work, args.images)
  return image_dir


def mobilenet_module(work, shared_modules):
  """MobileNet v1 0.25@128 as a Hub module, or the sample module without it.

  Returns:
    (module folder, its name for the table).
  """
  frozen_graph = os.path.join(shared_modules, 'mobilenet_v1_0.25_128_frozen',
                              'mobilenet_v1_0.25_128', 'frozen_graph.pb')
  if os.path.exists(frozen_graph):
    return make_image_module.export_frozen_graph_module(
        os.path.join(work, 'mobilenet_v1_025_128'), frozen_graph, 'input:0',
        'MobilenetV1/Logits/AvgPool_1a/AvgPool:0', image_size=128,
        input_range=(-1.0, 1.0)), 'MobileNet v1 0.25@128'
  print('No %s: the sample module stands in for MobileNet.' % frozen_graph,
        flush=True)
  return make_image_module.export_sample_cnn_module(os.path.join(
      work, 'sample_cnn')), 'sample CNN (no MobileNet graph)'


def mobilenet_v2_module(module_dir, shared_modules):
  """The real MobileNet v2 1.0@224 of shared_modules as a Hub module in
  module_dir (made once), or None where shared_modules lacks it."""
  frozen_graph = os.path.join(shared_modules,
                              'mobilenet_v2_1.0_224_dequantized',
                              'frozen_graph.pb')
  if not os.path.exists(frozen_graph):
    return None
  if not os.path.exists(os.path.join(module_dir, 'tfhub_module.pb')):
    make_image_module.export_frozen_graph_module(
        module_dir, frozen_graph, 'input:0', 'MobilenetV2/Logits/AvgPool:0',
        224, (-1.0, 1.0))
  return module_dir


def user_sized_scenarios(work, args):
  """The user-sized row (--user_sized): MobileNet v2 1.0@224 at its
  defaults on USER_SIZED_PHOTOS photos made from --dev_photos."""
  module = mobilenet_v2_module(os.path.join(work, 'mobilenet_v2'),
                               args.shared_modules)
  if module is None or not os.path.isdir(args.dev_photos):
    sys.exit('ERROR: --user_sized needs MobileNet v2 in %s and the photos '
             'of --dev_photos (%s).' % (args.shared_modules, args.dev_photos))
  print('Making %d photos ...' % USER_SIZED_PHOTOS, flush=True)
  image_dir = make_photos(args.dev_photos, os.path.join(
      tempfile.gettempdir(), 'retrain_growth',
      'photos_%d' % USER_SIZED_PHOTOS), USER_SIZED_PHOTOS)
  return [Scenario('MobileNet v2 1.0@224, defaults, %d photos' %
                   USER_SIZED_PHOTOS, module, [], [], 9.0, None, image_dir)]


def whole_command_scenarios(work, args):
  """Builds the modules; returns the Scenarios of the table, in order."""
  steps = lambda count: ['--how_many_training_steps', str(count)]
  bfloat16 = ['--bottleneck_precision', 'bfloat16']
  if args.quick:
    sample = make_image_module.export_sample_cnn_module(
        os.path.join(work, 'sample_cnn'))
    first = 'sample CNN, 10 steps, float32'
    return [
        Scenario(first, sample, steps(10), [], None, None),
        Scenario('same, --bottleneck_precision bfloat16', sample, steps(10),
                 bfloat16, None, first),
        Scenario('sample CNN, 100 steps', sample, steps(100), [], None, None),
        Scenario('sample CNN, all four distortions, 3 steps', sample,
                 steps(3) + DISTORTION_FLAGS, [], None, None)]
  inception = make_image_module.export_keras_module(
      os.path.join(work, 'inception_v3'), 'inception_v3',
      image_size=args.inception_size)
  mobilenet, mobilenet_name = mobilenet_module(work, args.shared_modules)
  first = 'Inception-v3-sized module, 10 steps, float32'
  return [
      Scenario(first, inception, steps(10), [], 1.8, None),
      Scenario('same, --bottleneck_precision bfloat16', inception, steps(10),
               bfloat16, 2.0, first),
      Scenario(mobilenet_name + ', defaults (4000 steps)', mobilenet, [], [],
               3.5, None),
      Scenario(mobilenet_name + ', all four distortions, 100 steps',
               mobilenet, steps(100) + DISTORTION_FLAGS, [], 3.5, None)]


def stack_scenarios(work, args):
  """The Scenarios of the stacks table (--stacks): a cold Inception-sized
  run, MobileNet with the defaults and, where ../shared has them, MobileNet
  v2 1.0@224 with the defaults on the 500 real dev photos."""
  steps = lambda count: ['--how_many_training_steps', str(count)]
  if args.quick:
    sample = make_image_module.export_sample_cnn_module(
        os.path.join(work, 'sample_cnn'))
    return [Scenario('sample CNN, 100 steps', sample, steps(100), [], None,
                     None)]
  inception = make_image_module.export_keras_module(
      os.path.join(work, 'inception_v3'), 'inception_v3',
      image_size=args.inception_size)
  mobilenet, mobilenet_name = mobilenet_module(work, args.shared_modules)
  scenarios = [
      Scenario('Inception-v3-sized module, 10 steps, float32', inception,
               steps(10), [], None, None),
      Scenario(mobilenet_name + ', defaults (4000 steps)', mobilenet, [], [],
               None, None)]
  module = mobilenet_v2_module(os.path.join(work, 'mobilenet_v2'),
                               args.shared_modules)
  if module is not None and os.path.isdir(args.dev_photos):
    scenarios.append(Scenario(
        'MobileNet v2 1.0@224, defaults, %d real photos' % len(
            retrain_images(args.dev_photos)), module, [], [], None, None,
        args.dev_photos))
  else:
    print('No MobileNet v2 in %s or no %s: no MobileNet v2 row.' % (
        args.shared_modules, args.dev_photos), flush=True)
  return scenarios


def retrain_images(image_dir):
  """The image paths that retrain.py's split lists for image_dir."""
  return [name for lists in retrain.create_image_lists(image_dir, 10,
                                                       10).values()
          for category in retrain.CATEGORIES for name in lists[category]]


def whole_command(command, scenario, image_dir, out_dir, ours):
  """The command line of one cold run, its outputs all under out_dir."""
  return ([command.python, command.script, '--image_dir', image_dir,
           '--tfhub_module', scenario.module_dir] + scenario.flags +
          (scenario.our_flags if ours else []) +
          ['--bottleneck_dir', os.path.join(out_dir, 'bottlenecks'),
           '--summaries_dir', os.path.join(out_dir, 'retrain_logs'),
           '--output_graph', os.path.join(out_dir, 'output_graph.pb'),
           '--output_labels', os.path.join(out_dir, 'output_labels.txt'),
           '--saved_model_dir', os.path.join(out_dir, 'saved_model'),
           '--checkpoint_path', os.path.join(out_dir, 'checkpoint',
                                             'retrain_checkpoint')])


def time_whole_command(command):
  """Runs a command; its wall time and its output lines, stamped on arrival.

  Returns:
    (seconds from spawn to exit, list of (seconds since spawn, line)).

  Raises:
    RuntimeError: if the command fails (with the end of its output).
  """
  start = time.time()
  process = subprocess.Popen(
      command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      cwd=REPO_DIR, env=dict(os.environ, PYTHONUNBUFFERED='1'))
  stamped = [(time.time() - start, line) for line in process.stdout]
  returncode = process.wait()
  seconds = time.time() - start
  if returncode:
    raise RuntimeError('%s exited with %d:\n%s' % (' '.join(command),
                                                   returncode, ''.join(
                                                       line for _, line in
                                                       stamped[-40:])))
  return seconds, stamped


def our_phases(stamped, seconds):
  """Where a run of our retrain.py spent its time, from its log lines.

  Args:
    stamped: The run's (seconds since spawn, line) list.
    seconds: The run's wall time.

  Returns:
    dict of seconds: 'startup' (spawn -> the cache scan's "... to compute."
    line), 'caching' (-> the last "N/N bottlenecks computed" line),
    'training' (first -> last "Step" line), 'finish' (last "Step" line ->
    exit), 'fixed' (startup + finish); and 'cached_images' (how many were
    computed).

  Raises:
    RuntimeError: if a line is missing.
  """
  def stamps(pattern):
    return [(at, re.search(pattern, line)) for at, line in stamped
            if re.search(pattern, line)]
  scans = stamps(r'bottlenecks found in the cache, (\d+) to compute\.')
  steps = stamps(r': Step \d+: ')
  if not scans or not steps:
    raise RuntimeError('retrain.py printed no cache scan or Step line:\n' +
                       ''.join(line for _, line in stamped[-40:]))
  startup, to_compute = scans[0][0], int(scans[0][1].group(1))
  computed = stamps(r'(\d+)/%d bottlenecks computed' % to_compute)
  cached_at = computed[-1][0] if computed else startup
  finish = seconds - steps[-1][0]
  return {'startup': startup, 'caching': cached_at - startup,
          'cached_images': to_compute,
          'training': steps[-1][0] - steps[0][0], 'finish': finish,
          'fixed': startup + finish}


def time_scenario_once(work, scenario, image_dir, command, ours):
  """One cold run (fresh output and cache folders) of a Command.

  Returns:
    dict with 'seconds', and for a run of our retrain.py the our_phases
    values.
  """
  out_dir = tempfile.mkdtemp(prefix='whole_run_', dir=work)
  try:
    seconds, stamped = time_whole_command(whole_command(
        command, scenario, scenario.image_dir or image_dir, out_dir, ours))
  finally:
    shutil.rmtree(out_dir, ignore_errors=True)
  run = {'seconds': seconds}
  if command.script == RETRAIN_SCRIPT:
    run.update(our_phases(stamped, seconds))
  return run


def _mean(values):
  return sum(values) / len(values)


def summarize_whole_row(scenario, baseline_runs, our_runs):
  """One table row from the runs of the baseline and of ours.

  Returns:
    dict with 'scenario', 'target' (the ratio aimed at, or None),
    'baseline_from', 'baseline_seconds' and 'ours_seconds' (per run), 'ratio'
    (baseline mean / ours mean), 'ours_phases' and 'baseline_phases' (per
    run, see our_phases: the baseline's when it is our retrain.py too),
    'fixed_seconds' and 'caching_images_per_s' (means over our runs) and
    'baseline_fixed_seconds' (None for the original).
  """
  baseline = [run['seconds'] for run in baseline_runs]
  ours = [run['seconds'] for run in our_runs]
  caching_rates = [run['cached_images'] / run['caching'] for run in our_runs
                   if run['caching'] > 0]
  return {'scenario': scenario.name, 'target': scenario.target,
          'baseline_from': scenario.baseline_from,
          'baseline_seconds': baseline, 'ours_seconds': ours,
          'ratio': _mean(baseline) / _mean(ours), 'ours_phases': our_runs,
          'baseline_phases': baseline_runs,
          'fixed_seconds': _mean([run['fixed'] for run in our_runs]),
          'baseline_fixed_seconds': (
              _mean([run['fixed'] for run in baseline_runs])
              if 'fixed' in baseline_runs[0] else None),
          'caching_images_per_s': (_mean(caching_rates) if caching_rates
                                   else None)}


def whole_command_rows(work, scenarios, image_dir, runs, commands):
  """Times each scenario runs times, the baseline and ours in turn.

  Args:
    work: A folder for the runs' outputs.
    scenarios: The Scenarios.
    image_dir: The photos of the scenarios without their own.
    runs: How many times to run each.
    commands: (baseline, ours) Commands.

  Returns:
    The summarize_whole_row dicts, in the scenarios' order.
  """
  baseline_runs = {scenario.name: [] for scenario in scenarios}
  our_runs = {scenario.name: [] for scenario in scenarios}
  for run_index in range(runs):
    for scenario in scenarios:
      timed = ([(False, baseline_runs)] if scenario.baseline_from is None
               else [])
      for ours, runs_of in timed + [(True, our_runs)]:
        command = commands[ours]
        run = time_scenario_once(work, scenario, image_dir, command, ours)
        runs_of[scenario.name].append(run)
        print('  run %d/%d %s, %s: %.1f s' % (
            run_index + 1, runs, command.name, scenario.name,
            run['seconds']), flush=True)
  return [summarize_whole_row(
      scenario, baseline_runs[scenario.baseline_from or scenario.name],
      our_runs[scenario.name]) for scenario in scenarios]


def add_caching_fraction_of_peak(results, scenarios):
  """Adds to each row the GFLOP/s of our caching over the matching peak.

  The module's work per image is counted by the profiler; the peak is the
  matmul peak of the precision the row's module ran in.
  """
  gflop = {}
  for scenario, row in zip(scenarios, results['whole_commands']):
    if scenario.module_dir not in gflop:
      gflop[scenario.module_dir] = module_gflop_per_image(scenario.module_dir)
    precision = ('bfloat16' if 'bfloat16' in scenario.our_flags
                 else 'float32')
    rate = row['caching_images_per_s']
    row['caching_fraction_of_peak'] = (
        rate * gflop[scenario.module_dir] / results['peak_gflops'][precision]
        if rate else None)


def whole_command_commands(args):
  """The (baseline, ours) Commands of the whole-command table.

  Without --stacks, the original (on the classic stack, for hub.Module)
  against retrain.py on this Python; with it, retrain.py on the classic
  stack against retrain.py on this Python.
  """
  if not os.path.isfile(args.classic_python):
    sys.exit('ERROR: no classic stack at %s, which %s needs: set it up with '
             '"RETRAIN_STACK=classic bash -c \'source tools/setup_venv.sh\'" '
             'or pass --classic_python.' % (
                 args.classic_python, 'the baseline' if args.stacks else
                 "the original's hub.Module"))
  if args.stacks:
    return (Command('ours, classic stack', args.classic_python,
                    RETRAIN_SCRIPT),
            Command("ours, today's stack", sys.executable, RETRAIN_SCRIPT))
  return (Command('original', args.classic_python, ORIGINAL_SCRIPT),
          Command('ours', sys.executable, RETRAIN_SCRIPT))


def tensorflow_version(python):
  """The TensorFlow version that a Python runs."""
  return subprocess.run(
      [python, '-c', 'import tensorflow as tf; print(tf.__version__)'],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
      check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  ).stdout.strip()


def run_whole_commands(args):
  """The whole-command table: builds modules and images, times the runs."""
  work = tempfile.mkdtemp(prefix='retrain_bench_whole_')
  results = {'machine': machine_info(), 'quick': args.quick,
             'runs': args.runs}
  try:
    commands = whole_command_commands(args)
    results['commands'] = [command._asdict() for command in commands]
    results['tensorflow'] = [tensorflow_version(command.python)
                             for command in commands]
    print('Building modules ...', flush=True)
    scenarios = (stack_scenarios if args.stacks else
                 user_sized_scenarios if args.user_sized else
                 whole_command_scenarios)(work, args)
    image_dir = (scenarios[0].image_dir if args.user_sized else
                 whole_command_images(work, args))
    results['images'] = len(retrain_images(image_dir))
    results['image_source'] = (image_dir if args.user_sized else
                               args.image_dir or SAMPLE_DIR)
    print('Matmul peaks ...', flush=True)
    size = 1024 if args.quick else 4096
    results['peak_gflops'] = {'float32': matmul_peak(tf.float32, size, 5),
                              'bfloat16': matmul_peak(tf.bfloat16, size, 5)}
    print('Whole commands (%d images) ...' % results['images'], flush=True)
    results['whole_commands'] = whole_command_rows(work, scenarios, image_dir,
                                                   args.runs, commands)
    add_caching_fraction_of_peak(results, scenarios)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return results


def format_whole_table(results):
  """The whole-command rows as a Markdown table, after the machine's peaks."""
  peaks = results['peak_gflops']
  runs = results['runs']
  baseline, ours = (command['name'] for command in results['commands'])
  lines = ['matmul peak: float32 %.0f GFLOP/s, bfloat16 %.0f GFLOP/s; %d '
           'images from %s; TensorFlow %s (%s), %s (%s)' % (
               peaks['float32'], peaks['bfloat16'], results['images'],
               results['image_source'], results['tensorflow'][0], baseline,
               results['tensorflow'][1], ours),
           '',
           '| scenario (whole process, cold cache; %s) | %s | %s | '
           'ratio | target | fixed costs (ours) | caching (ours) |' % (
               'one run' if runs == 1 else '%d runs' % runs, baseline, ours),
           '|---|---|---|---|---|---|---|']
  for row in results['whole_commands']:
    original = ' / '.join('%.1f' % s for s in row['baseline_seconds']) + ' s'
    if row['baseline_from']:
      original = '(%s)' % original
    caching = row['caching_images_per_s']
    caching = ('%.0f images/s, %.0f%% of peak' % (
        caching, 100 * row['caching_fraction_of_peak']) if caching else '-')
    fixed = '%.1f s' % row['fixed_seconds']
    if row['baseline_fixed_seconds'] is not None:
      fixed += ' (%s: %.1f s)' % (baseline, row['baseline_fixed_seconds'])
    lines.append('| %s | %s | %s | %.2f× | %s | %s | %s |' % (
        row['scenario'], original,
        ' / '.join('%.1f' % s for s in row['ours_seconds']) + ' s',
        row['ratio'], '≥ %.1f×' % row['target'] if row['target'] else '-',
        fixed, caching))
  lines.append('')
  lines.append('ratio = %s mean / %s mean; fixed costs = start-up '
               '(spawn -> cache scan) + finish (last Step line -> exit).' % (
                   baseline, ours))
  return '\n'.join(lines)


# --------------------------------------------------------------------- main


def run(args):
  """Runs every measurement; returns the results dict."""
  work = tempfile.mkdtemp(prefix='retrain_bench_')
  results = {'machine': machine_info(),
             'quick': args.quick}
  try:
    print('Building modules ...', flush=True)
    modules = {
        'sample_cnn': make_image_module.export_sample_cnn_module(
            os.path.join(work, 'sample_cnn')),
        'inception_v3': make_image_module.export_keras_module(
            os.path.join(work, 'inception_v3'), 'inception_v3',
            image_size=args.inception_size),
    }
    print('Matmul peaks ...', flush=True)
    size = 2048 if args.quick else 4096
    results['peak_gflops'] = {
        'float32': matmul_peak(tf.float32, size, 5),
        'bfloat16': matmul_peak(tf.bfloat16, size, 5),
    }
    results['modules'] = {}
    for name, module_dir in modules.items():
      runner = ModuleRunner(module_dir)
      results['modules'][name] = {
          'gflop_per_image': module_gflop_per_image(module_dir),
          'image_size': runner.height, 'feature_width': runner.feature_width}
      runner.close()

    print('Caching ...', flush=True)
    counts = _beam_counts(args)
    results['caching'] = []
    for name, module_dir in modules.items():
      image_dir = make_image_dir(work, counts[name])
      gflop = results['modules'][name]['gflop_per_image']
      for precision in retrain.BOTTLENECK_PRECISIONS:
        runner = ModuleRunner(module_dir, precision)
        count, seconds = time_caching(runner, image_dir)
        row = {'module': name, 'precision': precision, 'images': count,
               'seconds': seconds, 'images_per_s': count / seconds}
        if precision == 'float32':
          row['one_at_a_time_images_per_s'] = time_one_at_a_time(
              runner, image_dir, 32 if name == 'inception_v3' else 200)
        runner.close()
        row['gflops'] = row['images_per_s'] * gflop
        row['fraction_of_peak'] = (row['gflops'] /
                                   results['peak_gflops'][precision])
        results['caching'].append(row)
        print('  %s %s: %.1f images/s' % (name, precision,
                                          row['images_per_s']), flush=True)

    if beam_available():
      print('Beam ...', flush=True)
      results['beam'] = []
      for name in (('sample_cnn', 'inception_v3') if args.beam_inception
                   else ('sample_cnn',)):
        caching = [row for row in results['caching'] if row['module'] == name
                   and row['precision'] == 'float32'][0]
        results['beam'].extend(beam_rows(work, name, modules[name],
                                         _beam_counts(args)[name],
                                         caching['images_per_s']))

    print('Training ...', flush=True)
    sample_images = make_image_dir(work, 250)
    results['training'] = {
        'cached_sample_cnn': time_training(
            modules['sample_cnn'], sample_images, 200 if args.quick else 1000,
            distort=False),
        'cached_inception_v3': time_training(
            modules['inception_v3'], sample_images,
            200 if args.quick else 1000, distort=False),
        'distorted_sample_cnn': time_training(
            modules['sample_cnn'], sample_images, 10 if args.quick else 50,
            distort=True),
    }
    if not args.quick:
      results['training']['distorted_inception_v3'] = time_training(
          modules['inception_v3'], sample_images, 6, distort=True)

    print('Scaling ...', flush=True)
    results['scaling'] = []
    runner = ModuleRunner(modules['sample_cnn'])
    for count in ((300, 600) if args.quick else (300, 1200, 4800)):
      images, seconds = time_caching(runner, make_image_dir(work, count))
      results['scaling'].append({'images': images, 'seconds': seconds,
                                 'images_per_s': images / seconds})
    runner.close()

    print('Memory ...', flush=True)
    count = 10000 if args.quick else 100000
    results['memory'] = {
        'bottlenecks': count, 'width': 2048,
        'rss_mb_with_inception_v3': memory_for_cached_bottlenecks(
            modules['inception_v3'], count, 2048),
    }
    results['peak_rss_mb'] = _peak_rss_mb()
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return results


def format_table(results):
  """The results as a plain text table."""
  lines = []
  peaks = results['peak_gflops']
  lines.append('matmul peak: float32 %.0f GFLOP/s, bfloat16 %.0f GFLOP/s' %
               (peaks['float32'], peaks['bfloat16']))
  for name, info in results['modules'].items():
    lines.append('module %-13s %dx%d -> %d features, %.3f GFLOP/image' % (
        name, info['image_size'], info['image_size'], info['feature_width'],
        info['gflop_per_image']))
  lines.append('')
  lines.append('%-13s %-9s %7s %9s %9s %8s %15s' % (
      'caching', 'precision', 'images', 'images/s', 'GFLOP/s', 'of peak',
      'one-at-a-time'))
  for row in results['caching']:
    original = row.get('one_at_a_time_images_per_s')
    lines.append('%-13s %-9s %7d %9.1f %9.1f %7.0f%% %15s' % (
        row['module'], row['precision'], row['images'], row['images_per_s'],
        row['gflops'], 100 * row['fraction_of_peak'],
        '%.1f images/s' % original if original else ''))
  lines.append('')
  lines.append('%-24s %10s %10s %8s' % ('training', 'ms/step', 'reference',
                                         'ratio'))
  for name, row in results['training'].items():
    reference = row.get('forward_ms', row['floor_ms'])
    kind = 'forward' if 'forward_ms' in row else 'floor'
    lines.append('%-24s %10.2f %10.2f %7.2fx  (vs %s; %.0f ms fixed per run)'
                 % (name, row['step_ms'], reference,
                    row['step_ms'] / reference, kind, row['fixed_ms']))
  lines.append('')
  lines.append('scaling (sample_cnn caching): ' + ', '.join(
      '%d images %.1f s (%.0f/s)' % (row['images'], row['seconds'],
                                     row['images_per_s'])
      for row in results['scaling']))
  memory = results['memory']
  lines.append('memory: %d cached %d-wide bottlenecks + inception_v3 module: '
               '%.0f MB RSS; peak RSS of this benchmark: %.0f MB' % (
                   memory['bottlenecks'], memory['width'],
                   memory['rss_mb_with_inception_v3'],
                   results['peak_rss_mb']))
  if results.get('beam'):
    lines.append('')
    lines.extend(format_beam_table(results))
  return '\n'.join(lines)


def build_parser():
  """The benchmark's command line."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--quick', action='store_true',
                      help='Smaller sizes: a smoke test of the benchmark.')
  parser.add_argument('--inception_size', type=int, default=299,
                      help='Input size of the Inception-v3-sized module.')
  parser.add_argument('--output', default=None,
                      help='Where to write the JSON results (default: '
                      'bench/results/bench.json, bench_beam.json with '
                      '--beam_only, bench_whole.json with --whole_commands).')
  parser.add_argument('--beam_only', action='store_true',
                      help='Only the Apache Beam rows (beam_bottlenecks.py), '
                      "next to retrain.py's caching on the same images.")
  parser.add_argument('--beam_inception', action='store_true',
                      help='Measure the Beam pipeline with the '
                      'Inception-v3-sized module too (slow on few cores).')
  parser.add_argument('--whole_commands', action='store_true',
                      help='Only the whole-command table: retrain.py and the '
                      "original's path (bench/original_retrain.py) timed as "
                      'whole processes, cold.')
  parser.add_argument('--stacks', action='store_true',
                      help='With --whole_commands: retrain.py on the classic '
                      "stack (--classic_python) against retrain.py on this "
                      "Python (today's stack), instead of the original "
                      'against ours.')
  parser.add_argument('--user_sized', action='store_true',
                      help='With --whole_commands: only the user-sized run, '
                      'MobileNet v2 1.0@224 (--shared_modules) at its defaults '
                      'on %d photos made from --dev_photos, against the '
                      'original.' % USER_SIZED_PHOTOS)
  parser.add_argument('--classic_python', default=CLASSIC_PYTHON,
                      help='The classic stack\'s Python, which runs the '
                      "original (it needs hub.Module) and --stacks' baseline "
                      '(default: .venv-classic/bin/python).')
  parser.add_argument('--dev_photos',
                      default=os.path.join(SHARED_DIR, 'photos',
                                           'flower_photos_dev'),
                      help="The real photos of --stacks' MobileNet v2 row and "
                      "of --user_sized.")
  parser.add_argument('--runs', type=int, default=None,
                      help='Cold runs of each whole command (default 2; 1 '
                      'with --quick).')
  parser.add_argument('--image_dir', default=None,
                      help='Class folders of photos for the whole commands '
                      '(default: flower_photos_sample/).')
  parser.add_argument('--images', type=int, default=None,
                      help='Take only the first N images of --image_dir (or of the '
                      'samples), spread over its classes (copied to a '
                      'temporary folder).')
  parser.add_argument('--shared_modules',
                      default=os.path.join(SHARED_DIR, 'modules'),
                      help='Folder holding mobilenet_v1_0.25_128_frozen/ for '
                      'the whole commands (without it, the sample module '
                      'stands in).')
  return parser


def run_and_format(args):
  """Runs what the flags ask; returns (results dict, printable table)."""
  if args.whole_commands:
    results = run_whole_commands(args)
    return results, format_whole_table(results)
  if args.beam_only:
    if not beam_available():
      sys.exit('ERROR: apache_beam is not installed: pip install -r '
               'requirements-beam.txt')
    results = run_beam_only(args)
    return results, '\n'.join(format_beam_table(results))
  results = run(args)
  return results, format_table(results)


def main():
  args = build_parser().parse_args()
  if args.runs is None:
    args.runs = 1 if args.quick else 2
  if args.output is None:
    args.output = os.path.join(REPO_DIR, 'bench', 'results', (
        'bench_whole.json' if args.whole_commands else
        'bench_beam.json' if args.beam_only else 'bench.json'))
  tf.disable_v2_behavior()
  tf.logging.set_verbosity(tf.logging.ERROR)
  results, table = run_and_format(args)
  print()
  print(table)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w') as f:
    json.dump(results, f, indent=2)
  print('\nJSON: %s' % args.output)


if __name__ == '__main__':
  main()
