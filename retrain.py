# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
r"""Simple transfer learning with image modules from TensorFlow Hub.

Trains a new top layer (softmax) on a TensorFlow Hub image feature-vector
module's features to recognise your classes: python retrain.py --image_dir
~/flower_photos, where each sub-folder (daisy/, ...) holds one class's images.

The file follows the run: image lists (a stable hash of each file name picks
its set) -> the module graph (a URL, cached in TFHUB_CACHE_DIR, or a folder)
-> bottlenecks (cached under --bottleneck_dir) -> distortions -> the new layer
-> training (resumable) -> evaluation -> exports -> main and the flags; then
support code. The frozen graph maps a float32 image batch [None, height, width,
3] in [0, 1] at 'Placeholder' to class probabilities at 'final_result'. Extras
beside this file are imported only when asked (EXTRA_FILES); without them a
copy of it alone says which one a flag needs, or runs as the original did.
"""

import argparse
import collections
import concurrent.futures
import errno
import functools
import hashlib
import importlib
import json
import logging
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from datetime import datetime


def _wants_debug_logs(argv):
  """Tells whether argv asks for DEBUG logging (read before TF loads)."""
  return ('--logging_verbosity=DEBUG' in argv or
          ('--logging_verbosity', 'DEBUG') in zip(argv, argv[1:]))


def _interrupted_while_loading(signum, frame):
  del signum, frame
  os.write(_USER_STDERR, b'\nInterrupted: stopped before anything was done.\n')
  os._exit(130)  # pylint: disable=protected-access


# Before TensorFlow loads: a quiet Ctrl-C, and its C++ start-up lines hidden.
_USER_STDERR = os.dup(2)
if __name__ == '__main__':
  signal.signal(signal.SIGINT, _interrupted_while_loading)
if not _wants_debug_logs(sys.argv):
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# TensorFlow's load imports Keras' optimizers (unused, slow): blocked till then.
_KERAS_EAGER_IMPORTS = ('keras.src.optimizers', 'tf_keras.src.optimizers')
for _name in _KERAS_EAGER_IMPORTS:
  sys.modules.setdefault(_name, None)
if os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '3':
  _devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(_devnull, 2)
  os.close(_devnull)
try:
  # pylint: disable=g-import-not-at-top
  from google.protobuf import empty_pb2
  from google.protobuf import message as proto_message
  from google.protobuf import unknown_fields
  import numpy as np
  import tensorflow.compat.v1 as tf
  from tensorflow.core.framework import variable_pb2
  from tensorflow.core.protobuf import saved_model_pb2
  from tensorflow.python.framework import op_def_registry
except ImportError as e:
  if __name__ != '__main__':
    raise
  # SystemExit's message is printed after the finally clause restores stderr.
  sys.exit('retrain.py: error: %s: install the requirements with "pip install '
           '-r requirements.txt" (Python 3.10-3.13).' % e)
finally:
  os.dup2(_USER_STDERR, 2)
  for _name in _KERAS_EAGER_IMPORTS:
    if sys.modules.get(_name, True) is None:
      del sys.modules[_name]

# TF1 behaviour (graphs and Sessions) is switched on at the end of this file.
FLAGS = None

MAX_NUM_IMAGES_PER_CLASS = 2 ** 27 - 1  # ~134M
# A module with any of these ops is instrumented for quantization.
FAKE_QUANT_OPS = ('FakeQuantWithMinMaxVars',
                  'FakeQuantWithMinMaxVarsPerChannel')
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')  # Compared lower-cased.
CATEGORIES = ('training', 'testing', 'validation')
# With --image_labels (multi_label.py), the image lists' one entry.
MULTI_LABEL_GROUP = 'the images of --image_labels'
CLASS_WEIGHTS = ('none', 'balanced')
BOTTLENECK_PRECISIONS = ('float32', 'bfloat16')
SUMMARY_RUNS = ('train', 'validation', 'test')  # Under --summaries_dir.
# Larger images are decoded smaller (JPEGs) or skipped: no decompression bombs.
MAX_IMAGE_PIXELS = 2 ** 25
DEFAULT_DECODED_IMAGES_MB = 2048  # flower_photos's training set fits.
MAX_CACHE_NAME_BYTES = 200  # Longer cache file names are hashed.

# Caps libjpeg-turbo's memory per image (a lying header could ask gigabytes).
os.environ.setdefault('JPEGMEM', '1000M')


class RetrainError(Exception):
  """A mistake of the user's (flags, folders, data): reported as one line."""


# The module graph's tensors, in the order the original's functions take them.
ModuleTensors = collections.namedtuple('ModuleTensors', [
    'jpeg_data', 'decoded_image', 'resized_image', 'bottleneck'])

# Where a run's bottlenecks are cached, and the BottleneckMemory holding them.
BottleneckCache = collections.namedtuple('BottleneckCache', [
    'image_dir', 'bottleneck_dir', 'module_name', 'memory'])


# --- Image lists -------------------------------------------------------------


def _percentage_hash(file_name):
  """Stable [0, 100] hash of a file name up to '_nohash_': picks its set."""
  hash_name = re.sub(r'_nohash_.*$', '', file_name)
  hash_name_hashed = hashlib.sha1(tf.compat.as_bytes(hash_name)).hexdigest()
  return ((int(hash_name_hashed, 16) % (MAX_NUM_IMAGES_PER_CLASS + 1)) *
          (100.0 / MAX_NUM_IMAGES_PER_CLASS))


def create_image_lists(image_dir, testing_percentage, validation_percentage,
                       unusable=None):
  """Builds a list of training images from the file system.

  Args:
    image_dir: String path to a folder containing subfolders of images.
    testing_percentage: Integer percentage of the images to reserve for tests.
    validation_percentage: Integer percentage of images for validation.
    unusable: A list to extend with (path, reason) of unusable image files.

  Returns:
    An OrderedDict label -> {'dir', 'training', 'testing', 'validation'}, in
    class index order (sorted folders); None if image_dir does not exist.

  Raises:
    RetrainError: if two class folders map to the same label.
  """
  if not tf.gfile.Exists(image_dir):
    tf.logging.error("Image directory '" + image_dir + "' not found.")
    return None
  result = collections.OrderedDict()
  for dir_name in _class_folders(image_dir):
    tf.logging.info("Looking for images in '" + dir_name + "'")
    bad_names = []
    file_list = _list_image_files(os.path.join(image_dir, dir_name), bad_names)
    for path, reason in bad_names:
      tf.logging.warning('Skipping %s: %s', path, reason)
    if unusable is not None:
      unusable.extend(bad_names)
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
    label_name = label_of_folder(dir_name)
    if label_name in result:
      raise RetrainError(
          "Class folders '%s' and '%s' both give the label '%s': rename one "
          'of them.' % (result[label_name]['dir'], dir_name, label_name))
    lists = {'dir': dir_name, 'training': [], 'testing': [], 'validation': []}
    for base_name in file_list:
      lists[category_of(base_name, testing_percentage,
                        validation_percentage)].append(base_name)
    result[label_name] = lists
  return result


def category_of(file_name, testing_percentage, validation_percentage):
  """The set ('training', 'testing' or 'validation') of an image file."""
  percentage_hash = _percentage_hash(file_name)
  if percentage_hash < validation_percentage:
    return 'validation'
  if percentage_hash < (testing_percentage + validation_percentage):
    return 'testing'
  return 'training'


def label_of_folder(dir_name):
  """The label of a class folder: lower case, other characters as spaces."""
  return re.sub(r'[^a-z0-9]+', ' ', dir_name.lower())


def get_image_path(image_lists, label_name, index, image_dir, category):
  """Returns a path to an image for a label at the given index.

  Args:
    image_lists: OrderedDict of training images for each label.
    label_name: Label string we want to get an image for.
    index: Int offset of the image, modulo the label's number of images.
    image_dir: Root folder string of the class subfolders.
    category: Name string of the set: training, testing, or validation.

  Returns:
    File system path string to the image.

  Raises:
    ValueError: if the label, the category or any image of it is missing.
  """
  if label_name not in image_lists:
    raise ValueError('Label does not exist %s.' % label_name)
  label_lists = image_lists[label_name]
  if category not in label_lists:
    raise ValueError('Category does not exist %s.' % category)
  category_list = label_lists[category]
  if not category_list:
    raise ValueError('Label %s has no images in the category %s.' %
                     (label_name, category))
  return os.path.join(image_dir, label_lists['dir'],
                      category_list[index % len(category_list)])


def image_entries(image_lists, image_dir, category):
  """[(path, class index or 0/1 label row)] of category's images, in order."""
  entries = [(get_image_path(image_lists, label, index, image_dir, category),
              class_index)
             for class_index, label in enumerate(image_lists)
             for index in range(len(image_lists[label][category]))]
  multi_label = image_lists.get(MULTI_LABEL_GROUP)
  if multi_label:  # Its one entry's images, in the same order.
    return [(path, tuple(row)) for (path, _), row in zip(
        entries, label_rows(multi_label, multi_label[category]))]
  return entries


def label_names_of(image_lists):
  """The labels in class index order (with --image_labels, its CSV's)."""
  multi_label = image_lists.get(MULTI_LABEL_GROUP)
  return list(multi_label['labels']) if multi_label else list(image_lists)


def label_rows(multi_label, image_names):
  """float32 [images, labels]: 1 where an --image_labels image has a label."""
  rows = np.zeros([len(image_names), len(multi_label['labels'])], np.float32)
  for row, name in zip(rows, image_names):
    row[list(multi_label['label_indices'][name])] = 1
  return rows


def _module_cache_suffix(module_name):
  """A module URL or path in a file name: '~' for '://', '/', ':' and '\\'."""
  return re.sub(r'://|[/:\\]', '~', module_name)


def get_bottleneck_path(image_lists, label_name, index, bottleneck_dir,
                        category, module_name):
  """Returns a path to a bottleneck file for a label at the given index.

  Args:
    image_lists: OrderedDict of training images for each label.
    label_name: Label string we want to get an image for.
    index: Integer offset of the image, modulo the label's number of images.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    category: Name string of the set: training, testing, or validation.
    module_name: The name of the image module being used.

  Returns:
    File system path string to the bottleneck file.
  """
  path = '%s_%s.txt' % (get_image_path(image_lists, label_name, index,
                                       bottleneck_dir, category),
                        _module_cache_suffix(module_name))
  folder, name = os.path.split(path)
  encoded_name = name.encode('utf-8')
  if len(encoded_name) > MAX_CACHE_NAME_BYTES:
    # File systems allow 255 bytes, and the temporary name adds up to 50.
    path = os.path.join(folder, '%s~%s.txt' % (
        encoded_name[:150].decode('utf-8', 'ignore'),
        hashlib.sha1(encoded_name).hexdigest()))
  return path


# --- Module graph ------------------------------------------------------------


def load_module_spec(module_handle, image_size=None):
  """A TF1ImageModule (hub 0.16 dropped hub.Module) or a TF2 one of a
  module URL or folder (tf2_modules.py); one-line RetrainErrors."""
  path = _module_folder(module_handle)
  if not tf.gfile.Exists(os.path.join(path, 'tfhub_module.pb')):
    if tf.gfile.Exists(os.path.join(path, 'saved_model.pb')):
      tf2_modules = import_extra(
          'tf2_modules', '--tfhub_module %s (a TF2 SavedModel)' %
          module_handle, ('tf2_modules.py',))
      return tf2_modules.load_tf2_module(module_handle, path, image_size)
    raise RetrainError(
        '--tfhub_module %s is neither a TF1 Hub module (tfhub_module.pb) nor '
        'a TF2 SavedModel (saved_model.pb): pass a module URL or a module '
        'folder.' % module_handle)
  meta_graph, signature = _read_tf1_module(module_handle, path)
  module_size = _tf1_image_size(meta_graph, signature)
  variable_size = not all(module_size)
  return TF1ImageModule(
      module_handle, path, meta_graph,
      checked_image_size(module_handle, module_size, variable_size, image_size),
      variable_size, _info_shape(signature.outputs['default']).as_list()[1])


def checked_image_size(module_handle, module_size, variable_size,
                       image_size):
  """(height, width) to resize to; RetrainError if --image_size is wrong."""
  if variable_size and image_size is None:
    raise RetrainError(
        '--tfhub_module %s takes images of any size: pass the size it was '
        'trained for with --image_size (e.g. --image_size 224, see the '
        "model's documentation)." % module_handle)
  if image_size is None:
    return tuple(module_size)
  if not variable_size and tuple(module_size) != (image_size, image_size):
    raise RetrainError(
        '--image_size %d does not fit --tfhub_module %s, which takes %dx%d '
        'images: leave --image_size out.' % ((image_size, module_handle) +
                                            tuple(module_size)))
  return image_size, image_size


class TF1ImageModule(collections.namedtuple('TF1ImageModule', [
    'handle', 'path', 'meta_graph', 'image_size', 'variable_size',
    'feature_width'])):
  """A TF1 Hub image feature vector: 'images' in [0, 1] -> 'default'."""

  def apply_fn(self):
    """Adds the variables under 'module'; returns images -> features."""
    nodes = self.meta_graph.graph_def.node
    # Ops that hold state and take no inputs: variables, tables.
    op_defs = {node.name: op_def_registry.get(node.op) for node in nodes}
    state_ops = {name for name, op_def in op_defs.items()
                 if op_def and op_def.is_stateful and not op_def.input_arg}
    # The state ops and what variables name come alone: the graph is slow.
    keep = set(state_ops)
    for variable in _variable_defs(self.meta_graph):
      keep.update(name.split(':')[0] for name in (
          variable.variable_name, variable.initializer_name,
          variable.snapshot_name, variable.initial_value_name) if name)
    scope = _import_module_graph(
        self.meta_graph, tf.graph_util.extract_sub_graph(
            self.meta_graph.graph_def, sorted(keep)).node, 'module',
        (tf.GraphKeys.GLOBAL_VARIABLES, tf.GraphKeys.MODEL_VARIABLES), {})
    state_map = {name + ':0': tf.get_default_graph().get_tensor_by_name(
        '%s/%s:0' % (scope, name)) for name in state_ops}
    variables = {variable.op.name[len(scope) + 1:]: variable
                 for variable in tf.global_variables(re.escape(scope) + '/')}
    if variables:
      tf.train.init_from_checkpoint(os.path.join(
          self.path, 'variables', 'variables'), variables)
    # Applies feed the state ops, minus colocations that would freeze them in.
    apply_graph = tf.GraphDef()
    apply_graph.node.extend(node for node in nodes
                            if node.name not in state_ops)
    for node in apply_graph.node:
      if '_class' in node.attr:
        places = node.attr['_class'].list.s
        places[:] = [place for place in places
                     if place.decode()[len('loc:@'):] not in state_ops]
        if not places:
          del node.attr['_class']
    signature = self.meta_graph.signature_def['default']

    def apply(images):
      """Adds the module's ops under 'module_apply_default' (then '..._1')."""
      input_map = dict(state_map)
      input_map[signature.inputs['images'].name] = images
      apply_scope = _import_module_graph(
          self.meta_graph, apply_graph.node, 'module_apply_default',
          (tf.GraphKeys.COND_CONTEXT, tf.GraphKeys.WHILE_CONTEXT), input_map)
      return tf.get_default_graph().get_tensor_by_name(
          '%s/%s' % (apply_scope, signature.outputs['default'].name))
    return apply


