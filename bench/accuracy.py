#!/usr/bin/env python
r"""Accuracy of retrain.py and the original on photos that no run trains on.

  python bench/accuracy.py [--photos ../shared/photos/flower_photos_dev]
      [--module DIR] [--folds 5] [--seeds 3] [--classic_python PY]

The photos are split into --folds folds (by class, by a hash of each file
name). For each fold and seed, our retrain.py (this Python, --random_seed
seed) and bench/original_retrain.py (--classic_python: it needs hub.Module)
retrain with every flag at its default on the photos of the other folds, and
each frozen graph is scored on the fold's photos, which no run of that fold
saw (neither in training nor in its own validation and test sets). So each
seed scores every photo once per tool, and the two tools are paired photo by
photo.

Both tools share one bottleneck folder: cached values are the same text files
whichever tool wrote them, so this compares training and export, not the
module. The original re-reads and parses each text file at every draw; here
each file is parsed once and kept (the values are the same at every read, so
the trained weights are too: checked bit for bit, seeded, 4000 steps), which
makes a run about 35 s instead of 4 minutes on 2 cores. The frozen graph is
scored by feeding the held-out photos' cached bottlenecks to its
input/BottleneckInputPlaceholder; for the first graph of each tool, the whole
graph is run on the decoded photos too, and must agree.

The module is --module, or MobileNet v2 1.0@224 built from --shared_modules.
It prints per-seed accuracies (over every held-out photo), their mean and
spread, per-fold counts, and the paired difference; bench/results/
accuracy.json has every run. About 15 minutes for 5 folds x 3 seeds on 2
cores. A benchmark, not a test: it asserts nothing.
"""

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(os.path.dirname(REPO_DIR), 'shared')
CLASSIC_PYTHON = os.path.join(REPO_DIR, '.venv-classic', 'bin', 'python')
sys.path.insert(0, REPO_DIR)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


def run_original_parsing_once(argv):
  """bench/original_retrain.py's main, each bottleneck file parsed once."""
  sys.path.insert(0, os.path.join(REPO_DIR, 'bench'))
  import original_retrain  # pylint: disable=g-import-not-at-top
  kept = {}
  read = original_retrain.get_or_create_bottleneck

  def get_or_create_bottleneck(sess, tensors, files, label_name, index,
                               category):
    path = original_retrain.bottleneck_path(files, label_name, index,
                                            category)
    if path not in kept:
      kept[path] = read(sess, tensors, files, label_name, index, category)
    return kept[path]
  original_retrain.get_or_create_bottleneck = get_or_create_bottleneck
  seed = os.environ.get('ORIGINAL_SEED')  # Only for the equivalence check.
  if seed:
    random.seed(int(seed))
    create_module_graph = original_retrain.create_module_graph

    def seeded_module_graph(module_spec):
      values = create_module_graph(module_spec)
      with values[0].as_default():
        original_retrain.tf.set_random_seed(int(seed))
      return values
    original_retrain.create_module_graph = seeded_module_graph
  return original_retrain.main(original_retrain.build_parser().parse_args(
      argv))


def make_folds(photos, folds, work):
  """Symlinked image folders, one per fold, each without that fold's photos.

  Returns:
    {fold: [(class folder, file name), ...]}: the photos each fold holds out.
  """
  held_out = {fold: [] for fold in range(folds)}
  for class_dir in sorted(os.listdir(photos)):
    if not os.path.isdir(os.path.join(photos, class_dir)):
      continue
    names = sorted(
        (name for name in os.listdir(os.path.join(photos, class_dir))
         if name.lower().endswith(IMAGE_SUFFIXES)),
        key=lambda name: hashlib.sha1(('fold' + name).encode()).hexdigest())
    for rank, name in enumerate(names):
      held_out[rank % folds].append((class_dir, name))
      for fold in range(folds):
        if fold != rank % folds:
          os.makedirs(os.path.join(work, 'fold%d' % fold, class_dir),
                      exist_ok=True)
          os.symlink(os.path.abspath(os.path.join(photos, class_dir, name)),
                     os.path.join(work, 'fold%d' % fold, class_dir, name))
  return held_out


