# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
r"""Simple transfer learning with image modules from TensorFlow Hub.

This tool trains a new top layer (softmax) on the image features that a
TensorFlow Hub image feature-vector module computes, so that it recognises the
classes of your own photos. Point it at a folder with one sub-folder of images
per class:

  ~/flower_photos/daisy/photo1.jpg
  ~/flower_photos/daisy/photo2.jpg
  ...
  ~/flower_photos/roses/another.png

The sub-folder names are the labels. Then run

  python retrain.py --image_dir ~/flower_photos

The pipeline, in the order of this file:

1. Image lists: every image goes to the training, testing or validation set by
   a stable hash of its file name (see create_image_lists).
2. Module graph: the Hub module is instantiated in a TF1 graph.
3. Bottlenecks: the module's output for each image ("bottleneck" features) is
   computed in batches, cached as text files under --bottleneck_dir and kept in
   memory for training.
4. Distortions (optional): crops, scales, flips and brightness changes, which
   need the module to run on every training batch.
5. The new layer: fully connected + softmax, trained by gradient descent.
6. The training loop, with TensorBoard summaries under --summaries_dir.
7. Evaluation on the test set.
8. Exports: a frozen GraphDef (--output_graph), the labels (--output_labels)
   and, with --saved_model_dir, a SavedModel for TensorFlow Serving.

The frozen graph takes a float32 image batch [None, height, width, 3] with
values in [0, 1] at the input 'Placeholder' and returns class probabilities at
'final_result' (see --final_tensor_name).

Modules: --tfhub_module takes a URL (downloaded and cached by tensorflow_hub,
in the folder TFHUB_CACHE_DIR names) or a local module folder. Without a
network, use a local folder, e.g. one written by make_image_module.py.
"""

import argparse
import collections
import hashlib
import os
import random
import re
import signal
import sys
import time
import uuid
import weakref
from datetime import datetime


def _wants_debug_logs(argv):
  """Tells whether the command line asks for DEBUG logging (read before TF loads)."""
  for index, arg in enumerate(argv):
    if arg == '--logging_verbosity=DEBUG':
      return True
    if arg == '--logging_verbosity' and argv[index + 1:index + 2] == ['DEBUG']:
      return True
  return False


# TensorFlow's C++ start-up lines (CUDA plugin registration, CPU feature notes)
# are noise for people running this tool; they must be silenced before import.
if not _wants_debug_logs(sys.argv):
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top


class _OwnLinesOnly(object):
  """A logging filter that keeps this tool's lines and real errors.

  TensorFlow and tensorflow_hub log pages of deprecation notes at WARNING
  level; people running the tool want its own progress lines.
  """

  def filter(self, record):
    return (record.levelno >= tf.logging.ERROR or
            os.path.abspath(record.pathname) == os.path.abspath(__file__))


if not _wants_debug_logs(sys.argv):
  tf.get_logger().addFilter(_OwnLinesOnly())
tf.disable_v2_behavior()

FLAGS = None

MAX_NUM_IMAGES_PER_CLASS = 2 ** 27 - 1  # ~134M

# A module is considered to be quantization-compatible if it contains any of
# these ops.
FAKE_QUANT_OPS = ('FakeQuantWithMinMaxVars',
                  'FakeQuantWithMinMaxVarsPerChannel')

# Only the immediate sub-folders' files with these extensions are images; the
# comparison is on the lower-cased extension so that each file is listed once
# even on a case-insensitive file system.
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')

CATEGORIES = ('training', 'testing', 'validation')

BOTTLENECK_PRECISIONS = ('float32', 'bfloat16')


class RetrainError(Exception):
  """A mistake of the user's (flags, folders, data): reported as one line."""


# ---------------------------------------------------------------------------
# Image lists
# ---------------------------------------------------------------------------


def _percentage_hash(file_name):
  """Maps a file name to a stable number in [0, 100] for the data split.

  Anything after '_nohash_' in the name is ignored, so that variants of one
  subject (e.g. 'rose_12_nohash_0.jpg' and 'rose_12_nohash_1.jpg') always land
  in the same set.

  Args:
    file_name: Base name of the image file inside its class folder.

  Returns:
    A float in [0, 100].
  """
  hash_name = re.sub(r'_nohash_.*$', '', file_name)
  hash_name_hashed = hashlib.sha1(tf.compat.as_bytes(hash_name)).hexdigest()
  return ((int(hash_name_hashed, 16) % (MAX_NUM_IMAGES_PER_CLASS + 1)) *
          (100.0 / MAX_NUM_IMAGES_PER_CLASS))


def _list_image_files(class_dir):
  """Lists the image files directly inside class_dir, sorted, each once."""
  names = []
  for name in tf.gfile.ListDirectory(class_dir):
    name = name.rstrip('/')
    extension = name.rsplit('.', 1)[-1].lower() if '.' in name else ''
    if extension in IMAGE_EXTENSIONS and not tf.gfile.IsDirectory(
        os.path.join(class_dir, name)):
      names.append(name)
  return sorted(names)


def create_image_lists(image_dir, testing_percentage, validation_percentage):
  """Builds a list of training images from the file system.

  Every immediate sub-folder of image_dir is a class, in sorted order. Each
  image goes to the training, testing or validation set by the SHA-1 hash of
  its file name within its class folder, so that the split stays the same when
  images are added, when the folder is moved or when image_dir is spelled
  differently. (The original retrain.py hashed the whole path, which changed
  the split whenever the folder moved; this is the one deliberate difference.)

  Args:
    image_dir: String path to a folder containing subfolders of images.
    testing_percentage: Integer percentage of the images to reserve for tests.
    validation_percentage: Integer percentage of images reserved for validation.

  Returns:
    An OrderedDict containing an entry for each label subfolder, with images
    split into training, testing, and validation sets within each label.
    The order of items defines the class indices. Returns None when image_dir
    does not exist.

  Raises:
    RetrainError: if two class folders map to the same label.
  """
  if not tf.gfile.Exists(image_dir):
    tf.logging.error("Image directory '" + image_dir + "' not found.")
    return None
  result = collections.OrderedDict()
  sub_dirs = sorted(
      name.rstrip('/') for name in tf.gfile.ListDirectory(image_dir)
      if tf.gfile.IsDirectory(os.path.join(image_dir, name)))
  for dir_name in sub_dirs:
    tf.logging.info("Looking for images in '" + dir_name + "'")
    file_list = _list_image_files(os.path.join(image_dir, dir_name))
    if not file_list:
      tf.logging.warning('No files found')
      continue
    if len(file_list) < 20:
      tf.logging.warning(
          'WARNING: Folder has less than 20 images, which may cause issues.')
    elif len(file_list) > MAX_NUM_IMAGES_PER_CLASS:
      tf.logging.warning(
          'WARNING: Folder {} has more than {} images. Some images will '
          'never be selected.'.format(dir_name, MAX_NUM_IMAGES_PER_CLASS))
    label_name = re.sub(r'[^a-z0-9]+', ' ', dir_name.lower())
    if label_name in result:
      raise RetrainError(
          "Class folders '%s' and '%s' both give the label '%s': rename one "
          'of them.' % (result[label_name]['dir'], dir_name, label_name))
    training_images = []
    testing_images = []
    validation_images = []
    for base_name in file_list:
      percentage_hash = _percentage_hash(base_name)
      if percentage_hash < validation_percentage:
        validation_images.append(base_name)
      elif percentage_hash < (testing_percentage + validation_percentage):
        testing_images.append(base_name)
      else:
        training_images.append(base_name)
    result[label_name] = {
        'dir': dir_name,
        'training': training_images,
        'testing': testing_images,
        'validation': validation_images,
    }
  return result


def get_image_path(image_lists, label_name, index, image_dir, category):
  """Returns a path to an image for a label at the given index.

  Args:
    image_lists: OrderedDict of training images for each label.
    label_name: Label string we want to get an image for.
    index: Int offset of the image we want. This will be moduloed by the
    available number of images for the label, so it can be arbitrarily large.
    image_dir: Root folder string of the subfolders containing the training
    images.
    category: Name string of set to pull images from - training, testing, or
    validation.

  Returns:
    File system path string to an image that meets the requested parameters.
  """
  if label_name not in image_lists:
    tf.logging.fatal('Label does not exist %s.', label_name)
  label_lists = image_lists[label_name]
  if category not in label_lists:
    tf.logging.fatal('Category does not exist %s.', category)
  category_list = label_lists[category]
  if not category_list:
    tf.logging.fatal('Label %s has no images in the category %s.',
                     label_name, category)
  mod_index = index % len(category_list)
  base_name = category_list[mod_index]
  sub_dir = label_lists['dir']
  return os.path.join(image_dir, sub_dir, base_name)


def _module_cache_suffix(module_name):
  """Turns a module URL or path into the suffix used in bottleneck file names."""
  return (module_name.replace('://', '~')  # URL scheme.
          .replace('/', '~')  # URL and Unix paths.
          .replace(':', '~').replace('\\', '~'))  # Windows paths.


def get_bottleneck_path(image_lists, label_name, index, bottleneck_dir,
                        category, module_name):
  """Returns a path to a bottleneck file for a label at the given index.

  Args:
    image_lists: OrderedDict of training images for each label.
    label_name: Label string we want to get an image for.
    index: Integer offset of the image we want. This will be moduloed by the
    available number of images for the label, so it can be arbitrarily large.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    category: Name string of set to pull images from - training, testing, or
    validation.
    module_name: The name of the image module being used.

  Returns:
    File system path string to an image that meets the requested parameters.
  """
  return (get_image_path(image_lists, label_name, index, bottleneck_dir,
                         category) + '_' + _module_cache_suffix(module_name) +
          '.txt')


# ---------------------------------------------------------------------------
# Module graph
# ---------------------------------------------------------------------------


def _is_url(module_handle):
  return bool(re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', module_handle)) and (
      not module_handle.startswith('file://'))