def _import_module_graph(meta_graph, nodes, name, collections_to_keep,
                         input_map):
  """Imports nodes and collections_to_keep in a new name scope; returns it."""
  absolute_scope = tf.get_default_graph().unique_name(name, mark_as_used=False)
  kept = tf.MetaGraphDef()
  kept.CopyFrom(meta_graph)
  del kept.graph_def.node[:]
  kept.graph_def.node.extend(nodes)
  for key in set(kept.collection_def) - set(collections_to_keep):
    del kept.collection_def[key]
  tf.train.import_meta_graph(kept, input_map=input_map,
                             import_scope=absolute_scope.split('/')[-1])
  return absolute_scope


def _read_tf1_module(module_handle, path):
  """(MetaGraphDef, default signature) of a TF1 Hub image module, checked."""
  saved_model = saved_model_pb2.SavedModel()
  try:
    with tf.gfile.GFile(os.path.join(path, 'saved_model.pb'), 'rb') as f:
      saved_model.ParseFromString(f.read())
  except Exception as e:  # pylint: disable=broad-except
    raise RetrainError('Could not load the module %s: its saved_model.pb '
                       'cannot be read (%s).' % (module_handle,
                                                 error_reason(e)))
  for meta_graph in saved_model.meta_graphs:
    if not meta_graph.meta_info_def.tags:
      break
  else:
    raise RetrainError('Could not load the module %s: its saved_model.pb has '
                       'no graph with the tags {} of a TF1 Hub module.' %
                       module_handle)
  signature = meta_graph.signature_def.get('default')
  if (signature is None or 'images' not in signature.inputs or
      'default' not in signature.outputs or
      _info_shape(signature.outputs['default']).ndims != 2 or
      not _info_shape(signature.inputs['images']).is_compatible_with(
          [None, None, None, 3])):
    raise RetrainError(
        '--tfhub_module %s is not an image feature vector module: its default '
        "signature must take 'images' and return 'default' [batch, features]."
        % module_handle)
  # Reads each variable once, so that a damaged checkpoint fails here.
  names = [variable.variable_name.split(':')[0]
           for variable in _variable_defs(meta_graph)]
  if names:
    try:
      reader = tf.train.load_checkpoint(os.path.join(path, 'variables',
                                                     'variables'))
      for name in names:
        reader.get_tensor(name)
    # The reader's own bindings raise IndexError, ValueError or RuntimeError.
    except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as e:
      raise RetrainError('Could not load the module %s: its variables/ '
                         'cannot be read (%s).' % (module_handle,
                                                   error_reason(e)))
  return meta_graph, signature


def _variable_defs(meta_graph):
  """The VariableDefs of a module's global variables."""
  variables = meta_graph.collection_def.get(tf.GraphKeys.GLOBAL_VARIABLES)
  return [variable_pb2.VariableDef.FromString(serialized)
          for serialized in (variables.bytes_list.value if variables else ())]


def _info_shape(tensor_info):
  """The tf.TensorShape of a signature's TensorInfo."""
  return tf.TensorShape(tensor_info.tensor_shape)


def _tf1_image_size(meta_graph, signature):
  """(height, width), 0 for any, as hub.get_expected_image_size read them."""
  # Serialized ModuleAttachments (key = 1, value = 2); 'image_module_info' is
  # an ImageModuleInfo: default_image_size = 1 {height = 1, width = 2}.
  attachments = meta_graph.collection_def.get('hub_module_attachments')
  for attachment in attachments.bytes_list.value if attachments else ():
    fields = _proto_fields(attachment)
    if fields.get(1) == b'image_module_info':
      size = _proto_fields(_proto_fields(fields.get(2, b'')).get(1, b''))
      if size.get(1) and size.get(2):
        return size[1], size[2]
  shape = _info_shape(signature.inputs['images'])
  height, width = shape.as_list()[1:3] if shape.ndims else (0, 0)
  return height or 0, width or 0


def _proto_fields(data):
  """{field: value} of a message ({} if damaged); hub 0.16 lacks its classes."""
  try:
    fields = unknown_fields.UnknownFieldSet(empty_pb2.Empty.FromString(data))
  except proto_message.DecodeError:
    return {}
  return {field.field_number: field.data for field in fields}


def _module_folder(module_handle):
  """The local folder of a module (a URL's download, or the folder given)."""
  if is_module_url(module_handle):
    try:
      return tensorflow_hub().resolve(module_handle)
    except Exception as e:  # pylint: disable=broad-except
      raise RetrainError(
          'Could not download the module %s (%s). Without network access, pass '
          'a local module folder with --tfhub_module=/path/to/module, or put '
          'the downloaded module into the folder TFHUB_CACHE_DIR names.' %
          (module_handle, error_reason(e)))
  path = module_handle.removeprefix('file://')
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
                       'folder: pass the folder that holds '
                       'tfhub_module.pb.' % module_handle)
  return path


def tensorflow_hub():
  """tensorflow_hub, imported on first need without its import warnings."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  return hub


def is_module_url(module_handle):
  """Tells whether --tfhub_module is a URL to download (not a folder)."""
  return not is_local_path(module_handle) and not module_handle.startswith(
      'file://')


def module_image_shape(module_spec):
  """(height, width, channels) of the images a module (TF1 or TF2) takes."""
  return tuple(module_spec.image_size) + (3,)


# create_module_graph's values and apply_module (images -> features).
ModuleGraph = collections.namedtuple('ModuleGraph', [
    'graph', 'bottleneck_tensor', 'resized_input_tensor', 'wants_quantization',
    'apply_module'])


def create_module_graph(module_spec):
  """Creates a graph and loads Hub Module into it.

  Args:
    module_spec: The image module, as load_module_spec returns it.

  Returns:
    graph: the tf.Graph that was created.
    bottleneck_tensor: the bottleneck values output by the module.
    resized_input_tensor: the input images, resized as expected by the module.
    wants_quantization: a boolean, whether the module has been instrumented
      with fake quantization ops.
  """
  return tuple(_module_graph(module_spec)[:4])


def _module_graph(module_spec):
  """create_module_graph's work, as a ModuleGraph."""
  height, width, _ = module_image_shape(module_spec)
  with tf.Graph().as_default() as graph:
    resized_input_tensor = tf.placeholder(tf.float32, [None, height, width, 3])
    m = module_spec.apply_fn()
    bottleneck_tensor = m(resized_input_tensor)
    wants_quantization = any(node.op in FAKE_QUANT_OPS
                             for node in graph.as_graph_def().node)
  return ModuleGraph(graph, bottleneck_tensor, resized_input_tensor,
                     wants_quantization, m)


def module_session_config(bottleneck_precision='float32'):
  """Mixed-precision Session config of bottleneck_precision; float32: None."""
  if bottleneck_precision == 'float32':
    return None
  config = tf.ConfigProto()
  rewrite_options = config.graph_options.rewrite_options
  if tf.config.list_physical_devices('GPU'):
    rewrite_options.auto_mixed_precision = rewrite_options.ON
  else:
    rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewrite_options.ON
  return config


def module_cache_name(module_handle, bottleneck_precision='float32',
                      module_spec=None):
  """get_bottleneck_path's module_name: handle, image size if any, precision."""
  name = module_handle
  if module_spec is not None and module_spec.variable_size:
    name += '@%dx%d' % tuple(module_spec.image_size)
  if bottleneck_precision != 'float32':
    name += '~' + bottleneck_precision
  return name


# --- Bottlenecks -------------------------------------------------------------


def add_jpeg_decoding(module_spec):
  """Adds operations that perform JPEG (and PNG) decoding and resizing.

  Args:
    module_spec: The image module, as load_module_spec returns it.

  Returns:
    The placeholder to feed JPEG data into, and the preprocessed image.
  """
  jpeg_data = tf.placeholder(tf.string, name='DecodeJPGInput')
  return jpeg_data, decode_and_resize(jpeg_data,
                                      *module_image_shape(module_spec))


def run_bottleneck_on_image(sess, image_data, image_data_tensor,
                            decoded_image_tensor, resized_input_tensor,
                            bottleneck_tensor):
  """Runs inference on an image to extract the 'bottleneck' summary layer.

  Args:
    sess: Current active TensorFlow Session.
    image_data: String of raw JPEG data.
    image_data_tensor, decoded_image_tensor, resized_input_tensor,
      bottleneck_tensor: The module graph's ModuleTensors.

  Returns:
    Numpy array of bottleneck values.
  """
  resized_input_values = sess.run(decoded_image_tensor,
                                  {image_data_tensor: image_data})
  return sess.run(bottleneck_tensor,
                  {resized_input_tensor: resized_input_values})[0]


def ensure_dir_exists(dir_name):
  """Makes sure the folder (a local path or gs://... and the like) exists."""
  if not is_local_path(dir_name):
    tf.gfile.MakeDirs(dir_name)
  elif not os.path.exists(dir_name):
    os.makedirs(dir_name, exist_ok=True)


def write_bottleneck_file(bottleneck_path, bottleneck_values):
  """Writes bottleneck values as comma-separated text, atomically."""
  write_file_atomically(bottleneck_path,
                        ','.join(str(x) for x in bottleneck_values))


def read_bottleneck_file(bottleneck_path, expected_width=None):
  """A bottleneck file's float32 values; None if unreadable or misshapen."""
  try:
    with tf.gfile.GFile(bottleneck_path, 'r') as bottleneck_file:
      values = np.array(bottleneck_file.read().split(','), np.float32)
  except (ValueError, tf.errors.OpError, OSError):
    return None
  if expected_width is not None and values.size != expected_width:
    return None
  return values


def _read_cached_bottleneck(bottleneck_path, width):
  """read_bottleneck_file's values; warns of a file that will be recreated."""
  if not tf.gfile.Exists(bottleneck_path):
    return None
  values = read_bottleneck_file(bottleneck_path, width)
  if values is None:
    tf.logging.warning('Invalid bottleneck file %s, recreating it.',
                       bottleneck_path)
  return values


def create_bottleneck_file(bottleneck_path, image_lists, label_name, index,
                           image_dir, category, sess, jpeg_data_tensor,
                           decoded_image_tensor, resized_input_tensor,
                           bottleneck_tensor):
  """Create a single bottleneck file."""
  tf.logging.debug('Creating bottleneck at ' + bottleneck_path)
  image_path = get_image_path(image_lists, label_name, index,
                              image_dir, category)
  if not tf.gfile.Exists(image_path):
    raise RuntimeError('File does not exist %s' % image_path)
  image_data = tf.gfile.GFile(image_path, 'rb').read()
  try:
    bottleneck_values = run_bottleneck_on_image(
        sess, image_data, jpeg_data_tensor, decoded_image_tensor,
        resized_input_tensor, bottleneck_tensor)
  except Exception as e:
    raise RuntimeError('Error during processing file %s (%s)' %
                       (image_path, e))
  write_bottleneck_file(bottleneck_path, bottleneck_values)
  return bottleneck_values


def get_or_create_bottleneck(sess, image_lists, label_name, index, image_dir,
                             category, bottleneck_dir, jpeg_data_tensor,
                             decoded_image_tensor, resized_input_tensor,
                             bottleneck_tensor, module_name):
  """Retrieves or calculates (and caches) bottleneck values for an image.

  Args:
    sess: The current active TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    label_name: Label string we want to get an image for.
    index: Integer offset of the image, modulo the label's number of images.
    image_dir: Root folder string of the class subfolders.
    category: Name string of the set: training, testing, or validation.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
      bottleneck_tensor: The module graph's ModuleTensors.
    module_name: The name of the image module being used.

  Returns:
    Numpy array of values produced by the bottleneck layer for the image.
  """
  bottleneck_path = get_bottleneck_path(image_lists, label_name, index,
                                        bottleneck_dir, category, module_name)
  ensure_dir_exists(os.path.dirname(bottleneck_path))
  bottleneck_values = _read_cached_bottleneck(
      bottleneck_path, bottleneck_tensor.get_shape().as_list()[-1])
  if bottleneck_values is None:
    bottleneck_values = create_bottleneck_file(
        bottleneck_path, image_lists, label_name, index, image_dir, category,
        sess, jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
        bottleneck_tensor)
  return bottleneck_values


class BottleneckMemory(dict):
  """A run's bottleneck values by cache file path, and per-class matrices."""

  def __init__(self):
    super().__init__()
    # (bottleneck_dir, module_name, folder, category) -> (names, count, matrix)
    self._matrices = {}

  def class_matrix(self, image_lists, label_name, category, bottleneck_dir,
                   module_name, load=None):
    """A class's category as float32 [n, width] (None: no images), restacked
    if its image list changes; load(label_name, index) reads the rest."""
    image_names = image_lists[label_name][category]
    key = (bottleneck_dir, module_name, image_lists[label_name]['dir'],
           category)
    known = self._matrices.get(key)
    if known and known[0] is image_names and known[1] == len(image_names):
      return known[2]
    matrix = None
    for index in range(len(image_names)):
      path = get_bottleneck_path(image_lists, label_name, index,
                                 bottleneck_dir, category, module_name)
      values = self.get(path)
      if values is None:
        values = load(label_name, index)
      if matrix is None:
        matrix = np.empty([len(image_names), values.size], np.float32)
      matrix[index] = values
      self[path] = matrix[index]
    self._matrices[key] = (image_names, len(image_names), matrix)
    return matrix


def create_bottleneck_session(module_spec, bottleneck_precision='float32'):
  """(initialised Session, ModuleTensors) of the module with decoding ops."""
  graph, bottleneck_tensor, resized_input_tensor, _ = create_module_graph(
      module_spec)
  with graph.as_default():
    tensors = ModuleTensors(*add_jpeg_decoding(module_spec),
                            resized_input_tensor, bottleneck_tensor)
    init = tf.global_variables_initializer()
  sess = tf.Session(graph=graph,
                    config=module_session_config(bottleneck_precision))
  sess.run(init)
  return sess, tensors


