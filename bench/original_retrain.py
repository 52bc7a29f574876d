#!/usr/bin/env python
r"""The original TensorFlow Hub retrain.py's path, for the whole-command bench.

  python bench/original_retrain.py --image_dir DIR --tfhub_module MODULE \
      --how_many_training_steps N [--flip_left_right --random_crop 10 \
      --random_scale 10 --random_brightness 10] --bottleneck_dir ... \
      --summaries_dir ... --output_graph ... --output_labels ... \
      --saved_model_dir ... --checkpoint_path ...

A re-implementation, from its documented behaviour, of what the classic
tensorflow/hub examples/image_retraining/retrain.py does, so that
bench/bench.py --whole_commands can time it next to ours as users run it:

- caching: one image at a time, two Session calls per image (decode and
  resize, then the module), each value written to a comma-separated text file
  bottleneck_dir/<class>/<image name>_<module>.txt, which is read instead when
  it exists;
- training: every step draws train_batch_size random training images (with
  replacement) and reads each one's text file again, then runs the merged
  summaries and the train op; every eval_step_interval steps (and the last) it
  does the same for validation_batch_size validation images and evaluates;
- with distortions: no caching pass; every training image of every step is
  read from its file, distorted by one Session call and run through the
  module by another; validation and test values are cached on first use;
- at the end: a checkpoint, then an eval graph (the module instantiated
  again) restored from it for the final test, another for the frozen graph
  and the labels, and a third for the SavedModel.

It instantiates the module with hub.Module, as the original did, so it runs
on the classic stack (requirements-classic.txt: tensorflow_hub <= 0.15), the
bench in .venv-classic. The graph pieces are retrain.py's public functions
that keep the original's names, signatures and ops (the split, decoding, distortions, the new layer and
the accuracy). Flags the bench does not use are left out. Options that
retrain.py added since (resuming, bfloat16, TF Lite, ...) are not here.
"""

import argparse
import collections
from datetime import datetime
import os
import random
import sys

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow.compat.v1 as tf
import tensorflow_hub as hub

import retrain
# pylint: enable=g-import-not-at-top,wrong-import-position

if not hasattr(hub, 'Module'):
  sys.exit('original_retrain.py needs hub.Module (tensorflow_hub <= 0.15): run '
           'it with the classic stack, e.g. .venv-classic/bin/python.')

MAX_NUM_IMAGES_PER_CLASS = retrain.MAX_NUM_IMAGES_PER_CLASS

# The training graph's tensors that the caching and the batches use.
ImageTensors = collections.namedtuple('ImageTensors', [
    'jpeg_data', 'decoded_image', 'resized_input', 'bottleneck'])

# Where the bottleneck text files of a run go.
BottleneckFiles = collections.namedtuple('BottleneckFiles', [
    'image_lists', 'image_dir', 'bottleneck_dir', 'module_name'])

# What the training loop runs and feeds.
TrainOps = collections.namedtuple('TrainOps', [
    'train_step', 'cross_entropy', 'bottleneck_input', 'ground_truth_input',
    'evaluation_step', 'merged'])


# ------------------------------------------------------------ bottleneck files


def bottleneck_path(files, label_name, index, category):
  """The text file of one image's bottleneck values.

  Args:
    files: The run's BottleneckFiles.
    label_name: The image's class.
    index: Index of the image in its class and category (taken modulo their
      count).
    category: 'training', 'testing' or 'validation'.

  Returns:
    bottleneck_dir/<class folder>/<image name>_<module name>.txt, with the
    module name's '://', '/', ':' and '\\' as '~'.
  """
  module_name = files.module_name
  for separator in ('://', '/', ':', '\\'):
    module_name = module_name.replace(separator, '~')
  return retrain.get_image_path(files.image_lists, label_name, index,
                                files.bottleneck_dir,
                                category) + '_' + module_name + '.txt'


