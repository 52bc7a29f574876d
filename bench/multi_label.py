#!/usr/bin/env python
r"""Multi-label retraining and class weights, measured on photos no run trains on.

  python bench/multi_label.py [--photos ../shared/photos/flower_photos_dev]
      [--module DIR] [--seeds 3] [--what multi_label,imbalanced]

Each class's photos are split by a hash of the file name: 80% may be trained
on, 20% are held out and only scored. From them it makes two data sets:

- multi_label: every photo alone (labelled with its class) and as many pairs
  of photos of two different classes side by side (labelled with both),
  described by a labels CSV; retrain.py --image_labels trains on the
  trainable ones, and each frozen graph is scored on the held-out singles and
  pairs at --multi_label_threshold 0.5: micro- and macro-F1, exact-set
  accuracy.
- imbalanced: one class keeps all its trainable photos, the others 10 each;
  retrained with --class_weights none and balanced, scored on the held-out
  photos of every class (the same number per class): recall of the small
  classes, of the large one, and accuracy. Each class is the large one in
  turn.

Scores come from each run's frozen graph, fed the held-out photos'
bottlenecks (computed once with the module). Prints a table per data set;
bench/results/multi_label.json has every run. A benchmark: it asserts nothing.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(os.path.dirname(REPO_DIR), 'shared')
sys.path.insert(0, REPO_DIR)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import accuracy  # pylint: disable=g-import-not-at-top,wrong-import-position

SIDE = 224  # Each photo of a pair is resized to SIDE x SIDE.
SMALL_CLASS_PHOTOS = 10


def split_photos(photos):
  """{class folder: (trainable names, held-out names)}, 80/20 by name hash."""
  split = {}
  for class_dir in sorted(os.listdir(photos)):
    folder = os.path.join(photos, class_dir)
    if not os.path.isdir(folder):
      continue
    names = sorted((name for name in os.listdir(folder)
                    if name.lower().endswith(accuracy.IMAGE_SUFFIXES)),
                   key=lambda name: hashlib.sha1(name.encode()).hexdigest())
    held = len(names) // 5
    split[class_dir] = (names[held:], names[:held])
  return split


def make_pairs(photos, split, part, out_dir, rng):
  """Writes pairs of photos of two different classes side by side into
  out_dir; returns [(file name, [class, class])], one pair per photo."""
  classes = sorted(split)
  pairs = []
  for first in classes:
    for index, name in enumerate(split[first][part]):
      second = classes[(classes.index(first) + 1 + rng.randint(
          len(classes) - 1)) % len(classes)]
      other = split[second][part][rng.randint(len(split[second][part]))]
      halves = [Image.open(os.path.join(photos, folder, photo)).convert(
          'RGB').resize((SIDE, SIDE)) for folder, photo in
                ((first, name), (second, other))]
      pair = Image.new('RGB', (2 * SIDE, SIDE))
      pair.paste(halves[0], (0, 0))
      pair.paste(halves[1], (SIDE, 0))
      file_name = 'pair_%s_%03d.jpg' % (first, index)
      pair.save(os.path.join(out_dir, file_name), quality=90)
      pairs.append((file_name, [first, second]))
  return pairs


def make_multi_label(photos, split, work):
  """The multi-label folders: train/ (with labels.csv) and held_out/;
  returns the held-out [(path, [labels])]."""
  rng = np.random.RandomState(0)
  held_out = []
  for part, folder in ((0, 'train'), (1, 'held_out')):
    out_dir = os.path.join(work, 'multi_label', folder)
    os.makedirs(out_dir, exist_ok=True)
    rows = [(os.path.join(class_dir, name), [class_dir])
            for class_dir in sorted(split) for name in split[class_dir][part]]
    for class_dir in split:
      os.makedirs(os.path.join(out_dir, class_dir), exist_ok=True)
      for name in split[class_dir][part]:
        target = os.path.join(out_dir, class_dir, name)
        if not os.path.exists(target):
          os.symlink(os.path.join(photos, class_dir, name), target)
    rows += make_pairs(photos, split, part, out_dir, rng)
    if part == 0:
      with open(os.path.join(out_dir, 'labels.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'labels'])
        writer.writerows((path, ' '.join(labels)) for path, labels in rows)
    else:
      held_out = [(os.path.join(out_dir, path), labels)
                  for path, labels in rows]
  return held_out


def make_imbalanced(photos, split, work, large):
  """A class folder tree with all of large's trainable photos and
  SMALL_CLASS_PHOTOS of each other class's; returns its path."""
  out_dir = os.path.join(work, 'imbalanced_' + large)
  for class_dir, (trainable, _) in split.items():
    os.makedirs(os.path.join(out_dir, class_dir), exist_ok=True)
    keep = trainable if class_dir == large else trainable[:SMALL_CLASS_PHOTOS]
    for name in keep:
      target = os.path.join(out_dir, class_dir, name)
      if not os.path.exists(target):
        os.symlink(os.path.join(photos, class_dir, name), target)
  return out_dir