def default_caching_batch_size(input_height, input_width):
  """Images per module run when caching: ~0.5M pixels, within [8, 64]."""
  return int(np.clip(2 ** 19 // (input_height * input_width), 8, 64))


# Feed strings to inputs, run initializer; next_batch: (indices, images).
BatchedDecoding = collections.namedtuple('BatchedDecoding', [
    'inputs', 'initializer', 'next_batch'])


def add_batched_decoding(image_shape, batch_size=None, from_files=True):
  """Adds a parallel decoder of paths (bytes if not from_files); batch k holds
  the inputs[k * batch_size:(k + 1) * batch_size] that decode; None: all."""
  height, width, depth = image_shape
  with tf.name_scope('batched_decoding'):
    inputs = tf.placeholder(tf.string, [None], name='inputs')
    count = tf.size(inputs, out_type=tf.int64)

    def decode(index, image):
      image_data = tf.io.read_file(image) if from_files else image
      resized = decode_and_resize(image_data, height, width, depth)
      return index, tf.squeeze(resized, axis=0)

    dataset = tf.data.Dataset.from_tensor_slices((tf.range(count), inputs))
    dataset = parallel_map(dataset, decode)
    dataset = dataset.apply(tf.data.experimental.ignore_errors())
    if batch_size:
      # No AutoGraph: its code would stay in the temp folder at os._exit.
      plain = tf.autograph.experimental.do_not_convert
      dataset = dataset.group_by_window(
          plain(lambda index, image: index // batch_size),
          plain(lambda unused_key, batch: batch.batch(batch_size)), batch_size)
    else:
      dataset = dataset.batch(tf.maximum(count, 1))
    iterator = tf.data.make_initializable_iterator(dataset.prefetch(2))
  return BatchedDecoding(inputs, iterator.initializer, iterator.get_next())


def parallel_map(dataset, function):
  """dataset.map per core; no autotuner (closing waits), no AutoGraph."""
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.map(tf.autograph.experimental.do_not_convert(function),
                     num_parallel_calls=os.cpu_count() or 1).with_options(
                         options)


def decode_in_batches(sess, decoding, inputs):
  """Yields (indices, images) of the inputs that decode, by sess's decoding."""
  sess.run(decoding.initializer, {decoding.inputs: inputs})
  while True:
    try:
      yield sess.run(decoding.next_batch)
    except tf.errors.OutOfRangeError:
      return


def decode_images(inputs, image_shape, batch_size=None, from_files=True):
  """decode_in_batches in a new graph: a used one's Session would resend it."""
  with tf.Graph().as_default() as graph:
    decoding = add_batched_decoding(image_shape, batch_size, from_files)
  with tf.Session(graph=graph) as sess:
    yield from decode_in_batches(sess, decoding, inputs)


def predicted_classes(probabilities, multi_label_threshold=None):
  """Each row's top class, or with a threshold its 0/1 row of labels."""
  if multi_label_threshold is None:
    return np.argmax(probabilities, -1)
  return (np.asarray(probabilities) >= multi_label_threshold).astype(np.int64)


def count_equal(predicted, truth):
  """How many of predicted_classes's rows equal truth's (image_entries's)."""
  same = np.asarray(predicted) == np.asarray(truth)
  return int(np.sum(np.all(same.reshape(len(same), -1), 1)))


def decode_entries(entries, image_shape, batch_size=32):
  """Yields (truths, float images) of the entries that decode."""
  truth = np.array([class_index for _, class_index in entries], np.int64)
  for indices, images in decode_images([path for path, _ in entries],
                                       image_shape, batch_size):
    yield truth[indices], images


def retry_failed_images(sess, tensors, failed, skip, checks=None):
  """Decodes each failed (key, path, bytes or None) alone, or calls skip(key,
  path, reason: in words with image_checks.py as checks, else TensorFlow's);
  returns (keys, float [h, w, d] images) of those decoded."""
  keys, images = [], []
  for key, image_path, image_data in failed:
    if checks is not None:
      if image_data is None:
        image_data, reason = checks.read_image_file(image_path)
      if image_data is not None:
        image, reason = checks.decode_or_explain(
            sess, image_data, tensors.jpeg_data, tensors.decoded_image)
    else:
      try:
        image_data = image_data or tf.gfile.GFile(image_path, 'rb').read()
        image, reason = sess.run(tensors.decoded_image,
                                 {tensors.jpeg_data: image_data}), None
      except (tf.errors.OpError, OSError) as e:
        reason = error_reason(e)
    if reason is None:
      keys.append(key)
      images.append(image[0])
    else:
      skip(key, image_path, reason)
  return keys, images


# One image of cache_bottlenecks: its cache file, and whether it was there.
_CacheEntry = collections.namedtuple('_CacheEntry', [
    'label_name', 'category', 'image_name', 'image_path', 'bottleneck_path',
    'cached'])


def cache_bottlenecks(sess, image_lists, image_dir, bottleneck_dir,
                      jpeg_data_tensor, decoded_image_tensor,
                      resized_input_tensor, bottleneck_tensor, module_name,
                      batch_size=None, memory=None):
  """Ensures all the training, testing, and validation bottlenecks are cached.

  Missing values are computed in batches while the next batch decodes; images
  that cannot be used are skipped, with a warning, and left out of image_lists.

  Args:
    sess: The current active TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    image_dir: Root folder string of the class subfolders.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
      bottleneck_tensor: The module graph's ModuleTensors.
    module_name: The name of the image module being used.
    batch_size: Images per module run; None for default_caching_batch_size.
    memory: The run's BottleneckMemory to fill; None only writes the files.

  Returns:
    The list of (image path, reason) of the images that were skipped.
  """
  tensors = ModuleTensors(jpeg_data_tensor, decoded_image_tensor,
                          resized_input_tensor, bottleneck_tensor)
  memory = BottleneckMemory() if memory is None else memory
  if batch_size is None:
    batch_size = default_caching_batch_size(
        *resized_input_tensor.get_shape().as_list()[1:3])
  entries = _scan_bottleneck_cache(
      image_lists, BottleneckCache(image_dir, bottleneck_dir, module_name,
                                   memory),
      bottleneck_tensor.get_shape().as_list()[-1])
  skipped = []

  def skip(entry, image_path, reason):
    tf.logging.warning('Skipping %s: %s', image_path, reason)
    image_lists[entry.label_name][entry.category].remove(entry.image_name)
    skipped.append((image_path, reason))

  usable = []
  checks = image_checks_module()
  for entry in entries:
    reason = None if entry.cached or not checks else checks.why_file_unusable(
        entry.image_path)
    if reason:
      skip(entry, entry.image_path, reason)
    else:
      usable.append(entry)
  # Whole batches: oneDNN's values depend on the batch, and resumes must match.
  to_compute = []
  for start in range(0, len(usable), batch_size):
    batch = usable[start:start + batch_size]
    if not all(entry.cached for entry in batch):
      to_compute.extend(batch)
  if to_compute:
    progress = Progress(sum(1 for entry in to_compute if not entry.cached),
                        'bottlenecks computed')
    image_shape = tensors.resized_image.get_shape().as_list()[1:]
    run_module = functools.partial(sess.run, tensors.bottleneck)
    # A blank run prepares the graph; then two batches run at once (each op's
    # threads wait less) while the next decodes.
    with concurrent.futures.ThreadPoolExecutor(2) as module_threads:
      pending = collections.deque([([], module_threads.submit(run_module, {
          tensors.resized_image: np.zeros([1] + image_shape, np.float32)}))])
      for indices, images in decode_images(
          [entry.image_path for entry in to_compute], image_shape, batch_size):
        pending.append(([to_compute[index] for index in indices],
                        module_threads.submit(run_module, {
                            tensors.resized_image: images})))
        if len(pending) > 2:
          finished, values = pending.popleft()
          progress.add(_keep_bottlenecks(memory, finished, values.result()))
      for finished, values in pending:
        progress.add(_keep_bottlenecks(memory, finished, values.result()))
  retried, images = retry_failed_images(
      sess, tensors, [(entry, entry.image_path, None) for entry in to_compute
                      if memory.get(entry.bottleneck_path) is None], skip,
      checks)
  if retried:
    _keep_bottlenecks(memory, retried, sess.run(
        tensors.bottleneck, {tensors.resized_image: images}))
  return skipped


def _scan_bottleneck_cache(image_lists, cache, width):
  """Reads valid cache files into memory; returns every image's _CacheEntry."""
  ensure_dir_exists(cache.bottleneck_dir)
  entries = []
  for label_name, label_lists in image_lists.items():
    _remove_stale_temporary_files(os.path.join(cache.bottleneck_dir,
                                               label_lists['dir']))
    for category in CATEGORIES:
      complete = True
      for index, image_name in enumerate(label_lists[category]):
        bottleneck_path = get_bottleneck_path(
            image_lists, label_name, index, cache.bottleneck_dir, category,
            cache.module_name)
        values = cache.memory.get(bottleneck_path)
        if values is None:
          values = _read_cached_bottleneck(bottleneck_path, width)
          if values is not None:
            cache.memory[bottleneck_path] = values
        complete &= values is not None
        entries.append(_CacheEntry(
            label_name, category, image_name, get_image_path(
                image_lists, label_name, index, cache.image_dir, category),
            bottleneck_path, values is not None))
      if complete:
        # Stacked now, the next class reuses the per-file arrays' memory.
        cache.memory.class_matrix(image_lists, label_name, category,
                                  cache.bottleneck_dir, cache.module_name)
  missing = sum(1 for entry in entries if not entry.cached)
  tf.logging.info('%d bottlenecks found in the cache, %d to compute.',
                  len(entries) - missing, missing)
  return entries


def _keep_bottlenecks(memory, entries, batch_values):
  """Writes and keeps the entries' missing values; returns how many."""
  missing = [(entry, values) for entry, values in zip(entries, batch_values)
             if not entry.cached]
  for entry, values in missing:
    write_bottleneck_file(entry.bottleneck_path, values)
    memory[entry.bottleneck_path] = values
  return len(missing)


def get_random_cached_bottlenecks(sess, image_lists, how_many, category,
                                  bottleneck_dir, image_dir, jpeg_data_tensor,
                                  decoded_image_tensor, resized_input_tensor,
                                  bottleneck_tensor, module_name, memory=None):
  """Retrieves bottleneck values for cached images, from memory or disk.

  Args:
    sess: Current TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    how_many: Images to draw, each a class then an image; negative for all.
    category: Name string of the set: training, testing, or validation.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    image_dir: Root folder string of the class subfolders.
    jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
      bottleneck_tensor: The module graph's ModuleTensors.
    module_name: The name of the image module being used.
    memory: The run's BottleneckMemory; None reads the values at each call.

  Returns:
    (float32 bottlenecks, int64 ground truths (float32 label_rows with
    --image_labels), image paths if how_many < 0).
  """
  def load(label_name, index):
    return get_or_create_bottleneck(
        sess, image_lists, label_name, index, image_dir, category,
        bottleneck_dir, jpeg_data_tensor, decoded_image_tensor,
        resized_input_tensor, bottleneck_tensor, module_name)

  class_matrix = functools.partial(
      (BottleneckMemory() if memory is None else memory).class_matrix,
      image_lists, category=category, bottleneck_dir=bottleneck_dir,
      module_name=module_name, load=load)
  width = bottleneck_tensor.get_shape().as_list()[-1]
  multi_label = image_lists.get(MULTI_LABEL_GROUP)
  if how_many < 0:
    matrices = [class_matrix(label_name) for label_name in image_lists
                if image_lists[label_name][category]]
    entries = image_entries(image_lists, image_dir, category)
    return (np.concatenate([np.zeros([0, width], np.float32)] + matrices),
            np.array([truth for _, truth in entries],
                     np.float32 if multi_label else np.int64),
            [path for path, _ in entries])
  label_names = list(image_lists.keys())
  # Only classes with images in this category can be drawn from.
  usable = [i for i, name in enumerate(label_names)
            if image_lists[name][category]]
  if not usable:
    raise ValueError('No images in the category %s.' % category)
  # One draw of Python's generator for the batch: --random_seed still works.
  draws = np.frombuffer(random.getrandbits(128 * how_many).to_bytes(
      16 * how_many, 'little'), np.uint64).reshape(2, how_many)
  ground_truths = np.array(usable, np.int64)[
      (draws[0] % len(usable)).astype(np.int64)]
  image_indices = (draws[1] % (MAX_NUM_IMAGES_PER_CLASS + 1)).astype(np.int64)
  bottlenecks = np.empty([how_many, width], np.float32)
  for label_index in set(ground_truths.tolist()):
    chosen = ground_truths == label_index
    matrix = class_matrix(label_names[label_index])
    bottlenecks[chosen] = matrix[image_indices[chosen] % len(matrix)]
  if multi_label:  # One entry: the drawn images' label rows.
    names = multi_label[category]
    ground_truths = label_rows(multi_label, [
        names[index % len(names)] for index in image_indices])
  return bottlenecks, ground_truths, []


# --- Distortions -------------------------------------------------------------

# The distortion flags, as add_input_distortions takes them.
Distortions = collections.namedtuple('Distortions', [
    'flip_left_right', 'random_crop', 'random_scale', 'random_brightness'])


def should_distort_images(flip_left_right, random_crop, random_scale,
                          random_brightness):
  """Whether any distortions are enabled, from the input flags.

  Args:
    flip_left_right: Boolean whether to randomly mirror images horizontally.
    random_crop: Integer percentage of the margin around the crop box.
    random_scale: Integer percentage of how much to vary the scale by.
    random_brightness: Integer range to randomly multiply the pixel values by.

  Returns:
    Boolean value indicating whether any distortions should be applied.
  """
  return flip_left_right or any([random_crop, random_scale, random_brightness])


def add_input_distortions(flip_left_right, random_crop, random_scale,
                          random_brightness, module_spec):
  """Creates the operations to apply the specified distortions.

  Args:
    flip_left_right, random_crop, random_scale, random_brightness: The
      distortions, as should_distort_images takes them.
    module_spec: The image module, as load_module_spec returns it.

  Returns:
    The jpeg input layer and the distorted result tensor.
  """
  image_shape = module_image_shape(module_spec)
  jpeg_data = tf.placeholder(tf.string, name='DistortJPGInput')
  distorted_image = _distort_image(
      _to_float_4d(_decode_image(jpeg_data, image_shape[2])), image_shape,
      Distortions(flip_left_right, random_crop, random_scale,
                  random_brightness),
      tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32))
  return jpeg_data, tf.expand_dims(distorted_image, 0, name='DistortResult')


def _distort_image(image_4d, image_shape, distortions, seed):
  """Distorts image_4d [1, H, W, D] to [H, W, D] as seed (int32 [2]) says."""
  sub_seed = lambda offset: seed + tf.constant([0, offset], seed.dtype)
  height, width, depth = image_shape
  # Scales up by the crop margin and a random factor, then crops at random.
  random_scale = tf.random.stateless_uniform(
      [], seed=sub_seed(1), minval=1.0,
      maxval=1.0 + distortions.random_scale / 100.0)
  scale = (1.0 + distortions.random_crop / 100.0) * random_scale
  precrop_shape = tf.cast(scale * [height, width], tf.int32)
  image = tf.compat.v2.image.stateless_random_crop(
      tf.squeeze(tf.image.resize_bilinear(image_4d, precrop_shape), [0]),
      [height, width, depth], seed=sub_seed(2))
  if distortions.flip_left_right:
    image = tf.compat.v2.image.stateless_random_flip_left_right(
        image, seed=sub_seed(3))
  brightness = distortions.random_brightness / 100.0
  return image * tf.random.stateless_uniform(
      [], seed=sub_seed(4), minval=1.0 - brightness, maxval=1.0 + brightness)


def get_random_distorted_bottlenecks(
    sess, image_lists, how_many, category, image_dir, input_jpeg_tensor,
    distorted_image, resized_input_tensor, bottleneck_tensor, batches=None):
  """Retrieves bottleneck values for training images, after distortions.

  Args:
    sess: Current TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    how_many: The integer number of bottleneck values to return.
    category: Name string of the set: training, testing, or validation.
    image_dir: Root folder string of the subfolders of images.
    input_jpeg_tensor, distorted_image: add_input_distortions's tensors.
    resized_input_tensor, bottleneck_tensor: The module's input, bottleneck.
    batches: DistortedBatches of how_many images from category (as main
      uses); None distorts one image after the other, as the original did.

  Returns:
    Tuple of (float32 array of bottlenecks, int64 array of ground truths).
  """
  if batches is not None:
    images, ground_truths = batches.next(sess)
  else:
    label_names = list(image_lists.keys())
    images, ground_truths = [], []
    for _ in range(how_many):
      label_index = random.randrange(len(label_names))
      index = random.randrange(MAX_NUM_IMAGES_PER_CLASS + 1)
      image_path = get_image_path(image_lists, label_names[label_index],
                                  index, image_dir, category)
      image_data = tf.gfile.GFile(image_path, 'rb').read()
      images.append(sess.run(distorted_image,
                             {input_jpeg_tensor: image_data})[0])
      ground_truths.append(label_index)
      if MULTI_LABEL_GROUP in image_lists:
        names = image_lists[MULTI_LABEL_GROUP][category]
        ground_truths[-1] = label_rows(image_lists[MULTI_LABEL_GROUP],
                                       [names[index % len(names)]])[0]
  bottlenecks = sess.run(bottleneck_tensor, {resized_input_tensor: images})
  return bottlenecks, np.array(ground_truths, np.float32 if (
      MULTI_LABEL_GROUP in image_lists) else np.int64)


# --- The new layer -----------------------------------------------------------


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


# add_final_retrain_ops's values, apply_layer and the training global step.
NewLayer = collections.namedtuple('NewLayer', [
    'train_step', 'cross_entropy', 'bottleneck_input', 'ground_truth_input',
    'final_tensor', 'apply_layer', 'global_step'])

OPTIMIZERS = ('gradient_descent', 'momentum', 'adam')

# The flags of the same names (the defaults are the original's training);
# loss_weights: --class_weights's weight per class, or per label of a
# multi_label head (sigmoid per label, for --image_labels), or None.
HeadOptions = collections.namedtuple('HeadOptions', [
    'learning_rate', 'optimizer', 'momentum', 'dropout_rate',
    'l2_regularizer', 'label_smoothing', 'loss_weights', 'multi_label'],
    defaults=('gradient_descent', 0.9, 0.0, 0.0, 0.0, None, False))


def add_final_retrain_ops(class_count, final_tensor_name, bottleneck_tensor,
                          quantize_layer, is_training, learning_rate=None,
                          head_options=None):
  """Adds a new softmax and fully-connected layer for training and eval.

  Args:
    class_count: Integer of how many categories of things we recognize.
    final_tensor_name: Name string for the new final node.
    bottleneck_tensor: The output of the main CNN graph.
    quantize_layer: Boolean, whether to instrument the layer for TF-Lite.
    is_training: Boolean, whether the layer is for training or eval.
    learning_rate: The learning rate; None: head_options's, or the flag.
    head_options: HeadOptions; None for plain gradient descent.

  Returns:
    The tensors for the training and cross entropy results, tensors for the
    bottleneck input and ground truth input, and the final softmax layer.
  """
  head_options = head_options or HeadOptions(FLAGS.learning_rate)
  if learning_rate is not None:
    head_options = head_options._replace(learning_rate=learning_rate)
  return _add_new_layer(class_count, final_tensor_name, bottleneck_tensor,
                        quantize_layer, is_training, head_options)[:5]


def _add_new_layer(class_count, final_tensor_name, bottleneck_tensor,
                   quantize_layer, is_training, head_options):
  """add_final_retrain_ops's work, as a NewLayer."""
  batch_size, bottleneck_tensor_size = bottleneck_tensor.get_shape().as_list()
  assert batch_size is None, 'We want to work with arbitrary batch size.'
  multi_label = bool(head_options and head_options.multi_label)
  with tf.name_scope('input'):
    bottleneck_input = tf.placeholder_with_default(
        bottleneck_tensor, shape=[batch_size, bottleneck_tensor_size],
        name='BottleneckInputPlaceholder')
    # A class index per image, or with multi_label a 0/1 row of labels.
    ground_truth_input = tf.placeholder(
        *((tf.float32, [batch_size, class_count]) if multi_label else
          (tf.int64, [batch_size])), name='GroundTruthInput')

  layer_name = 'final_retrain_ops'
  with tf.name_scope(layer_name):
    with tf.name_scope('weights'):
      initial_value = tf.truncated_normal(
          [bottleneck_tensor_size, class_count], stddev=0.001)
      layer_weights = tf.Variable(initial_value, name='final_weights')
      variable_summaries(layer_weights)
    with tf.name_scope('biases'):
      layer_biases = tf.Variable(tf.zeros([class_count]), name='final_biases')
      variable_summaries(layer_biases)
    layer_logits = functools.partial(_layer_logits, layer_weights,
                                     layer_biases, quantize_layer, layer_name)
    with tf.name_scope('Wx_plus_b'):
      logits, quantization_updates = layer_logits(
          bottleneck_input, is_training and not head_options.dropout_rate)
      tf.summary.histogram('pre_activations', logits)

  # Multi-label scores each label alone: they need not sum to 1.
  activation = tf.nn.sigmoid if multi_label else tf.nn.softmax
  final_tensor = activation(logits, name=final_tensor_name)
  apply_layer = lambda bottlenecks: activation(
      layer_logits(bottlenecks, False)[0])
  tf.summary.histogram('activations', final_tensor)
  if not is_training:
    return NewLayer(None, None, bottleneck_input, ground_truth_input,
                    final_tensor, apply_layer, None)
  train_step, cross_entropy_mean, global_step = _add_training_ops(
      head_options, layer_logits, logits, quantization_updates,
      bottleneck_input, ground_truth_input, layer_weights)
  return NewLayer(train_step, cross_entropy_mean, bottleneck_input,
                  ground_truth_input, final_tensor, apply_layer, global_step)


def _add_training_ops(head_options, layer_logits, logits,
                      quantization_updates, bottleneck_input,
                      ground_truth_input, layer_weights):
  """Returns the new layer's (train step, mean cross entropy, global step)."""
  global_step = tf.train.get_or_create_global_step()
  if head_options.dropout_rate:
    # Only the loss sees dropped inputs; the mask (seed, step) resumes alike.
    with tf.name_scope('dropout'):
      dropout_seed = tf.stack([tf.constant(random.getrandbits(31), tf.int64),
                               tf.cast(global_step, tf.int64)])
      keep = tf.random.stateless_uniform(
          tf.shape(bottleneck_input), dropout_seed) >= head_options.dropout_rate
      dropped = tf.where(keep, bottleneck_input / (
          1.0 - head_options.dropout_rate), tf.zeros_like(bottleneck_input))
    with tf.name_scope('Wx_plus_b_dropout'):
      logits, quantization_updates = layer_logits(dropped, True)
  with tf.name_scope('cross_entropy'):
    cross_entropy_mean = _cross_entropy(head_options, ground_truth_input,
                                        logits)
  tf.summary.scalar('cross_entropy', cross_entropy_mean)
  loss = cross_entropy_mean
  if head_options.l2_regularizer:
    with tf.name_scope('l2_regularizer'):
      loss += head_options.l2_regularizer * tf.reduce_sum(
          tf.square(layer_weights))
  with tf.name_scope('train'):
    rate = head_options.learning_rate
    if head_options.optimizer == 'momentum':
      optimizer = tf.train.MomentumOptimizer(rate, head_options.momentum)
    elif head_options.optimizer == 'adam':
      optimizer = tf.train.AdamOptimizer(rate)
    else:
      optimizer = tf.train.GradientDescentOptimizer(rate)
    train_step = optimizer.minimize(loss, global_step=global_step)
    if quantization_updates:
      train_step = tf.group(train_step, *quantization_updates)
  return train_step, cross_entropy_mean, global_step


def _cross_entropy(head_options, ground_truth_input, logits):
  """Mean softmax (or per-label sigmoid) cross entropy, smoothed, weighted."""
  smoothing = head_options.label_smoothing
  weights = head_options.loss_weights
  if head_options.multi_label:
    targets = ground_truth_input * (1 - smoothing) + 0.5 * smoothing
    if weights is None:
      return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
          labels=targets, logits=logits))
    return tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(
        labels=targets, logits=logits,
        pos_weight=tf.constant(weights, tf.float32)))
  example_weights = 1.0 if weights is None else tf.gather(
      tf.constant(weights, tf.float32), ground_truth_input)
  if smoothing:
    return tf.losses.softmax_cross_entropy(
        tf.one_hot(ground_truth_input, tf.shape(logits)[1]), logits,
        weights=example_weights, label_smoothing=smoothing)
  return tf.losses.sparse_softmax_cross_entropy(
      labels=ground_truth_input, logits=logits, weights=example_weights)