def compute_bottleneck(sess, tensors, image_path):
  """The module's values for one image file: two Session calls.

  Returns:
    A 1-D numpy array of the bottleneck values.
  """
  with open(image_path, 'rb') as image_file:
    image_data = image_file.read()
  resized_image = sess.run(tensors.decoded_image,
                           {tensors.jpeg_data: image_data})
  values = sess.run(tensors.bottleneck, {tensors.resized_input: resized_image})
  return np.squeeze(values)


def create_bottleneck_file(sess, tensors, files, label_name, index, category,
                           path):
  """Computes one image's values and writes them as comma-separated text."""
  tf.logging.info('Creating bottleneck at ' + path)
  image_path = retrain.get_image_path(files.image_lists, label_name, index,
                                      files.image_dir, category)
  values = compute_bottleneck(sess, tensors, image_path)
  with open(path, 'w') as bottleneck_file:
    bottleneck_file.write(','.join(str(value) for value in values))


def get_or_create_bottleneck(sess, tensors, files, label_name, index,
                             category):
  """One image's values, read from its text file (written first if missing).

  Returns:
    The values as a list of floats, parsed from the file every time.
  """
  os.makedirs(os.path.join(files.bottleneck_dir,
                           files.image_lists[label_name]['dir']),
              exist_ok=True)
  path = bottleneck_path(files, label_name, index, category)
  if not os.path.exists(path):
    create_bottleneck_file(sess, tensors, files, label_name, index, category,
                           path)
  with open(path) as bottleneck_file:
    text = bottleneck_file.read()
  try:
    return [float(value) for value in text.split(',')]
  except ValueError:
    tf.logging.warning('Invalid float found, recreating bottleneck')
    create_bottleneck_file(sess, tensors, files, label_name, index, category,
                           path)
    with open(path) as bottleneck_file:
      return [float(value) for value in bottleneck_file.read().split(',')]


def cache_bottlenecks(sess, tensors, files):
  """Makes sure every image of every set has its text file, one at a time."""
  created = 0
  for label_name, label_lists in files.image_lists.items():
    for category in retrain.CATEGORIES:
      for index in range(len(label_lists[category])):
        get_or_create_bottleneck(sess, tensors, files, label_name, index,
                                 category)
        created += 1
        if created % 100 == 0:
          tf.logging.info('%d bottleneck files created.' % created)


# -------------------------------------------------------------------- batches


def random_cached_bottlenecks(sess, tensors, files, how_many, category):
  """Bottlenecks of random images of a set, each read from its text file.

  Args:
    sess: The training Session.
    tensors: The ImageTensors, to compute a missing file.
    files: The run's BottleneckFiles.
    how_many: Images to draw at random, with replacement; a negative number
      takes every image of the set, in order.
    category: 'training', 'testing' or 'validation'.

  Returns:
    (list of value lists, list of class indices, list of image paths).
  """
  label_names = list(files.image_lists.keys())
  if how_many >= 0:
    picks = [(random.randrange(len(label_names)),
              random.randrange(MAX_NUM_IMAGES_PER_CLASS + 1))
             for _ in range(how_many)]
  else:
    picks = [(label_index, image_index)
             for label_index, label_name in enumerate(label_names)
             for image_index in range(
                 len(files.image_lists[label_name][category]))]
  bottlenecks, ground_truths, filenames = [], [], []
  for label_index, image_index in picks:
    label_name = label_names[label_index]
    bottlenecks.append(get_or_create_bottleneck(
        sess, tensors, files, label_name, image_index, category))
    ground_truths.append(label_index)
    filenames.append(retrain.get_image_path(
        files.image_lists, label_name, image_index, files.image_dir,
        category))
  return bottlenecks, ground_truths, filenames