def load_module_spec(module_handle):
  """Loads a TF1 Hub image feature-vector module, with one-line errors.

  Args:
    module_handle: A module URL (downloaded and cached in TFHUB_CACHE_DIR by
      tensorflow_hub) or a local module folder.

  Returns:
    The hub.ModuleSpec.

  Raises:
    RetrainError: if the module cannot be found, downloaded or used here.
  """
  if not _is_url(module_handle):
    path = module_handle[len('file://'):] if module_handle.startswith(
        'file://') else module_handle
    if not tf.gfile.Exists(path):
      raise RetrainError(
          '--tfhub_module %s does not exist: pass a Hub module URL or a local '
          'module folder.' % module_handle)
    if not tf.gfile.IsDirectory(path):
      if path.endswith('.pb'):
        raise RetrainError(
            '--tfhub_module %s is a single .pb file (a frozen graph?), not a '
            'Hub module folder: wrap it with "python make_image_module.py '
            '--kind frozen_graph --frozen_graph %s ..." and pass that folder.'
            % (module_handle, path))
      raise RetrainError('--tfhub_module %s is a file, not a Hub module '
                         'folder.' % module_handle)
    if not tf.gfile.Exists(os.path.join(path, 'tfhub_module.pb')):
      if tf.gfile.Exists(os.path.join(path, 'saved_model.pb')):
        raise RetrainError(
            '--tfhub_module %s is a TF2 SavedModel, not a module in the TF1 '
            'Hub format this tool uses: pick the TF1 (hub.Module) version of '
            'the module.' % module_handle)
      raise RetrainError(
          '--tfhub_module %s is not a TF1 Hub module (no tfhub_module.pb in '
          'it).' % module_handle)
  try:
    module_spec = hub.load_module_spec(module_handle)
  except Exception as e:  # pylint: disable=broad-except
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    if _is_url(module_handle):
      raise RetrainError(
          'Could not download the module %s (%s). Without network access, pass '
          'a local module folder with --tfhub_module=/path/to/module, or put '
          'the downloaded module into the folder TFHUB_CACHE_DIR names.' %
          (module_handle, reason))
    raise RetrainError('Could not load the module %s: %s' %
                       (module_handle, reason))
  signature_inputs = module_spec.get_input_info_dict()
  signature_outputs = module_spec.get_output_info_dict()
  if ('images' not in signature_inputs or 'default' not in signature_outputs or
      signature_outputs['default'].get_shape().ndims != 2):
    raise RetrainError(
        '--tfhub_module %s is not an image feature vector module: its default '
        "signature must take 'images' and return 'default' [batch, features]."
        % module_handle)
  return module_spec


def create_module_graph(module_spec):
  """Creates a graph and loads Hub Module into it.

  Args:
    module_spec: the hub.ModuleSpec for the image module being used.

  Returns:
    graph: the tf.Graph that was created.
    bottleneck_tensor: the bottleneck values output by the module.
    resized_input_tensor: the input images, resized as expected by the module.
    wants_quantization: a boolean, whether the module has been instrumented
      with fake quantization ops.
  """
  height, width = hub.get_expected_image_size(module_spec)
  with tf.Graph().as_default() as graph:
    resized_input_tensor = tf.placeholder(tf.float32, [None, height, width, 3])
    m = hub.Module(module_spec)
    bottleneck_tensor = m(resized_input_tensor)
    wants_quantization = any(node.op in FAKE_QUANT_OPS
                             for node in graph.as_graph_def().node)
  return graph, bottleneck_tensor, resized_input_tensor, wants_quantization


def module_session_config(bottleneck_precision='float32'):
  """Returns the Session config that runs the module at a precision.

  bfloat16 uses TensorFlow's automatic mixed precision graph rewrite: on a
  CPU, oneDNN's bfloat16 rewrite (AVX512-BF16 or AMX units); on a GPU, its
  float16 mixed precision. Variables and cached values stay float32.

  Args:
    bottleneck_precision: One of BOTTLENECK_PRECISIONS.

  Returns:
    A tf.ConfigProto, or None for plain float32.
  """
  if bottleneck_precision == 'float32':
    return None
  rewrite_options = rewriter_config_pb2.RewriterConfig()
  if tf.config.list_physical_devices('GPU'):
    rewrite_options.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
  else:
    rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
        rewriter_config_pb2.RewriterConfig.ON)
  return tf.ConfigProto(graph_options=tf.GraphOptions(
      rewrite_options=rewrite_options))


def module_cache_name(module_handle, bottleneck_precision='float32'):
  """The module name used in bottleneck file names.

  Values computed in reduced precision are cached apart from float32 ones, so
  that switching --bottleneck_precision never mixes the two.
  """
  if bottleneck_precision == 'float32':
    return module_handle
  return module_handle + '~' + bottleneck_precision


# ---------------------------------------------------------------------------
# Bottlenecks
# ---------------------------------------------------------------------------

# Bottleneck values already read or computed in this process, by cache file
# path: training draws its batches from here instead of re-reading text files.
_bottleneck_memory = {}

# Per-graph tf.data pipelines, built once and reused by every call.
_graph_pipelines = weakref.WeakKeyDictionary()


def _decode_and_resize(image_data, input_height, input_width, input_depth):
  """Decodes JPEG/PNG bytes into a float [1, height, width, depth] in [0, 1]."""
  decoded_image = tf.image.decode_jpeg(image_data, channels=input_depth)
  decoded_image_as_float = tf.image.convert_image_dtype(decoded_image,
                                                        tf.float32)
  decoded_image_4d = tf.expand_dims(decoded_image_as_float, 0)
  resize_shape = tf.stack([input_height, input_width])
  resize_shape_as_int = tf.cast(resize_shape, dtype=tf.int32)
  return tf.image.resize_bilinear(decoded_image_4d, resize_shape_as_int)


def add_jpeg_decoding(module_spec):
  """Adds operations that perform JPEG decoding and resizing to the graph..

  PNG images are decoded by the same operation.

  Args:
    module_spec: The hub.ModuleSpec for the image module being used.

  Returns:
    Tensors for the node to feed JPEG data into, and the output of the
      preprocessing steps.
  """
  input_height, input_width = hub.get_expected_image_size(module_spec)
  input_depth = hub.get_num_image_channels(module_spec)
  jpeg_data = tf.placeholder(tf.string, name='DecodeJPGInput')
  resized_image = _decode_and_resize(jpeg_data, input_height, input_width,
                                     input_depth)
  return jpeg_data, resized_image


def run_bottleneck_on_image(sess, image_data, image_data_tensor,
                            decoded_image_tensor, resized_input_tensor,
                            bottleneck_tensor):
  """Runs inference on an image to extract the 'bottleneck' summary layer.

  Args:
    sess: Current active TensorFlow Session.
    image_data: String of raw JPEG data.
    image_data_tensor: Input data layer in the graph.
    decoded_image_tensor: Output of initial image resizing and preprocessing.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: Layer before the final softmax.

  Returns:
    Numpy array of bottleneck values.
  """
  resized_input_values = sess.run(decoded_image_tensor,
                                  {image_data_tensor: image_data})
  bottleneck_values = sess.run(bottleneck_tensor,
                               {resized_input_tensor: resized_input_values})
  return np.squeeze(bottleneck_values, axis=0)


def ensure_dir_exists(dir_name):
  """Makes sure the folder exists on disk.

  Args:
    dir_name: Path string to the folder we want to create.
  """
  if not os.path.exists(dir_name):
    os.makedirs(dir_name, exist_ok=True)


def _write_file_atomically(path, contents, mode='w'):
  """Writes a file under a temporary name and renames it into place.

  A crash or kill at any moment leaves either the old file or the new one,
  never a truncated one; concurrent writers of the same path each rename a
  complete file.
  """
  temporary_path = '%s.tmp-%d-%s' % (path, os.getpid(), uuid.uuid4().hex[:8])
  try:
    with tf.gfile.GFile(temporary_path, mode) as f:
      f.write(contents)
    tf.gfile.Rename(temporary_path, path, overwrite=True)
  except BaseException:
    if tf.gfile.Exists(temporary_path):
      tf.gfile.Remove(temporary_path)
    raise


def _write_bottleneck_file(bottleneck_path, bottleneck_values):
  bottleneck_string = ','.join(str(x) for x in bottleneck_values)
  _write_file_atomically(bottleneck_path, bottleneck_string)


def _read_bottleneck_file(bottleneck_path, expected_width=None):
  """Reads a cached bottleneck file.

  Returns:
    A float32 numpy array, or None when the file is missing, cannot be parsed
    or does not have expected_width values.
  """
  try:
    with tf.gfile.GFile(bottleneck_path, 'r') as bottleneck_file:
      bottleneck_string = bottleneck_file.read()
    values = np.array(bottleneck_string.split(','), dtype=np.float32)
  except (ValueError, tf.errors.OpError, OSError):
    return None
  if values.ndim != 1 or not values.size or (
      expected_width is not None and values.size != expected_width):
    return None
  return values


def _bottleneck_width(bottleneck_tensor):
  return bottleneck_tensor.get_shape().as_list()[-1]


def create_bottleneck_file(bottleneck_path, image_lists, label_name, index,
                           image_dir, category, sess, jpeg_data_tensor,
                           decoded_image_tensor, resized_input_tensor,
                           bottleneck_tensor):
  """Create a single bottleneck file."""
  tf.logging.debug('Creating bottleneck at ' + bottleneck_path)
  image_path = get_image_path(image_lists, label_name, index,
                              image_dir, category)
  if not tf.gfile.Exists(image_path):
    tf.logging.fatal('File does not exist %s', image_path)
  image_data = tf.gfile.GFile(image_path, 'rb').read()
  try:
    bottleneck_values = run_bottleneck_on_image(
        sess, image_data, jpeg_data_tensor, decoded_image_tensor,
        resized_input_tensor, bottleneck_tensor)
  except Exception as e:
    raise RuntimeError('Error during processing file %s (%s)' % (image_path,
                                                                 str(e)))
  _write_bottleneck_file(bottleneck_path, bottleneck_values)
  return bottleneck_values