def _layer_logits(weights, biases, quantize_layer, layer_name, bottlenecks,
                  training):
  """(Logits, range updates for each train step), fake-quantized if asked."""
  if quantize_layer:
    with tf.name_scope('weights_quant'):
      weights = tf.quantization.fake_quant_with_min_max_vars(
          weights, tf.reduce_min(weights), tf.reduce_max(weights),
          num_bits=8, narrow_range=True)
  logits = tf.matmul(bottlenecks, weights) + biases
  if not quantize_layer:
    return logits, []
  # As tf.contrib.quantize: training moves the range (holding 0) to batches'.
  with tf.variable_scope(layer_name), tf.variable_scope(
      'act_quant', reuse=tf.AUTO_REUSE):
    range_min = tf.get_variable('min', initializer=-6.0, trainable=False)
    range_max = tf.get_variable('max', initializer=6.0, trainable=False)
    updates = []
    if training:
      decay = 0.999
      batch_min = tf.minimum(tf.reduce_min(logits), 0.0)
      batch_max = tf.maximum(tf.reduce_max(logits), 0.0)
      updates = [
          tf.assign(range_min, decay * range_min + (1 - decay) * batch_min),
          tf.assign(range_max, decay * range_max + (1 - decay) * batch_max)]
    return tf.quantization.fake_quant_with_min_max_vars(
        logits, range_min, range_max, num_bits=8), updates


def add_evaluation_step(result_tensor, ground_truth_tensor, threshold=0.5):
  """Inserts the operations we need to evaluate the accuracy of our results.

  Args:
    result_tensor: The new final node that produces results.
    ground_truth_tensor: The node we feed ground truth data into.
    threshold: For a multi-label head (float label rows as ground truth),
      the score from which a label is predicted; the accuracy is then the
      share of images whose predicted labels are exactly right.

  Returns:
    Tuple of (evaluation step, prediction).
  """
  with tf.name_scope('accuracy'):
    with tf.name_scope('correct_prediction'):
      if ground_truth_tensor.dtype.is_floating:
        prediction = tf.cast(result_tensor >= threshold, tf.int64)
        correct_prediction = tf.reduce_all(tf.equal(
            prediction, tf.cast(ground_truth_tensor > 0.5, tf.int64)), 1)
      else:
        prediction = tf.argmax(result_tensor, 1)
        correct_prediction = tf.equal(prediction, ground_truth_tensor)
    with tf.name_scope('accuracy'):
      evaluation_step = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
  tf.summary.scalar('accuracy', evaluation_step)
  return evaluation_step, prediction


# --- Training loop -----------------------------------------------------------

# The ops of the training graph that the loop runs.
TrainingOps = collections.namedtuple('TrainingOps', [
    'train_step', 'cross_entropy', 'bottleneck_input', 'ground_truth_input',
    'evaluation_step', 'merged_summaries'])

# The flags of the same names: how long to train, how often to evaluate.
TrainingSchedule = collections.namedtuple('TrainingSchedule', [
    'how_many_training_steps', 'train_batch_size', 'validation_batch_size',
    'eval_step_interval', 'intermediate_store_frequency', 'summaries_dir'])

# Where batches come from; distorted and distortion_tensors None without.
BatchSources = collections.namedtuple('BatchSources', [
    'module_sess', 'image_lists', 'tensors', 'cache', 'distorted',
    'distortion_tensors'])


def draw_batch(sources, how_many, category):
  """A random (bottlenecks, ground truths) batch, distorted if asked."""
  if category == 'training' and sources.distorted is not None:
    return get_random_distorted_bottlenecks(
        sources.module_sess, sources.image_lists, how_many, category,
        sources.cache.image_dir, *sources.distortion_tensors,
        sources.tensors.resized_image, sources.tensors.bottleneck,
        batches=sources.distorted)
  return get_random_cached_bottlenecks(
      sources.module_sess, sources.image_lists, how_many, category,
      sources.cache.bottleneck_dir, sources.cache.image_dir, *sources.tensors,
      module_name=sources.cache.module_name, memory=sources.cache.memory)[:2]


def run_training_loop(sess, training_ops, schedule, sources,
                      store_intermediate_graph, checkpoint=None):
  """Trains the new layer in sess for schedule.how_many_training_steps steps;
  store_intermediate_graph(step) saves a graph. With a TrainingCheckpoint it
  resumes, and saves, on Ctrl-C and SIGTERM too, at the end of the step."""
  run_dirs = [os.path.join(schedule.summaries_dir, name)
              for name in ('train', 'validation')]
  start_step = 0
  if checkpoint is not None:
    start_step = checkpoint.begin()
    for run_dir in run_dirs:
      purge_summaries_from(run_dir, start_step)
  writers = [tf.summary.FileWriter(run_dir) for run_dir in run_dirs]
  has_validation_images = any(lists['validation']
                              for lists in sources.image_lists.values())
  if not has_validation_images:
    tf.logging.warning('There are no validation images (see '
                       '--validation_percentage): validation is skipped.')
  if not start_step:
    writers[0].add_graph(sess.graph)
  with sess.graph.as_default():
    # Between evaluations, the scalars alone: the histograms took as long as
    # the training step itself (TensorBoard keeps 500 of them anyway).
    scalars = tf.summary.merge([
        summary for summary in tf.get_collection(tf.GraphKeys.SUMMARIES)
        if summary.op.type == 'ScalarSummary'])
  try:
    with _DeferredInterrupts() as interrupts:
      for i in range(start_step, schedule.how_many_training_steps):
        _train_step(sess, training_ops, schedule, sources, i, writers[0],
                    writers[1] if has_validation_images else None, scalars)
        frequency = schedule.intermediate_store_frequency
        if frequency > 0 and (i % frequency == 0) and i > 0:
          store_intermediate_graph(i)
        if checkpoint is not None and (
            interrupts.pending or checkpoint.is_due(i + 1) or
            i + 1 == schedule.how_many_training_steps):
          # A run resumed after a kill writes only the later summaries.
          for writer in writers:
            writer.flush()
          checkpoint.save(i + 1, log=interrupts.pending is not None)
        interrupts.raise_pending()
  finally:
    for writer in writers:
      writer.close()


def _train_step(sess, ops, schedule, sources, step, train_writer,
                validation_writer, scalars):
  """Runs training step step, and when due its evaluation and validation;
  writes every summary then, the scalar ones at the other steps."""
  inputs = (ops.bottleneck_input, ops.ground_truth_input)
  train_feed = dict(zip(inputs, draw_batch(
      sources, schedule.train_batch_size, 'training')))
  due = not (step % schedule.eval_step_interval and
             step + 1 != schedule.how_many_training_steps)
  train_summary, _ = sess.run(
      [ops.merged_summaries if due else scalars, ops.train_step], train_feed)
  train_writer.add_summary(train_summary, step)
  if not due:
    return
  train_accuracy, cross_entropy_value = sess.run(
      [ops.evaluation_step, ops.cross_entropy], train_feed)
  tf.logging.info('%s: Step %d: Train accuracy = %.1f%%' %
                  (datetime.now(), step, train_accuracy * 100))
  tf.logging.info('%s: Step %d: Cross entropy = %f' %
                  (datetime.now(), step, cross_entropy_value))
  if validation_writer is None:
    return
  validation_feed = dict(zip(inputs, draw_batch(
      sources, schedule.validation_batch_size, 'validation')))
  validation_summary, validation_accuracy = sess.run(
      [ops.merged_summaries, ops.evaluation_step], validation_feed)
  validation_writer.add_summary(validation_summary, step)
  tf.logging.info('%s: Step %d: Validation accuracy = %.1f%% (N=%d)' %
                  (datetime.now(), step, validation_accuracy * 100,
                   len(validation_feed[ops.bottleneck_input])))


# --- Resuming an interrupted run ---------------------------------------------

# The flags that change what training computes: a resumed run must share them.
RESUME_FLAGS = (
    'how_many_training_steps', 'learning_rate', 'train_batch_size',
    'validation_batch_size', 'eval_step_interval', 'testing_percentage',
    'validation_percentage', 'flip_left_right', 'random_crop', 'random_scale',
    'random_brightness', 'bottleneck_precision', 'image_size', 'random_seed',
    'optimizer', 'momentum', 'dropout_rate', 'l2_regularizer',
    'label_smoothing', 'class_weights')

# Saved at least this often when --save_every_steps is 0.
SAVE_EVERY_SECONDS = 60