def random_distorted_bottlenecks(sess, tensors, files, how_many,
                                 distortion_tensors):
  """Bottlenecks of random training images, each distorted afresh.

  Each image is read from its file, distorted by one Session call and run
  through the module by another.

  Returns:
    (list of value arrays, list of class indices).
  """
  jpeg_input, distorted_image = distortion_tensors
  label_names = list(files.image_lists.keys())
  bottlenecks, ground_truths = [], []
  for _ in range(how_many):
    label_index = random.randrange(len(label_names))
    image_path = retrain.get_image_path(
        files.image_lists, label_names[label_index],
        random.randrange(MAX_NUM_IMAGES_PER_CLASS + 1), files.image_dir,
        'training')
    with open(image_path, 'rb') as image_file:
      image_data = image_file.read()
    distorted = sess.run(distorted_image, {jpeg_input: image_data})
    values = sess.run(tensors.bottleneck, {tensors.resized_input: distorted})
    bottlenecks.append(np.squeeze(values))
    ground_truths.append(label_index)
  return bottlenecks, ground_truths


# ------------------------------------------------------------------- training


def create_module_graph(module_spec):
  """A new graph with the module applied to a float32 image placeholder.

  Returns:
    (graph, bottleneck tensor, resized input placeholder, whether the module
    has fake quantization ops).
  """
  height, width = module_spec.image_size
  with tf.Graph().as_default() as graph:
    resized_input = tf.placeholder(tf.float32, [None, height, width, 3])
    bottleneck = hub.Module(module_spec.path)(resized_input)
    wants_quantization = any(node.op in retrain.FAKE_QUANT_OPS
                             for node in graph.as_graph_def().node)
  return graph, bottleneck, resized_input, wants_quantization


def run_training(sess, flags, ops, next_training_batch, files, tensors):
  """The training loop: summaries every step, evaluation every interval.

  Args:
    sess: The training Session.
    flags: The parsed flags.
    ops: The TrainOps.
    next_training_batch: Returns (bottlenecks, class indices) of a new
      training batch.
    files: The run's BottleneckFiles, for the validation batches.
    tensors: The ImageTensors.
  """
  train_writer = tf.summary.FileWriter(
      os.path.join(flags.summaries_dir, 'train'), sess.graph)
  validation_writer = tf.summary.FileWriter(
      os.path.join(flags.summaries_dir, 'validation'))
  for step in range(flags.how_many_training_steps):
    bottlenecks, ground_truth = next_training_batch()
    feed = {ops.bottleneck_input: bottlenecks,
            ops.ground_truth_input: ground_truth}
    train_summary, _ = sess.run([ops.merged, ops.train_step], feed)
    train_writer.add_summary(train_summary, step)
    is_last_step = step + 1 == flags.how_many_training_steps
    if step % flags.eval_step_interval == 0 or is_last_step:
      train_accuracy, cross_entropy = sess.run(
          [ops.evaluation_step, ops.cross_entropy], feed)
      tf.logging.info('%s: Step %d: Train accuracy = %.1f%%' %
                      (datetime.now(), step, train_accuracy * 100))
      tf.logging.info('%s: Step %d: Cross entropy = %f' %
                      (datetime.now(), step, cross_entropy))
      validation_bottlenecks, validation_truth, _ = random_cached_bottlenecks(
          sess, tensors, files, flags.validation_batch_size, 'validation')
      validation_summary, validation_accuracy = sess.run(
          [ops.merged, ops.evaluation_step],
          {ops.bottleneck_input: validation_bottlenecks,
           ops.ground_truth_input: validation_truth})
      validation_writer.add_summary(validation_summary, step)
      tf.logging.info('%s: Step %d: Validation accuracy = %.1f%% (N=%d)' %
                      (datetime.now(), step, validation_accuracy * 100,
                       len(validation_bottlenecks)))
  train_writer.close()
  validation_writer.close()


# -------------------------------------------------------- evaluation, exports