def get_or_create_bottleneck(sess, image_lists, label_name, index, image_dir,
                             category, bottleneck_dir, jpeg_data_tensor,
                             decoded_image_tensor, resized_input_tensor,
                             bottleneck_tensor, module_name):
  """Retrieves or calculates bottleneck values for an image.

  If a cached version of the bottleneck data exists in memory or on disk,
  return that, otherwise calculate the data and save it to disk for future
  use. A cache file that cannot be parsed, or has the wrong number of values
  for the module, is recomputed.

  Args:
    sess: The current active TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    label_name: Label string we want to get an image for.
    index: Integer offset of the image we want. This will be modulo-ed by the
    available number of images for the label, so it can be arbitrarily large.
    image_dir: Root folder string of the subfolders containing the training
    images.
    category: Name string of which set to pull images from - training, testing,
    or validation.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    jpeg_data_tensor: The tensor to feed loaded jpeg data into.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The output tensor for the bottleneck values.
    module_name: The name of the image module being used.

  Returns:
    Numpy array of values produced by the bottleneck layer for the image.
  """
  bottleneck_path = get_bottleneck_path(image_lists, label_name, index,
                                        bottleneck_dir, category, module_name)
  bottleneck_values = _bottleneck_memory.get(bottleneck_path)
  if bottleneck_values is not None:
    return bottleneck_values
  ensure_dir_exists(os.path.dirname(bottleneck_path))
  width = _bottleneck_width(bottleneck_tensor)
  if tf.gfile.Exists(bottleneck_path):
    bottleneck_values = _read_bottleneck_file(bottleneck_path, width)
    if bottleneck_values is None:
      tf.logging.warning('Invalid bottleneck file %s, recreating it.',
                         bottleneck_path)
  if bottleneck_values is None:
    bottleneck_values = create_bottleneck_file(
        bottleneck_path, image_lists, label_name, index, image_dir, category,
        sess, jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
        bottleneck_tensor)
  _bottleneck_memory[bottleneck_path] = bottleneck_values
  return bottleneck_values


def _batched_image_reader(graph, input_height, input_width, input_depth,
                          batch_size):
  """Builds (once per graph) a parallel tf.data reader of resized images.

  Files are read and decoded on tf.data's threads while the caller runs the
  module on the previous batch. Images that fail to decode are dropped; the
  caller finds them by their missing index.

  Returns:
    (paths placeholder, iterator initializer, next (indices, images) batch).
  """
  key = ('decode', input_height, input_width, input_depth, batch_size)
  pipelines = _graph_pipelines.setdefault(graph, {})
  if key not in pipelines:
    with graph.as_default(), tf.name_scope('bottleneck_reader'):
      paths = tf.placeholder(tf.string, [None], name='image_paths')

      def load(index, path):
        image = _decode_and_resize(tf.io.read_file(path), input_height,
                                   input_width, input_depth)
        return index, tf.squeeze(image, axis=0)

      dataset = tf.data.Dataset.from_tensor_slices(
          (tf.range(tf.size(paths, out_type=tf.int64)), paths))
      dataset = dataset.map(
          load, num_parallel_calls=tf.data.experimental.AUTOTUNE)
      dataset = dataset.apply(tf.data.experimental.ignore_errors())
      dataset = dataset.batch(batch_size).prefetch(2)
      iterator = tf.data.make_initializable_iterator(dataset)
      pipelines[key] = (paths, iterator.initializer, iterator.get_next())
  return pipelines[key]