def bottlenecks_of(paths, module):
  """float32 [len(paths), width]: the module's features of each image."""
  import retrain  # pylint: disable=g-import-not-at-top
  sess, tensors = retrain.create_bottleneck_session(
      retrain.load_module_spec(module))
  values = []
  for path in paths:
    with open(path, 'rb') as image_file:
      values.append(retrain.run_bottleneck_on_image(
          sess, image_file.read(), *tensors))
  sess.close()
  return np.array(values, np.float32)


def scores_of(graph_path, bottlenecks):
  """The frozen graph's final_result for the given bottlenecks."""
  import retrain  # pylint: disable=g-import-not-at-top
  tf = retrain.tf
  graph_def = tf.GraphDef()
  with open(graph_path, 'rb') as graph_file:
    graph_def.ParseFromString(graph_file.read())
  with tf.Graph().as_default() as graph:
    tf.import_graph_def(graph_def, name='')
    with tf.Session(graph=graph) as sess:
      return sess.run('final_result:0', {
          'input/BottleneckInputPlaceholder:0': bottlenecks})


def retrain_run(image_dir, out, module, seed, bottleneck_dir, extra):
  """Runs retrain.py at its defaults but extra; returns the frozen graph's
  path and its labels."""
  os.makedirs(out, exist_ok=True)
  command = [sys.executable, os.path.join(REPO_DIR, 'retrain.py'),
             '--image_dir', image_dir, '--tfhub_module', module,
             '--output_graph', os.path.join(out, 'graph.pb'),
             '--output_labels', os.path.join(out, 'labels.txt'),
             '--bottleneck_dir', bottleneck_dir,
             '--summaries_dir', os.path.join(out, 'logs'),
             '--random_seed', str(seed)] + extra
  with open(os.path.join(out, 'log.txt'), 'w') as log:
    subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
  with open(os.path.join(out, 'labels.txt')) as labels_file:
    return os.path.join(out, 'graph.pb'), labels_file.read().split('\n')[:-1]


def multi_label_scores(scores, truth, threshold=0.5):
  """micro-F1, macro-F1 and exact-set accuracy of scores against truth
  (both [images, labels]; truth 0/1)."""
  predicted = scores >= threshold
  truth = truth.astype(bool)
  true_positives = (predicted & truth).sum(0)
  false_positives = (predicted & ~truth).sum(0)
  false_negatives = (~predicted & truth).sum(0)
  per_label = 2 * true_positives / np.maximum(
      2 * true_positives + false_positives + false_negatives, 1)
  micro = 2 * true_positives.sum() / max(
      2 * true_positives.sum() + false_positives.sum() +
      false_negatives.sum(), 1)
  exact = float((predicted == truth).all(1).mean())
  return float(micro), float(per_label.mean()), exact


def run_multi_label(photos, split, work, module, seeds, results):
  held_out = make_multi_label(photos, split, work)
  values = bottlenecks_of([path for path, _ in held_out], module)
  is_pair = np.array([len(labels) == 2 for _, labels in held_out])
  print('multi_label: %d trainable images, %d held out (%d pairs)' % (
      sum(1 for _ in open(os.path.join(work, 'multi_label', 'train',
                                       'labels.csv'))) - 1,
      len(held_out), is_pair.sum()), flush=True)
  for seed in seeds:
    out = os.path.join(work, 'runs', 'multi_label_%d' % seed)
    graph, labels = retrain_run(
        os.path.join(work, 'multi_label', 'train'), out, module, seed,
        os.path.join(work, 'bottlenecks'), [
            '--image_labels',
            os.path.join(work, 'multi_label', 'train', 'labels.csv')])
    scores = scores_of(graph, values)
    truth = np.array([[label in image_labels for label in labels]
                      for _, image_labels in held_out], np.float32)
    row = {'seed': seed}
    for name, chosen in (('all', slice(None)), ('pairs', is_pair),
                         ('singles', ~is_pair)):
      row[name] = multi_label_scores(scores[chosen], truth[chosen])
    results.append(dict(what='multi_label', **row))
    print('  seed %d: micro-F1 / macro-F1 / exact-set: all %s, pairs %s, '
          'singles %s' % (seed, *('%.3f / %.3f / %.3f' % row[name]
                                  for name in ('all', 'pairs', 'singles'))),
          flush=True)