def build_eval_session(module_spec, class_count, flags):
  """A new graph with the module and the new layer, restored from the
  training checkpoint.

  Returns:
    (Session, resized input, bottleneck input, ground truth input,
    evaluation step, prediction).
  """
  graph, bottleneck, resized_input, wants_quantization = create_module_graph(
      module_spec)
  eval_sess = tf.Session(graph=graph)
  with graph.as_default():
    _, _, bottleneck_input, ground_truth_input, final_tensor = (
        retrain.add_final_retrain_ops(
            class_count, flags.final_tensor_name, bottleneck,
            wants_quantization, is_training=False,
            learning_rate=flags.learning_rate))
    tf.train.Saver().restore(eval_sess, flags.checkpoint_path)
    evaluation_step, prediction = retrain.add_evaluation_step(
        final_tensor, ground_truth_input)
  return (eval_sess, resized_input, bottleneck_input, ground_truth_input,
          evaluation_step, prediction)


def run_final_eval(sess, tensors, files, module_spec, flags):
  """Tests the trained layer on every test image, in a rebuilt eval graph."""
  test_bottlenecks, test_truth, _ = random_cached_bottlenecks(
      sess, tensors, files, flags.test_batch_size, 'testing')
  (eval_sess, _, bottleneck_input, ground_truth_input, evaluation_step,
   prediction) = build_eval_session(module_spec, len(files.image_lists), flags)
  test_accuracy, _ = eval_sess.run(
      [evaluation_step, prediction],
      {bottleneck_input: test_bottlenecks, ground_truth_input: test_truth})
  tf.logging.info('Final test accuracy = %.1f%% (N=%d)' %
                  (test_accuracy * 100, len(test_bottlenecks)))
  eval_sess.close()


def save_graph_to_file(module_spec, class_count, flags):
  """Writes the frozen eval graph (rebuilt and restored) to --output_graph."""
  eval_sess = build_eval_session(module_spec, class_count, flags)[0]
  graph_def = tf.graph_util.convert_variables_to_constants(
      eval_sess, eval_sess.graph.as_graph_def(), [flags.final_tensor_name])
  with open(flags.output_graph, 'wb') as graph_file:
    graph_file.write(graph_def.SerializeToString())
  eval_sess.close()


def export_model(module_spec, class_count, flags):
  """Writes the SavedModel of a rebuilt, restored eval graph."""
  eval_sess, resized_input = build_eval_session(module_spec, class_count,
                                                flags)[:2]
  with eval_sess.graph.as_default() as graph:
    tf.saved_model.simple_save(
        eval_sess, flags.saved_model_dir, inputs={'image': resized_input},
        outputs={'prediction': graph.get_tensor_by_name(
            flags.final_tensor_name + ':0')},
        legacy_init_op=tf.group(tf.tables_initializer(),
                                name='legacy_init_op'))
  eval_sess.close()


# ----------------------------------------------------------------------- main