# Where an interrupted run continues: its next step, checkpoint and seeds.
ResumePoint = collections.namedtuple('ResumePoint', [
    'step', 'checkpoint', 'random_state', 'distortion_seed'])


def training_fingerprint(flags, image_lists, image_dir, module_name):
  """JSON hashes of the module and images (class, set, name, size, mtime),
  and RESUME_FLAGS: what a resumed run must share with the interrupted one."""
  def signature(path):
    try:
      stat = tf.io.gfile.stat(path)
      return '%d/%d' % (stat.length, stat.mtime_nsec)
    except tf.errors.OpError:
      return '-'

  images = hashlib.sha256()
  for label_name, label_lists in image_lists.items():
    for category in CATEGORIES:
      for name in label_lists[category]:
        path = os.path.join(image_dir, label_lists['dir'], name)
        images.update(('%s\0%s\0%s\0%s\n' % (
            label_name, category, name, signature(path))).encode())
        if 'label_indices' in label_lists:  # --image_labels
          images.update(repr([label_lists['labels'][i] for i in
                              label_lists['label_indices'][name]]).encode())
  module = hashlib.sha256(module_name.encode())
  folder = module_name.split('@')[0].split('~')[0]
  if is_local_path(folder) and os.path.isdir(folder):
    for root, dirs, files in os.walk(folder):
      dirs.sort()
      for name in sorted(files):
        path = os.path.join(root, name)
        module.update(('%s\0%s\n' % (os.path.relpath(path, folder),
                                     signature(path))).encode())
  return {'module': module.hexdigest(), 'images': images.hexdigest(),
          'flags': {name: getattr(flags, name) for name in RESUME_FLAGS}}


def find_resume_point(checkpoint_path, fingerprint, fresh_start=False):
  """The ResumePoint saved beside checkpoint_path, or None; logs why."""
  state_path = checkpoint_path + '.resume.json'
  if not tf.gfile.Exists(state_path):
    return None
  try:
    state = json.loads(tf.io.gfile.GFile(state_path).read())
    why_not = _why_not_resume(state, fingerprint, fresh_start)
  except (ValueError, KeyError, TypeError, tf.errors.OpError):
    state, why_not = None, 'it is not a training state this tool wrote'
  if why_not is not None:
    tf.logging.info('Starting training at step 0, not resuming from %s: %s.'
                    % (state_path, why_not))
    return None
  tf.logging.info('Resuming training at step %d from %s: same images, '
                  'module and flags as the interrupted run.' %
                  (state['step'], state_path))
  return ResumePoint(*(state[name] for name in ResumePoint._fields))


def _why_not_resume(state, fingerprint, fresh_start):
  """Why a saved state cannot be resumed (a phrase), or None if it can."""
  if fresh_start:
    return '--fresh_start is set'
  if state['finished']:
    return 'the run that saved it finished'
  if state['fingerprint']['module'] != fingerprint['module']:
    return 'the module differs from the interrupted run\'s'
  if state['fingerprint']['images'] != fingerprint['images']:
    return ('the images or their split differ from the interrupted run\'s '
            '(--image_dir, files added, removed or changed)')
  for name in RESUME_FLAGS:
    then = state['fingerprint']['flags'].get(name)
    if then != fingerprint['flags'][name]:
      return '--%s was %s in the interrupted run and is %s now' % (
          name, then, fingerprint['flags'][name])
  if not tf.gfile.Exists(state['checkpoint'] + '.index'):
    return 'its checkpoint %s is missing' % state['checkpoint']
  return None


class TrainingCheckpoint(object):
  """Saves the checkpoint, then the JSON state naming it, then drops older
  ones: a kill at any moment leaves a state to resume."""

  def __init__(self, sess, variables, checkpoint_path, fingerprint,
               resume_point=None, save_every_steps=0, distortion_seed=None):
    """Call in sess.graph; variables: the new layer's and its training's."""
    self._sess = sess
    self._saver = tf.train.Saver(var_list=variables, max_to_keep=None,
                                 save_relative_paths=True)
    self._prefix = checkpoint_path + '.resume'
    self._state_path = self._prefix + '.json'
    self._resume_point = resume_point
    self._save_every_steps = save_every_steps
    self._state = {'distortion_seed': distortion_seed,
                   'fingerprint': fingerprint}
    self._last_save = time.monotonic()

  def begin(self):
    """Restores the saved state, or removes any; returns the step to run."""
    self._last_save = time.monotonic()
    if self._resume_point is None:
      if tf.gfile.Exists(self._state_path):
        tf.gfile.Remove(self._state_path)
      self._remove_checkpoints(keep=None)
      return 0
    self._saver.restore(self._sess, self._resume_point.checkpoint)
    version, internal, gauss_next = self._resume_point.random_state
    random.setstate((version, tuple(internal), gauss_next))
    return self._resume_point.step

  def is_due(self, step):
    if self._save_every_steps:
      return step % self._save_every_steps == 0
    return time.monotonic() - self._last_save >= SAVE_EVERY_SECONDS

  def save(self, step, log=False):
    """Saves the state after step - 1: the run would continue at step."""
    checkpoint = self._saver.save(self._sess, '%s-%d' % (self._prefix, step),
                                  write_meta_graph=False, write_state=False)
    self._write_state(step, checkpoint, finished=False)
    self._remove_checkpoints(keep=checkpoint)
    self._last_save = time.monotonic()
    if log:
      tf.logging.info('Saved the training state to %s: the same command '
                      'resumes training at step %d.' % (self._state_path, step))

  def finish(self):
    """Marks the run finished (a rerun starts afresh) and drops the state."""
    self._write_state(None, None, finished=True)
    self._remove_checkpoints(keep=None)

  def _write_state(self, step, checkpoint, finished):
    write_file_atomically(self._state_path, json.dumps(dict(
        self._state, step=step, checkpoint=checkpoint, finished=finished,
        random_state=random.getstate()), sort_keys=True))

  def _remove_checkpoints(self, keep):
    """Removes this run's resume checkpoints (and leftovers) but keep."""
    for path in tf.io.gfile.glob(self._prefix + '-*'):
      if keep is not None and path.startswith(keep + '.'):
        continue
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)


def purge_summaries_from(run_dir, step):
  """Drops events of step and later (written after the last save)."""
  _remove_stale_temporary_files(run_dir)
  paths = sorted(path for path in tf.io.gfile.glob(os.path.join(
      run_dir, 'events.out.tfevents.*')) if not _TEMPORARY_NAME.search(path))
  if not paths:
    return
  kept = {}  # The records to keep, in order.
  for path in paths:
    try:
      for record in tf.io.tf_record_iterator(path):
        event = tf.Event.FromString(record)
        if event.step < step and not (kept and event.HasField('file_version')):
          kept.setdefault(record)
    except tf.errors.DataLossError:  # The end a kill cut short.
      pass
  temporary = _temporary_name(paths[0])
  with tf.io.TFRecordWriter(temporary) as writer:
    for record in kept:
      writer.write(record)
  tf.io.gfile.rename(temporary, paths[0], overwrite=True)
  for path in paths[1:]:
    tf.io.gfile.remove(path)


# --- Evaluation --------------------------------------------------------------


class EvalSession(collections.namedtuple('EvalSession', [
    'sess', 'resized_input_tensor', 'bottleneck_input', 'ground_truth_input',
    'evaluation_step', 'prediction'])):
  """build_eval_session's 6-tuple, with final_tensor_name, apply_module,
  apply_layer, wants_quantization, multi_label_threshold (None: softmax)."""

  def __new__(cls, *values, **attributes):
    self = super(EvalSession, cls).__new__(cls, *values)
    vars(self).update(attributes)
    return self


def build_eval_session(module_spec, class_count, final_tensor_name=None,
                       checkpoint_path=None, multi_label_threshold=None):
  """Builds an restored eval session without train operations for exporting.

  Args:
    module_spec: The image module, as load_module_spec returns it.
    class_count: Number of classes
    final_tensor_name: Name of the output; None: --final_tensor_name.
    checkpoint_path: The checkpoint to restore; None: --checkpoint_path.
    multi_label_threshold: For a multi-label layer (--image_labels), the
      score from which a label is predicted; None for a softmax layer.

  Returns:
    An EvalSession: eval session containing the restored eval graph, and the
    resized image input, bottleneck input, ground truth, eval step, and
    prediction tensors.
  """
  final_tensor_name = final_tensor_name or FLAGS.final_tensor_name
  module_graph = _module_graph(module_spec)
  eval_sess = tf.Session(graph=module_graph.graph)
  with module_graph.graph.as_default():
    multi_label = multi_label_threshold is not None
    new_layer = _add_new_layer(
        class_count, final_tensor_name, module_graph.bottleneck_tensor,
        module_graph.wants_quantization, is_training=False,
        head_options=HeadOptions(None, multi_label=True) if multi_label
        else None)
    tf.train.Saver().restore(eval_sess,
                             checkpoint_path or FLAGS.checkpoint_path)
    evaluation_step, prediction = add_evaluation_step(
        new_layer.final_tensor, new_layer.ground_truth_input,
        *([multi_label_threshold] if multi_label else []))
  return EvalSession(
      eval_sess, module_graph.resized_input_tensor,
      new_layer.bottleneck_input, new_layer.ground_truth_input,
      evaluation_step, prediction, final_tensor_name=final_tensor_name,
      apply_module=module_graph.apply_module, apply_layer=new_layer.apply_layer,
      wants_quantization=module_graph.wants_quantization,
      multi_label_threshold=multi_label_threshold)


# The trained layer's Session and Saver, and build_eval_session's arguments.
TrainedLayer = collections.namedtuple('TrainedLayer', [
    'sess', 'saver', 'checkpoint_path', 'module_spec', 'class_count',
    'final_tensor_name', 'multi_label_threshold'], defaults=(None,))


def save_and_restore_for_eval(trained_layer):
  """Saves a TrainedLayer's variables; returns a new EvalSession of them."""
  ensure_dir_exists(os.path.dirname(os.path.abspath(
      trained_layer.checkpoint_path)))
  trained_layer.saver.save(trained_layer.sess, trained_layer.checkpoint_path)
  return build_eval_session(
      trained_layer.module_spec, trained_layer.class_count,
      trained_layer.final_tensor_name, trained_layer.checkpoint_path,
      trained_layer.multi_label_threshold)


# The flags of the same names, and the step to file the test summaries under.
FinalEvalOptions = collections.namedtuple('FinalEvalOptions', [
    'test_batch_size', 'print_misclassified_test_images', 'summaries_dir',
    'global_step'])


def run_final_eval(train_session, module_spec, class_count, image_lists,
                   jpeg_data_tensor, decoded_image_tensor,
                   resized_image_tensor, bottleneck_tensor, eval_session=None,
                   cache=None, options=None):
  """Runs a final evaluation on an eval graph using the test data set.

  Logs the accuracy, and the per-class report (evaluation_report.py), which
  goes to TensorBoard too (the run 'test').

  Args:
    train_session: Session for the train graph with the tensors below.
    module_spec: The image module, as load_module_spec returns it.
    class_count: Number of classes
    image_lists: OrderedDict of training images for each label.
    jpeg_data_tensor: The layer to feed jpeg image data into.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_image_tensor: The input node of the recognition graph.
    bottleneck_tensor: The bottleneck output layer of the CNN graph.
    eval_session: An EvalSession to reuse; built if None.
    cache: The run's BottleneckCache; None: the flags', without memory.
    options: FinalEvalOptions; None: the flags' and the last step.

  Returns:
    (test accuracy, predicted class indices, ground truth class indices,
    test file names), or None when there are no test images.
  """
  cache = cache or BottleneckCache(FLAGS.image_dir, FLAGS.bottleneck_dir,
                                   FLAGS.tfhub_module, None)
  options = options or flag_values(
      FinalEvalOptions, FLAGS, global_step=FLAGS.how_many_training_steps - 1)
  test_bottlenecks, test_ground_truth, test_filenames = (
      get_random_cached_bottlenecks(
          train_session, image_lists, options.test_batch_size, 'testing',
          cache.bottleneck_dir, cache.image_dir, jpeg_data_tensor,
          decoded_image_tensor, resized_image_tensor, bottleneck_tensor,
          cache.module_name, memory=cache.memory))
  if not len(test_bottlenecks):  # pylint: disable=g-explicit-length-test
    tf.logging.warning('There are no test images (see --testing_percentage): '
                       'no final test accuracy.')
    return None
  eval_session = eval_session or build_eval_session(module_spec, class_count)
  threshold = eval_session.multi_label_threshold
  test_accuracy, predictions, scores = eval_session.sess.run(
      [eval_session.evaluation_step, eval_session.prediction,
       eval_session.final_tensor_name + ':0'],
      {eval_session.bottleneck_input: test_bottlenecks,
       eval_session.ground_truth_input: test_ground_truth})
  tf.logging.info('Final test accuracy = %.1f%% (N=%d)%s' % (
      test_accuracy * 100, len(test_bottlenecks), '' if threshold is None
      else ', each image with exactly its labels at or above %g' % threshold))
  label_names = label_names_of(image_lists)
  try:
    report = import_extra('evaluation_report', 'The per-class test report',
                          ('evaluation_report.py',))
    if threshold is None:
      report.report_test_results(test_ground_truth, predictions, label_names,
                                 options.summaries_dir, options.global_step)
    else:
      report.report_multi_label_results(
          test_ground_truth, scores, label_names, threshold,
          options.summaries_dir, options.global_step)
  except RetrainError as e:
    tf.logging.warning('%s', e)
  if options.print_misclassified_test_images:
    tf.logging.info('=== MISCLASSIFIED TEST IMAGES ===')
    for test_filename, predicted, truth in zip(test_filenames, predictions,
                                               test_ground_truth):
      if np.any(predicted != truth):
        tf.logging.info('%70s  %s' % (test_filename, ' '.join(
            label_names[i] for i in np.flatnonzero(predicted))
                                      if threshold is not None else
                                      label_names[predicted]))
  return test_accuracy, predictions, test_ground_truth, test_filenames


def check_accuracy_bar(test_results, accuracy_at_least, checkpoint_path):
  """RetrainError if the test accuracy is below the bar or unknown."""
  if accuracy_at_least is None:
    return
  if test_results is None:
    raise RetrainError(
        '--assert_accuracy_at_least %g needs test images (see '
        '--testing_percentage): nothing exported; the trained layer is kept '
        'in %s.' % (accuracy_at_least, checkpoint_path))
  if test_results[0] < accuracy_at_least:
    raise RetrainError(
        'Final test accuracy %.1f%% is below --assert_accuracy_at_least %g: '
        'nothing exported; the trained layer is kept in %s.' % (
            test_results[0] * 100, accuracy_at_least, checkpoint_path))


# --- Exports -----------------------------------------------------------------


def frozen_graph_def(eval_session):
  """The eval graph up to its final tensor, with variables as constants."""
  return tf.graph_util.convert_variables_to_constants(
      eval_session.sess, eval_session.sess.graph.as_graph_def(),
      [eval_session.final_tensor_name])


def save_graph_to_file(graph_file_name, module_spec, class_count,
                       eval_session=None):
  """Saves an graph to file, creating a valid quantized one if necessary.

  Args:
    graph_file_name: Where to write the frozen GraphDef (atomically).
    module_spec: The image module, as load_module_spec returns it.
    class_count: Number of classes.
    eval_session: An EvalSession to reuse; built if None.
  """
  eval_session = eval_session or build_eval_session(module_spec, class_count)
  write_file_atomically(graph_file_name, frozen_graph_def(
      eval_session).SerializeToString(deterministic=True), mode='wb')