def run_tool(tool, python, fold, seed, module, work, steps):
  """Runs one retraining; returns its output folder."""
  out = os.path.join(work, 'runs', '%s_fold%d_seed%d' % (tool, fold, seed))
  os.makedirs(out)
  flags = ['--image_dir', os.path.join(work, 'fold%d' % fold),
           '--tfhub_module', module,
           '--bottleneck_dir', os.path.join(work, 'bottlenecks'),
           '--summaries_dir', os.path.join(out, 'summaries'),
           '--output_graph', os.path.join(out, 'graph.pb'),
           '--output_labels', os.path.join(out, 'labels.txt'),
           '--checkpoint_path', os.path.join(out, 'checkpoint', 'layer')]
  if steps is not None:
    flags += ['--how_many_training_steps', str(steps)]
  if tool == 'ours':
    command = [python, os.path.join(REPO_DIR, 'retrain.py'),
               '--random_seed', str(seed)] + flags
  else:
    command = [python, os.path.abspath(__file__), '--_original'] + flags
  start = time.time()
  with open(os.path.join(out, 'log'), 'w') as log:
    subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True,
                   cwd=REPO_DIR)
  print('%-8s fold %d seed %d: %.0f s' % (tool, fold, seed,
                                          time.time() - start), flush=True)
  return out


def score(out, held_out, bottleneck_dir, module, photos, check_images):
  """Scores a run's frozen graph on held-out photos.

  Returns:
    (number right, mean negative log-likelihood of the true class).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  import retrain  # pylint: disable=g-import-not-at-top
  tf = retrain.tf
  with open(os.path.join(out, 'labels.txt')) as labels_file:
    labels = labels_file.read().split('\n')[:-1]
  truth = np.array([labels.index(retrain.label_of_folder(class_dir))
                    for class_dir, _ in held_out])
  module_name = retrain.module_cache_name(module)
  values = np.stack([retrain.read_bottleneck_file(retrain.get_bottleneck_path(
      {class_dir: {'dir': class_dir, 'held': [name]}}, class_dir, 0,
      bottleneck_dir, 'held', module_name)) for class_dir, name in held_out])
  graph_def = tf.GraphDef()
  with open(os.path.join(out, 'graph.pb'), 'rb') as graph_file:
    graph_def.ParseFromString(graph_file.read())
  with tf.Graph().as_default() as graph:
    tf.import_graph_def(graph_def, name='')
    with tf.Session(graph=graph) as sess:
      probabilities = sess.run('final_result:0', {
          'input/BottleneckInputPlaceholder:0': values})
      if check_images:
        image_data = tf.placeholder(tf.string)
        height, width = graph.get_tensor_by_name(
            'Placeholder:0').shape.as_list()[1:3]
        decoded = retrain.decode_and_resize(image_data, height, width, 3)
        whole = []
        for class_dir, name in held_out:
          with open(os.path.join(photos, class_dir, name), 'rb') as f:
            image = sess.run(decoded, {image_data: f.read()})
          whole.append(sess.run('final_result:0', {'Placeholder:0': image})[0])
        whole = np.array(whole)
        agree = int((whole.argmax(1) == probabilities.argmax(1)).sum())
        print('  %s: the whole graph on the photos agrees on %d of %d '
              '(max |difference| %.2g)' % (
                  os.path.basename(out), agree, len(held_out),
                  np.abs(whole - probabilities).max()), flush=True)
  right = int((probabilities.argmax(1) == truth).sum())
  nll = float(-np.log(np.maximum(
      probabilities[np.arange(len(truth)), truth], 1e-30)).mean())
  return right, nll


def default_module(work, shared_modules):
  import make_image_module  # pylint: disable=g-import-not-at-top
  frozen_graph = os.path.join(shared_modules,
                              'mobilenet_v2_1.0_224_dequantized',
                              'frozen_graph.pb')
  if not os.path.exists(frozen_graph):
    sys.exit('No %s: pass --module.' % frozen_graph)
  return make_image_module.export_frozen_graph_module(
      os.path.join(work, 'mobilenet_v2'), frozen_graph, 'input:0',
      'MobilenetV2/Logits/AvgPool:0', 224, (-1.0, 1.0))


def photos_and_module_parser(doc):
  """An ArgumentParser with the flags that pick the photos and the module."""
  parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
  parser.add_argument('--photos', default=os.path.join(
      SHARED_DIR, 'photos', 'flower_photos_dev'))
  parser.add_argument('--module', default=None,
                      help='TF1 Hub module folder (default: MobileNet v2 '
                      'from --shared_modules)')
  parser.add_argument('--shared_modules',
                      default=os.path.join(SHARED_DIR, 'modules'))
  return parser


def summarize(results, tools, folds, seeds, total):
  """Prints the table; results[(tool, fold, seed)] = (right, nll)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  per_seed = {}
  for tool in tools:
    accuracy = [100.0 * sum(results[(tool, fold, seed)][0]
                            for fold in range(folds)) / total
                for seed in seeds]
    nll = np.mean([results[key][1] for key in results if key[0] == tool])
    per_seed[tool] = accuracy
    print('%-8s accuracy on %d held-out photos, per seed: %s; mean %.2f%%, '
          'sd %.2f; held-out NLL %.4f' % (
              tool, total, ' '.join('%.1f' % a for a in accuracy),
              np.mean(accuracy), np.std(accuracy, ddof=1) if len(seeds) > 1
              else 0.0, nll))
    print('         right per fold (seeds %s): %s' % (
        ','.join(map(str, seeds)), '  '.join(
            ','.join(str(results[(tool, fold, seed)][0]) for seed in seeds)
            for fold in range(folds))))
  if len(tools) == 2:
    difference = np.subtract(per_seed[tools[0]], per_seed[tools[1]])
    print('%s - %s: %+.2f points (sd over seeds %.2f)' % (
        tools[0], tools[1], difference.mean(),
        np.std(difference, ddof=1) if len(seeds) > 1 else 0.0))