def prepare_file_system(flags):
  """Clears the summaries folder and creates the output folders."""
  if tf.gfile.Exists(flags.summaries_dir):
    tf.gfile.DeleteRecursively(flags.summaries_dir)
  tf.gfile.MakeDirs(flags.summaries_dir)
  for path in (flags.output_graph, flags.output_labels,
               flags.checkpoint_path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def build_training_graph(module_spec, class_count, flags):
  """The module, the new layer, the decoding and (if asked) distortions.

  Returns:
    (graph, ImageTensors, TrainOps without evaluation_step and merged,
    distortion tensors or None, final tensor).
  """
  graph, bottleneck, resized_input, wants_quantization = create_module_graph(
      module_spec)
  with graph.as_default():
    (train_step, cross_entropy, bottleneck_input, ground_truth_input,
     final_tensor) = retrain.add_final_retrain_ops(
         class_count, flags.final_tensor_name, bottleneck,
         wants_quantization, is_training=True,
         learning_rate=flags.learning_rate)
    jpeg_data, decoded_image = retrain.add_jpeg_decoding(module_spec)
    distortion_tensors = None
    if distorts(flags):
      distortion_tensors = retrain.add_input_distortions(
          flags.flip_left_right, flags.random_crop, flags.random_scale,
          flags.random_brightness, module_spec)
  tensors = ImageTensors(jpeg_data, decoded_image, resized_input, bottleneck)
  ops = TrainOps(train_step, cross_entropy, bottleneck_input,
                 ground_truth_input, None, None)
  return graph, tensors, ops, distortion_tensors, final_tensor


def distorts(flags):
  return retrain.should_distort_images(
      flags.flip_left_right, flags.random_crop, flags.random_scale,
      flags.random_brightness)


def main(flags):
  """Retrains as the original did; returns the exit code."""
  tf.logging.set_verbosity(tf.logging.INFO)
  prepare_file_system(flags)
  image_lists = retrain.create_image_lists(
      flags.image_dir, flags.testing_percentage, flags.validation_percentage)
  if not image_lists or len(image_lists) < 2:
    tf.logging.error('Need at least two class folders of images in ' +
                     flags.image_dir)
    return 1
  class_count = len(image_lists)
  # retrain.py's description of the module (its size) for retrain.py's
  # functions; hub.Module instantiates it, as in the original.
  module_spec = retrain.load_module_spec(flags.tfhub_module)
  graph, tensors, ops, distortion_tensors, final_tensor = (
      build_training_graph(module_spec, class_count, flags))
  files = BottleneckFiles(image_lists, flags.image_dir, flags.bottleneck_dir,
                          flags.tfhub_module)
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    if distortion_tensors is None:
      cache_bottlenecks(sess, tensors, files)
      next_training_batch = lambda: random_cached_bottlenecks(
          sess, tensors, files, flags.train_batch_size, 'training')[:2]
    else:
      next_training_batch = lambda: random_distorted_bottlenecks(
          sess, tensors, files, flags.train_batch_size, distortion_tensors)
    evaluation_step, _ = retrain.add_evaluation_step(
        final_tensor, ops.ground_truth_input)
    ops = ops._replace(evaluation_step=evaluation_step,
                       merged=tf.summary.merge_all())
    saver = tf.train.Saver()
    run_training(sess, flags, ops, next_training_batch, files, tensors)
    saver.save(sess, flags.checkpoint_path)
    run_final_eval(sess, tensors, files, module_spec, flags)
    tf.logging.info('Save final result to : ' + flags.output_graph)
    save_graph_to_file(module_spec, class_count, flags)
    with open(flags.output_labels, 'w') as labels_file:
      labels_file.write('\n'.join(image_lists.keys()) + '\n')
    if flags.saved_model_dir:
      export_model(module_spec, class_count, flags)
  return 0


def build_parser():
  """The original's flags that the bench uses, with its defaults."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  add = parser.add_argument
  add('--image_dir', required=True)
  add('--tfhub_module', required=True)
  add('--how_many_training_steps', type=int, default=4000)
  add('--learning_rate', type=float, default=0.01)
  add('--testing_percentage', type=int, default=10)
  add('--validation_percentage', type=int, default=10)
  add('--eval_step_interval', type=int, default=10)
  add('--train_batch_size', type=int, default=100)
  add('--test_batch_size', type=int, default=-1)
  add('--validation_batch_size', type=int, default=100)
  add('--bottleneck_dir', default='/tmp/bottleneck')
  add('--summaries_dir', default='/tmp/retrain_logs')
  add('--output_graph', default='/tmp/output_graph.pb')
  add('--output_labels', default='/tmp/output_labels.txt')
  add('--saved_model_dir', default='')
  add('--final_tensor_name', default='final_result')
  # The original's fixed CHECKPOINT_NAME, as a flag so that runs can overlap.
  add('--checkpoint_path', default='/tmp/_retrain_checkpoint')
  add('--flip_left_right', action='store_true')
  add('--random_crop', type=int, default=0)
  add('--random_scale', type=int, default=0)
  add('--random_brightness', type=int, default=0)
  return parser


if __name__ == '__main__':
  # Importing retrain.py keeps TensorFlow's logger to retrain.py's own lines;
  # the original logged everything, this script's lines included.
  for log_filter in list(tf.get_logger().filters):
    tf.get_logger().removeFilter(log_filter)
  sys.exit(main(build_parser().parse_args()))