def store_intermediate_graph(trained_layer, output_dir, step):
  """Saves a TrainedLayer's checkpoint and graph as intermediate_<step>.pb."""
  intermediate_file_name = os.path.join(output_dir, 'intermediate_%d.pb' % step)
  tf.logging.info('Save intermediate result to : ' + intermediate_file_name)
  eval_session = save_and_restore_for_eval(trained_layer)
  with eval_session.sess:
    save_graph_to_file(intermediate_file_name, trained_layer.module_spec,
                       trained_layer.class_count, eval_session=eval_session)


# --tflite_quantize: float, 8-bit or 16-bit weights, or every op in 8 bits.
TFLITE_QUANTIZATIONS = ('none', 'dynamic', 'float16', 'uint8')


def export_model(module_spec, class_count, saved_model_dir, eval_session=None,
                 labels=None):
  """Exports model for serving.

  The SavedModel (tag 'serve') has two signatures:
    serving_default: input 'image', float [None, height, width, 3] in [0, 1];
      output 'prediction', the class probabilities (the original's).
    serving_bytes: input 'image_bytes', string [None] of encoded JPEG or PNG
      images; outputs 'prediction' and 'classes', the top class's label.
  It is written beside saved_model_dir and renamed into place when complete.

  Args:
    module_spec: The image module, as load_module_spec returns it.
    class_count: The number of classes.
    saved_model_dir: Directory in which to save exported model and variables.
    eval_session: An EvalSession to reuse; built if None.
    labels: The class names in class-index order; None: the indices.
  """
  labels = labels or [str(index) for index in range(class_count)]
  eval_session = eval_session or build_eval_session(module_spec, class_count)
  height, width, depth = module_image_shape(module_spec)
  graph = eval_session.sess.graph
  with graph.as_default():
    # serving_bytes: decoded as in training, then serving_default's variables.
    with tf.name_scope('serving_bytes'):
      image_bytes = tf.placeholder(tf.string, [None], name='image_bytes')
      # Without AutoGraph, whose conversion would take half a second.
      images = tf.map_fn(
          tf.autograph.experimental.do_not_convert(
              lambda data: decode_and_resize(data, height, width, depth)[0]),
          image_bytes, fn_output_signature=tf.float32, back_prop=False)
      images.set_shape([None, height, width, depth])
      prediction = tf.identity(
          eval_session.apply_layer(eval_session.apply_module(images)),
          name='prediction')
      classes = tf.gather(tf.constant(list(labels)),
                          tf.argmax(prediction, axis=1), name='classes')
    signature_def_map = {
        # Exactly what the original's tf.saved_model.simple_save wrote.
        'serving_default': tf.saved_model.predict_signature_def(
            inputs={'image': eval_session.resized_input_tensor},
            outputs={'prediction': graph.get_tensor_by_name(
                eval_session.final_tensor_name + ':0')}),
        'serving_bytes': tf.saved_model.predict_signature_def(
            inputs={'image_bytes': image_bytes},
            outputs={'prediction': prediction, 'classes': classes})}
    _save_model_atomically(eval_session.sess, signature_def_map,
                           saved_model_dir)


def _save_model_atomically(sess, signature_def_map, saved_model_dir):
  """Writes the SavedModel to a temporary folder, then renames it."""
  target_dir = saved_model_dir.rstrip('/\\') or saved_model_dir
  temporary_dir = _temporary_name(target_dir)
  try:
    builder = tf.saved_model.Builder(temporary_dir)
    builder.add_meta_graph_and_variables(
        sess, tags=[tf.saved_model.tag_constants.SERVING],
        signature_def_map=signature_def_map,
        assets_collection=tf.get_collection(tf.GraphKeys.ASSET_FILEPATHS),
        main_op=tf.group(tf.tables_initializer(), name='legacy_init_op'),
        clear_devices=True)
    builder.save()
    if tf.gfile.IsDirectory(target_dir) and not tf.gfile.ListDirectory(
        target_dir):
      os.rmdir(target_dir)
    if tf.gfile.Exists(target_dir):
      # Checked at start-up: keep the new model rather than lose the run.
      kept_dir = '%s-%d' % (target_dir, int(time.time()))
      tf.gfile.Rename(temporary_dir, kept_dir)
      raise RetrainError(
          '--saved_model_dir %s was created by something else during the '
          'run: the SavedModel was written to %s instead; move it where '
          'you want it.' % (saved_model_dir, kept_dir))
    tf.gfile.Rename(temporary_dir, target_dir)
  except BaseException:
    if tf.gfile.Exists(temporary_dir):
      tf.gfile.DeleteRecursively(temporary_dir)
    raise


def prepare_file_system(resuming=False):
  """Clears the previous run's summaries and creates the output folders.

  It reads the flags, as the original did, and removes what killed runs left
  beside the outputs.

  Args:
    resuming: Whether the run continues an interrupted one (its training and
      validation summaries stay).
  """
  # Only this tool's own event folders are ever deleted (checked at start-up).
  for run_name in ('test',) if resuming else SUMMARY_RUNS:
    run_dir = os.path.join(FLAGS.summaries_dir, run_name)
    if tf.gfile.Exists(run_dir):
      tf.gfile.DeleteRecursively(run_dir)
  tf.gfile.MakeDirs(FLAGS.summaries_dir)
  if FLAGS.intermediate_store_frequency > 0:
    ensure_dir_exists(FLAGS.intermediate_output_graphs_dir)
    _remove_stale_temporary_files(FLAGS.intermediate_output_graphs_dir)
  for path in (FLAGS.output_graph, FLAGS.output_labels,
               FLAGS.saved_model_dir.rstrip('/\\'), FLAGS.tflite_output_file,
               FLAGS.onnx_output_file):
    if path and is_local_path(path):
      _remove_stale_temporary_files(*os.path.split(os.path.abspath(path)))


# --- main --------------------------------------------------------------------


def main(_):
  """Runs the whole retraining; returns the process exit code."""
  configure_logging(FLAGS.logging_verbosity)
  check_flags(FLAGS)
  module_spec = load_module_spec(FLAGS.tfhub_module,
                                 image_size=FLAGS.image_size)

  # Look at the folder structure (or --image_labels), and list the images.
  skipped = []
  image_lists = read_image_lists(FLAGS, skipped)
  class_count = len(label_names_of(image_lists))
  cache = BottleneckCache(
      FLAGS.image_dir, FLAGS.bottleneck_dir,
      module_cache_name(FLAGS.tfhub_module, FLAGS.bottleneck_precision,
                        module_spec), BottleneckMemory())
  # An interrupted run with the same images, module and flags continues.
  fingerprint = training_fingerprint(FLAGS, image_lists, FLAGS.image_dir,
                                     cache.module_name)
  resume_point = find_resume_point(FLAGS.checkpoint_path, fingerprint,
                                   FLAGS.fresh_start)
  prepare_file_system(resuming=resume_point is not None)

  # Set up the pre-trained graph.
  graph, bottleneck_tensor, resized_image_tensor, wants_quantization = (
      create_module_graph(module_spec))
  # Add the new layer that we'll be training.
  with graph.as_default():
    _set_random_seed(FLAGS.random_seed)
    module_variables = tf.global_variables()
    (train_step, cross_entropy, bottleneck_input,
     ground_truth_input, final_tensor) = add_final_retrain_ops(
         class_count, FLAGS.final_tensor_name, bottleneck_tensor,
         wants_quantization, is_training=True,
         head_options=flag_values(
             HeadOptions, FLAGS, multi_label=bool(FLAGS.image_labels),
             loss_weights=class_weights(image_lists, FLAGS.class_weights)))
    layer_variables = tf.global_variables()[len(module_variables):]

  with tf.Session(graph=graph) as sess:
    # Set up the image decoding sub-graph.
    tensors = ModuleTensors(*add_jpeg_decoding(module_spec),
                            resized_image_tensor, bottleneck_tensor)
    # Determine whether to apply distortions, and set up their operations.
    distorted, distortion_tensors = _add_distortions(
        FLAGS, module_spec, image_lists, resume_point)

    # Create the operations we need to evaluate the accuracy of our new layer.
    evaluation_step, _ = add_evaluation_step(final_tensor, ground_truth_input,
                                             FLAGS.multi_label_threshold)
    # Merge all the summaries and write them out to the summaries_dir
    merged = tf.summary.merge_all()
    trained_layer = TrainedLayer(
        sess, tf.train.Saver(), FLAGS.checkpoint_path, module_spec,
        class_count, FLAGS.final_tensor_name,
        FLAGS.multi_label_threshold if FLAGS.image_labels else None)
    checkpoint = TrainingCheckpoint(
        sess, layer_variables, FLAGS.checkpoint_path, fingerprint,
        resume_point, FLAGS.save_every_steps, distorted and distorted.seed)

    # Initialize all weights: the module's pretrained, the new layer's random.
    init = tf.global_variables_initializer()
    sess.run(init)
    module_sess = _module_session(sess, init, FLAGS.bottleneck_precision)
    # Cached even with distortions: for evaluation, and to find bad images.
    skipped += cache_bottlenecks(
        module_sess, image_lists, cache.image_dir, cache.bottleneck_dir,
        *tensors, module_name=cache.module_name, memory=cache.memory)
    _check_categories(image_lists, skipped)
    run_training_loop(
        sess, TrainingOps(train_step, cross_entropy, bottleneck_input,
                          ground_truth_input, evaluation_step, merged),
        flag_values(TrainingSchedule, FLAGS),
        BatchSources(module_sess, image_lists, tensors, cache, distorted,
                     distortion_tensors),
        functools.partial(store_intermediate_graph, trained_layer,
                          FLAGS.intermediate_output_graphs_dir),
        checkpoint=checkpoint)

    # Save the trained layer, and restore it in the eval graph for the rest.
    eval_session = save_and_restore_for_eval(trained_layer)
    with eval_session.sess:
      # Run a final test evaluation on images not used in training.
      test_results = run_final_eval(
          module_sess, module_spec, class_count, image_lists, *tensors,
          eval_session=eval_session, cache=cache)
      check_accuracy_bar(test_results, FLAGS.assert_accuracy_at_least,
                         FLAGS.checkpoint_path)
      write_exports(FLAGS, module_spec, image_lists, eval_session, cache)
    checkpoint.finish()
  if module_sess is not sess:
    module_sess.close()
  _log_skipped_summary(image_lists, skipped)
  return 0


def class_weights(image_lists, weighting):
  """--class_weights's HeadOptions.loss_weights (balanced: multi_label.py)."""
  if weighting == 'none':
    return None
  return import_extra('multi_label', '--class_weights %s' % weighting, (
      'multi_label.py',)).loss_weights(image_lists)


def read_image_lists(flags, unusable):
  """create_image_lists's lists, or --image_labels's (multi_label.py)."""
  if not flags.image_labels:
    return create_image_lists(flags.image_dir, flags.testing_percentage,
                              flags.validation_percentage, unusable=unusable)
  return import_extra('multi_label', '--image_labels', (
      'multi_label.py',)).read_image_labels(
          flags.image_dir, flags.image_labels, flags.testing_percentage,
          flags.validation_percentage)


def flag_values(options_class, flags, **values):
  """An options namedtuple of the flags of its fields' names, and values."""
  return options_class(**{name: values[name] if name in values
                          else getattr(flags, name)
                          for name in options_class._fields})


def _add_distortions(flags, module_spec, image_lists, resume_point):
  """(DistortedBatches, add_input_distortions's tensors) or (None, None)."""
  if not should_distort_images(flags.flip_left_right, flags.random_crop,
                               flags.random_scale, flags.random_brightness):
    return None, None
  tensors = add_input_distortions(
      flags.flip_left_right, flags.random_crop, flags.random_scale,
      flags.random_brightness, module_spec)
  try:
    fast_distortions = import_extra('fast_distortions', 'Distorting in '
                                    'batches', ('fast_distortions.py',))
  except RetrainError as e:
    tf.logging.warning('%s Until then, images are distorted one after the '
                       'other, as the original did (much slower).', e)
    return None, tensors
  batches = fast_distortions.DistortedBatches(
      module_image_shape(module_spec), flag_values(Distortions, flags),
      image_lists, flags.image_dir, 'training', flags.train_batch_size,
      seed=resume_point and resume_point.distortion_seed,
      start_batch=resume_point.step if resume_point else 0,
      memory_mb=flags.decoded_images_mb)
  return batches, tensors


def _module_session(sess, init, bottleneck_precision):
  """sess, or for bfloat16 a Session whose rewrite spares the new layer."""
  config = module_session_config(bottleneck_precision)
  if config is None:
    return sess
  module_sess = tf.Session(graph=sess.graph, config=config)
  module_sess.run(init)
  return module_sess


def write_exports(flags, module_spec, image_lists, eval_session, cache):
  """Writes the frozen graph, the labels and the exports the flags ask for."""
  class_count = len(label_names_of(image_lists))
  tf.logging.info('Save final result to : ' + flags.output_graph)
  if eval_session.wants_quantization:
    tf.logging.info('The model is instrumented for quantization with TF-Lite')
  save_graph_to_file(flags.output_graph, module_spec, class_count,
                     eval_session=eval_session)
  write_file_atomically(flags.output_labels,
                        '\n'.join(label_names_of(image_lists)) + '\n')
  if flags.saved_model_dir:
    tf.logging.info('Save SavedModel to : ' + flags.saved_model_dir)
    export_model(module_spec, class_count, flags.saved_model_dir,
                 eval_session=eval_session,
                 labels=label_names_of(image_lists))
  run_images = RunImages(image_lists, cache.image_dir,
                         module_image_shape(module_spec))
  if flags.tflite_output_file:
    tflite_export = tflite_export_module()
    tflite_export.export_checked_tflite(
        tflite_export.TfliteOptions(
            flags.tflite_output_file, flags.tflite_quantize,
            flags.tflite_calibration_images, flags.random_seed),
        module_spec, eval_session, run_images)
  if flags.onnx_output_file:
    onnx_export_module().export_checked_onnx(flags.onnx_output_file,
                                             eval_session, run_images)


# The run's images, which the TF Lite and ONNX exports decode to check models.
RunImages = collections.namedtuple('RunImages', [
    'image_lists', 'image_dir', 'image_shape'])


def _set_random_seed(seed):
  if seed is not None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    tf.set_random_seed(seed)


def _log_skipped_summary(image_lists, skipped):
  """Logs how many images were used and how many skipped, per class."""
  used = sum(len(label_lists[category]) for label_lists in image_lists.values()
             for category in CATEGORIES)
  if not skipped:
    tf.logging.info('Summary: all %d images were used.', used)
    return
  per_folder = collections.Counter(
      os.path.basename(os.path.dirname(path)) for path, _ in skipped)
  tf.logging.warning(
      'Summary: %d image(s) were skipped (%s) and %d used; the warnings above '
      'name each skipped file and why.', len(skipped),
      ', '.join('%d in %s' % (count, folder)
                for folder, count in sorted(per_folder.items())), used)