def default_caching_batch_size(input_height, input_width):
  """Images per module run when caching: about two million input pixels.

  Larger batches stop paying off for the module's throughput well before this
  and only raise memory (about 1.9 GB at 64 Inception v3 images, 1.1 GB at 16).
  """
  return int(np.clip(2 ** 21 // (input_height * input_width), 8, 64))


class _Progress(object):
  """Shows progress with rate and ETA: a live bar on a terminal, else log lines."""

  def __init__(self, total, what):
    self._total = total
    self._what = what
    self._done = 0
    self._start = time.time()
    self._last_log = self._start
    self._bar = None
    if total and sys.stdout.isatty():
      self._bar = tf.keras.utils.Progbar(total, unit_name='image')

  def add(self, count):
    self._done += count
    if self._bar is not None:
      self._bar.update(self._done)
      return
    now = time.time()
    if now - self._last_log >= 15 or self._done == self._total:
      self._last_log = now
      rate = self._done / max(now - self._start, 1e-9)
      eta = (self._total - self._done) / max(rate, 1e-9)
      tf.logging.info('%d/%d %s (%.1f images/s, ETA %ds)', self._done,
                      self._total, self._what, rate, eta)


def cache_bottlenecks(sess, image_lists, image_dir, bottleneck_dir,
                      jpeg_data_tensor, decoded_image_tensor,
                      resized_input_tensor, bottleneck_tensor, module_name,
                      batch_size=None):
  """Ensures all the training, testing, and validation bottlenecks are cached.

  Because we're likely to read the same image multiple times (if there are no
  distortions applied during training) it can speed things up a lot if we
  calculate the bottleneck layer values once for each image during
  preprocessing, and then just read those cached values repeatedly during
  training. Here we go through all the images we've found, compute the missing
  values in batches (decoding in parallel with the module's work), save them
  off, and keep every value in memory for training.

  Images that cannot be decoded are skipped with a warning naming the file and
  the reason, and removed from image_lists, so they never reach training or
  evaluation.

  Args:
    sess: The current active TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    image_dir: Root folder string of the subfolders containing the training
    images.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    jpeg_data_tensor: Input tensor for jpeg data from file.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The penultimate output layer of the graph.
    module_name: The name of the image module being used.
    batch_size: How many images the module processes at once; by default
      about two million input pixels (22 images of 299x299, 64 of 128x128),
      which keeps the module's throughput and bounds its memory.

  Returns:
    The list of (image path, reason) of the images that were skipped.
  """
  ensure_dir_exists(bottleneck_dir)
  width = _bottleneck_width(bottleneck_tensor)
  missing = []  # (label_name, category, image_name, image_path, cache_path)
  how_many_bottlenecks = 0
  for label_name, label_lists in image_lists.items():
    for category in CATEGORIES:
      missing_before = len(missing)
      for index, image_name in enumerate(label_lists[category]):
        bottleneck_path = get_bottleneck_path(image_lists, label_name, index,
                                              bottleneck_dir, category,
                                              module_name)
        how_many_bottlenecks += 1
        if bottleneck_path in _bottleneck_memory:
          continue
        values = None
        if tf.gfile.Exists(bottleneck_path):
          values = _read_bottleneck_file(bottleneck_path, width)
          if values is None:
            tf.logging.warning('Invalid bottleneck file %s, recreating it.',
                               bottleneck_path)
        if values is not None:
          _bottleneck_memory[bottleneck_path] = values
        else:
          image_path = get_image_path(image_lists, label_name, index,
                                      image_dir, category)
          missing.append((label_name, category, image_name, image_path,
                          bottleneck_path))
      if label_lists[category] and len(missing) == missing_before:
        # Stacking each class as soon as it is read lets the next class reuse
        # the memory of the per-file arrays instead of doubling the peak.
        _class_bottleneck_matrix(
            sess, image_lists, label_name, category, bottleneck_dir,
            image_dir, jpeg_data_tensor, decoded_image_tensor,
            resized_input_tensor, bottleneck_tensor, module_name)
  tf.logging.info('%d bottlenecks found in the cache, %d to compute.',
                  how_many_bottlenecks - len(missing), len(missing))
  if not missing:
    return []

  for folder in sorted(set(os.path.dirname(entry[4]) for entry in missing)):
    ensure_dir_exists(folder)
  _, height, width_px, depth = resized_input_tensor.get_shape().as_list()
  if batch_size is None:
    batch_size = default_caching_batch_size(height, width_px)
  paths_placeholder, initializer, next_batch = _batched_image_reader(
      sess.graph, height, width_px, depth, batch_size)
  sess.run(initializer,
           {paths_placeholder: [entry[3] for entry in missing]})
  progress = _Progress(len(missing), 'bottlenecks computed')
  computed = set()
  while True:
    try:
      indices, images = sess.run(next_batch)
    except tf.errors.OutOfRangeError:
      break
    batch_values = sess.run(bottleneck_tensor, {resized_input_tensor: images})
    for index, values in zip(indices, batch_values):
      bottleneck_path = missing[index][4]
      _write_bottleneck_file(bottleneck_path, values)
      _bottleneck_memory[bottleneck_path] = values
      computed.add(index)
    progress.add(len(indices))

  skipped = []
  for index, (label_name, category, image_name, image_path,
              bottleneck_path) in enumerate(missing):
    if index in computed:
      continue
    reason = _why_image_fails(sess, image_path, jpeg_data_tensor,
                              decoded_image_tensor)
    if reason is None:  # Decodes on its own after all: compute it alone.
      position = image_lists[label_name][category].index(image_name)
      _bottleneck_memory[bottleneck_path] = create_bottleneck_file(
          bottleneck_path, image_lists, label_name, position, image_dir,
          category, sess, jpeg_data_tensor, decoded_image_tensor,
          resized_input_tensor, bottleneck_tensor)
      continue
    tf.logging.warning('Skipping %s: %s', image_path, reason)
    image_lists[label_name][category].remove(image_name)
    skipped.append((image_path, reason))
  if skipped:
    tf.logging.warning('%d image(s) could not be used and were skipped.',
                       len(skipped))
  return skipped


def _why_image_fails(sess, image_path, jpeg_data_tensor, decoded_image_tensor):
  """Returns why an image cannot be read and decoded, or None if it can."""
  try:
    with tf.gfile.GFile(image_path, 'rb') as image_file:
      image_data = image_file.read()
  except (tf.errors.OpError, OSError) as e:
    return 'cannot be read (%s)' % _first_line(e)
  return _why_image_data_fails(sess, image_data, jpeg_data_tensor,
                               decoded_image_tensor)


def _why_image_data_fails(sess, image_data, jpeg_data_tensor,
                          decoded_image_tensor):
  """Returns why image bytes cannot be decoded, or None if they can."""
  if not image_data:
    return 'empty file'
  try:
    sess.run(decoded_image_tensor, {jpeg_data_tensor: image_data})
  except tf.errors.OpError as e:
    return 'not a decodable JPEG or PNG image (%s)' % _first_line(e)
  return None


def _first_line(error):
  message = getattr(error, 'message', None) or str(error)
  return message.strip().splitlines()[0] if message.strip() else type(
      error).__name__


# The bottlenecks of each class and category stacked into one float32 matrix,
# by (bottleneck_dir, module_name, class folder, category): training batches
# are gathered rows, not a Python loop over files.
_class_matrices = {}


def _class_bottleneck_matrix(sess, image_lists, label_name, category,
                             bottleneck_dir, image_dir, jpeg_data_tensor,
                             decoded_image_tensor, resized_input_tensor,
                             bottleneck_tensor, module_name):
  """Returns every bottleneck of one class's category as a [n, width] matrix.

  Built once from get_or_create_bottleneck and rebuilt when that category's
  list of images is replaced or changes length (cache_bottlenecks removes bad
  images from it).
  """
  image_names = image_lists[label_name][category]
  key = (bottleneck_dir, module_name, image_lists[label_name]['dir'],
         category)
  known = _class_matrices.get(key)
  if known is not None and known[0] is image_names and known[1] == len(
      image_names):
    return known[2]
  matrix = None
  for index in range(len(image_names)):
    values = get_or_create_bottleneck(
        sess, image_lists, label_name, index, image_dir, category,
        bottleneck_dir, jpeg_data_tensor, decoded_image_tensor,
        resized_input_tensor, bottleneck_tensor, module_name)
    if matrix is None:
      matrix = np.empty([len(image_names), values.size], np.float32)
    matrix[index] = values
    # The per-image entry becomes a view of the matrix, so each value is held
    # once, and the separate array is freed right away.
    _bottleneck_memory[get_bottleneck_path(
        image_lists, label_name, index, bottleneck_dir, category,
        module_name)] = matrix[index]
  _class_matrices[key] = (image_names, len(image_names), matrix)
  return matrix


def get_random_cached_bottlenecks(sess, image_lists, how_many, category,
                                  bottleneck_dir, image_dir, jpeg_data_tensor,
                                  decoded_image_tensor, resized_input_tensor,
                                  bottleneck_tensor, module_name):
  """Retrieves bottleneck values for cached images.

  If no distortions are being applied, this function can retrieve the cached
  bottleneck values directly from memory (or, the first time, from disk) for
  images. It picks a random set of images from the specified category.

  Args:
    sess: Current TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    how_many: If positive, a random sample of this size will be chosen.
    If negative, all bottlenecks will be retrieved.
    category: Name string of which set to pull from - training, testing, or
    validation.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    image_dir: Root folder string of the subfolders containing the training
    images.
    jpeg_data_tensor: The layer to feed jpeg image data into.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The bottleneck output layer of the CNN graph.
    module_name: The name of the image module being used.

  Returns:
    Tuple of (float32 array of bottleneck arrays, int64 array of their
    corresponding ground truths, list of the image file names).
  """
  label_names = list(image_lists.keys())

  def class_matrix(label_name):
    return _class_bottleneck_matrix(
        sess, image_lists, label_name, category, bottleneck_dir, image_dir,
        jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
        bottleneck_tensor, module_name)

  if how_many >= 0:
    # Only classes with images in this category can be drawn from.
    usable = [i for i, name in enumerate(label_names)
              if image_lists[name][category]]
    if not usable:
      tf.logging.fatal('No images in the category %s.', category)
    # The whole batch's random numbers come from one draw of Python's
    # generator, so --random_seed still repeats runs exactly.
    draws = np.frombuffer(random.getrandbits(128 * how_many).to_bytes(
        16 * how_many, 'little'), np.uint64).reshape(2, how_many)
    ground_truths = np.array(usable, np.int64)[
        (draws[0] % len(usable)).astype(np.int64)]
    image_indices = (draws[1] % (MAX_NUM_IMAGES_PER_CLASS + 1)).astype(
        np.int64)
    bottlenecks = np.empty([how_many, _bottleneck_width(bottleneck_tensor)],
                           np.float32)
    for label_index in set(ground_truths.tolist()):
      chosen = ground_truths == label_index
      matrix = class_matrix(label_names[label_index])
      bottlenecks[chosen] = matrix[image_indices[chosen] % len(matrix)]
    return bottlenecks, ground_truths, []

  matrices = []
  ground_truths = []
  filenames = []
  for label_index, label_name in enumerate(label_names):
    image_count = len(image_lists[label_name][category])
    if not image_count:
      continue
    matrices.append(class_matrix(label_name))
    ground_truths.extend([label_index] * image_count)
    filenames.extend(get_image_path(image_lists, label_name, image_index,
                                    image_dir, category)
                     for image_index in range(image_count))
  bottlenecks = (np.concatenate(matrices) if matrices else
                 np.zeros([0, _bottleneck_width(bottleneck_tensor)],
                          np.float32))
  return bottlenecks, np.array(ground_truths, np.int64), filenames


# ---------------------------------------------------------------------------
# Distortions
# ---------------------------------------------------------------------------

# Distortion settings of the tensors add_input_distortions returned, so that
# get_random_distorted_bottlenecks can build the batched version of the same
# distortions.
_distortion_settings = weakref.WeakKeyDictionary()


def should_distort_images(flip_left_right, random_crop, random_scale,
                          random_brightness):
  """Whether any distortions are enabled, from the input flags.

  Args:
    flip_left_right: Boolean whether to randomly mirror images horizontally.
    random_crop: Integer percentage setting the total margin used around the
    crop box.
    random_scale: Integer percentage of how much to vary the scale by.
    random_brightness: Integer range to randomly multiply the pixel values by.

  Returns:
    Boolean value indicating whether any distortions should be applied.
  """
  return (flip_left_right or (random_crop != 0) or (random_scale != 0) or
          (random_brightness != 0))


def _distort_image(image_4d, input_height, input_width, input_depth,
                   flip_left_right, random_crop, random_scale,
                   random_brightness, seed):
  """Applies the random distortions to one decoded float image [1, H, W, D].

  Stateless random ops keyed by `seed` (an int32 [2] tensor) make the result
  depend only on the seed, so batches built on parallel threads are
  reproducible.

  Returns:
    The distorted image, float [input_height, input_width, input_depth].
  """
  def sub_seed(offset):
    return seed + tf.constant([0, offset], dtype=seed.dtype)

  margin_scale = 1.0 + (random_crop / 100.0)
  resize_scale = 1.0 + (random_scale / 100.0)
  margin_scale_value = tf.constant(margin_scale)
  resize_scale_value = tf.random.stateless_uniform(
      shape=[], seed=sub_seed(1), minval=1.0, maxval=resize_scale)
  scale_value = tf.multiply(margin_scale_value, resize_scale_value)
  precrop_width = tf.multiply(scale_value, input_width)
  precrop_height = tf.multiply(scale_value, input_height)
  precrop_shape = tf.stack([precrop_height, precrop_width])
  precrop_shape_as_int = tf.cast(precrop_shape, dtype=tf.int32)
  precropped_image = tf.image.resize_bilinear(image_4d, precrop_shape_as_int)
  precropped_image_3d = tf.squeeze(precropped_image, axis=[0])
  cropped_image = tf.compat.v2.image.stateless_random_crop(
      precropped_image_3d, [input_height, input_width, input_depth],
      seed=sub_seed(2))
  if flip_left_right:
    flipped_image = tf.compat.v2.image.stateless_random_flip_left_right(
        cropped_image, seed=sub_seed(3))
  else:
    flipped_image = cropped_image
  brightness_min = 1.0 - (random_brightness / 100.0)
  brightness_max = 1.0 + (random_brightness / 100.0)
  brightness_value = tf.random.stateless_uniform(
      shape=[], seed=sub_seed(4), minval=brightness_min, maxval=brightness_max)
  return tf.multiply(flipped_image, brightness_value)


def _decode_to_float_4d(image_data, input_depth):
  decoded_image = tf.image.decode_jpeg(image_data, channels=input_depth)
  decoded_image_as_float = tf.image.convert_image_dtype(decoded_image,
                                                        tf.float32)
  return tf.expand_dims(decoded_image_as_float, 0)


def add_input_distortions(flip_left_right, random_crop, random_scale,
                          random_brightness, module_spec):
  """Creates the operations to apply the specified distortions.

  During training it can help to improve the results if we run the images
  through simple distortions like crops, scales, and flips. These reflect the
  kind of variations we expect in the real world, and so can help train the
  model to cope with natural data more effectively. Here we take the supplied
  parameters and construct a network of operations to apply them to an image.

  Cropping
  ~~~~~~~~

  Cropping is done by placing a bounding box at a random position in the full
  image. The cropping parameter controls the size of that box relative to the
  input image. If it's zero, then the box is the same size as the input and no
  cropping is performed. If the value is 50%, then the crop box will be half the
  width and height of the input.

  Scaling
  ~~~~~~~

  Scaling is a lot like cropping, except that the bounding box is always
  centered and its size varies randomly within the given range. For example if
  the scale percentage is zero, then the bounding box is the same size as the
  input and no scaling is applied. If it's 50%, then the bounding box will be in
  a random range between half the width and height and full size.

  Args:
    flip_left_right: Boolean whether to randomly mirror images horizontally.
    random_crop: Integer percentage setting the total margin used around the
    crop box.
    random_scale: Integer percentage of how much to vary the scale by.
    random_brightness: Integer range to randomly multiply the pixel values by.
    graph.
    module_spec: The hub.ModuleSpec for the image module being used.

  Returns:
    The jpeg input layer and the distorted result tensor.
  """
  input_height, input_width = hub.get_expected_image_size(module_spec)
  input_depth = hub.get_num_image_channels(module_spec)
  jpeg_data = tf.placeholder(tf.string, name='DistortJPGInput')
  decoded_image_4d = _decode_to_float_4d(jpeg_data, input_depth)
  seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)
  distorted_image = _distort_image(
      decoded_image_4d, input_height, input_width, input_depth,
      flip_left_right, random_crop, random_scale, random_brightness, seed)
  distort_result = tf.expand_dims(distorted_image, 0, name='DistortResult')
  _distortion_settings.setdefault(distort_result.graph, {})[
      distort_result.name] = dict(
          input_height=input_height, input_width=input_width,
          input_depth=input_depth, flip_left_right=flip_left_right,
          random_crop=random_crop, random_scale=random_scale,
          random_brightness=random_brightness)
  return jpeg_data, distort_result


def _distorted_batch_reader(graph, settings, image_lists, image_dir, category,
                            batch_size):
  """Builds (once) a tf.data pipeline of distorted training batches.

  A generator draws (image, label, seed) at random like the original; reading,
  decoding and distorting run on tf.data's parallel threads and the next batch
  is prefetched while the current one goes through the module. Images that
  fail to decode are dropped, so every batch is still full.

  Returns:
    The next (images, ground truths) batch tensors.
  """
  key = ('distort', tuple(sorted(settings.items())), id(image_lists),
         image_dir, category, batch_size)
  pipelines = _graph_pipelines.setdefault(graph, {})
  if key in pipelines:
    return pipelines[key][0]
  label_names = list(image_lists.keys())
  usable = [i for i, name in enumerate(label_names)
            if image_lists[name][category]]
  # A private generator, seeded from the global one, so that the prefetching
  # thread never races the main thread for random numbers.
  rng = random.Random(random.getrandbits(64))

  def samples():
    while True:
      label_index = rng.choice(usable)
      label_name = label_names[label_index]
      image_index = rng.randrange(MAX_NUM_IMAGES_PER_CLASS + 1)
      path = get_image_path(image_lists, label_name, image_index, image_dir,
                            category)
      yield (path, label_index,
             [rng.randrange(2 ** 31 - 1), rng.randrange(2 ** 31 - 1)])

  def load(path, label_index, seed):
    image_4d = _decode_to_float_4d(tf.io.read_file(path),
                                   settings['input_depth'])
    image = _distort_image(image_4d, seed=seed, **settings)
    return image, label_index

  with graph.as_default(), tf.name_scope('distorted_reader'):
    dataset = tf.data.Dataset.from_generator(
        samples, output_types=(tf.string, tf.int64, tf.int32),
        output_shapes=([], [], [2]))
    dataset = dataset.map(load,
                          num_parallel_calls=tf.data.experimental.AUTOTUNE)
    dataset = dataset.apply(tf.data.experimental.ignore_errors())
    dataset = dataset.batch(batch_size).prefetch(1)
    next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
  # The image_lists reference keeps id(image_lists) from being reused.
  pipelines[key] = (next_batch, image_lists)
  return next_batch


def get_random_distorted_bottlenecks(
    sess, image_lists, how_many, category, image_dir, input_jpeg_tensor,
    distorted_image, resized_input_tensor, bottleneck_tensor):
  """Retrieves bottleneck values for training images, after distortions.

  If we're training with distortions like crops, scales, or flips, we have to
  recalculate the full model for every image, and so we can't use cached
  bottleneck values. Instead we find random images for the requested category,
  run them through the distortion graph, and then the full graph to get the
  bottleneck results for each. The images of one call are decoded and
  distorted in parallel (the next call's batch is prepared in the background)
  and go through the module in one batch.

  Args:
    sess: Current TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    how_many: The integer number of bottleneck values to return.
    category: Name string of which set of images to fetch - training, testing,
    or validation.
    image_dir: Root folder string of the subfolders containing the training
    images.
    input_jpeg_tensor: The input layer we feed the image data to.
    distorted_image: The output node of the distortion graph.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The bottleneck output layer of the CNN graph.

  Returns:
    Tuple of (float32 array of bottlenecks, int64 array of ground truths).
  """
  settings = _distortion_settings.get(distorted_image.graph, {}).get(
      distorted_image.name)
  if settings is not None:
    next_batch = _distorted_batch_reader(sess.graph, settings, image_lists,
                                         image_dir, category, how_many)
    images, ground_truths = sess.run(next_batch)
  else:  # A distortion graph of the caller's own: one image at a time.
    label_names = list(image_lists.keys())
    images = []
    ground_truths = []
    for _ in range(how_many):
      label_index = random.randrange(len(label_names))
      image_path = get_image_path(image_lists, label_names[label_index],
                                  random.randrange(MAX_NUM_IMAGES_PER_CLASS + 1),
                                  image_dir, category)
      image_data = tf.gfile.GFile(image_path, 'rb').read()
      images.append(sess.run(distorted_image,
                             {input_jpeg_tensor: image_data})[0])
      ground_truths.append(label_index)
  bottlenecks = sess.run(bottleneck_tensor, {resized_input_tensor: images})
  return bottlenecks, np.array(ground_truths, np.int64)


# ---------------------------------------------------------------------------
# The new layer
# ---------------------------------------------------------------------------


def variable_summaries(var):
  """Attach a lot of summaries to a Tensor (for TensorBoard visualization)."""
  with tf.name_scope('summaries'):
    mean = tf.reduce_mean(var)
    tf.summary.scalar('mean', mean)
    with tf.name_scope('stddev'):
      stddev = tf.sqrt(tf.reduce_mean(tf.square(var - mean)))
    tf.summary.scalar('stddev', stddev)
    tf.summary.scalar('max', tf.reduce_max(var))
    tf.summary.scalar('min', tf.reduce_min(var))
    tf.summary.histogram('histogram', var)


def _quantize_weights(weights):
  """Fake-quantizes weights to 8 bits over their own current range."""
  with tf.name_scope('weights_quant'):
    return tf.quantization.fake_quant_with_min_max_vars(
        weights, tf.reduce_min(weights), tf.reduce_max(weights), num_bits=8,
        narrow_range=True)


def _quantize_activations(activations, is_training, ema_decay=0.999):
  """Fake-quantizes activations over a range learnt as a moving average.

  This is what tf.contrib.quantize used to insert after a layer: variables
  'min' and 'max' that training moves towards each batch's range (they always
  include 0), and that evaluation reads as they are.

  Returns:
    (quantized activations, list of update ops to run with each train step).
  """
  with tf.variable_scope(None, default_name='act_quant'):
    range_min = tf.get_variable('min', initializer=-6.0, trainable=False)
    range_max = tf.get_variable('max', initializer=6.0, trainable=False)
    updates = []
    if is_training:
      batch_min = tf.minimum(tf.reduce_min(activations), 0.0)
      batch_max = tf.maximum(tf.reduce_max(activations), 0.0)
      updates = [
          tf.assign(range_min, ema_decay * range_min +
                    (1 - ema_decay) * batch_min),
          tf.assign(range_max, ema_decay * range_max +
                    (1 - ema_decay) * batch_max),
      ]
    quantized = tf.quantization.fake_quant_with_min_max_vars(
        activations, range_min, range_max, num_bits=8)
  return quantized, updates


def add_final_retrain_ops(class_count, final_tensor_name, bottleneck_tensor,
                          quantize_layer, is_training, learning_rate=None):
  """Adds a new softmax and fully-connected layer for training and eval.

  We need to retrain the top layer to identify our new classes, so this function
  adds the right operations to the graph, along with some variables to hold the
  weights, and then sets up all the gradients for the backward pass.

  The set up for the softmax and fully-connected layers is based on:
  https://www.tensorflow.org/tutorials/mnist/beginners/index.html

  Args:
    class_count: Integer of how many categories of things we're trying to
        recognize.
    final_tensor_name: Name string for the new final node that produces results.
    bottleneck_tensor: The output of the main CNN graph.
    quantize_layer: Boolean, specifying whether the newly added layer should be
        instrumented for quantization with TF-Lite.
    is_training: Boolean, specifying whether the newly add layer is for training
        or eval.
    learning_rate: The gradient descent learning rate; defaults to
        --learning_rate.

  Returns:
    The tensors for the training and cross entropy results, tensors for the
    bottleneck input and ground truth input, a reference to the optimizable
    softmax layer, and the final softmax layer.
  """
  if learning_rate is None:
    learning_rate = FLAGS.learning_rate
  batch_size, bottleneck_tensor_size = bottleneck_tensor.get_shape().as_list()
  assert batch_size is None, 'We want to work with arbitrary batch size.'
  with tf.name_scope('input'):
    bottleneck_input = tf.placeholder_with_default(
        bottleneck_tensor,
        shape=[batch_size, bottleneck_tensor_size],
        name='BottleneckInputPlaceholder')

    ground_truth_input = tf.placeholder(
        tf.int64, [batch_size], name='GroundTruthInput')

  # Organizing the following ops so they are easier to see in TensorBoard.
  layer_name = 'final_retrain_ops'
  quantization_updates = []
  with tf.name_scope(layer_name):
    with tf.name_scope('weights'):
      initial_value = tf.truncated_normal(
          [bottleneck_tensor_size, class_count], stddev=0.001)
      layer_weights = tf.Variable(initial_value, name='final_weights')
      variable_summaries(layer_weights)

    with tf.name_scope('biases'):
      layer_biases = tf.Variable(tf.zeros([class_count]), name='final_biases')
      variable_summaries(layer_biases)

    with tf.name_scope('Wx_plus_b'):
      weights = (_quantize_weights(layer_weights) if quantize_layer
                 else layer_weights)
      logits = tf.matmul(bottleneck_input, weights) + layer_biases
      if quantize_layer:
        with tf.variable_scope(layer_name):
          logits, quantization_updates = _quantize_activations(
              logits, is_training)
      tf.summary.histogram('pre_activations', logits)

  final_tensor = tf.nn.softmax(logits, name=final_tensor_name)
  tf.summary.histogram('activations', final_tensor)

  # If this is an eval graph, we don't need to add loss ops or an optimizer.
  if not is_training:
    return None, None, bottleneck_input, ground_truth_input, final_tensor

  with tf.name_scope('cross_entropy'):
    cross_entropy_mean = tf.losses.sparse_softmax_cross_entropy(
        labels=ground_truth_input, logits=logits)

  tf.summary.scalar('cross_entropy', cross_entropy_mean)

  with tf.name_scope('train'):
    optimizer = tf.train.GradientDescentOptimizer(learning_rate)
    train_step = optimizer.minimize(cross_entropy_mean)
    if quantization_updates:
      train_step = tf.group(train_step, *quantization_updates)

  return (train_step, cross_entropy_mean, bottleneck_input, ground_truth_input,
          final_tensor)


def add_evaluation_step(result_tensor, ground_truth_tensor):
  """Inserts the operations we need to evaluate the accuracy of our results.

  Args:
    result_tensor: The new final node that produces results.
    ground_truth_tensor: The node we feed ground truth data
    into.

  Returns:
    Tuple of (evaluation step, prediction).
  """
  with tf.name_scope('accuracy'):
    with tf.name_scope('correct_prediction'):
      prediction = tf.argmax(result_tensor, 1)
      correct_prediction = tf.equal(prediction, ground_truth_tensor)
    with tf.name_scope('accuracy'):
      evaluation_step = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
  tf.summary.scalar('accuracy', evaluation_step)
  return evaluation_step, prediction


# ---------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------


def _log_step(step, what, value):
  tf.logging.info('%s: Step %d: %s' % (datetime.now(), step, what % value))


def run_training_loop(sess, image_lists, class_count, train_step, cross_entropy,
                      bottleneck_input, ground_truth_input, evaluation_step,
                      merged_summaries, tensors, do_distort_images,
                      store_intermediate_graph, module_sess=None):
  """Trains the new layer for --how_many_training_steps steps.

  Each step trains on a random batch (cached bottlenecks from memory, or
  freshly distorted images) and writes the summaries, as the original did;
  every --eval_step_interval steps it logs the training and validation
  accuracy.

  Args:
    sess: The training Session.
    image_lists: OrderedDict of training images for each label.
    class_count: The number of classes.
    train_step: The training op.
    cross_entropy: The cross entropy tensor.
    bottleneck_input: The bottleneck input placeholder of the new layer.
    ground_truth_input: The ground truth placeholder.
    evaluation_step: The accuracy tensor.
    merged_summaries: The merged summary op.
    tensors: Dict with the tensors 'jpeg_data', 'decoded_image',
      'resized_image', 'bottleneck', 'distorted_jpeg_data', 'distorted_image'.
    do_distort_images: Whether training images are distorted.
    store_intermediate_graph: Callable(step) that saves an intermediate graph.
    module_sess: The Session that runs the module (see
      --bottleneck_precision); sess if None.
  """
  module_sess = module_sess or sess
  del class_count  # The labels of the batches carry it.
  train_writer = tf.summary.FileWriter(
      os.path.join(FLAGS.summaries_dir, 'train'), sess.graph)
  validation_writer = tf.summary.FileWriter(
      os.path.join(FLAGS.summaries_dir, 'validation'))
  has_validation_images = any(lists['validation']
                              for lists in image_lists.values())
  if not has_validation_images:
    tf.logging.warning('There are no validation images (see '
                       '--validation_percentage): validation is skipped.')

  def cached_batch(how_many, category):
    return get_random_cached_bottlenecks(
        module_sess, image_lists, how_many, category, FLAGS.bottleneck_dir,
        FLAGS.image_dir, tensors['jpeg_data'], tensors['decoded_image'],
        tensors['resized_image'], tensors['bottleneck'],
        module_cache_name(FLAGS.tfhub_module, FLAGS.bottleneck_precision))

  try:
    for i in range(FLAGS.how_many_training_steps):
      if do_distort_images:
        (train_bottlenecks,
         train_ground_truth) = get_random_distorted_bottlenecks(
             module_sess, image_lists, FLAGS.train_batch_size, 'training',
             FLAGS.image_dir, tensors['distorted_jpeg_data'],
             tensors['distorted_image'], tensors['resized_image'],
             tensors['bottleneck'])
      else:
        train_bottlenecks, train_ground_truth, _ = cached_batch(
            FLAGS.train_batch_size, 'training')
      train_feed = {bottleneck_input: train_bottlenecks,
                    ground_truth_input: train_ground_truth}
      train_summary, _ = sess.run([merged_summaries, train_step], train_feed)
      train_writer.add_summary(train_summary, i)

      is_last_step = (i + 1 == FLAGS.how_many_training_steps)
      if (i % FLAGS.eval_step_interval) == 0 or is_last_step:
        train_accuracy, cross_entropy_value = sess.run(
            [evaluation_step, cross_entropy], train_feed)
        _log_step(i, 'Train accuracy = %.1f%%', train_accuracy * 100)
        _log_step(i, 'Cross entropy = %f', cross_entropy_value)
        if has_validation_images:
          validation_bottlenecks, validation_ground_truth, _ = cached_batch(
              FLAGS.validation_batch_size, 'validation')
          validation_summary, validation_accuracy = sess.run(
              [merged_summaries, evaluation_step],
              {bottleneck_input: validation_bottlenecks,
               ground_truth_input: validation_ground_truth})
          validation_writer.add_summary(validation_summary, i)
          tf.logging.info('%s: Step %d: Validation accuracy = %.1f%% (N=%d)' %
                          (datetime.now(), i, validation_accuracy * 100,
                           len(validation_bottlenecks)))

      intermediate_frequency = FLAGS.intermediate_store_frequency
      if (intermediate_frequency > 0 and (i % intermediate_frequency == 0)
          and i > 0):
        store_intermediate_graph(i)
  finally:
    train_writer.close()
    validation_writer.close()


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

# The Saver of each eval graph, to restore a newer checkpoint into it.
_eval_savers = weakref.WeakKeyDictionary()


def build_eval_session(module_spec, class_count, final_tensor_name=None,
                       checkpoint_path=None):
  """Builds an restored eval session without train operations for exporting.

  Args:
    module_spec: The hub.ModuleSpec for the image module being used.
    class_count: Number of classes
    final_tensor_name: Name of the output; defaults to --final_tensor_name.
    checkpoint_path: The checkpoint to restore; defaults to --checkpoint_path.

  Returns:
    Eval session containing the restored eval graph.
    The bottleneck input, ground truth, eval step, and prediction tensors.
  """
  final_tensor_name = final_tensor_name or FLAGS.final_tensor_name
  checkpoint_path = checkpoint_path or FLAGS.checkpoint_path
  # If quantized, we need to create the correct eval graph for exporting.
  eval_graph, bottleneck_tensor, resized_input_tensor, wants_quantization = (
      create_module_graph(module_spec))

  eval_sess = tf.Session(graph=eval_graph)
  with eval_graph.as_default():
    # Add the new layer for exporting.
    (_, _, bottleneck_input,
     ground_truth_input, final_tensor) = add_final_retrain_ops(
         class_count, final_tensor_name, bottleneck_tensor,
         wants_quantization, is_training=False)

    # Now we need to restore the values from the training graph to the eval
    # graph.
    saver = tf.train.Saver()
    saver.restore(eval_sess, checkpoint_path)
    _eval_savers[eval_graph] = saver

    evaluation_step, prediction = add_evaluation_step(final_tensor,
                                                      ground_truth_input)

  return (eval_sess, resized_input_tensor, bottleneck_input, ground_truth_input,
          evaluation_step, prediction)


def _restore_eval_session(eval_session, checkpoint_path):
  """Loads a newer checkpoint into an eval session from build_eval_session."""
  sess = eval_session[0]
  _eval_savers[sess.graph].restore(sess, checkpoint_path)


def run_final_eval(train_session, module_spec, class_count, image_lists,
                   jpeg_data_tensor, decoded_image_tensor,
                   resized_image_tensor, bottleneck_tensor, eval_session=None):
  """Runs a final evaluation on an eval graph using the test data set.

  Args:
    train_session: Session for the train graph with the tensors below.
    module_spec: The hub.ModuleSpec for the image module being used.
    class_count: Number of classes
    image_lists: OrderedDict of training images for each label.
    jpeg_data_tensor: The layer to feed jpeg image data into.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_image_tensor: The input node of the recognition graph.
    bottleneck_tensor: The bottleneck output layer of the CNN graph.
    eval_session: A tuple from build_eval_session to reuse; built if None.

  Returns:
    (test accuracy, predicted class indices, ground truth class indices,
    test file names), or None when there are no test images.
  """
  test_bottlenecks, test_ground_truth, test_filenames = (
      get_random_cached_bottlenecks(train_session, image_lists,
                                    FLAGS.test_batch_size,
                                    'testing', FLAGS.bottleneck_dir,
                                    FLAGS.image_dir, jpeg_data_tensor,
                                    decoded_image_tensor, resized_image_tensor,
                                    bottleneck_tensor,
                                    module_cache_name(
                                        FLAGS.tfhub_module,
                                        FLAGS.bottleneck_precision)))
  if not len(test_bottlenecks):  # pylint: disable=g-explicit-length-test
    tf.logging.warning('There are no test images (see --testing_percentage): '
                       'no final test accuracy.')
    return None
  if eval_session is None:
    eval_session = build_eval_session(module_spec, class_count)
  (eval_sess, _, bottleneck_input, ground_truth_input, evaluation_step,
   prediction) = eval_session
  test_accuracy, predictions = eval_sess.run(
      [evaluation_step, prediction],
      feed_dict={
          bottleneck_input: test_bottlenecks,
          ground_truth_input: test_ground_truth
      })
  tf.logging.info('Final test accuracy = %.1f%% (N=%d)' %
                  (test_accuracy * 100, len(test_bottlenecks)))

  if FLAGS.print_misclassified_test_images:
    tf.logging.info('=== MISCLASSIFIED TEST IMAGES ===')
    label_names = list(image_lists.keys())
    for i, test_filename in enumerate(test_filenames):
      if predictions[i] != test_ground_truth[i]:
        tf.logging.info('%70s  %s' % (test_filename,
                                      label_names[predictions[i]]))
  return test_accuracy, predictions, test_ground_truth, test_filenames


# ---------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------


def save_graph_to_file(graph_file_name, module_spec, class_count,
                       eval_session=None):
  """Saves an graph to file, creating a valid quantized one if necessary.

  Args:
    graph_file_name: Where to write the frozen GraphDef.
    module_spec: The hub.ModuleSpec for the image module being used.
    class_count: Number of classes.
    eval_session: A tuple from build_eval_session to reuse; built if None.
  """
  if eval_session is None:
    eval_session = build_eval_session(module_spec, class_count)
  sess = eval_session[0]
  graph = sess.graph

  output_graph_def = tf.graph_util.convert_variables_to_constants(
      sess, graph.as_graph_def(), [FLAGS.final_tensor_name])

  ensure_dir_exists(os.path.dirname(os.path.abspath(graph_file_name)))
  _write_file_atomically(graph_file_name, output_graph_def.SerializeToString(deterministic=True),
                         mode='wb')


def export_model(module_spec, class_count, saved_model_dir, eval_session=None):
  """Exports model for serving.

  The SavedModel is written to a temporary folder beside saved_model_dir and
  renamed into place once complete.

  Args:
    module_spec: The hub.ModuleSpec for the image module being used.
    class_count: The number of classes.
    saved_model_dir: Directory in which to save exported model and variables.
    eval_session: A tuple from build_eval_session to reuse; built if None.
  """
  # The SavedModel should hold the eval graph.
  if eval_session is None:
    eval_session = build_eval_session(module_spec, class_count)
  sess, in_image = eval_session[0], eval_session[1]
  target_dir = saved_model_dir.rstrip('/\\') or saved_model_dir
  temporary_dir = '%s.tmp-%d-%s' % (target_dir, os.getpid(),
                                    uuid.uuid4().hex[:8])
  with sess.graph.as_default() as graph:
    try:
      tf.saved_model.simple_save(
          sess,
          temporary_dir,
          inputs={'image': in_image},
          outputs={'prediction': graph.get_tensor_by_name(
              FLAGS.final_tensor_name + ':0')},
          legacy_init_op=tf.group(tf.tables_initializer(),
                                  name='legacy_init_op'))
      if tf.gfile.IsDirectory(target_dir) and not tf.gfile.ListDirectory(
          target_dir):
        os.rmdir(target_dir)
      tf.gfile.Rename(temporary_dir, target_dir)
    except BaseException:
      if tf.gfile.Exists(temporary_dir):
        tf.gfile.DeleteRecursively(temporary_dir)
      raise


def write_labels_file(image_lists, output_labels):
  """Writes the labels, one per line in class-index order, atomically."""
  ensure_dir_exists(os.path.dirname(os.path.abspath(output_labels)))
  _write_file_atomically(output_labels, '\n'.join(image_lists.keys()) + '\n')


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def _clearable_summaries_dir(summaries_dir):
  """Tells whether summaries_dir holds nothing but this tool's event folders."""
  if not tf.gfile.Exists(summaries_dir):
    return True
  if not tf.gfile.IsDirectory(summaries_dir):
    return False
  entries = set(name.rstrip('/') for name in
                tf.gfile.ListDirectory(summaries_dir))
  return entries <= {'train', 'validation'}


def prepare_file_system():
  """Clears the previous run's summaries and creates the output folders."""
  # Only this tool's own event folders are ever deleted (checked at start-up).
  for run_name in ('train', 'validation'):
    run_dir = os.path.join(FLAGS.summaries_dir, run_name)
    if tf.gfile.Exists(run_dir):
      tf.gfile.DeleteRecursively(run_dir)
  tf.gfile.MakeDirs(FLAGS.summaries_dir)
  if FLAGS.intermediate_store_frequency > 0:
    ensure_dir_exists(FLAGS.intermediate_output_graphs_dir)


def logging_level_verbosity(logging_verbosity):
  """Converts logging_level into TensorFlow logging verbosity value.

  Args:
    logging_verbosity: String value representing logging level: 'DEBUG', 'INFO',
    'WARN', 'ERROR', 'FATAL'

  Returns:
    The TensorFlow logging verbosity value.

  Raises:
    RuntimeError: for an unknown level name.
  """
  name_to_level = {
      'FATAL': tf.logging.FATAL,
      'ERROR': tf.logging.ERROR,
      'WARN': tf.logging.WARN,
      'INFO': tf.logging.INFO,
      'DEBUG': tf.logging.DEBUG
  }
  try:
    return name_to_level[logging_verbosity]
  except KeyError:
    raise RuntimeError('Not supported logs verbosity (%s). Use one of %s.' %
                       (logging_verbosity, ', '.join(name_to_level)))


def _configure_logging(verbosity_name):
  verbosity = logging_level_verbosity(verbosity_name)
  tf.logging.set_verbosity(verbosity)
  logger = tf.get_logger()
  for existing in list(logger.filters):
    if isinstance(existing, _OwnLinesOnly):
      logger.removeFilter(existing)
  if verbosity_name != 'DEBUG':
    logger.addFilter(_OwnLinesOnly())


def _nearest_existing_folder(path):
  folder = os.path.abspath(path)
  while not os.path.exists(folder):
    parent = os.path.dirname(folder)
    if parent == folder:
      break
    folder = parent
  return folder


def _check_writable(flag_name, path, is_folder):
  """Raises RetrainError if path (a file or folder) cannot be written."""
  if re.match(r'^[a-z0-9]+://', path):
    return  # Remote file systems are checked when written.
  if is_folder and os.path.exists(path) and not os.path.isdir(path):
    raise RetrainError('--%s %s is a file, not a folder.' % (flag_name, path))
  if not is_folder and os.path.isdir(path):
    raise RetrainError('--%s %s is a folder: give a file name.' %
                       (flag_name, path))
  folder = _nearest_existing_folder(path if is_folder else
                                    os.path.dirname(os.path.abspath(path)))
  if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
    raise RetrainError('--%s %s cannot be written (no write permission in '
                       '%s): choose another place.' % (flag_name, path, folder))


def check_flags(flags):
  """Checks the flags and output places before anything is written.

  Args:
    flags: The parsed command line.

  Raises:
    RetrainError: with one sentence on what is wrong and what to do.
  """
  if not flags.image_dir:
    raise RetrainError('Must set flag --image_dir.')
  if not tf.gfile.Exists(flags.image_dir):
    raise RetrainError("Image directory '%s' not found." % flags.image_dir)
  if not tf.gfile.IsDirectory(flags.image_dir):
    raise RetrainError('--image_dir %s is a file, not a folder of class '
                       'folders.' % flags.image_dir)
  positive = ('how_many_training_steps', 'train_batch_size',
              'eval_step_interval')
  for name in positive:
    if getattr(flags, name) <= 0:
      raise RetrainError('--%s must be a positive number, not %s.' %
                         (name, getattr(flags, name)))
  for name in ('test_batch_size', 'validation_batch_size'):
    value = getattr(flags, name)
    if value <= 0 and value != -1:
      raise RetrainError('--%s must be positive, or -1 for the whole set, not '
                         '%s.' % (name, value))
  if not flags.learning_rate > 0:
    raise RetrainError('--learning_rate must be positive, not %s.' %
                       flags.learning_rate)
  for name in ('testing_percentage', 'validation_percentage'):
    value = getattr(flags, name)
    if not 0 <= value < 100:
      raise RetrainError('--%s must be in [0, 100), not %s.' % (name, value))
  if flags.testing_percentage + flags.validation_percentage >= 100:
    raise RetrainError(
        '--testing_percentage plus --validation_percentage must be below 100 '
        'so that some images are left for training.')
  if flags.intermediate_store_frequency < 0:
    raise RetrainError('--intermediate_store_frequency must be 0 (off) or '
                       'positive.')
  for name in ('random_crop', 'random_scale'):
    if getattr(flags, name) < 0:
      raise RetrainError('--%s must be 0 or a positive percentage.' % name)
  if not 0 <= flags.random_brightness <= 100:
    raise RetrainError('--random_brightness must be a percentage in '
                       '[0, 100].')
  if flags.saved_model_dir and tf.gfile.IsDirectory(
      flags.saved_model_dir) and tf.gfile.ListDirectory(flags.saved_model_dir):
    raise RetrainError(
        '--saved_model_dir %s already exists and is not empty: use a fresh '
        'numbered version folder, e.g. '
        '--saved_model_dir=/tmp/saved_models/$(date +%%s)/' %
        flags.saved_model_dir)
  if not _clearable_summaries_dir(flags.summaries_dir):
    raise RetrainError(
        '--summaries_dir %s holds more than this tool\'s train/ and '
        'validation/ event folders and would be cleared: point it at a '
        'folder of its own, e.g. /tmp/retrain_logs.' % flags.summaries_dir)
  _check_writable('summaries_dir', flags.summaries_dir, True)
  _check_writable('bottleneck_dir', flags.bottleneck_dir, True)
  _check_writable('output_graph', flags.output_graph, False)
  _check_writable('output_labels', flags.output_labels, False)
  _check_writable('checkpoint_path', flags.checkpoint_path, False)
  if flags.intermediate_store_frequency > 0:
    _check_writable('intermediate_output_graphs_dir',
                    flags.intermediate_output_graphs_dir, True)
  if flags.saved_model_dir:
    _check_writable('saved_model_dir', flags.saved_model_dir, True)


def _check_categories(image_lists):
  """Stops when a class has no training images; warns about other gaps."""
  for label_name, label_lists in image_lists.items():
    if not label_lists['training']:
      raise RetrainError(
          "Class '%s' (folder %s) has no usable training image: add more "
          'images to it, or remove the folder.' % (label_name,
                                                   label_lists['dir']))
    for category in ('testing', 'validation'):
      if not label_lists[category]:
        tf.logging.warning(
            "Class '%s' has no %s image: add more images to folder %s so "
            'that it is evaluated too.', label_name, category,
            label_lists['dir'])


def _set_random_seed(seed):
  if seed is not None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    tf.set_random_seed(seed)


def main(_):
  """Runs the whole retraining; returns the process exit code."""
  _configure_logging(FLAGS.logging_verbosity)
  check_flags(FLAGS)
  module_spec = load_module_spec(FLAGS.tfhub_module)

  # Look at the folder structure, and create lists of all the images.
  image_lists = create_image_lists(FLAGS.image_dir, FLAGS.testing_percentage,
                                   FLAGS.validation_percentage)
  class_count = len(image_lists.keys())
  if class_count == 0:
    raise RetrainError('No valid folders of images found at ' +
                       FLAGS.image_dir)
  if class_count == 1:
    raise RetrainError('Only one valid folder of images found at ' +
                       FLAGS.image_dir +
                       ' - multiple classes are needed for classification.')

  prepare_file_system()

  # Determine whether to apply distortions.
  do_distort_images = should_distort_images(
      FLAGS.flip_left_right, FLAGS.random_crop, FLAGS.random_scale,
      FLAGS.random_brightness)

  # Set up the pre-trained graph.
  graph, bottleneck_tensor, resized_image_tensor, wants_quantization = (
      create_module_graph(module_spec))

  # Add the new layer that we'll be training.
  with graph.as_default():
    _set_random_seed(FLAGS.random_seed)
    (train_step, cross_entropy, bottleneck_input,
     ground_truth_input, final_tensor) = add_final_retrain_ops(
         class_count, FLAGS.final_tensor_name, bottleneck_tensor,
         wants_quantization, is_training=True)

  with tf.Session(graph=graph) as sess:
    # Initialize all weights: for the module to their pretrained values,
    # and for the newly added retraining layer to random initial values.
    init = tf.global_variables_initializer()
    sess.run(init)
    module_sess = sess
    if FLAGS.bottleneck_precision != 'float32':
      module_sess = tf.Session(graph=graph, config=module_session_config(
          FLAGS.bottleneck_precision))
      module_sess.run(init)

    # Set up the image decoding sub-graph.
    jpeg_data_tensor, decoded_image_tensor = add_jpeg_decoding(module_spec)
    tensors = {'jpeg_data': jpeg_data_tensor,
               'decoded_image': decoded_image_tensor,
               'resized_image': resized_image_tensor,
               'bottleneck': bottleneck_tensor}

    if do_distort_images:
      # We will be applying distortions, so set up the operations we'll need.
      (tensors['distorted_jpeg_data'],
       tensors['distorted_image']) = add_input_distortions(
           FLAGS.flip_left_right, FLAGS.random_crop, FLAGS.random_scale,
           FLAGS.random_brightness, module_spec)
    # Evaluation always uses the cached bottlenecks of undistorted images, so
    # they are computed in both cases; training images only without
    # distortions.
    skipped = cache_bottlenecks(
        module_sess, image_lists, FLAGS.image_dir, FLAGS.bottleneck_dir,
        jpeg_data_tensor, decoded_image_tensor, resized_image_tensor,
        bottleneck_tensor,
        module_cache_name(FLAGS.tfhub_module, FLAGS.bottleneck_precision))
    _check_categories(image_lists)

    # Create the operations we need to evaluate the accuracy of our new layer.
    evaluation_step, _ = add_evaluation_step(final_tensor, ground_truth_input)

    # Merge all the summaries and write them out to the summaries_dir
    merged = tf.summary.merge_all()

    # Create a train saver that is used to restore values into an eval graph
    # when exporting models.
    train_saver = tf.train.Saver()
    ensure_dir_exists(os.path.dirname(os.path.abspath(FLAGS.checkpoint_path)))
    intermediate_eval_session = []

    def store_intermediate_graph(step):
      train_saver.save(sess, FLAGS.checkpoint_path)
      intermediate_file_name = os.path.join(
          FLAGS.intermediate_output_graphs_dir,
          'intermediate_' + str(step) + '.pb')
      tf.logging.info('Save intermediate result to : ' +
                      intermediate_file_name)
      if not intermediate_eval_session:
        intermediate_eval_session.append(build_eval_session(module_spec,
                                                            class_count))
      else:
        _restore_eval_session(intermediate_eval_session[0],
                              FLAGS.checkpoint_path)
      save_graph_to_file(intermediate_file_name, module_spec, class_count,
                         eval_session=intermediate_eval_session[0])

    run_training_loop(sess, image_lists, class_count, train_step,
                      cross_entropy, bottleneck_input, ground_truth_input,
                      evaluation_step, merged, tensors, do_distort_images,
                      store_intermediate_graph, module_sess=module_sess)

    # After training is complete, force one last save of the train checkpoint.
    train_saver.save(sess, FLAGS.checkpoint_path)

    # One eval graph, restored once, serves the test and every export.
    if intermediate_eval_session:
      eval_session = intermediate_eval_session[0]
      _restore_eval_session(eval_session, FLAGS.checkpoint_path)
    else:
      eval_session = build_eval_session(module_spec, class_count)

    # We've completed all our training, so run a final test evaluation on
    # some new images we haven't used before.
    run_final_eval(module_sess, module_spec, class_count, image_lists,
                   jpeg_data_tensor, decoded_image_tensor, resized_image_tensor,
                   bottleneck_tensor, eval_session=eval_session)

    # Write out the trained graph and labels with the weights stored as
    # constants.
    tf.logging.info('Save final result to : ' + FLAGS.output_graph)
    if wants_quantization:
      tf.logging.info('The model is instrumented for quantization with TF-Lite')
    save_graph_to_file(FLAGS.output_graph, module_spec, class_count,
                       eval_session=eval_session)
    write_labels_file(image_lists, FLAGS.output_labels)

    if FLAGS.saved_model_dir:
      export_model(module_spec, class_count, FLAGS.saved_model_dir,
                   eval_session=eval_session)
    eval_session[0].close()
    if module_sess is not sess:
      module_sess.close()
  if skipped:
    tf.logging.warning('Summary: %d image(s) were skipped because they could '
                       'not be decoded (see the warnings above).', len(skipped))
  return 0


class _ArgumentParser(argparse.ArgumentParser):
  """Reports a bad command line in one line rather than usage plus error."""

  def error(self, message):
    self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


def build_parser():
  """Returns the command line parser with every flag of the original."""
  parser = _ArgumentParser(
      description='Retrain the top layer of a TensorFlow Hub image module on '
      'your own classes of images.')
  parser.add_argument(
      '--image_dir', type=str, default='',
      help='Path to folders of labeled images.')
  parser.add_argument(
      '--output_graph', type=str, default='/tmp/output_graph.pb',
      help='Where to save the trained graph.')
  parser.add_argument(
      '--intermediate_output_graphs_dir', type=str,
      default='/tmp/intermediate_graph/',
      help='Where to save the intermediate graphs.')
  parser.add_argument(
      '--intermediate_store_frequency', type=int, default=0,
      help="""How many steps to store intermediate graph. If "0" then will not
      store.""")
  parser.add_argument(
      '--output_labels', type=str, default='/tmp/output_labels.txt',
      help="Where to save the trained graph's labels.")
  parser.add_argument(
      '--summaries_dir', type=str, default='/tmp/retrain_logs',
      help='Where to save summary logs for TensorBoard.')
  parser.add_argument(
      '--how_many_training_steps', type=int, default=4000,
      help='How many training steps to run before ending.')
  parser.add_argument(
      '--learning_rate', type=float, default=0.01,
      help='How large a learning rate to use when training.')
  parser.add_argument(
      '--testing_percentage', type=int, default=10,
      help='What percentage of images to use as a test set.')
  parser.add_argument(
      '--validation_percentage', type=int, default=10,
      help='What percentage of images to use as a validation set.')
  parser.add_argument(
      '--eval_step_interval', type=int, default=10,
      help='How often to evaluate the training results.')
  parser.add_argument(
      '--train_batch_size', type=int, default=100,
      help='How many images to train on at a time.')
  parser.add_argument(
      '--test_batch_size', type=int, default=-1,
      help="""How many images to test on. This test set is only used once, to
      evaluate the final accuracy of the model after training completes. A
      value of -1 causes the entire test set to be used, which leads to more
      stable results across runs.""")
  parser.add_argument(
      '--validation_batch_size', type=int, default=100,
      help="""How many images to use in an evaluation batch. This validation set
      is used much more often than the test set, and is an early indicator of
      how accurate the model is during training. A value of -1 causes the
      entire validation set to be used, which leads to more stable results
      across training iterations, but may be slower on large training sets.""")
  parser.add_argument(
      '--print_misclassified_test_images', default=False,
      help="""Whether to print out a list of all misclassified test images.""",
      action='store_true')
  parser.add_argument(
      '--bottleneck_dir', type=str, default='/tmp/bottleneck',
      help='Path to cache bottleneck layer values as files.')
  parser.add_argument(
      '--final_tensor_name', type=str, default='final_result',
      help="""The name of the output classification layer in the retrained
      graph.""")
  parser.add_argument(
      '--flip_left_right', default=False,
      help="""Whether to randomly flip half of the training images
      horizontally.""", action='store_true')
  parser.add_argument(
      '--random_crop', type=int, default=0,
      help="""A percentage determining how much of a margin to randomly crop off
      the training images.""")
  parser.add_argument(
      '--random_scale', type=int, default=0,
      help="""A percentage determining how much to randomly scale up the size of
      the training images by.""")
  parser.add_argument(
      '--random_brightness', type=int, default=0,
      help="""A percentage determining how much to randomly multiply the
      training image input pixels up or down by.""")
  parser.add_argument(
      '--tfhub_module', type=str,
      default=(
          'https://tfhub.dev/google/imagenet/inception_v3/feature_vector/3'),
      help="""Which TensorFlow Hub module to use. For more options, search
      https://tfhub.dev for image feature vector modules. A local module
      folder works too.""")
  parser.add_argument(
      '--saved_model_dir', type=str, default='',
      help='Where to save the exported graph.')
  parser.add_argument(
      '--logging_verbosity', type=str, default='INFO',
      choices=['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'],
      help='How much logging output should be produced.')
  parser.add_argument(
      '--checkpoint_path', type=str, default='/tmp/_retrain_checkpoint',
      help='Where to save checkpoint files.')
  parser.add_argument(
      '--bottleneck_precision', type=str, default='float32',
      choices=BOTTLENECK_PRECISIONS,
      help="""Precision of the module's matrix math when computing
      bottlenecks: bfloat16 is faster where the hardware supports it (oneDNN's
      bfloat16 rewrite on AVX512-BF16/AMX CPUs, float16 mixed precision on a
      GPU). Cached values stay float text, in files of their own.""")
  parser.add_argument(
      '--random_seed', type=int, default=None,
      help="""Seed for image sampling, initial weights and distortions, so that
      a run can be repeated exactly. Unset: a different run each time.""")
  return parser


class _Terminated(Exception):
  """Raised in the main thread when SIGTERM arrives."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise _Terminated()


def run_main(argv=None):
  """Parses the command line, runs main and turns failures into exit codes.

  Args:
    argv: Command line arguments without the program name; sys.argv[1:] if
      None.

  Returns:
    The process exit code: 0 on success, 1 for a user mistake, 130 after
    Ctrl-C and 143 after SIGTERM.
  """
  global FLAGS
  FLAGS = build_parser().parse_args(argv)
  signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    return main([sys.argv[0]])
  except RetrainError as e:
    sys.stderr.write('ERROR: %s\n' % e)
    return 1
  except KeyboardInterrupt:
    sys.stderr.write('\nInterrupted: stopped cleanly. Cached bottlenecks are '
                     'kept; run the same command again to continue.\n')
    return 130
  except _Terminated:
    sys.stderr.write('Terminated: stopped cleanly. Cached bottlenecks are '
                     'kept; run the same command again to continue.\n')
    return 143


# Importers (tests, notebooks) get the defaults of every flag.
FLAGS = build_parser().parse_args([])

if __name__ == '__main__':
  sys.exit(run_main())