def main():
  if sys.argv[1:2] == ['--_original']:
    return run_original_parsing_once(sys.argv[2:])
  parser = photos_and_module_parser(__doc__)
  parser.add_argument('--folds', type=int, default=5)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--how_many_training_steps', type=int, default=None,
                      help='default: the tools\' default (4000)')
  parser.add_argument('--tools', default='ours,original')
  parser.add_argument('--classic_python', default=CLASSIC_PYTHON)
  parser.add_argument('--work', default=None,
                      help='working folder (default: a new temporary one)')
  parser.add_argument('--output', default=os.path.join(
      REPO_DIR, 'bench', 'results', 'accuracy.json'))
  args = parser.parse_args()
  tools = args.tools.split(',')
  if 'original' in tools and not os.path.isfile(args.classic_python):
    sys.exit('No %s: the original needs the classic stack (hub.Module); '
             'pass --classic_python.' % args.classic_python)
  if args.folds < 2:
    sys.exit('--folds must be at least 2.')
  work = args.work or tempfile.mkdtemp(prefix='retrain_accuracy_')
  module = os.path.abspath(args.module or default_module(work,
                                                         args.shared_modules))
  held_out = make_folds(args.photos, args.folds, work)
  total = sum(len(photos) for photos in held_out.values())
  seeds = list(range(1, args.seeds + 1))
  pythons = {'ours': sys.executable, 'original': args.classic_python}
  results, runs = {}, []
  for seed in seeds:
    for fold in range(args.folds):
      for tool in tools:
        runs.append((tool, fold, seed, run_tool(
            tool, pythons[tool], fold, seed, module, work,
            args.how_many_training_steps)))
  checked = set()
  for tool, fold, seed, out in runs:
    results[(tool, fold, seed)] = score(
        out, held_out[fold], os.path.join(work, 'bottlenecks'), module,
        args.photos, tool not in checked)
    checked.add(tool)
  summarize(results, tools, args.folds, seeds, total)
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, 'w') as output:
    json.dump({'photos': args.photos, 'module': module, 'folds': args.folds,
               'held_out': total, 'runs': [
                   {'tool': tool, 'fold': fold, 'seed': seed, 'right': right,
                    'nll': nll}
                   for (tool, fold, seed), (right, nll) in results.items()]},
              output, indent=1)
  print('Runs in %s; results in %s' % (work, args.output))
  return 0


if __name__ == '__main__':
  sys.exit(main())