def build_parser():
  """Returns the command line parser with every flag of the original."""
  parser = ArgumentParser(
      description='Retrain the top layer of a TensorFlow Hub image module on '
      'your own classes of images.')
  flag = parser.add_argument
  flag('--image_dir', default='', help='Path to folders of labeled images.')
  flag('--output_graph', default='/tmp/output_graph.pb',
       help='Where to save the trained graph.')
  flag('--intermediate_output_graphs_dir', default='/tmp/intermediate_graph/',
       help='Where to save the intermediate graphs.')
  flag('--intermediate_store_frequency', type=int, default=0, help='How many '
       'steps to store intermediate graph. If "0" then will not store.')
  flag('--output_labels', default='/tmp/output_labels.txt',
       help="Where to save the trained graph's labels.")
  flag('--summaries_dir', default='/tmp/retrain_logs',
       help='Where to save summary logs for TensorBoard.')
  flag('--how_many_training_steps', type=int, default=4000,
       help='How many training steps to run before ending.')
  flag('--learning_rate', type=float, default=0.01,
       help='How large a learning rate to use when training.')
  flag('--testing_percentage', type=int, default=10,
       help='What percentage of images to use as a test set.')
  flag('--validation_percentage', type=int, default=10,
       help='What percentage of images to use as a validation set.')
  flag('--eval_step_interval', type=int, default=10,
       help='How often to evaluate the training results.')
  flag('--train_batch_size', type=int, default=100,
       help='How many images to train on at a time.')
  flag('--test_batch_size', type=int, default=-1,
       help='How many images to test on. This test set is only used once, to '
       'evaluate the final accuracy of the model after training completes. '
       'A value of -1 causes the entire test set to be used, which leads to '
       'more stable results across runs.')
  flag('--validation_batch_size', type=int, default=100, help='How many '
       'images to use in an evaluation batch. This validation set is used '
       'much more often than the test set, and is an early indicator of how '
       'accurate the model is during training. A value of -1 causes the '
       'entire validation set to be used, which leads to more stable results '
       'across training iterations, but may be slower on large training sets.')
  flag('--print_misclassified_test_images', action='store_true',
       help='Whether to print out a list of all misclassified test images.')
  flag('--bottleneck_dir', default='/tmp/bottleneck',
       help='Path to cache bottleneck layer values as files.')
  flag('--final_tensor_name', default='final_result', help='The name of the '
       'output classification layer in the retrained graph.')
  flag('--flip_left_right', action='store_true', help='Whether to randomly '
       'flip half of the training images horizontally.')
  flag('--random_crop', type=int, default=0, help='A percentage determining '
       'how much of a margin to randomly crop off the training images.')
  flag('--random_scale', type=int, default=0, help='A percentage determining '
       'how much to randomly scale up the size of the training images by.')
  flag('--random_brightness', type=int, default=0,
       help='A percentage determining how much to randomly multiply the '
       'training image input pixels up or down by.')
  flag('--decoded_images_mb', type=int, default=DEFAULT_DECODED_IMAGES_MB,
       help='With distortions: megabytes of decoded images kept in memory; '
       '0 decodes every image at every use, as the original did.')
  flag('--tfhub_module', default='https://tfhub.dev/google/imagenet/'
       'inception_v3/feature_vector/3', help='Which TensorFlow Hub module to '
       'use. For more options, search https://tfhub.dev for image feature '
       'vector modules. A local module folder works too.')
  flag('--saved_model_dir', default='',
       help='Where to save the exported graph.')
  flag('--logging_verbosity', default='INFO',
       choices=['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'],
       help='How much logging output should be produced.')
  flag('--checkpoint_path', default='/tmp/_retrain_checkpoint',
       help='Where to save checkpoint files.')
  flag('--bottleneck_precision', default='float32',
       choices=BOTTLENECK_PRECISIONS, help="Precision of the module's math "
       'for bottlenecks (bfloat16 is faster on hardware that supports it).')
  flag('--tflite_output_file', default='',
       help='Also write the trained classifier as a TF Lite model here.')
  flag('--tflite_quantize', default='none', choices=TFLITE_QUANTIZATIONS,
       help='How to quantize the TF Lite model (uint8: every op in 8 bits).')
  flag('--tflite_calibration_images', type=int, default=150,
       help='How many training images calibrate --tflite_quantize uint8.')
  flag('--onnx_output_file', default='',
       help='Also write the trained classifier as an ONNX model here.')
  flag('--image_size', type=int, help='Input height and width for a TF2 '
       'module that takes images of any size.')
  flag('--random_seed', type=int,
       help='Seed that makes a run repeatable. Unset: a different run.')
  flag('--save_every_steps', type=int, default=0, help='Save the training '
       'state every this many steps to resume from; 0: every minute.')
  flag('--fresh_start', action='store_true',
       help='Train from step 0 even if an interrupted run could be resumed.')
  flag('--optimizer', default='gradient_descent', choices=OPTIMIZERS,
       help='How the new layer is trained (the original: gradient_descent).')
  flag('--momentum', type=float, default=0.9,
       help='The momentum of --optimizer=momentum.')
  flag('--dropout_rate', type=float, default=0.0,
       help='Fraction of the bottleneck values dropped in training.')
  flag('--l2_regularizer', type=float, default=0.0,
       help='Weight of the L2 penalty on the new layer in the loss.')
  flag('--label_smoothing', type=float, default=0.0,
       help='Fraction of a uniform distribution mixed into the labels.')
  flag('--assert_accuracy_at_least', type=float,
       help='Fail and export nothing if the final test accuracy is lower.')
  flag('--image_labels', default='', help='A CSV file (image,labels) that '
       'makes a multi-label model.')
  flag('--multi_label_threshold', type=float, default=0.5, help='With '
       '--image_labels: the score from which a label counts as predicted.')
  flag('--class_weights', default='none', choices=CLASS_WEIGHTS,
       help='balanced: weight the loss by inverse class frequency.')
  return parser


# === Support: folders and file names =========================================


def is_local_path(path):
  """Tells whether path is a plain local path (not gs://, file://...)."""
  return not re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', path)


def _printable_path(path):
  """The path with bytes that are not valid UTF-8 shown as \\x escapes."""
  return os.fsencode(path).decode('utf-8', 'backslashreplace')


_NOT_UTF8 = re.compile('[\ud800-\udfff]')  # How Python shows non-UTF-8 bytes.


def _list_folder(folder):
  """(names, names not valid UTF-8: TensorFlow cannot handle them) in folder."""
  if not is_local_path(folder):
    return [name.rstrip('/') for name in tf.gfile.ListDirectory(folder)], []
  names = os.listdir(folder)
  return ([name for name in names if not _NOT_UTF8.search(name)],
          [name for name in names if _NOT_UTF8.search(name)])


def _image_files(class_dir):
  """(the image files in class_dir, lazily, the image names not valid UTF-8)."""
  try:
    names, bad_names = _list_folder(class_dir)
  except OSError as e:
    raise RetrainError('Class folder %s cannot be read (%s): check its '
                       'permissions, or remove it.' % (class_dir,
                                                       e.strerror or e))
  suffixes = tuple('.' + extension for extension in IMAGE_EXTENSIONS)
  return ((name for name in names if name.lower().endswith(suffixes) and
           not tf.gfile.IsDirectory(os.path.join(class_dir, name))),
          [name for name in bad_names if name.lower().endswith(suffixes)])


def _list_image_files(class_dir, unusable):
  """Sorted image files in class_dir; unusable gets (path, why) of bad names."""
  files, bad_names = _image_files(class_dir)
  unusable.extend((_printable_path(os.path.join(class_dir, name)),
                   'its name is not valid UTF-8: rename it')
                  for name in sorted(bad_names))
  return sorted(files)


def _class_folders(image_dir, quiet=False):
  """The sorted names of image_dir's sub-folders (the classes)."""
  names, bad_names = _list_folder(image_dir)
  for name in sorted(bad_names) if not quiet else []:
    tf.logging.warning('Skipping folder %s: its name is not valid UTF-8: '
                       'rename it.',
                       _printable_path(os.path.join(image_dir, name)))
  return sorted(name for name in names
                if tf.gfile.IsDirectory(os.path.join(image_dir, name)))


# === Support: image safety and decoding ======================================


def _image_header_size(image_data):
  """(height, width, is_jpeg) from a JPEG, PNG or GIF header, else 0 x 0."""
  # 32 bytes of the header, padded, so that short files cannot fail the slices.
  padded = tf.strings.join([tf.strings.substr(image_data, 0, 32), b'\0' * 32])
  head = tf.strings.substr(padded, 0, 32)
  head_bytes = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

  def big_endian(start, length):
    value = tf.constant(0, tf.int64)
    for position in range(start, start + length):
      value = value * 256 + head_bytes[position]
    return value

  is_jpeg, is_png, is_gif = (
      tf.equal(tf.strings.substr(head, 0, len(magic)), magic)
      for magic in (b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'GIF8'))
  zero = tf.constant(0, tf.int64)

  def jpeg_size():
    shape = tf.cast(tf.image.extract_jpeg_shape(image_data), tf.int64)
    return shape[0], shape[1]

  def png_size():  # The IHDR chunk: width, then height, big-endian.
    return big_endian(20, 4), big_endian(16, 4)

  def gif_size():  # The logical screen: width, then height, little-endian.
    return (head_bytes[8] + 256 * head_bytes[9],
            head_bytes[6] + 256 * head_bytes[7])

  height, width = tf.case([(is_jpeg, jpeg_size), (is_png, png_size),
                           (is_gif, gif_size)],
                          default=lambda: (zero, zero), exclusive=False)
  return height, width, is_jpeg


def _decode_image(image_data, channels):
  """Decodes JPEG, PNG or GIF bytes to uint8 [height, width, channels]: beyond
  MAX_IMAGE_PIXELS, JPEGs at 1/2, 1/4 or 1/8 size; larger fail unallocated."""
  height, width, is_jpeg = _image_header_size(image_data)
  # Clipped first so that a lying 32-bit PNG header cannot overflow int64.
  pixels = (tf.minimum(height, MAX_IMAGE_PIXELS + 1) *
            tf.minimum(width, MAX_IMAGE_PIXELS + 1))

  def too_large():
    check = tf.debugging.Assert(False, [
        'Image too large:', width, 'x', height, 'pixels'])
    with tf.control_dependencies([check]):
      return tf.zeros([1, 1, channels], tf.uint8)

  branches = []
  for ratio in (1, 2, 4, 8):  # Any image at full size; JPEGs scaled down too.
    fits = pixels <= MAX_IMAGE_PIXELS * ratio * ratio
    branches.append((fits if ratio == 1 else tf.logical_and(is_jpeg, fits),
                     functools.partial(tf.image.decode_jpeg, image_data,
                                       channels=channels, ratio=ratio)))
  return tf.case(branches, default=too_large, exclusive=False)


def _to_float_4d(decoded_image):
  """A decoded uint8 image as float [1, height, width, depth] in [0, 1]."""
  return tf.expand_dims(tf.image.convert_image_dtype(decoded_image,
                                                     tf.float32), 0)


def decode_and_resize(image_data, input_height, input_width, input_depth):
  """Image bytes -> float [1, height, width, depth] in [0, 1], for all uses."""
  return tf.image.resize_bilinear(
      _to_float_4d(_decode_image(image_data, input_depth)),
      tf.cast(tf.stack([input_height, input_width]), dtype=tf.int32))


def error_reason(error):
  """The line of an error's message that says what went wrong."""
  message = getattr(error, 'message', None) or str(error)
  lines = [line.strip() for line in message.splitlines() if line.strip()]
  if not lines:
    return type(error).__name__
  for index, line in enumerate(lines[:-1]):
    if line.startswith('Node:') and not lines[index + 1].startswith('[['):
      return lines[index + 1]
  if lines[0] == 'Graph execution error:':  # Then the last line but [[...]].
    return [line for line in lines if not line.startswith('[[')][-1]
  return lines[0]


# === Support: atomic files ===================================================

# '<target>.tmp-<host>-<pid>-<random>': tells killed runs' files from live ones.
_TEMPORARY_NAME = re.compile(r'\.tmp-([A-Za-z0-9]*)-(\d+)-[0-9a-f]{8}$')


@functools.lru_cache(maxsize=None)
def _host_tag():
  """Names the machine and the process-id namespace (containers) we run in."""
  tag = re.sub(r'[^A-Za-z0-9]', '', socket.gethostname())[:12]
  try:
    return tag + '%x' % os.stat('/proc/self/ns/pid').st_ino
  except OSError:
    return tag


def _temporary_name(path):
  return '%s.tmp-%s-%d-%s' % (path, _host_tag(), os.getpid(),
                              uuid.uuid4().hex[:8])


def _remove_stale_temporary_files(folder, target_name=None):
  """Deletes killed runs' temporary files (of target_name only, if given)."""
  try:
    names = os.listdir(folder) if is_local_path(folder) else []
  except OSError:  # Missing, or not a folder.
    return
  for name in names:
    match = _TEMPORARY_NAME.search(name)
    if (not match or match.group(1) != _host_tag() or
        (target_name is not None and name[:match.start()] != target_name)):
      continue
    try:
      os.kill(int(match.group(2)), 0)
      continue  # Its run is alive.
    except ProcessLookupError:
      pass
    except (OSError, OverflowError):  # E.g. another user's process: it exists.
      continue
    path = os.path.join(folder, name)
    try:
      if os.path.isdir(path) and not os.path.islink(path):
        tf.gfile.DeleteRecursively(path)
      else:
        os.remove(path)
    except (OSError, tf.errors.OpError):
      pass  # Another run cleaned it up first.


def write_file_atomically(path, contents, mode='w'):
  """Writes path (and its folders) as a temporary file renamed into place."""
  folder = os.path.dirname(path)
  if folder:
    ensure_dir_exists(folder)
  temporary_path = _temporary_name(path)
  try:
    with tf.gfile.GFile(temporary_path, mode) as f:
      f.write(contents)
    tf.gfile.Rename(temporary_path, path, overwrite=True)
  except BaseException:
    if tf.gfile.Exists(temporary_path):
      tf.gfile.Remove(temporary_path)
    raise


def disk_full_folder(error):
  """The folder of a full-disk error ('' if unknown), or None if not one."""
  while error is not None:
    if isinstance(error, OSError) and error.errno in (
        errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC)):  # Or quota.
      path = error.filename or ''
      break
    message = getattr(error, 'message', '') or ''
    if isinstance(error, tf.errors.OpError) and re.search(
        'No space left on device|Disk quota exceeded', message):
      # TensorFlow's message: '<path>; No space left on device'.
      path = message.split(';')[0].strip() if ';' in message else ''
      break
    error = error.__cause__ or error.__context__
  else:
    return None
  # The place the user named, not the temporary one written first.
  return os.path.dirname(re.sub(_TEMPORARY_NAME.pattern.rstrip('$'), '', path))


def space_still_needed(flags):
  """Rough bytes still to write: uncached bottlenecks, checkpoint, exports."""
  pattern = '*_%s*.txt' % _module_cache_suffix(flags.tfhub_module)
  cached = tf.io.gfile.glob(os.path.join(flags.bottleneck_dir, '*', pattern))
  images = sum(len(_list_image_files(os.path.join(flags.image_dir, name), []))
               for name in _class_folders(flags.image_dir, quiet=True))
  sizes = [tf.io.gfile.stat(path).length for path in cached[:100]]
  file_bytes = np.mean(sizes) if sizes else 2048 * 12
  module_bytes = sum(os.path.getsize(os.path.join(root, name))
                     for root, _, names in os.walk(flags.tfhub_module)
                     for name in names) if is_local_path(
                         flags.tfhub_module) else 0
  exports = 2 + sum(bool(path) for path in (
      flags.saved_model_dir, flags.tflite_output_file, flags.onnx_output_file))
  return max(images - len(cached), 0) * file_bytes + exports * module_bytes


def disk_full_message(folder, flags):
  """The one line that says what to do when the disk (of folder) is full."""
  try:
    needed = ': this run needs about %.0f MB more' % max(
        space_still_needed(flags) / 1e6, 1)
  except (OSError, tf.errors.OpError, RetrainError):
    needed = ''
  return ('No space left on device%s%s. Free some space (or give the flag '
          'that names that folder another place) and run the same command '
          'again: it continues where it stopped.' % (
              ' in %s' % folder if folder else '', needed))