def run_imbalanced(photos, split, work, module, seeds, weightings, results):
  classes = sorted(split)
  held_out = [(class_dir, os.path.join(photos, class_dir, name))
              for class_dir in classes for name in split[class_dir][1]]
  values = bottlenecks_of([path for _, path in held_out], module)
  truth = np.array([classes.index(class_dir) for class_dir, _ in held_out])
  for large in classes:
    image_dir = make_imbalanced(photos, split, work, large)
    for weights in weightings:
      for seed in seeds:
        out = os.path.join(work, 'runs', 'imbalanced_%s_%s_%d' % (
            large, weights, seed))
        graph, labels = retrain_run(
            image_dir, out, module, seed, os.path.join(work, 'bottlenecks'),
            ['--class_weights', weights] if weights != 'none' else [])
        assert labels == [retrain_label(class_dir) for class_dir in classes]
        predicted = scores_of(graph, values).argmax(1)
        recall = [float((predicted[truth == index] == index).mean())
                  for index in range(len(classes))]
        small = [r for index, r in enumerate(recall)
                 if classes[index] != large]
        results.append({'what': 'imbalanced', 'large': large,
                        'weights': weights, 'seed': seed, 'recall': recall})
        print('  large %-10s %-8s seed %d: small-class recall %.3f, large '
              '%.3f, accuracy %.3f' % (
                  large, weights, seed, np.mean(small),
                  recall[classes.index(large)],
                  float((predicted == truth).mean())), flush=True)
  for weights in weightings:
    rows = [r for r in results if r.get('weights') == weights]
    small = [np.mean([v for index, v in enumerate(r['recall'])
                      if classes[index] != r['large']]) for r in rows]
    large = [r['recall'][classes.index(r['large'])] for r in rows]
    print('imbalanced, --class_weights %-8s: small-class recall %.3f '
          '(sd %.3f over %d runs), large-class recall %.3f, accuracy %.3f' % (
              weights, np.mean(small), np.std(small), len(rows),
              np.mean(large), np.mean([np.mean(r['recall']) for r in rows])))


def retrain_label(class_dir):
  import retrain  # pylint: disable=g-import-not-at-top
  return retrain.label_of_folder(class_dir)


def main():
  parser = accuracy.photos_and_module_parser(__doc__)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--what', default='multi_label,imbalanced')
  parser.add_argument('--class_weights', default='none,balanced',
                      help='the --class_weights values to compare')
  parser.add_argument('--work', default=None,
                      help='working folder (default: a new temporary one)')
  parser.add_argument('--output', default=os.path.join(
      REPO_DIR, 'bench', 'results', 'multi_label.json'))
  args = parser.parse_args()
  if not os.path.isdir(args.photos):
    sys.exit('No %s: pass --photos.' % args.photos)
  work = args.work or tempfile.mkdtemp(prefix='retrain_multi_label_')
  module = os.path.abspath(args.module or accuracy.default_module(
      work, args.shared_modules))
  split = split_photos(args.photos)
  seeds = list(range(1, args.seeds + 1))
  results = []
  if 'multi_label' in args.what:
    run_multi_label(args.photos, split, work, module, seeds, results)
  if 'imbalanced' in args.what:
    run_imbalanced(args.photos, split, work, module, seeds,
                   args.class_weights.split(','), results)
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, 'w') as output:
    json.dump({'photos': args.photos, 'module': module, 'runs': results},
              output, indent=1)
  print('Runs in %s; results in %s' % (work, args.output))
  return 0


if __name__ == '__main__':
  sys.exit(main())