# === Support: the optional extras ============================================

# Imported only when needed; their log lines are this tool's (_own_lines_only).
EXTRA_FILES = ('tflite_export.py', 'tf2_modules.py', 'onnx_export.py',
               'evaluation_report.py', 'multi_label.py', 'fast_distortions.py',
               'image_checks.py')


def import_extra(name, asked_by, files):
  """Imports the extra name, for asked_by; RetrainError naming files."""
  try:
    return importlib.import_module(name)
  except ImportError as e:
    if e.name != name:  # Not missing, broken: say what broke.
      raise
  needed = files[0] + ''.join(' (and %s)' % other for other in files[1:])
  raise RetrainError(
      '%s needs %s beside retrain.py, in %s: copy %s from the project that '
      'retrain.py comes from.' % (asked_by, needed,
                                  os.path.dirname(os.path.abspath(__file__)),
                                  'them' if len(files) > 1 else 'it'))


def image_checks_module():
  """image_checks.py, or None (a warning) for a copy of retrain.py alone."""
  try:
    return import_extra('image_checks', 'Checking images', ('image_checks.py',))
  except RetrainError as e:
    tf.logging.warning('%s Until then, images are read as the original read '
                       'them (a named pipe among them stops the run).', e)
    return None


def tflite_export_module():
  """tflite_export.py, which --tflite_output_file needs (see import_extra)."""
  return import_extra('tflite_export', '--tflite_output_file',
                      ('tflite_export.py', 'tflite_metadata.py'))


def onnx_export_module():
  """onnx_export.py, which --onnx_output_file needs (see import_extra)."""
  return import_extra('onnx_export', '--onnx_output_file', ('onnx_export.py',))


# === Support: flag checks ====================================================


def check_flags(flags):
  """Checks flags and outputs before any write; RetrainError says what to do."""
  if not flags.image_dir:
    raise RetrainError('Must set flag --image_dir to a folder with one '
                       'sub-folder of images per class.')
  for name in ('image_dir', 'output_graph', 'intermediate_output_graphs_dir',
               'output_labels', 'summaries_dir', 'bottleneck_dir',
               'tfhub_module', 'saved_model_dir', 'checkpoint_path',
               'image_labels'):
    if _NOT_UTF8.search(getattr(flags, name)):
      raise RetrainError('--%s %s is not valid UTF-8, which TensorFlow cannot '
                         'handle: rename it.' % (
                             name, _printable_path(getattr(flags, name))))
  if not tf.gfile.Exists(flags.image_dir):
    raise RetrainError("Image directory '%s' not found: check the path given "
                       'to --image_dir.' % flags.image_dir)
  if not tf.gfile.IsDirectory(flags.image_dir):
    raise RetrainError('--image_dir %s is a file, not a folder of class '
                       'folders.' % flags.image_dir)
  for names, in_range, expected in _NUMBER_RANGES:
    for name in names:
      if not in_range(getattr(flags, name)):
        raise RetrainError('--%s must be %s, not %s.' % (
            name, expected, getattr(flags, name)))
  check_split_and_image_size(flags)
  bar = flags.assert_accuracy_at_least
  if bar is not None and not 0 <= bar <= 1:
    raise RetrainError('--assert_accuracy_at_least is a fraction in [0, 1] '
                       '(e.g. 0.9 for 90%%), not %s.' % bar)
  _check_outputs(flags)
  if flags.image_labels or flags.class_weights != 'none':
    import_extra('multi_label', '--image_labels' if flags.image_labels else
                 '--class_weights %s' % flags.class_weights, (
                     'multi_label.py',))
  if not flags.image_labels:
    _check_class_folders(flags.image_dir)
  if not re.match(r'^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$', flags.final_tensor_name):
    raise RetrainError('--final_tensor_name %r is not a valid TensorFlow op '
                       'name: use letters, digits, and _ . - / (e.g. '
                       'final_result).' % flags.final_tensor_name)


# The numeric flags' ranges: (flags, whether a value is in range, the range).
_NUMBER_RANGES = (
    (('how_many_training_steps', 'train_batch_size', 'eval_step_interval'),
     lambda v: v > 0, 'a positive number'),
    (('test_batch_size', 'validation_batch_size'),
     lambda v: v > 0 or v == -1, 'positive, or -1 for the whole set'),
    (('learning_rate',), lambda v: v > 0, 'positive'),
    (('intermediate_store_frequency',), lambda v: v >= 0,
     '0 (off) or positive'),
    (('random_crop', 'random_scale'), lambda v: v >= 0,
     '0 or a positive percentage'),
    (('random_brightness',), lambda v: 0 <= v <= 100,
     'a percentage in [0, 100]'),
    (('decoded_images_mb',), lambda v: v >= 0,
     '0 (off) or a positive number of megabytes'),
    (('tflite_calibration_images',), lambda v: v > 0,
     'a positive number of images'),
    (('momentum', 'dropout_rate', 'label_smoothing'), lambda v: 0 <= v < 1,
     'in [0, 1)'),
    (('multi_label_threshold',), lambda v: 0 < v < 1, 'in (0, 1)'),
    (('l2_regularizer',), lambda v: v >= 0, '0 (off) or positive'),
    (('save_every_steps',), lambda v: v >= 0, '0 (every minute) or positive'),
)


def check_split_and_image_size(flags):
  """RetrainError for a bad split or --image_size (beam_bottlenecks too)."""
  for name in ('testing_percentage', 'validation_percentage'):
    value = getattr(flags, name)
    if not 0 <= value < 100:
      raise RetrainError('--%s must be in [0, 100), not %s.' % (name, value))
  if flags.testing_percentage + flags.validation_percentage >= 100:
    raise RetrainError(
        '--testing_percentage plus --validation_percentage must be below 100 '
        'so that some images are left for training.')
  if flags.image_size is not None and flags.image_size <= 0:
    raise RetrainError('--image_size must be a positive number of pixels, '
                       'not %s.' % flags.image_size)


def _check_outputs(flags):
  """RetrainError for the first output that cannot be written or loses data."""
  if flags.saved_model_dir and tf.gfile.IsDirectory(
      flags.saved_model_dir) and tf.gfile.ListDirectory(flags.saved_model_dir):
    raise RetrainError(
        '--saved_model_dir %s already exists and is not empty: use a fresh '
        'numbered version folder, e.g. --saved_model_dir=/tmp/saved_models/'
        '$(date +%%s)/' % flags.saved_model_dir)
  if not _clearable_summaries_dir(flags.summaries_dir):
    raise RetrainError(
        "--summaries_dir %s holds more than this tool's train/, validation/ "
        'and test/ event folders and would be cleared: point it at a folder '
        'of its own, e.g. /tmp/retrain_logs.' % flags.summaries_dir)
  for name, is_folder in (('summaries_dir', True), ('bottleneck_dir', True),
                          ('output_graph', False), ('output_labels', False),
                          ('checkpoint_path', False)):
    check_writable(name, getattr(flags, name), is_folder)
  if flags.intermediate_store_frequency > 0:
    check_writable('intermediate_output_graphs_dir',
                   flags.intermediate_output_graphs_dir, True)
  if flags.saved_model_dir:
    check_writable('saved_model_dir', flags.saved_model_dir, True)
  if flags.tflite_output_file:
    tflite_export_module()  # If it is missing, say so now, not after training.
    check_writable('tflite_output_file', flags.tflite_output_file, False)
  elif flags.tflite_quantize != 'none':
    raise RetrainError('--tflite_quantize needs --tflite_output_file, the '
                       'TF Lite model to write.')
  if flags.onnx_output_file:
    # Said now, not after training: onnx_export.py or a package is missing.
    onnx_export_module().import_packages('--onnx_output_file')
    check_writable('onnx_output_file', flags.onnx_output_file, False)


def _check_class_folders(image_dir):
  """RetrainError unless image_dir has two class folders with images."""
  class_folders = []
  try:
    for name in _class_folders(image_dir, quiet=True):
      if next(_image_files(os.path.join(image_dir, name))[0], None):  # One.
        class_folders.append(name)
      if len(class_folders) == 2:
        return
  except OSError as e:
    raise RetrainError('--image_dir %s cannot be read (%s): check its '
                       'permissions.' % (image_dir, e.strerror or e))
  if not class_folders:
    raise RetrainError('No valid folders of images found at %s: put the images '
                       'into one sub-folder per class (e.g. %s/roses/*.jpg).'
                       % (image_dir, image_dir.rstrip('/')))
  raise RetrainError(
      'Only one valid folder of images found at %s (%s) - multiple classes '
      'are needed for classification: add a sub-folder of images for each '
      'other class.' % (image_dir, class_folders[0]))


def check_writable(flag_name, path, is_folder):
  """RetrainError if a local path that flag_name names cannot be written."""
  if not is_local_path(path):
    return
  if is_folder and os.path.exists(path) and not os.path.isdir(path):
    raise RetrainError('--%s %s is a file, not a folder.' % (flag_name, path))
  if not is_folder and os.path.isdir(path):
    raise RetrainError('--%s %s is a folder: give a file name.' %
                       (flag_name, path))
  folder = os.path.abspath(path if is_folder else os.path.dirname(
      os.path.abspath(path)))
  while not os.path.exists(folder) and os.path.dirname(folder) != folder:
    folder = os.path.dirname(folder)
  if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
    raise RetrainError('--%s %s cannot be written (no write permission in '
                       '%s): choose another place.' % (flag_name, path, folder))


def _clearable_summaries_dir(summaries_dir):
  """Tells whether summaries_dir holds nothing but this tool's event folders."""
  if not tf.gfile.IsDirectory(summaries_dir):
    return not tf.gfile.Exists(summaries_dir)
  return {name.rstrip('/') for name in
          tf.gfile.ListDirectory(summaries_dir)} <= set(SUMMARY_RUNS)


def _check_categories(image_lists, skipped=()):
  """RetrainError if a class has no training image; warns of other gaps."""
  if MULTI_LABEL_GROUP in image_lists:  # Its own check (multi_label.py).
    return import_extra('multi_label', '--image_labels', (
        'multi_label.py',)).check_labels(image_lists)
  for label_name, label_lists in image_lists.items():
    if not label_lists['training']:
      skipped_here = sum(
          1 for path, _ in skipped
          if os.path.basename(os.path.dirname(path)) == label_lists['dir'])
      raise RetrainError(
          "Class '%s' (folder %s) has no usable training image%s: add more "
          'images to it, or remove the folder.' % (
              label_name, label_lists['dir'],
              ' (%d of its images were skipped, see the warnings above)' %
              skipped_here if skipped_here else ''))
    for category in ('testing', 'validation'):
      if not label_lists[category]:
        tf.logging.warning(
            "Class '%s' has no %s image: add more images to folder %s so "
            'that it is evaluated too.', label_name, category,
            label_lists['dir'])


# === Support: process set-up (progress, logging, signals, exit codes) ========


def keras_2():
  """Keras 2 (builds TF1 graphs): tf_keras from TF 2.16 on, else tf.keras."""
  try:
    return importlib.import_module('tf_keras')
  except ImportError:
    return tf.keras


class Progress(object):
  """Progress and ETA: a bar on a terminal, else a line every 15 seconds."""

  def __init__(self, total, what, report=tf.logging.info):
    self._total, self._what, self._report = total, what, report
    self._done = 0
    self._start = self._last_log = time.time()
    self._bar = (keras_2().utils.Progbar(total, unit_name='image')
                 if sys.stdout.isatty() else None)

  def add(self, count):
    self._done += count
    now = time.time()
    if self._bar is not None:
      self._bar.update(self._done)
    elif now - self._last_log >= 15 or self._done == self._total:
      self._last_log = now
      rate = self._done / max(now - self._start, 1e-9)
      eta = (self._total - self._done) / max(rate, 1e-9)
      self._report('%d/%d %s (%.1f images/s, ETA %ds)' % (
          self._done, self._total, self._what, rate, eta))


def _own_lines_only(record):
  """Logging filter: our lines and real errors, not TF's deprecation notes."""
  path = os.path.abspath(record.pathname)
  here = os.path.abspath(__file__)
  return (record.levelno >= tf.logging.ERROR or path == here or
          (os.path.dirname(path) == os.path.dirname(here) and
           os.path.basename(path) in EXTRA_FILES))


def logging_level_verbosity(logging_verbosity):
  """Converts logging_level into TensorFlow logging verbosity value.

  Args:
    logging_verbosity: 'DEBUG', 'INFO', 'WARN', 'ERROR' or 'FATAL'.

  Returns:
    The TensorFlow logging verbosity value.
  """
  names = ('FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG')
  if logging_verbosity not in names:
    raise RuntimeError('Not supported logs verbosity (%s). Use one of %s.' %
                       (logging_verbosity, ', '.join(names)))
  return getattr(tf.logging, logging_verbosity)


def configure_logging(verbosity_name):
  """Sets the log level (a --logging_verbosity); below DEBUG only ours show."""
  tf.logging.set_verbosity(logging_level_verbosity(verbosity_name))
  tf.get_logger().removeFilter(_own_lines_only)
  if verbosity_name != 'DEBUG':
    tf.get_logger().addFilter(_own_lines_only)


class ArgumentParser(argparse.ArgumentParser):
  """Reports a bad command line in one line rather than usage plus error."""

  def error(self, message):
    self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


class _Terminated(BaseException):
  """Raised in the main thread when SIGTERM arrives."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise _Terminated()


class _DeferredInterrupts(object):
  """Holds Ctrl-C and SIGTERM until raise_pending(); a second acts at once."""

  def __enter__(self):
    self.pending, self._previous = None, {}
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        if callable(signal.getsignal(signum)):
          self._previous[signum] = signal.signal(signum, self._hold)
    return self

  def _hold(self, signum, frame):
    if self.pending is not None:
      self._previous[signum](signum, frame)
    self.pending = signum

  def raise_pending(self):
    if self.pending is not None:
      signum, self.pending = self.pending, None
      self._previous[signum](signum, None)

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def run_main(argv=None):
  """Parses argv (default sys.argv[1:]), runs main, and returns the exit
  code: 0, 1 for a user mistake, 130 after Ctrl-C, 143 after SIGTERM."""
  global FLAGS
  FLAGS = build_parser().parse_args(argv)
  signal.signal(signal.SIGINT, signal.default_int_handler)
  signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    return main([sys.argv[0]])
  except RetrainError as e:
    sys.stderr.write('ERROR: %s\n' % e)
    return 1
  except (KeyboardInterrupt, _Terminated) as e:
    ctrl_c = isinstance(e, KeyboardInterrupt)
    sys.stderr.write('%s: stopped cleanly. Cached bottlenecks are kept; run '
                     'the same command again to continue.\n' % (
                         '\nInterrupted' if ctrl_c else 'Terminated'))
    return 130 if ctrl_c else 143
  except Exception as e:  # pylint: disable=broad-except
    folder = disk_full_folder(e)
    if folder is None:
      raise
    sys.stderr.write('ERROR: %s\n' % disk_full_message(folder, FLAGS))
    return 1


def exit_at_once(exit_code):
  """Flushes and ends the process, skipping Python's slow clean-up."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(exit_code)  # pylint: disable=protected-access


# On import: only this tool's log lines (unless DEBUG), then TF1 behaviour.
if not _wants_debug_logs(sys.argv):
  tf.get_logger().addFilter(_own_lines_only)
tf.disable_v2_behavior()

# Importers (tests, notebooks) get the defaults of every flag.
FLAGS = build_parser().parse_args([])

if __name__ == '__main__':
  # Extras import retrain: this module, not a copy with its own RetrainError.
  sys.modules.setdefault('retrain', sys.modules[__name__])
  exit_at_once(run_main())
