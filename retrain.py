# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
r"""Simple transfer learning with image modules from TensorFlow Hub.

Trains a new top layer (softmax) on the features that a TensorFlow Hub image
feature-vector module computes, so that it recognises the classes of your own
photos. Give it one sub-folder of images per class; the names are the labels:

  python retrain.py --image_dir ~/flower_photos  # daisy/*.jpg, roses/*.png...

--tfhub_module takes a URL (cached by tensorflow_hub in TFHUB_CACHE_DIR) or a
local folder, in the TF1 Hub format or a TF2 SavedModel (tf2_modules.py). The
frozen graph it writes maps a float32 image batch [None, height, width, 3] in
[0, 1] at 'Placeholder' to class probabilities at 'final_result' (the default
of --final_tensor_name).

The file follows the run: image lists -> the module graph -> bottlenecks
(cached under --bottleneck_dir) -> distortions -> the new layer -> the
training loop (resumable) -> evaluation -> exports -> main and the flags; then
support code: folders, image safety, atomic files, flag checks, process set-up.
Extras beside it are imported only when asked: tflite_export.py (TF Lite),
tf2_modules.py and evaluation_picture.py (the confusion matrix picture).
"""

import argparse
import collections
import concurrent.futures
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


# Before TensorFlow loads: Ctrl-C stops without a traceback, and its C++
# start-up lines (some printed whatever TF_CPP_MIN_LOG_LEVEL says) are hidden.
_USER_STDERR = os.dup(2)
if __name__ == '__main__':
  signal.signal(signal.SIGINT, _interrupted_while_loading)
if not _wants_debug_logs(sys.argv):
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# TensorFlow imports Keras' optimizers as it loads, which this tool never
# needs (up to a second with Keras 3): that import fails quietly meanwhile.
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
  from tensorflow.core.framework import tensor_pb2
  from tensorflow.core.framework import variable_pb2
  from tensorflow.core.protobuf import rewriter_config_pb2
  from tensorflow.core.protobuf import saved_model_pb2
  from tensorflow.python.framework import op_def_registry
  # pylint: enable=g-import-not-at-top
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
# A module with any of these ops is quantization-compatible.
FAKE_QUANT_OPS = ('FakeQuantWithMinMaxVars',
                  'FakeQuantWithMinMaxVarsPerChannel')
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')  # Compared lower-cased.
CATEGORIES = ('training', 'testing', 'validation')
BOTTLENECK_PRECISIONS = ('float32', 'bfloat16')
# The TensorBoard runs (sub-folders of --summaries_dir) this tool writes.
SUMMARY_RUNS = ('train', 'validation', 'test')
# Larger images (~33.5 megapixels) are decoded at a reduced size (JPEGs) or
# skipped, so that a decompression bomb cannot exhaust memory.
MAX_IMAGE_PIXELS = 2 ** 25
# --decoded_images_mb's default: flower_photos's training set fits.
DEFAULT_DECODED_IMAGES_MB = 2048
# Longer cache file names are shortened with a hash of the full name.
MAX_CACHE_NAME_BYTES = 200

# Caps libjpeg-turbo's memory for one image, which a lying progressive JPEG
# header could set at gigabytes (1000M fits a 12000 x 12000 image).
os.environ.setdefault('JPEGMEM', '1000M')


class RetrainError(Exception):
  """A mistake of the user's (flags, folders, data): reported as one line."""


# The module graph's tensors that bottlenecks are computed with.
ModuleTensors = collections.namedtuple('ModuleTensors', [
    'jpeg_data', 'decoded_image', 'resized_image', 'bottleneck'])

# Where bottlenecks are cached (under bottleneck_dir) and kept for the run.
BottleneckCache = collections.namedtuple('BottleneckCache', [
    'image_dir', 'bottleneck_dir', 'module_name', 'memory'])


# ---------------------------------------------------------------------------
# Image lists
# ---------------------------------------------------------------------------


def _percentage_hash(file_name):
  """A stable number in [0, 100] that puts an image file in a set; what follows
  '_nohash_' is ignored, so that variants of one subject stay together."""
  hash_name = re.sub(r'_nohash_.*$', '', file_name)
  hash_name_hashed = hashlib.sha1(tf.compat.as_bytes(hash_name)).hexdigest()
  return ((int(hash_name_hashed, 16) % (MAX_NUM_IMAGES_PER_CLASS + 1)) *
          (100.0 / MAX_NUM_IMAGES_PER_CLASS))


def create_image_lists(image_dir, testing_percentage, validation_percentage,
                       unusable=None):
  """Builds a list of training images from the file system.

  An image's set comes from the hash of its file name alone, so that moving
  the folder or adding images keeps the split.

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
      percentage_hash = _percentage_hash(base_name)
      if percentage_hash < validation_percentage:
        lists['validation'].append(base_name)
      elif percentage_hash < (testing_percentage + validation_percentage):
        lists['testing'].append(base_name)
      else:
        lists['training'].append(base_name)
    result[label_name] = lists
  return result


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
  """[(path, class index)] of every image of category, in list order."""
  return [(get_image_path(image_lists, label, index, image_dir, category),
           class_index)
          for class_index, label in enumerate(image_lists)
          for index in range(len(image_lists[label][category]))]


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


# ---------------------------------------------------------------------------
# Module graph
# ---------------------------------------------------------------------------


def load_module_spec(module_handle, image_size=None):
  """Loads an image feature-vector module, with one-line RetrainErrors.

  Args:
    module_handle: A module URL (cached in TFHUB_CACHE_DIR) or a folder.
    image_size: --image_size, for a module that takes images of any size.

  Returns:
    A TF1ImageModule (the TF1 Hub format, read here as tensorflow_hub 0.16
    removed hub.Module) or a tf2_modules.TF2ImageModule (a TF2 SavedModel).
  """
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
  meta_graph = _read_tf1_meta_graph(module_handle, path)
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
  _check_module_variables(module_handle, path, meta_graph)
  module_size = _tf1_image_size(meta_graph, signature)
  variable_size = not all(module_size)
  return TF1ImageModule(
      module_handle, path, meta_graph,
      checked_image_size(module_handle, module_size, variable_size, image_size),
      variable_size, _info_shape(signature.outputs['default']).as_list()[1])


def checked_image_size(module_handle, module_size, variable_size,
                       image_size):
  """The (height, width) to resize images to for a module of module_size
  (any size if variable_size), given --image_size (or None); a RetrainError
  if --image_size is missing for a module of any size or disagrees."""
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
  """A TF1 Hub format image feature vector, as load_module_spec reads it: its
  graph (tags {}) maps 'images' in [0, 1] to 'default' [batch, features]."""

  def apply_fn(self):
    """Puts the module's variables into the current graph under 'module', as
    hub.Module did; returns images -> features, sharing those variables."""
    nodes = self.meta_graph.graph_def.node
    # Ops that hold state and take no inputs: variables, tables.
    op_defs = {node.name: op_def_registry.get(node.op) for node in nodes}
    state_ops = {name for name, op_def in op_defs.items()
                 if op_def and op_def.is_stateful and not op_def.input_arg}
    # The state comes alone (the whole graph takes long to import): the
    # state ops and what variables name.
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
    apply_nodes = _without_state_ops(nodes, state_ops)
    signature = self.meta_graph.signature_def['default']

    def apply(images):
      """Adds the module's ops under 'module_apply_default' (then '..._1')."""
      input_map = dict(state_map)
      input_map[signature.inputs['images'].name] = images
      apply_scope = _import_module_graph(
          self.meta_graph, apply_nodes, 'module_apply_default',
          (tf.GraphKeys.COND_CONTEXT, tf.GraphKeys.WHILE_CONTEXT), input_map)
      return tf.get_default_graph().get_tensor_by_name(
          '%s/%s' % (apply_scope, signature.outputs['default'].name))
    return apply


def _without_state_ops(nodes, state_ops):
  """Copies of nodes but state_ops (their outputs are fed), and without the
  colocations with them, which would keep them in the frozen graph."""
  graph_def = tf.GraphDef()
  graph_def.node.extend(node for node in nodes if node.name not in state_ops)
  for node in graph_def.node:
    if '_class' in node.attr:
      places = node.attr['_class'].list.s
      places[:] = [place for place in places
                   if place.decode()[len('loc:@'):] not in state_ops]
      if not places:
        del node.attr['_class']
  return graph_def.node


def _import_module_graph(meta_graph, nodes, name, collections_to_keep,
                         input_map):
  """Imports meta_graph, with nodes as its graph's and only
  collections_to_keep (as hub.Module with trainable=False), under a new name
  scope, which it returns."""
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


def _read_tf1_meta_graph(module_handle, path):
  """The MetaGraphDef (tags {}) of a TF1 Hub module's saved_model.pb."""
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
      return meta_graph
  raise RetrainError('Could not load the module %s: its saved_model.pb has no '
                     'graph with the tags {} of a TF1 Hub module.' %
                     module_handle)


def _variable_defs(meta_graph):
  """The VariableDefs of a module's global variables."""
  variables = meta_graph.collection_def.get(tf.GraphKeys.GLOBAL_VARIABLES)
  return [variable_pb2.VariableDef.FromString(serialized)
          for serialized in (variables.bytes_list.value if variables else ())]


def _check_module_variables(module_handle, path, meta_graph):
  """Reads each variable of a TF1 Hub module from its checkpoint once, so
  that a missing or damaged checkpoint is a RetrainError here."""
  names = [variable.variable_name.split(':')[0]
           for variable in _variable_defs(meta_graph)]
  if not names:
    return
  try:
    reader = tf.train.load_checkpoint(os.path.join(path, 'variables',
                                                   'variables'))
    for name in names:
      reader.get_tensor(name)
  # The reader's own bindings raise IndexError, ValueError or RuntimeError.
  except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as e:
    raise RetrainError('Could not load the module %s: its variables/ cannot '
                       'be read (%s).' % (module_handle, error_reason(e)))


def _info_shape(tensor_info):
  """The tf.TensorShape of a signature's TensorInfo."""
  return tf.TensorShape(tensor_info.tensor_shape)


def _tf1_image_size(meta_graph, signature):
  """(height, width) of a TF1 Hub module's images, 0 for 'any size', as
  hub.get_expected_image_size read it: attachment, else 'images' shape."""
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
  """{field number: value} of a serialized message ({} if damaged), as
  tensorflow_hub 0.16 no longer ships the classes of its attachments."""
  try:
    fields = unknown_fields.UnknownFieldSet(empty_pb2.Empty.FromString(data))
  except proto_message.DecodeError:
    return {}
  return {field.field_number: field.data for field in fields}


def _module_folder(module_handle):
  """The local folder of a module (a URL's download, or the folder given);
  a RetrainError if it cannot be downloaded, is missing or is a file."""
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
  """The tensorflow_hub package, imported on first need, without its
  import-time warnings (pkg_resources), which a user cannot act on."""
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


def module_feature_width(module_spec):
  """The number of features per image a module (TF1 or TF2) returns."""
  return module_spec.feature_width


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
  """The Session config (None for float32) that runs the module at one of
  BOTTLENECK_PRECISIONS: bfloat16 is automatic mixed precision."""
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


def module_cache_name(module_handle, bottleneck_precision='float32',
                      module_spec=None):
  """The module name in bottleneck file names (get_bottleneck_path's
  module_name): module_handle, plus the image size of a module_spec of any
  size and a bottleneck_precision other than float32, whose values differ."""
  name = module_handle
  if module_spec is not None and module_spec.variable_size:
    name += '@%dx%d' % tuple(module_spec.image_size)
  if bottleneck_precision != 'float32':
    name += '~' + bottleneck_precision
  return name


# ---------------------------------------------------------------------------
# Bottlenecks
# ---------------------------------------------------------------------------


def add_jpeg_decoding(module_spec):
  """Adds operations that perform JPEG (and PNG) decoding and resizing.

  Args:
    module_spec: The image module, as load_module_spec returns it.

  Returns:
    Tensors for the node to feed JPEG data into, and the output of the
      preprocessing steps.
  """
  input_height, input_width, input_depth = module_image_shape(module_spec)
  jpeg_data = tf.placeholder(tf.string, name='DecodeJPGInput')
  resized_image = decode_and_resize(jpeg_data, input_height, input_width,
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
  """Makes sure the folder (a local path or gs://... and the like) exists."""
  if not os.path.exists(dir_name):
    if not is_local_path(dir_name):
      tf.gfile.MakeDirs(dir_name)
    else:
      os.makedirs(dir_name, exist_ok=True)


def write_bottleneck_file(bottleneck_path, bottleneck_values):
  """Writes bottleneck values as comma-separated text, atomically."""
  write_file_atomically(bottleneck_path,
                        ','.join(str(x) for x in bottleneck_values))


def read_bottleneck_file(bottleneck_path, expected_width=None):
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


def _read_cached_bottleneck(bottleneck_path, width):
  """The values of a valid cache file, or None; a file that exists but cannot
  be used is reported, as it will be recreated."""
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
    raise RuntimeError('Error during processing file %s (%s)' % (image_path,
                                                                 str(e)))
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
  ensure_dir_exists(os.path.dirname(bottleneck_path))
  bottleneck_values = _read_cached_bottleneck(
      bottleneck_path, bottleneck_tensor.get_shape().as_list()[-1])
  if bottleneck_values is None:
    bottleneck_values = create_bottleneck_file(
        bottleneck_path, image_lists, label_name, index, image_dir, category,
        sess, jpeg_data_tensor, decoded_image_tensor, resized_input_tensor,
        bottleneck_tensor)
  return bottleneck_values


class BottleneckMemory(object):
  """A run's bottleneck values, read once for training's many batches: by
  cache file, then as rows of a matrix per class and category (held once)."""

  def __init__(self):
    self._values = {}  # Cache file path -> float32 [width].
    # (bottleneck_dir, module_name, class folder, category) -> (the list of
    # image names it was stacked from, that list's length, the matrix).
    self._matrices = {}

  def get(self, bottleneck_path):
    """The values of one cache file, or None if they are not in memory."""
    return self._values.get(bottleneck_path)

  def put(self, bottleneck_path, values):
    self._values[bottleneck_path] = values

  def class_matrix(self, image_lists, label_name, category, bottleneck_dir,
                   module_name, load):
    """Returns every bottleneck of one class's category as a [n, width] matrix.

    Stacked again when that list of images is replaced or changes length.

    Args:
      image_lists: OrderedDict of training images for each label.
      label_name: The class.
      category: 'training', 'testing' or 'validation'.
      bottleneck_dir: The cache folder.
      module_name: The module name in cache file names.
      load: Callable (label_name, category, index) -> values not in memory.

    Returns:
      The float32 matrix, None when the category has no images.
    """
    image_names = image_lists[label_name][category]
    key = (bottleneck_dir, module_name, image_lists[label_name]['dir'],
           category)
    known = self._matrices.get(key)
    if known is not None and known[0] is image_names and known[1] == len(
        image_names):
      return known[2]
    matrix = None
    for index in range(len(image_names)):
      path = get_bottleneck_path(image_lists, label_name, index,
                                 bottleneck_dir, category, module_name)
      values = self._values.get(path)
      if values is None:
        values = load(label_name, category, index)
      if matrix is None:
        matrix = np.empty([len(image_names), values.size], np.float32)
      matrix[index] = values
      self._values[path] = matrix[index]
    self._matrices[key] = (image_names, len(image_names), matrix)
    return matrix


def create_bottleneck_session(module_spec, bottleneck_precision='float32'):
  """Opens a Session on the module with its image decoding ops, to compute
  bottlenecks outside main (beam_bottlenecks.py, bench, tests).

  Args:
    module_spec: The loaded module (load_module_spec).
    bottleneck_precision: One of BOTTLENECK_PRECISIONS.

  Returns:
    (Session with the module's variables initialised, ModuleTensors).
  """
  graph, bottleneck_tensor, resized_input_tensor, _ = create_module_graph(
      module_spec)
  with graph.as_default():
    jpeg_data_tensor, decoded_image_tensor = add_jpeg_decoding(module_spec)
    init = tf.global_variables_initializer()
  sess = tf.Session(graph=graph,
                    config=module_session_config(bottleneck_precision))
  sess.run(init)
  return sess, ModuleTensors(jpeg_data_tensor, decoded_image_tensor,
                             resized_input_tensor, bottleneck_tensor)


def default_caching_batch_size(input_height, input_width):
  """Images per module run when caching: about two million input pixels,
  within [8, 64]; larger batches only raise memory."""
  return int(np.clip(2 ** 21 // (input_height * input_width), 8, 64))


# A parallel decoder of many images: feed a string [None] to inputs, run
# initializer, then next_batch gives (indices into inputs, images) batches.
BatchedDecoding = collections.namedtuple('BatchedDecoding', [
    'inputs', 'initializer', 'next_batch'])


def add_batched_decoding(image_shape, batch_size=None, from_files=True):
  """Adds a parallel tf.data decoder of many images to the default graph.

  Batch k holds those of the inputs [k * batch_size, (k + 1) * batch_size)
  that decoded; the caller finds the others by their missing indices.

  Args:
    image_shape: (height, width, channels) of the decoded images.
    batch_size: Images per batch; None for one batch of every input.
    from_files: Whether the inputs are image file paths (else image bytes).

  Returns:
    A BatchedDecoding.
  """
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
      dataset = dataset.group_by_window(
          lambda index, image: index // batch_size,
          lambda unused_key, batch: batch.batch(batch_size), batch_size)
    else:
      dataset = dataset.batch(tf.maximum(count, 1))
    iterator = tf.data.make_initializable_iterator(dataset.prefetch(2))
  return BatchedDecoding(inputs, iterator.initializer, iterator.get_next())


def parallel_map(dataset, function):
  """dataset.map(function) on one thread per core, without tf.data autotuning
  (closing a Session waits for the autotuner) nor AutoGraph (slow to convert).
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.map(tf.autograph.experimental.do_not_convert(function),
                     num_parallel_calls=os.cpu_count() or 1).with_options(
                         options)


def decode_in_batches(sess, decoding, inputs):
  """Yields (indices, images) of the inputs that decode, batch by batch.

  Args:
    sess: A Session on the graph of decoding.
    decoding: A BatchedDecoding.
    inputs: The image file paths or bytes.
  """
  sess.run(decoding.initializer, {decoding.inputs: inputs})
  while True:
    try:
      yield sess.run(decoding.next_batch)
    except tf.errors.OutOfRangeError:
      return


def decode_images(inputs, image_shape, batch_size=None, from_files=True):
  """Yields (indices, images) of the inputs that decode, batch by batch.

  In a graph of its own: in the module's, the module's Session would have to
  take in the whole graph again.

  Args:
    inputs: Image file paths, or image bytes if not from_files.
    image_shape: (height, width, channels) of the decoded images.
    batch_size: Images per batch; None for one batch of every input.
    from_files: Whether the inputs are image file paths (else image bytes).
  """
  with tf.Graph().as_default() as graph:
    decoding = add_batched_decoding(image_shape, batch_size, from_files)
  with tf.Session(graph=graph) as sess:
    yield from decode_in_batches(sess, decoding, inputs)


def retry_failed_images(sess, tensors, failed, skip):
  """Decodes each image that failed in a batch on its own, or skips it with
  the reason, in words for the user.

  Args:
    sess: A Session with the decoding ops of tensors.
    tensors: ModuleTensors; jpeg_data and decoded_image are used.
    failed: Iterable of (key, image path, image bytes or None to read them).
    skip: Callable (key, image path, reason) for each unusable image.

  Returns:
    (keys, images) of the images that decoded, float [height, width, depth].
  """
  keys, images = [], []
  for key, image_path, image_data in failed:
    reason = None
    if image_data is None:
      image_data, reason = _read_image_file(image_path)
    if reason is None:
      image, reason = _decode_or_explain(sess, image_data, tensors.jpeg_data,
                                         tensors.decoded_image)
    if reason is None:
      keys.append(key)
      images.append(image[0])
    else:
      skip(key, image_path, reason)
  return keys, images


# One image of cache_bottlenecks's scan: where its bottleneck is cached, and
# whether it was found there.
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
    jpeg_data_tensor: Input tensor for jpeg data from file.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The penultimate output layer of the graph.
    module_name: The name of the image module being used.
    batch_size: Images per module run; None for default_caching_batch_size.
    memory: The run's BottleneckMemory to keep the values in; None to only
      write the cache files.

  Returns:
    The list of (image path, reason) of the images that were skipped.
  """
  tensors = ModuleTensors(jpeg_data_tensor, decoded_image_tensor,
                          resized_input_tensor, bottleneck_tensor)
  cache = BottleneckCache(image_dir, bottleneck_dir, module_name,
                          BottleneckMemory() if memory is None else memory)
  if batch_size is None:
    batch_size = default_caching_batch_size(
        *resized_input_tensor.get_shape().as_list()[1:3])
  entries = _scan_bottleneck_cache(sess, image_lists, tensors, cache)
  skipped = []

  def skip(entry, image_path, reason):
    tf.logging.warning('Skipping %s: %s', image_path, reason)
    image_lists[entry.label_name][entry.category].remove(entry.image_name)
    skipped.append((image_path, reason))

  usable = []
  for entry in entries:
    reason = None if entry.cached else _why_file_unusable(entry.image_path)
    if reason:
      skip(entry, entry.image_path, reason)
    else:
      usable.append(entry)
  # Each batch that holds a missing value is computed whole, cached images
  # too: oneDNN's result for an image can differ in the last bits with its
  # batch, so a resumed run computes and trains exactly as an uninterrupted
  # one.
  to_compute = []
  for start in range(0, len(usable), batch_size):
    batch = usable[start:start + batch_size]
    if not all(entry.cached for entry in batch):
      to_compute.extend(batch)
  failed = _compute_bottlenecks_in_batches(sess, to_compute, tensors,
                                           cache.memory, batch_size)
  retried, images = retry_failed_images(
      sess, tensors, [(entry, entry.image_path, None) for entry in failed],
      skip)
  if retried:
    _keep_bottlenecks(cache.memory, retried, sess.run(
        tensors.bottleneck, {tensors.resized_image: images}))
  return skipped


def _scan_bottleneck_cache(sess, image_lists, tensors, cache):
  """Reads the valid cache files into memory; returns a _CacheEntry for every
  image, in image_lists order."""
  ensure_dir_exists(cache.bottleneck_dir)
  for label_lists in image_lists.values():
    _remove_stale_temporary_files(os.path.join(cache.bottleneck_dir,
                                               label_lists['dir']))
  width = tensors.bottleneck.get_shape().as_list()[-1]
  load = _bottleneck_loader(sess, image_lists, tensors, cache)
  entries = []
  for label_name, label_lists in image_lists.items():
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
            cache.memory.put(bottleneck_path, values)
        complete &= values is not None
        entries.append(_CacheEntry(
            label_name, category, image_name, get_image_path(
                image_lists, label_name, index, cache.image_dir, category),
            bottleneck_path, values is not None))
      if label_lists[category] and complete:
        # Stacking each class as soon as it is read lets the next class reuse
        # the memory of the per-file arrays instead of doubling the peak.
        cache.memory.class_matrix(image_lists, label_name, category,
                                  cache.bottleneck_dir, cache.module_name,
                                  load)
  missing = sum(1 for entry in entries if not entry.cached)
  tf.logging.info('%d bottlenecks found in the cache, %d to compute.',
                  len(entries) - missing, missing)
  return entries


def _compute_bottlenecks_in_batches(sess, entries, tensors, memory,
                                    batch_size):
  """Runs the module on the entries' batches while the next ones decode;
  keeps the missing values, returns the missing entries that failed."""
  missing = sum(1 for entry in entries if not entry.cached)
  if not missing:
    return []
  progress = _Progress(missing, 'bottlenecks computed')
  computed = set()
  image_shape = tensors.resized_image.get_shape().as_list()[1:]
  run_module = functools.partial(sess.run, tensors.bottleneck)
  with concurrent.futures.ThreadPoolExecutor(1) as module_thread:
    # The module's first run prepares its graph: on a blank image, while the
    # decoder starts.
    running = ([], module_thread.submit(run_module, {
        tensors.resized_image: np.zeros([1] + image_shape, np.float32)}))
    for indices, images in decode_images(
        [entry.image_path for entry in entries], image_shape, batch_size):
      finished, finished_values = running[0], running[1].result()
      running = ([entries[index] for index in indices], module_thread.submit(
          run_module, {tensors.resized_image: images}))
      computed.update(indices)
      progress.add(_keep_bottlenecks(memory, finished, finished_values))
    progress.add(_keep_bottlenecks(memory, running[0], running[1].result()))
  return [entry for index, entry in enumerate(entries)
          if index not in computed and not entry.cached]


def _keep_bottlenecks(memory, entries, batch_values):
  """Writes and keeps the values of the entries that were missing; returns
  how many there were."""
  kept = 0
  for entry, values in zip(entries, batch_values):
    if not entry.cached:
      write_bottleneck_file(entry.bottleneck_path, values)
      memory.put(entry.bottleneck_path, values)
      kept += 1
  return kept


def _bottleneck_loader(sess, image_lists, tensors, cache):
  """get_or_create_bottleneck as a function of (label_name, category, index)."""
  return lambda label_name, category, index: get_or_create_bottleneck(
      sess, image_lists, label_name, index, cache.image_dir, category,
      cache.bottleneck_dir, *tensors, module_name=cache.module_name)


def get_random_cached_bottlenecks(sess, image_lists, how_many, category,
                                  bottleneck_dir, image_dir, jpeg_data_tensor,
                                  decoded_image_tensor, resized_input_tensor,
                                  bottleneck_tensor, module_name, memory=None):
  """Retrieves bottleneck values for cached images, from memory or disk.

  A sample draws a class, then an image, as the original did.

  Args:
    sess: Current TensorFlow Session.
    image_lists: OrderedDict of training images for each label.
    how_many: The sample's size; negative for every image of the category.
    category: Name string of the set: training, testing, or validation.
    bottleneck_dir: Folder string holding cached files of bottleneck values.
    image_dir: Root folder string of the class subfolders.
    jpeg_data_tensor: The layer to feed jpeg image data into.
    decoded_image_tensor: The output of decoding and resizing the image.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The bottleneck output layer of the CNN graph.
    module_name: The name of the image module being used.
    memory: The run's BottleneckMemory; None reads (or computes) the values
      anew at each call.

  Returns:
    Tuple of (float32 array of bottleneck arrays, int64 array of their
    corresponding ground truths, list of the image file names).
  """
  tensors = ModuleTensors(jpeg_data_tensor, decoded_image_tensor,
                          resized_input_tensor, bottleneck_tensor)
  cache = BottleneckCache(image_dir, bottleneck_dir, module_name,
                          BottleneckMemory() if memory is None else memory)
  class_matrix = functools.partial(
      cache.memory.class_matrix, image_lists, category=category,
      bottleneck_dir=bottleneck_dir, module_name=module_name,
      load=_bottleneck_loader(sess, image_lists, tensors, cache))
  width = bottleneck_tensor.get_shape().as_list()[-1]
  if how_many < 0:
    matrices = [class_matrix(label_name) for label_name in image_lists
                if image_lists[label_name][category]]
    entries = image_entries(image_lists, image_dir, category)
    return (np.concatenate(matrices) if matrices else
            np.zeros([0, width], np.float32),
            np.array([class_index for _, class_index in entries], np.int64),
            [path for path, _ in entries])
  label_names = list(image_lists.keys())
  # Only classes with images in this category can be drawn from.
  usable = [i for i, name in enumerate(label_names)
            if image_lists[name][category]]
  if not usable:
    raise ValueError('No images in the category %s.' % category)
  # One draw of Python's generator for the whole batch, so that
  # --random_seed still repeats runs exactly.
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
  return bottlenecks, ground_truths, []


# ---------------------------------------------------------------------------
# Distortions
# ---------------------------------------------------------------------------

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
  return (flip_left_right or (random_crop != 0) or (random_scale != 0) or
          (random_brightness != 0))


def add_input_distortions(flip_left_right, random_crop, random_scale,
                          random_brightness, module_spec):
  """Creates the operations to apply the specified distortions.

  Args:
    flip_left_right: Boolean whether to randomly mirror images horizontally.
    random_crop: Integer percentage of the margin around the crop box.
    random_scale: Integer percentage of how much to vary the scale by.
    random_brightness: Integer range to randomly multiply the pixel values by.
    module_spec: The image module, as load_module_spec returns it.

  Returns:
    The jpeg input layer and the distorted result tensor.
  """
  image_shape = module_image_shape(module_spec)
  jpeg_data = tf.placeholder(tf.string, name='DistortJPGInput')
  distorted_image = _distort_image(
      _decode_to_float_4d(jpeg_data, image_shape[2]), image_shape,
      Distortions(flip_left_right, random_crop, random_scale,
                  random_brightness),
      tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32))
  return jpeg_data, tf.expand_dims(distorted_image, 0, name='DistortResult')


def _distort_image(image_4d, image_shape, distortions, seed):
  """Distorts a float image [1, H, W, D] into image_shape [H, W, D]; its
  stateless random ops depend on seed (int32 [2]) only, on any thread."""
  sub_seed = lambda offset: seed + tf.constant([0, offset], seed.dtype)
  height, width, depth = image_shape
  # Scales up by the crop margin and a random factor, then crops at random.
  scale = tf.multiply(
      tf.constant(1.0 + (distortions.random_crop / 100.0)),
      tf.random.stateless_uniform(
          shape=[], seed=sub_seed(1), minval=1.0,
          maxval=1.0 + (distortions.random_scale / 100.0)))
  precrop_shape = tf.cast(tf.stack([tf.multiply(scale, height),
                                    tf.multiply(scale, width)]), tf.int32)
  image = tf.compat.v2.image.stateless_random_crop(
      tf.squeeze(tf.image.resize_bilinear(image_4d, precrop_shape), [0]),
      [height, width, depth], seed=sub_seed(2))
  if distortions.flip_left_right:
    image = tf.compat.v2.image.stateless_random_flip_left_right(
        image, seed=sub_seed(3))
  brightness = distortions.random_brightness / 100.0
  return tf.multiply(image, tf.random.stateless_uniform(
      shape=[], seed=sub_seed(4), minval=1.0 - brightness,
      maxval=1.0 + brightness))


class DistortedBatches(object):
  """Batches of distorted images, prepared in parallel ahead of training.

  tf.data's threads read, decode (or take from memory) and distort random
  draws, and prefetch the next batch; images that fail to decode are dropped.
  """

  def __init__(self, image_shape, distortions, image_lists, image_dir,
               category, batch_size, seed=None, start_batch=0,
               memory_mb=DEFAULT_DECODED_IMAGES_MB):
    """Adds the pipeline to the default graph.

    Args:
      image_shape: (height, width, depth) the module takes.
      distortions: The Distortions to apply.
      image_lists: OrderedDict of training images for each label.
      image_dir: Root folder of the class folders.
      category: The set to draw from, normally 'training'.
      batch_size: Images per batch.
      seed: The seed of the draws; None draws one from Python's generator.
      start_batch: How many batches an interrupted run consumed.
      memory_mb: Megabytes of decoded images to keep; 0 keeps none.
    """
    self._image_lists = image_lists
    self._image_dir = image_dir
    self._category = category
    self._label_names = list(image_lists.keys())
    self._batch_size = batch_size
    self._usable = None  # The classes to draw from, at the first batch.
    # Draw k has a generator of its own, seeded with (seed, k): no race with
    # the prefetching thread, and a resumed run draws what it would have.
    self.seed = random.getrandbits(64) if seed is None else seed
    self._first_draw = start_batch * batch_size
    self._drawn = self._drawn_at_last_batch = 0
    self.memory = DecodedImages(memory_mb)
    table = self.memory.table

    def load(path, image_key, label_index, seed, keep):
      held = table.lookup(image_key)
      image = tf.cond(
          tf.strings.length(held) > 0,
          lambda: tf.io.parse_tensor(held, tf.uint8),
          lambda: _decode_image(tf.io.read_file(path), image_shape[2]))
      image.set_shape([None, None, image_shape[2]])

      def keep_image():
        with tf.control_dependencies([table.insert(
            image_key, tf.io.serialize_tensor(image))]):
          return tf.size(image, out_type=tf.int64)

      kept_bytes = tf.cond(keep, keep_image, lambda: tf.constant(0, tf.int64))
      return (_distort_image(_to_float_4d(image), image_shape, distortions,
                             seed), label_index, path, kept_bytes)

    with tf.name_scope('distorted_reader'):
      # Python hands over a batch of draws at a time: each handing over
      # costs time on the thread that holds the GIL.
      dataset = tf.data.Dataset.from_generator(
          self._draws,
          output_types=(tf.string, tf.int64, tf.int64, tf.int32, tf.bool),
          output_shapes=([None], [None], [None], [None, 2], [None])).unbatch()
      dataset = parallel_map(dataset, load).apply(
          tf.data.experimental.ignore_errors())
      # Not a one-shot iterator: that cannot use the table.
      self._iterator = tf.data.make_initializable_iterator(
          dataset.batch(batch_size).prefetch(1))
      self._next_batch = self._iterator.get_next()

  def _draws(self):
    """Yields the draws a batch at a time: (paths, their DecodedImages keys,
    label indices, seeds, whether to keep each decoded image)."""
    while True:
      draws = []
      # A batch, what the pipeline's buffers refill, and the failures.
      while (len(draws) < self._batch_size and
             self._drawn - self._drawn_at_last_batch <=
             10 * self._batch_size + 1000):
        rng = random.Random('%d/%d' % (self.seed,
                                       self._first_draw + self._drawn))
        self._drawn += 1
        label_index = rng.choice(self._usable)
        path = get_image_path(
            self._image_lists, self._label_names[label_index],
            rng.randrange(MAX_NUM_IMAGES_PER_CLASS + 1), self._image_dir,
            self._category)
        seed = [rng.randrange(2 ** 31 - 1), rng.randrange(2 ** 31 - 1)]
        # What is not a regular file (any more) would fail, or block the
        # reader for ever if it were a named pipe.
        if (self.memory.is_held(path) or not is_local_path(path) or
            os.path.isfile(path)):
          draws.append((path, self.memory.key(path), label_index, seed,
                        self.memory.wants(path)))
      if not draws:
        return
      yield tuple(list(column) for column in zip(*draws))

  def next(self, sess):
    """Returns the next (float images, int64 ground truths) batch; raises
    RetrainError when far more draws fail than succeed."""
    if self._usable is None:
      self._usable = [i for i, name in enumerate(self._label_names)
                      if self._image_lists[name][self._category]]
      sess.run(self._iterator.initializer)
    try:
      images, ground_truths, paths, kept_bytes = sess.run(self._next_batch)
    except tf.errors.OutOfRangeError:
      raise RetrainError(
          'The %s images in %s can no longer be read (were files removed or '
          'changed during the run?): check the folder and run the same '
          'command again.' % (self._category, self._image_dir))
    self._drawn_at_last_batch = self._drawn
    for path, size in zip(paths, kept_bytes):
      if size:
        self.memory.kept(os.fsdecode(path), size)
    return images, ground_truths


class DecodedImages(object):
  """Decoded images held in memory, up to a budget, by file path.

  DistortedBatches's threads read and fill the table (key() -> serialized
  uint8 image); this keeps the account. Each image is asked for once, so only
  the images on their way through the pipeline can exceed the budget.
  """

  def __init__(self, memory_mb):
    """Adds the table to the default graph."""
    self.budget_bytes = memory_mb * 2 ** 20
    self.used_bytes = 0
    # TensorFlow has no string -> string MutableHashTable: keys are numbers.
    self.table = tf.lookup.experimental.MutableHashTable(
        tf.int64, tf.string, default_value=b'')
    self._key = tf.placeholder(tf.int64, [])
    self._held_image = self.table.lookup(self._key)
    self._keys = {}
    self._asked = set()
    self._held = set()

  def key(self, path):
    """The table's key of path's image."""
    return self._keys.setdefault(path, len(self._keys))

  def wants(self, path):
    """Whether to keep path's image: asked once only, within the budget."""
    if path in self._asked or self.used_bytes >= self.budget_bytes:
      return False
    self._asked.add(path)
    return True

  def kept(self, path, size):
    """Notes that the pipeline keeps path's image, of size bytes."""
    self._held.add(path)
    self.used_bytes += size

  def is_held(self, path):
    return path in self._held

  def image(self, sess, path):
    """The image held for path (uint8 [height, width, depth]), or None."""
    if path in self._keys:
      serialized = sess.run(self._held_image, {self._key: self._keys[path]})
      if serialized:
        return tf.make_ndarray(tensor_pb2.TensorProto.FromString(serialized))
    return None

  def __len__(self):
    return len(self._held)


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
    input_jpeg_tensor: The input layer we feed the image data to.
    distorted_image: The output node of the distortion graph.
    resized_input_tensor: The input node of the recognition graph.
    bottleneck_tensor: The bottleneck output layer of the CNN graph.
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
      image_path = get_image_path(
          image_lists, label_names[label_index],
          random.randrange(MAX_NUM_IMAGES_PER_CLASS + 1), image_dir, category)
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


# add_final_retrain_ops's values, apply_layer (bottlenecks -> probabilities,
# sharing the variables) and the global step of a training graph.
NewLayer = collections.namedtuple('NewLayer', [
    'train_step', 'cross_entropy', 'bottleneck_input', 'ground_truth_input',
    'final_tensor', 'apply_layer', 'global_step'])

OPTIMIZERS = ('gradient_descent', 'momentum', 'adam')

# How the new layer is trained: the flags of the same names. The defaults are
# the original's plain gradient descent on the cross entropy.
HeadOptions = collections.namedtuple('HeadOptions', [
    'learning_rate', 'optimizer', 'momentum', 'dropout_rate',
    'l2_regularizer', 'label_smoothing'],
    defaults=('gradient_descent', 0.9, 0.0, 0.0, 0.0))


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
  if head_options is None:
    if learning_rate is None:
      learning_rate = FLAGS.learning_rate
    head_options = HeadOptions(learning_rate)
  elif learning_rate is not None:
    head_options = head_options._replace(learning_rate=learning_rate)
  return tuple(_add_new_layer(class_count, final_tensor_name,
                              bottleneck_tensor, quantize_layer, is_training,
                              head_options)[:5])


def _add_new_layer(class_count, final_tensor_name, bottleneck_tensor,
                   quantize_layer, is_training, head_options):
  """add_final_retrain_ops's work, as a NewLayer (head_options: HeadOptions)."""
  batch_size, bottleneck_tensor_size = bottleneck_tensor.get_shape().as_list()
  assert batch_size is None, 'We want to work with arbitrary batch size.'
  with tf.name_scope('input'):
    bottleneck_input = tf.placeholder_with_default(
        bottleneck_tensor, shape=[batch_size, bottleneck_tensor_size],
        name='BottleneckInputPlaceholder')
    ground_truth_input = tf.placeholder(
        tf.int64, [batch_size], name='GroundTruthInput')

  # Organizing the following ops so they are easier to see in TensorBoard.
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

  final_tensor = tf.nn.softmax(logits, name=final_tensor_name)
  apply_layer = lambda bottlenecks: tf.nn.softmax(
      layer_logits(bottlenecks, False)[0])
  tf.summary.histogram('activations', final_tensor)
  # If this is an eval graph, we don't need to add loss ops or an optimizer.
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
  """The loss and the train step of the new layer, as head_options says.

  Returns:
    (train step, mean cross entropy, global step).
  """
  global_step = tf.train.get_or_create_global_step()
  if head_options.dropout_rate:
    # Only the loss sees dropped inputs. The mask is a function of a seed (of
    # Python's generator) and the step: a resumed run drops the same.
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
    if head_options.label_smoothing:
      cross_entropy_mean = tf.losses.softmax_cross_entropy(
          tf.one_hot(ground_truth_input, tf.shape(logits)[1]), logits,
          label_smoothing=head_options.label_smoothing)
    else:
      cross_entropy_mean = tf.losses.sparse_softmax_cross_entropy(
          labels=ground_truth_input, logits=logits)
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


def _layer_logits(weights, biases, quantize_layer, layer_name, bottlenecks,
                  training):
  """The new layer's logits, fake-quantized for TF Lite if asked, and the
  quantization range updates to run with each train step."""
  if quantize_layer:
    with tf.name_scope('weights_quant'):
      weights = tf.quantization.fake_quant_with_min_max_vars(
          weights, tf.reduce_min(weights), tf.reduce_max(weights),
          num_bits=8, narrow_range=True)
  logits = tf.matmul(bottlenecks, weights) + biases
  if not quantize_layer:
    return logits, []
  # As tf.contrib.quantize did: training moves the range (always holding 0)
  # towards each batch's, evaluation reads it; all calls share it.
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


def add_evaluation_step(result_tensor, ground_truth_tensor):
  """Inserts the operations we need to evaluate the accuracy of our results.

  Args:
    result_tensor: The new final node that produces results.
    ground_truth_tensor: The node we feed ground truth data into.

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

# The ops of the training graph that the loop runs.
TrainingOps = collections.namedtuple('TrainingOps', [
    'train_step', 'cross_entropy', 'bottleneck_input', 'ground_truth_input',
    'evaluation_step', 'merged_summaries'])

# How long the loop trains and how often it evaluates and stores: the flags
# of the same names, and where the summaries go.
TrainingSchedule = collections.namedtuple('TrainingSchedule', [
    'how_many_training_steps', 'train_batch_size', 'validation_batch_size',
    'eval_step_interval', 'intermediate_store_frequency', 'summaries_dir'])

# Where batches come from: the Session that runs the module tensors, the
# BottleneckCache, and DistortedBatches and add_input_distortions's ops.
BatchSources = collections.namedtuple('BatchSources', [
    'module_sess', 'image_lists', 'tensors', 'cache', 'distorted',
    'distortion_tensors'])


def draw_batch(sources, how_many, category):
  """A random batch: distorted for training if asked, else cached; as
  (float32 bottlenecks [how_many, width], int64 ground truths [how_many])."""
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
  """Trains the new layer for schedule.how_many_training_steps steps.

  Args:
    sess: The training Session.
    training_ops: TrainingOps of the training graph.
    schedule: A TrainingSchedule.
    sources: The BatchSources to draw batches from.
    store_intermediate_graph: Callable(step) that saves an intermediate graph.
    checkpoint: The run's TrainingCheckpoint (saved on Ctrl-C and SIGTERM
      too, at the end of the step), or None to start at 0 and save nothing.
  """
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
  try:
    with _DeferredInterrupts() as interrupts:
      for i in range(start_step, schedule.how_many_training_steps):
        _train_step(sess, training_ops, schedule, sources, i, writers[0],
                    writers[1] if has_validation_images else None)
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
                validation_writer):
  """Runs training step number step, and its evaluation if one is due;
  validation_writer is None when there are no validation images."""
  train_feed = dict(zip((ops.bottleneck_input, ops.ground_truth_input),
                        draw_batch(sources, schedule.train_batch_size,
                                   'training')))
  train_summary, _ = sess.run([ops.merged_summaries, ops.train_step],
                              train_feed)
  train_writer.add_summary(train_summary, step)
  if (step % schedule.eval_step_interval and
      step + 1 != schedule.how_many_training_steps):
    return
  train_accuracy, cross_entropy_value = sess.run(
      [ops.evaluation_step, ops.cross_entropy], train_feed)
  tf.logging.info('%s: Step %d: Train accuracy = %.1f%%' %
                  (datetime.now(), step, train_accuracy * 100))
  tf.logging.info('%s: Step %d: Cross entropy = %f' %
                  (datetime.now(), step, cross_entropy_value))
  if validation_writer is None:
    return
  bottlenecks, ground_truths = draw_batch(
      sources, schedule.validation_batch_size, 'validation')
  validation_summary, validation_accuracy = sess.run(
      [ops.merged_summaries, ops.evaluation_step],
      {ops.bottleneck_input: bottlenecks,
       ops.ground_truth_input: ground_truths})
  validation_writer.add_summary(validation_summary, step)
  tf.logging.info('%s: Step %d: Validation accuracy = %.1f%% (N=%d)' %
                  (datetime.now(), step, validation_accuracy * 100,
                   len(bottlenecks)))


# ---------------------------------------------------------------------------
# Resuming an interrupted run
# ---------------------------------------------------------------------------

# The flags whose values change what training computes: a run resumes only
# when they are what the interrupted run had.
RESUME_FLAGS = (
    'how_many_training_steps', 'learning_rate', 'train_batch_size',
    'validation_batch_size', 'eval_step_interval', 'testing_percentage',
    'validation_percentage', 'flip_left_right', 'random_crop', 'random_scale',
    'random_brightness', 'bottleneck_precision', 'image_size', 'random_seed',
    'optimizer', 'momentum', 'dropout_rate', 'l2_regularizer',
    'label_smoothing')

# Saved at least this often when --save_every_steps is 0.
SAVE_EVERY_SECONDS = 60

# Where an interrupted run can continue: the step to run next, its checkpoint,
# Python's random state and the seed of the distortions.
ResumePoint = collections.namedtuple('ResumePoint', [
    'step', 'checkpoint', 'random_state', 'distortion_seed'])


def training_fingerprint(flags, image_lists, image_dir, module_name):
  """What a resumed run must share with the interrupted one.

  Args:
    flags: The parsed command line (the values of RESUME_FLAGS are kept).
    image_lists: OrderedDict of the images of each label and set.
    image_dir: The folder of the class folders.
    module_name: module_cache_name of the module.

  Returns:
    A dict of JSON values: hashes of the module (and a local module's files)
    and of the images (class, set, name, size, time of change), the flags.
  """
  def signature(path):
    try:
      stat = tf.io.gfile.stat(path)
      return '%d/%d' % (stat.length, stat.mtime_nsec)
    except tf.errors.OpError:
      return '-'

  images = hashlib.sha256()
  for label_name, label_lists in image_lists.items():
    for category in CATEGORIES:
      for index, name in enumerate(label_lists[category]):
        path = get_image_path(image_lists, label_name, index, image_dir,
                              category)
        images.update(('%s\0%s\0%s\0%s\n' % (
            label_name, category, name, signature(path))).encode())
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
  """Tells whether the run can continue an interrupted one, in one log line.

  Args:
    checkpoint_path: The --checkpoint_path, beside which the state is saved.
    fingerprint: This run's training_fingerprint.
    fresh_start: True to start from step 0 whatever was saved.

  Returns:
    The ResumePoint to continue from, or None to start at step 0.
  """
  state_path = checkpoint_path + '.resume.json'
  if not tf.gfile.Exists(state_path):
    return None
  try:
    state = json.loads(tf.io.gfile.GFile(state_path).read())
    why_not = _why_not_resume(state, fingerprint, fresh_start)
  except (ValueError, KeyError, TypeError, tf.errors.OpError):
    state, why_not = None, 'it is not a training state this tool wrote'
  if why_not is None:
    tf.logging.info('Resuming training at step %d from %s: same images, '
                    'module and flags as the interrupted run.' %
                    (state['step'], state_path))
    return ResumePoint(state['step'], state['checkpoint'],
                       state['random_state'], state['distortion_seed'])
  tf.logging.info('Starting training at step 0, not resuming from %s: %s.' %
                  (state_path, why_not))
  return None


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
  """Saves the training state so that an interrupted run can continue.

  The new layer's variables (the optimizer's and the global step too) go to
  a checkpoint per step; then a JSON file beside --checkpoint_path, written
  atomically, names it with Python's random state, the distortion seed and
  the fingerprint; older checkpoints go last, so a kill leaves a state.
  """

  def __init__(self, sess, variables, checkpoint_path, fingerprint,
               resume_point=None, save_every_steps=0, distortion_seed=None):
    """Makes the Saver of variables; call in sess.graph.

    Args:
      sess: The training Session.
      variables: The variables of the new layer and its training ops.
      checkpoint_path: The --checkpoint_path.
      fingerprint: This run's training_fingerprint.
      resume_point: The ResumePoint to continue from, or None for step 0.
      save_every_steps: Save after this many steps; 0: SAVE_EVERY_SECONDS.
      distortion_seed: The seed of the run's DistortedBatches, if any.
    """
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
    checkpoint = self._saver.save(
        self._sess, '%s-%d' % (self._prefix, step), write_meta_graph=False,
        write_state=False)
    self._write_state(step, checkpoint, finished=False)
    self._remove_checkpoints(keep=checkpoint)
    self._last_save = time.monotonic()
    if log:
      tf.logging.info('Saved the training state to %s: the same command '
                      'resumes training at step %d.' % (self._state_path,
                                                        step))

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
  """Drops the events of step and later from a run's TensorBoard files.

  A killed run wrote them after its last save; the resumed run writes them
  again. The kept events, without repeats, replace the first event file.

  Args:
    run_dir: A run's folder of event files (train or validation).
    step: The first step to drop.
  """
  _remove_stale_temporary_files(run_dir)
  paths = sorted(path for path in tf.io.gfile.glob(
      os.path.join(run_dir, 'events.out.tfevents.*'))
                 if not _TEMPORARY_NAME.search(path))
  if not paths:
    return
  kept = {}  # The records to keep, in order.
  for path in paths:
    try:
      for record in tf.io.tf_record_iterator(path):
        event = tf.Event.FromString(record)
        if event.step < step and not (kept and
                                      event.HasField('file_version')):
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


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


class EvalSession(collections.namedtuple('EvalSession', [
    'sess', 'resized_input_tensor', 'bottleneck_input', 'ground_truth_input',
    'evaluation_step', 'prediction'])):
  """What build_eval_session returns; it unpacks as the original's tuple.

  Beyond the tuple, what the exports need of the eval graph:
    final_tensor_name: The name of the probabilities op.
    apply_module: Images -> features, sharing the module's variables.
    apply_layer: Features -> probabilities, sharing the new layer's.
    wants_quantization: Whether the module has fake quantization ops.
  """

  def __new__(cls, *values, final_tensor_name, apply_module, apply_layer,
              wants_quantization):
    self = super(EvalSession, cls).__new__(cls, *values)
    self.final_tensor_name = final_tensor_name
    self.apply_module = apply_module
    self.apply_layer = apply_layer
    self.wants_quantization = wants_quantization
    return self


def build_eval_session(module_spec, class_count, final_tensor_name=None,
                       checkpoint_path=None):
  """Builds an restored eval session without train operations for exporting.

  Args:
    module_spec: The image module, as load_module_spec returns it.
    class_count: Number of classes
    final_tensor_name: Name of the output; --final_tensor_name if None (the
      original read the flag).
    checkpoint_path: The checkpoint to restore; --checkpoint_path if None
      (the original read the flag).

  Returns:
    An EvalSession: eval session containing the restored eval graph, and the
    resized image input, bottleneck input, ground truth, eval step, and
    prediction tensors.
  """
  final_tensor_name = final_tensor_name or FLAGS.final_tensor_name
  # If quantized, we need to create the correct eval graph for exporting.
  module_graph = _module_graph(module_spec)
  eval_graph = module_graph.graph
  eval_sess = tf.Session(graph=eval_graph)
  with eval_graph.as_default():
    # Add the new layer for exporting.
    new_layer = _add_new_layer(
        class_count, final_tensor_name, module_graph.bottleneck_tensor,
        module_graph.wants_quantization, is_training=False,
        head_options=None)
    # Now we need to restore the values from the training graph to the eval
    # graph.
    tf.train.Saver().restore(eval_sess,
                             checkpoint_path or FLAGS.checkpoint_path)
    evaluation_step, prediction = add_evaluation_step(
        new_layer.final_tensor, new_layer.ground_truth_input)
  return EvalSession(
      eval_sess, module_graph.resized_input_tensor,
      new_layer.bottleneck_input, new_layer.ground_truth_input,
      evaluation_step, prediction, final_tensor_name=final_tensor_name,
      apply_module=module_graph.apply_module,
      apply_layer=new_layer.apply_layer,
      wants_quantization=module_graph.wants_quantization)


# The trained new layer in the training Session, and what build_eval_session
# needs to rebuild it in an eval graph from the checkpoint that saver writes.
TrainedLayer = collections.namedtuple('TrainedLayer', [
    'sess', 'saver', 'checkpoint_path', 'module_spec', 'class_count',
    'final_tensor_name'])


def save_and_restore_for_eval(trained_layer):
  """Saves the training Session's variables, and restores them into a new
  eval graph, as the original did for each export.

  Args:
    trained_layer: The run's TrainedLayer.

  Returns:
    The EvalSession; the caller closes its sess.
  """
  ensure_dir_exists(os.path.dirname(os.path.abspath(
      trained_layer.checkpoint_path)))
  trained_layer.saver.save(trained_layer.sess, trained_layer.checkpoint_path)
  return build_eval_session(
      trained_layer.module_spec, trained_layer.class_count,
      trained_layer.final_tensor_name, trained_layer.checkpoint_path)


# How run_final_eval tests and reports: the flags of the same names, and the
# step that the TensorBoard summaries of the test are filed under.
FinalEvalOptions = collections.namedtuple('FinalEvalOptions', [
    'test_batch_size', 'print_misclassified_test_images', 'summaries_dir',
    'global_step'])


def run_final_eval(train_session, module_spec, class_count, image_lists,
                   jpeg_data_tensor, decoded_image_tensor,
                   resized_image_tensor, bottleneck_tensor, eval_session=None,
                   cache=None, options=None):
  """Runs a final evaluation on an eval graph using the test data set.

  Logs the accuracy, the per-class table and the confusion matrix, and
  writes them to TensorBoard (the run 'test').

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
  if cache is None:
    cache = BottleneckCache(FLAGS.image_dir, FLAGS.bottleneck_dir,
                            FLAGS.tfhub_module, None)
  if options is None:
    options = FinalEvalOptions(
        FLAGS.test_batch_size, FLAGS.print_misclassified_test_images,
        FLAGS.summaries_dir, FLAGS.how_many_training_steps - 1)
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
  if eval_session is None:
    eval_session = build_eval_session(module_spec, class_count)
  test_accuracy, predictions = eval_session.sess.run(
      [eval_session.evaluation_step, eval_session.prediction],
      feed_dict={
          eval_session.bottleneck_input: test_bottlenecks,
          eval_session.ground_truth_input: test_ground_truth
      })
  tf.logging.info('Final test accuracy = %.1f%% (N=%d)' %
                  (test_accuracy * 100, len(test_bottlenecks)))
  _report_test_results(list(image_lists.keys()), test_ground_truth,
                       predictions, test_filenames, options)
  return test_accuracy, predictions, test_ground_truth, test_filenames


def check_accuracy_bar(test_results, accuracy_at_least, checkpoint_path):
  """RetrainError before any export if the test accuracy (run_final_eval's
  test_results) is below accuracy_at_least, or cannot be checked."""
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


def _report_test_results(label_names, ground_truth, predictions, filenames,
                         options):
  """Logs the per-class table (and the misclassified images if asked) and
  writes the evaluation summaries."""
  report = classification_report(ground_truth, predictions, len(label_names))
  tf.logging.info('=== PER-CLASS TEST RESULTS ===')
  for line in format_classification_report(report, label_names):
    tf.logging.info(line)
  write_evaluation_summaries(options.summaries_dir, report, label_names,
                             options.global_step)
  if options.print_misclassified_test_images:
    tf.logging.info('=== MISCLASSIFIED TEST IMAGES ===')
    for i, test_filename in enumerate(filenames):
      if predictions[i] != ground_truth[i]:
        tf.logging.info('%70s  %s' % (test_filename,
                                      label_names[predictions[i]]))


def classification_report(ground_truth, predictions, class_count):
  """Per-class precision, recall and F1, and the confusion matrix.

  Args:
    ground_truth: Integer array of the true class of each image.
    predictions: Integer array of the predicted class of each image.
    class_count: The number of classes.

  Returns:
    A dict of numpy arrays: 'confusion' (rows: true class), and per class
    'precision', 'recall', 'f1' (NaN with nothing to divide by) and 'support'.
  """
  ground_truth = np.asarray(ground_truth, np.int64)
  predictions = np.asarray(predictions, np.int64)
  confusion = np.zeros([class_count, class_count], np.int64)
  np.add.at(confusion, (ground_truth, predictions), 1)
  true_positives = np.diag(confusion).astype(np.float64)
  predicted = confusion.sum(axis=0)
  support = confusion.sum(axis=1)
  with np.errstate(divide='ignore', invalid='ignore'):
    precision = np.where(predicted > 0, true_positives / predicted, np.nan)
    recall = np.where(support > 0, true_positives / support, np.nan)
    f1 = np.where(precision + recall > 0,
                  2 * precision * recall / (precision + recall),
                  np.where(np.isnan(precision + recall), np.nan, 0.0))
  return {'confusion': confusion, 'precision': precision, 'recall': recall,
          'f1': f1, 'support': support}


def format_classification_report(report, label_names):
  """The lines of classification_report's two tables: per class with a macro
  average, then the confusion matrix (label_names in class-index order)."""
  def number(value):
    return '%9s' % ('-' if np.isnan(value) else '%.3f' % value)

  name_width = max([len(name) for name in label_names] + [len('macro avg')])
  lines = ['%-*s %9s %9s %9s %9s' % (name_width, 'class', 'precision',
                                     'recall', 'f1', 'support')]
  for index, name in enumerate(label_names):
    lines.append('%-*s %s %s %s %9d' % (
        name_width, name, number(report['precision'][index]),
        number(report['recall'][index]), number(report['f1'][index]),
        report['support'][index]))
  averages = [np.nanmean(report[key]) if not np.all(np.isnan(report[key]))
              else np.nan for key in ('precision', 'recall', 'f1')]
  lines.append('%-*s %s %s %s %9d' % (
      name_width, 'macro avg', number(averages[0]), number(averages[1]),
      number(averages[2]), report['support'].sum()))
  lines.append('Confusion matrix (rows: true class, columns: predicted '
               'class):')
  column_width = max([len(name) for name in label_names] +
                     [len(str(report['confusion'].max()))])
  lines.append(' ' * name_width + ''.join(
      ' %*s' % (column_width, name) for name in label_names))
  for index, name in enumerate(label_names):
    lines.append('%-*s' % (name_width, name) + ''.join(
        ' %*d' % (column_width, count)
        for count in report['confusion'][index]))
  return lines


def write_evaluation_summaries(summaries_dir, report, label_names,
                               global_step):
  """Writes classification_report's report to TensorBoard (the run 'test'
  of summaries_dir) at global_step: the table, and the picture."""
  table = '\n'.join('    ' + line for line in
                     format_classification_report(report, label_names))
  text_metadata = tf.SummaryMetadata(
      plugin_data=tf.SummaryMetadata.PluginData(plugin_name='text'))
  summary = tf.Summary(value=[
      tf.Summary.Value(tag='evaluation_report', metadata=text_metadata,
                       tensor=tf.make_tensor_proto(table))])
  try:
    picture = import_extra('evaluation_picture', 'The confusion matrix '
                           'picture in TensorBoard', ('evaluation_picture.py',))
  except RetrainError as e:
    tf.logging.warning('%s', e)
  else:
    png, height, width = picture.confusion_matrix_png(report['confusion'],
                                                      label_names)
    summary.value.insert(0, tf.Summary.Value(
        tag='confusion_matrix', image=tf.Summary.Image(
            height=height, width=width, colorspace=3,
            encoded_image_string=png)))
  writer = tf.summary.FileWriter(os.path.join(summaries_dir, 'test'))
  try:
    writer.add_summary(summary, global_step)
  finally:
    writer.close()


# ---------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------


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
  if eval_session is None:
    eval_session = build_eval_session(module_spec, class_count)
  output_graph_def = frozen_graph_def(eval_session)

  write_file_atomically(graph_file_name,
                        output_graph_def.SerializeToString(deterministic=True),
                        mode='wb')


def store_intermediate_graph(trained_layer, output_dir, step):
  """Saves the checkpoint, and the graph as trained so far (a TrainedLayer)
  to output_dir as intermediate_<step>.pb."""
  intermediate_file_name = os.path.join(output_dir,
                                        'intermediate_' + str(step) + '.pb')
  tf.logging.info('Save intermediate result to : ' + intermediate_file_name)
  eval_session = save_and_restore_for_eval(trained_layer)
  with eval_session.sess:
    save_graph_to_file(intermediate_file_name, trained_layer.module_spec,
                       trained_layer.class_count, eval_session=eval_session)


# The modes of --tflite_quantize: 'none' (float), 'dynamic' (8-bit weights),
# 'float16' (half-size weights) and 'uint8' (every op in 8 bits, calibrated).
# tflite_export.py, imported when --tflite_output_file asks, does the export.
TFLITE_QUANTIZATIONS = ('none', 'dynamic', 'float16', 'uint8')


def export_model(module_spec, class_count, saved_model_dir, eval_session=None,
                 labels=None):
  """Exports model for serving.

  The SavedModel (tag 'serve') has two signatures:
    serving_default: input 'image', float [None, height, width, 3] in [0, 1];
      output 'prediction', the class probabilities (the original's).
    serving_bytes: input 'image_bytes', string [None] of encoded JPEG or PNG
      images; outputs 'prediction' and 'classes', the top class's label.
  It is written to a temporary folder beside saved_model_dir and renamed into
  place once complete.

  Args:
    module_spec: The image module, as load_module_spec returns it.
    class_count: The number of classes.
    saved_model_dir: Directory in which to save exported model and variables.
    eval_session: An EvalSession to reuse; built if None.
    labels: The class names in class-index order, for 'classes'; the class
      indices as strings if None.
  """
  if labels is None:
    labels = [str(index) for index in range(class_count)]
  # The SavedModel should hold the eval graph.
  if eval_session is None:
    eval_session = build_eval_session(module_spec, class_count)
  signature_def_map = add_serving_signatures(eval_session, module_spec,
                                             labels)
  with eval_session.sess.graph.as_default():
    _save_model_atomically(eval_session.sess, signature_def_map,
                           saved_model_dir)


def add_serving_signatures(eval_session, module_spec, labels):
  """Adds the SavedModel's signatures' ops to an EvalSession's graph;
  returns export_model's signature_def_map (labels in class-index order)."""
  bytes_inputs, bytes_outputs = _add_image_bytes_signature(
      eval_session, module_spec, list(labels))
  graph = eval_session.sess.graph
  return {
      # Exactly what the original's tf.saved_model.simple_save wrote.
      'serving_default': tf.saved_model.predict_signature_def(
          inputs={'image': eval_session.resized_input_tensor},
          outputs={'prediction': graph.get_tensor_by_name(
              eval_session.final_tensor_name + ':0')}),
      'serving_bytes': tf.saved_model.predict_signature_def(
          inputs=bytes_inputs, outputs=bytes_outputs),
  }


def _add_image_bytes_signature(eval_session, module_spec, labels):
  """The serving_bytes signature's (inputs, outputs): each encoded image is
  decoded and resized as for training, then goes through the module and the
  new layer, sharing serving_default's variables."""
  height, width, depth = module_image_shape(module_spec)
  with eval_session.sess.graph.as_default(), tf.name_scope('serving_bytes'):
    image_bytes = tf.placeholder(tf.string, [None], name='image_bytes')
    # Traced as written (see parallel_map): AutoGraph's conversion would
    # take half a second of the eval graph's build.
    images = tf.map_fn(
        tf.autograph.experimental.do_not_convert(
            lambda data: decode_and_resize(data, height, width, depth)[0]),
        image_bytes, fn_output_signature=tf.float32, back_prop=False)
    images.set_shape([None, height, width, depth])
    prediction = eval_session.apply_layer(eval_session.apply_module(images))
    prediction = tf.identity(prediction, name='prediction')
    classes = tf.gather(tf.constant(labels), tf.argmax(prediction, axis=1),
                        name='classes')
  return {'image_bytes': image_bytes}, {'prediction': prediction,
                                        'classes': classes}


def _save_model_atomically(sess, signature_def_map, saved_model_dir):
  """Writes the SavedModel into a temporary folder, then renames it.

  Raises:
    RetrainError: if saved_model_dir was filled by something else during
      the run; the model is kept beside it then.
  """
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
      # Filled by someone else during the run (it was checked at start-up):
      # keep the new model beside it rather than lose the run's work.
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


def write_labels_file(image_lists, output_labels):
  """Writes the labels, one per line in class-index order, atomically."""
  write_file_atomically(output_labels, '\n'.join(image_lists.keys()) + '\n')


def prepare_file_system(resuming=False):
  """Clears the previous run's summaries and creates the output folders.

  It reads the flags, as the original did, and removes what killed runs left
  beside the outputs.

  Args:
    resuming: Whether the run continues an interrupted one, whose training
      and validation summaries are kept.
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
  # What a killed run may have left beside the outputs.
  for path in (FLAGS.output_graph, FLAGS.output_labels,
               FLAGS.saved_model_dir.rstrip('/\\'), FLAGS.tflite_output_file):
    if path and is_local_path(path):
      path = os.path.abspath(path)
      _remove_stale_temporary_files(os.path.dirname(path),
                                    os.path.basename(path))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def main(_):
  """Runs the whole retraining; returns the process exit code."""
  configure_logging(FLAGS.logging_verbosity)
  check_flags(FLAGS)
  module_spec = load_module_spec(FLAGS.tfhub_module,
                                 image_size=FLAGS.image_size)

  # Look at the folder structure, and create lists of all the images.
  skipped = []
  image_lists = create_image_lists(FLAGS.image_dir, FLAGS.testing_percentage,
                                   FLAGS.validation_percentage,
                                   unusable=skipped)
  class_count = len(image_lists.keys())
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
         head_options=flag_values(HeadOptions, FLAGS))
    layer_variables = tf.global_variables()[len(module_variables):]

  with tf.Session(graph=graph) as sess:
    # Set up the image decoding sub-graph.
    tensors = ModuleTensors(*add_jpeg_decoding(module_spec),
                            resized_image_tensor, bottleneck_tensor)
    # Determine whether to apply distortions, and set up their operations.
    distortions = _add_distortions(FLAGS, module_spec, image_lists,
                                   resume_point)

    # Create the operations we need to evaluate the accuracy of our new layer.
    evaluation_step, _ = add_evaluation_step(final_tensor, ground_truth_input)
    # Merge all the summaries and write them out to the summaries_dir
    merged = tf.summary.merge_all()
    trained_layer = TrainedLayer(
        sess, tf.train.Saver(), FLAGS.checkpoint_path, module_spec,
        class_count, FLAGS.final_tensor_name)
    checkpoint = TrainingCheckpoint(
        sess, layer_variables, FLAGS.checkpoint_path, fingerprint,
        resume_point, FLAGS.save_every_steps,
        distortions and distortions.batches.seed)

    # Initialize all weights: for the module to their pretrained values,
    # and for the newly added retraining layer to random initial values.
    init = tf.global_variables_initializer()
    sess.run(init)
    module_sess = _module_session(sess, init, FLAGS.bottleneck_precision)
    # Every image's bottleneck is cached, with distortions too: evaluation
    # uses the cached ones, and decoding each image once up front finds the
    # bad ones before any training step.
    skipped += cache_bottlenecks(
        module_sess, image_lists, cache.image_dir, cache.bottleneck_dir,
        *tensors, module_name=cache.module_name, memory=cache.memory)
    _check_categories(image_lists, skipped)
    run_training_loop(
        sess,
        TrainingOps(train_step, cross_entropy, bottleneck_input,
                    ground_truth_input, evaluation_step, merged),
        flag_values(TrainingSchedule, FLAGS),
        BatchSources(module_sess, image_lists, tensors, cache,
                     *(distortions or (None, None))),
        functools.partial(store_intermediate_graph, trained_layer,
                          FLAGS.intermediate_output_graphs_dir),
        checkpoint=checkpoint)

    # After training is complete, force one last save of the train checkpoint,
    # and restore it in the eval graph of the final test and the exports.
    eval_session = save_and_restore_for_eval(trained_layer)
    with eval_session.sess:
      # We've completed all our training, so run a final test evaluation on
      # some new images we haven't used before.
      test_results = run_final_eval(
          module_sess, module_spec, class_count, image_lists, *tensors,
          eval_session=eval_session, cache=cache, options=flag_values(
              FinalEvalOptions, FLAGS,
              global_step=FLAGS.how_many_training_steps - 1))
      check_accuracy_bar(test_results, FLAGS.assert_accuracy_at_least,
                         FLAGS.checkpoint_path)
      write_exports(FLAGS, module_spec, image_lists, eval_session, cache)
    checkpoint.finish()
  if module_sess is not sess:
    module_sess.close()
  _log_skipped_summary(image_lists, skipped)
  return 0


def flag_values(options_class, flags, **values):
  """An options namedtuple of the flags of its fields' names, and values."""
  return options_class(**{name: values[name] if name in values
                          else getattr(flags, name)
                          for name in options_class._fields})


def _add_distortions(flags, module_spec, image_lists, resume_point):
  """The distortion ops and training batches the flags ask for, or None.

  Returns:
    None without distortions, else a DistortionSetUp.
  """
  if not should_distort_images(flags.flip_left_right, flags.random_crop,
                               flags.random_scale, flags.random_brightness):
    return None
  tensors = add_input_distortions(
      flags.flip_left_right, flags.random_crop, flags.random_scale,
      flags.random_brightness, module_spec)
  batches = DistortedBatches(
      module_image_shape(module_spec), flag_values(Distortions, flags),
      image_lists, flags.image_dir, 'training', flags.train_batch_size,
      seed=resume_point and resume_point.distortion_seed,
      start_batch=resume_point.step if resume_point else 0,
      memory_mb=flags.decoded_images_mb)
  return DistortionSetUp(batches, tensors)


# What _add_distortions sets up: the DistortedBatches of training and the
# ops of add_input_distortions; in BatchSources's order.
DistortionSetUp = collections.namedtuple('DistortionSetUp', [
    'batches', 'tensors'])


def _module_session(sess, init, bottleneck_precision):
  """The Session that runs the module for bottlenecks: sess itself, or for
  bfloat16 one whose rewrite leaves the new layer's training in float32.

  Args:
    sess: The training Session, its variables initialized.
    init: The initializer of every variable.
    bottleneck_precision: One of BOTTLENECK_PRECISIONS.
  """
  config = module_session_config(bottleneck_precision)
  if config is None:
    return sess
  module_sess = tf.Session(graph=sess.graph, config=config)
  module_sess.run(init)
  return module_sess


def write_exports(flags, module_spec, image_lists, eval_session, cache):
  """Writes the frozen graph, the labels, and the SavedModel and the TF Lite
  model if the flags ask for them, from the trained eval graph.

  Args:
    flags: The command line's flags.
    module_spec: The image module, as load_module_spec returns it.
    image_lists: The run's image lists.
    eval_session: The EvalSession with the trained values.
    cache: The run's BottleneckCache, whose images the TF Lite check decodes.
  """
  class_count = len(image_lists)
  # Write out the trained graph and labels with the weights stored as
  # constants.
  tf.logging.info('Save final result to : ' + flags.output_graph)
  if eval_session.wants_quantization:
    tf.logging.info('The model is instrumented for quantization with '
                    'TF-Lite')
  save_graph_to_file(flags.output_graph, module_spec, class_count,
                     eval_session=eval_session)
  write_labels_file(image_lists, flags.output_labels)
  if flags.saved_model_dir:
    tf.logging.info('Save SavedModel to : ' + flags.saved_model_dir)
    export_model(module_spec, class_count, flags.saved_model_dir,
                 eval_session=eval_session, labels=list(image_lists.keys()))
  if flags.tflite_output_file:
    tflite_export = tflite_export_module()
    tflite_export.export_checked_tflite(
        tflite_export.TfliteOptions(
            flags.tflite_output_file, flags.tflite_quantize,
            flags.tflite_calibration_images, flags.random_seed),
        module_spec, eval_session,
        tflite_export.RunImages(image_lists, cache.image_dir,
                                module_image_shape(module_spec)))


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
      '--decoded_images_mb', type=int, default=DEFAULT_DECODED_IMAGES_MB,
      help="""With distortions: megabytes of decoded training images to keep
      in memory, so that later steps only scale, crop, flip and brighten them
      (about width x height x 3 bytes each); 0 decodes every image at every
      use, as the original did.""")
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
      '--tflite_output_file', type=str, default='',
      help="""Also write the trained classifier as a TF Lite model here (fully
      quantized uint8 with a module instrumented for quantization), with its
      labels and input normalisation as TF Lite metadata (written by
      tflite_export.py and tflite_metadata.py, which come with
      retrain.py).""")
  parser.add_argument(
      '--tflite_quantize', type=str, default='none',
      choices=TFLITE_QUANTIZATIONS,
      help="""How to quantize the TF Lite model: none (float32), dynamic (8-bit
      weights), float16 (16-bit weights) or uint8 (every op in 8 bits, uint8
      input = the pixel values 0-255, uint8 output; calibrated on training
      images).""")
  parser.add_argument(
      '--tflite_calibration_images', type=int, default=150,
      help="""How many training images (drawn with --random_seed) calibrate
      --tflite_quantize uint8.""")
  parser.add_argument(
      '--image_size', type=int, default=None,
      help="""Input height and width for a TF2 SavedModel module that takes
      images of any size (see the model's documentation); other modules
      set it themselves.""")
  parser.add_argument(
      '--random_seed', type=int, default=None,
      help="""Seed for image sampling, initial weights and distortions, so that
      a run can be repeated exactly. Unset: a different run each time.""")
  parser.add_argument(
      '--save_every_steps', type=int, default=0,
      help="""Save the training state (beside --checkpoint_path) every this
      many steps, so that the same command continues an interrupted run; 0
      saves every minute. It is also saved after the last step and at Ctrl-C
      or SIGTERM.""")
  parser.add_argument(
      '--fresh_start', default=False, action='store_true',
      help="""Train from step 0 even if an interrupted run with the same
      images, module and flags could be resumed.""")
  parser.add_argument(
      '--optimizer', type=str, default='gradient_descent', choices=OPTIMIZERS,
      help='How the new layer is trained (the original: gradient_descent).')
  parser.add_argument(
      '--momentum', type=float, default=0.9,
      help='The momentum of --optimizer=momentum.')
  parser.add_argument(
      '--dropout_rate', type=float, default=0.0,
      help="""Fraction of the bottleneck values dropped at random in each
      training step (never in evaluation or the exported models).""")
  parser.add_argument(
      '--l2_regularizer', type=float, default=0.0,
      help="""Adds this times the sum of the squared weights of the new layer
      to the loss.""")
  parser.add_argument(
      '--label_smoothing', type=float, default=0.0,
      help="""Trains towards labels mixed with this fraction of a uniform
      distribution over the classes.""")
  parser.add_argument(
      '--assert_accuracy_at_least', type=float, default=None,
      help="""If the final test accuracy (a fraction in [0, 1]) is below this,
      exit with an error and export nothing (the checkpoint is kept).""")
  return parser


# ===========================================================================
# Support: folders and file names
# ===========================================================================


def is_local_path(path):
  """Tells whether path is a plain local path (not gs://, file://...)."""
  return not re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', path)


def _printable_path(path):
  """The path with bytes that are not valid UTF-8 shown as \\x escapes."""
  return os.fsencode(path).decode('utf-8', 'backslashreplace')


def _list_folder(folder):
  """(names, names that are not valid UTF-8) in a folder: TensorFlow's file
  functions cannot handle the latter (e.g. Latin-1 names from old archives)."""
  if not is_local_path(folder):
    return [name.rstrip('/') for name in tf.gfile.ListDirectory(folder)], []
  names, bad_names = [], []
  for name in os.listdir(folder):
    try:
      name.encode('utf-8')
      names.append(name)
    except UnicodeEncodeError:
      bad_names.append(name)
  return names, bad_names


def _is_image_name(name):
  extension = name.rsplit('.', 1)[-1].lower() if '.' in name else ''
  return extension in IMAGE_EXTENSIONS


def _list_image_files(class_dir, unusable=None):
  """The image files directly inside class_dir, sorted; those whose names are
  not valid UTF-8 go to unusable as (path, reason)."""
  names, bad_names = _list_class_folder(class_dir)
  for name in sorted(bad_names):
    if _is_image_name(name) and unusable is not None:
      unusable.append((_printable_path(os.path.join(class_dir, name)),
                       'its name is not valid UTF-8: rename it'))
  return sorted(name for name in names if _is_image_name(name) and
                not tf.gfile.IsDirectory(os.path.join(class_dir, name)))


def _list_class_folder(class_dir):
  """_list_folder of a class folder; RetrainError if it cannot be listed."""
  try:
    return _list_folder(class_dir)
  except OSError as e:
    raise RetrainError('Class folder %s cannot be read (%s): check its '
                       'permissions, or remove it.' % (class_dir,
                                                       e.strerror or e))


def _has_image_file(class_dir):
  """Tells whether class_dir holds an image file, stopping at the first."""
  names, _ = _list_class_folder(class_dir)
  return any(_is_image_name(name) and
             not tf.gfile.IsDirectory(os.path.join(class_dir, name))
             for name in names)


def _class_folders(image_dir, quiet=False):
  """The sorted names of image_dir's sub-folders (the classes)."""
  names, bad_names = _list_folder(image_dir)
  for name in sorted(bad_names) if not quiet else []:
    tf.logging.warning('Skipping folder %s: its name is not valid UTF-8: '
                       'rename it.',
                       _printable_path(os.path.join(image_dir, name)))
  return sorted(name for name in names
                if tf.gfile.IsDirectory(os.path.join(image_dir, name)))


# ===========================================================================
# Support: image safety and decoding
# ===========================================================================


def _image_header_size(image_data):
  """(height, width, is_jpeg) tensors from an image's header, undecoded.

  The size is 0 for data other than JPEG, PNG or GIF (the decoder rejects
  it); a JPEG header that cannot be parsed fails at run time.
  """
  # 32 bytes of the header, padded, so that short files cannot fail the slices.
  padded = tf.strings.join([tf.strings.substr(image_data, 0, 32), b'\0' * 32])
  head = tf.strings.substr(padded, 0, 32)
  head_bytes = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

  def big_endian(start, length):
    value = tf.constant(0, tf.int64)
    for position in range(start, start + length):
      value = value * 256 + head_bytes[position]
    return value

  def starts_with(magic):
    return tf.equal(tf.strings.substr(head, 0, len(magic)), magic)

  is_jpeg = starts_with(b'\xff\xd8\xff')
  is_png = starts_with(b'\x89PNG\r\n\x1a\n')
  is_gif = starts_with(b'GIF8')
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
  """Decodes JPEG, PNG or GIF bytes to uint8 [height, width, channels].

  Beyond MAX_IMAGE_PIXELS, JPEGs are decoded at 1/2, 1/4 or 1/8 size (DCT
  scaling allocates only the smaller image); PNGs, GIFs and JPEGs too large
  even at 1/8 fail before any pixel memory is allocated.
  """
  height, width, is_jpeg = _image_header_size(image_data)
  # Clipped first so that a lying 32-bit PNG header cannot overflow int64.
  pixels = (tf.minimum(height, MAX_IMAGE_PIXELS + 1) *
            tf.minimum(width, MAX_IMAGE_PIXELS + 1))

  def decode(ratio):
    return lambda: tf.image.decode_jpeg(image_data, channels=channels,
                                        ratio=ratio)

  def too_large():
    check = tf.debugging.Assert(False, [
        'Image too large:', width, 'x', height, 'pixels'])
    with tf.control_dependencies([check]):
      return tf.zeros([1, 1, channels], tf.uint8)

  branches = [(pixels <= MAX_IMAGE_PIXELS, decode(1))]
  for ratio in (2, 4, 8):
    branches.append((tf.logical_and(
        is_jpeg, pixels <= MAX_IMAGE_PIXELS * ratio * ratio), decode(ratio)))
  return tf.case(branches, default=too_large, exclusive=False)


def _decode_to_float_4d(image_data, input_depth):
  """Decodes image bytes into a float [1, height, width, depth] in [0, 1]."""
  return _to_float_4d(_decode_image(image_data, input_depth))


def _to_float_4d(decoded_image):
  """A decoded uint8 image as float [1, height, width, depth] in [0, 1]."""
  decoded_image_as_float = tf.image.convert_image_dtype(decoded_image,
                                                        tf.float32)
  return tf.expand_dims(decoded_image_as_float, 0)


def decode_and_resize(image_data, input_height, input_width, input_depth):
  """Decodes JPEG/PNG bytes into a float [1, height, width, depth] in [0, 1]:
  every image reaches the module through this (caching, training, serving,
  beam_bottlenecks.py)."""
  decoded_image_4d = _decode_to_float_4d(image_data, input_depth)
  resize_shape = tf.stack([input_height, input_width])
  resize_shape_as_int = tf.cast(resize_shape, dtype=tf.int32)
  return tf.image.resize_bilinear(decoded_image_4d, resize_shape_as_int)


def _why_file_unusable(image_path):
  """Why a local image file cannot be read, or None: only regular files are
  read (a named pipe called *.jpg would block the reader for ever)."""
  if not is_local_path(image_path):
    return None
  if os.path.islink(image_path) and not os.path.exists(image_path):
    return 'it is a broken symbolic link (to %s)' % os.readlink(image_path)
  if not os.path.exists(image_path):
    return 'it does not exist (any more)'
  if not os.path.isfile(image_path):
    return 'it is not a regular file'
  try:
    descriptor = os.open(image_path, os.O_RDONLY)
    try:
      is_gif = os.read(descriptor, 4) == b'GIF8'
    finally:
      os.close(descriptor)
    if is_gif:
      with open(image_path, 'rb') as image_file:
        return _why_gif_is_unsafe(image_file.read())
  except OSError as e:
    return 'it cannot be read (%s)' % (e.strerror or e)
  return None


def _why_gif_is_unsafe(image_data):
  """Why a GIF must not be decoded, or None, from its frame descriptors: the
  decoder expands every frame before checking their number or size, so a
  small GIF can ask for gigabytes."""
  def skip_sub_blocks(position):
    while position < len(image_data) and image_data[position]:
      position += image_data[position] + 1
    return position + 1

  def color_table_size(flags):
    return 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0

  if len(image_data) < 13:
    return None  # The decoder reports it.
  position = 13 + color_table_size(image_data[10])
  frame_sizes = []
  while position < len(image_data):
    block = image_data[position]
    if block == 0x21:  # Extension: label, then data sub-blocks.
      position = skip_sub_blocks(position + 2)
    elif block == 0x2C and position + 10 <= len(image_data):  # A frame.
      width = image_data[position + 5] + 256 * image_data[position + 6]
      height = image_data[position + 7] + 256 * image_data[position + 8]
      frame_sizes.append((width, height))
      position = skip_sub_blocks(
          position + 11 + color_table_size(image_data[position + 9]))
    else:  # The trailer, or damage that the decoder will report.
      break
  if len(frame_sizes) > 1:
    return ('it is an animated GIF (%d frames): save one frame as a JPEG or '
            'PNG' % len(frame_sizes))
  if frame_sizes and frame_sizes[0][0] * frame_sizes[0][1] > MAX_IMAGE_PIXELS:
    return ('its GIF frame is %d x %d pixels, more than the %d this tool '
            'decodes (MAX_IMAGE_PIXELS): scale it down' % (
                frame_sizes[0][0], frame_sizes[0][1], MAX_IMAGE_PIXELS))
  return None


def _read_image_file(image_path):
  """(bytes, None), or (None, why the file cannot be read)."""
  reason = _why_file_unusable(image_path)
  if reason:
    return None, reason
  try:
    with tf.gfile.GFile(image_path, 'rb') as image_file:
      return image_file.read(), None
  except (tf.errors.OpError, OSError) as e:
    return None, 'it cannot be read (%s)' % error_reason(e)


def _why_image_data_fails(sess, image_data, jpeg_data_tensor,
                          decoded_image_tensor):
  """Returns why image bytes cannot be decoded, or None if they can."""
  return _decode_or_explain(sess, image_data, jpeg_data_tensor,
                            decoded_image_tensor)[1]


def _decode_or_explain(sess, image_data, jpeg_data_tensor,
                       decoded_image_tensor):
  """(the decoded image, None), or (None, why it fails, in the user's words)."""
  if not image_data:
    return None, 'the file is empty'
  if image_data.startswith(b'GIF8'):
    reason = _why_gif_is_unsafe(image_data)
    if reason:
      return None, reason
  try:
    return sess.run(decoded_image_tensor, {jpeg_data_tensor: image_data}), None
  except tf.errors.OpError as e:
    return None, _why_decoding_failed(error_reason(e), image_data)


def _why_decoding_failed(reason, image_data):
  """Turns the decoder's error message into a reason in words for the user."""
  if 'Invalid JPEG data' in reason:
    size = _jpeg_header_size(image_data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
      return ('it is a %d x %d pixel JPEG that is damaged or needs more '
              'memory than the JPEG decoder may use (JPEGMEM=%s): scale it '
              'down' % (size[1], size[0], os.environ.get('JPEGMEM')))
  too_large = re.search(r'Image too large:\] \[(\d+)\] \[x\] \[(\d+)\]',
                        reason)
  if too_large:
    return ('it is %s x %s pixels, more than the %d this tool decodes '
            '(MAX_IMAGE_PIXELS): scale it down' % (
                too_large.group(1), too_large.group(2), MAX_IMAGE_PIXELS))
  if 'animated gifs' in reason:
    return ('it is an animated GIF (%s): save one frame as a JPEG or PNG'
            % reason.split(',')[0])
  if 'BMP format' in reason:
    return 'it is a BMP image: convert it to JPEG or PNG'
  if 'Unknown image file format' in reason:
    return 'it is not a JPEG, PNG or GIF image (unknown file format)'
  return 'it is a damaged or truncated image (%s)' % reason


def _jpeg_header_size(image_data):
  """(height, width) that a JPEG's header declares; None for other data.
  Asked only when decoding failed, in a small graph of its own."""
  with tf.Graph().as_default(), tf.Session() as sess:
    data = tf.placeholder(tf.string)
    try:
      height, width, is_jpeg = sess.run(_image_header_size(data),
                                        {data: image_data})
    except tf.errors.OpError:
      return None
  return (height, width) if is_jpeg else None


def error_reason(error):
  """The line of an error's message that says what went wrong.

  A Session's error starts with 'Graph execution error:' and a stack; the
  reason follows "Node: '<name>'", before the '[[{{node ...}}]]' line.
  """
  message = getattr(error, 'message', None) or str(error)
  lines = [line.strip() for line in message.splitlines()]
  lines = [line for line in lines if line]
  if not lines:
    return type(error).__name__
  for index, line in enumerate(lines[:-1]):
    if line.startswith('Node:') and not lines[index + 1].startswith('[['):
      return lines[index + 1]
  if lines[0] == 'Graph execution error:':
    reasons = [line for line in lines[1:] if not line.startswith('[[')]
    return reasons[-1] if reasons else lines[0]
  return lines[0]


# ===========================================================================
# Support: atomic files
# ===========================================================================

# Temporary files are named '<target>.tmp-<host>-<pid>-<random>', so that the
# leftovers of a killed run can be told from files that a live run (maybe on
# another machine sharing the folder) is still writing.
_TEMPORARY_NAME = re.compile(r'\.tmp-([A-Za-z0-9]*)-(\d+)-[0-9a-f]{8}$')


@functools.lru_cache(maxsize=None)
def _host_tag():
  """Names the machine and the process-id namespace (containers) we run in."""
  tag = re.sub(r'[^A-Za-z0-9]', '', socket.gethostname())[:12]
  try:
    tag += '%x' % os.stat('/proc/self/ns/pid').st_ino
  except OSError:
    pass
  return tag


def _temporary_name(path):
  return '%s.tmp-%s-%d-%s' % (path, _host_tag(), os.getpid(),
                              uuid.uuid4().hex[:8])


def _process_is_gone(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except (OSError, OverflowError):  # E.g. another user's process: it exists.
    return False
  return False


def _remove_stale_temporary_files(folder, target_name=None):
  """Deletes the temporary files (of target_name only, if given) that killed
  runs on this machine left in a local folder."""
  if not is_local_path(folder) or not os.path.isdir(folder):
    return
  host = _host_tag()
  try:
    names = os.listdir(folder)
  except OSError:
    return
  for name in names:
    match = _TEMPORARY_NAME.search(name)
    if (not match or match.group(1) != host or
        (target_name is not None and name[:match.start()] != target_name) or
        not _process_is_gone(int(match.group(2)))):
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
  """Writes a file under a temporary name and renames it into place.

  A crash or kill at any moment leaves either the old file or the new one,
  never a truncated one; concurrent writers of the same path each rename a
  complete file. The folder is created when missing.
  """
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


# ===========================================================================
# Support: the optional extras
# ===========================================================================

# The files beside retrain.py that it imports only when a flag asks for them;
# their log lines are this tool's own too (see _OwnLinesOnly).
EXTRA_FILES = ('tflite_export.py', 'tf2_modules.py')


def import_extra(name, asked_by, files):
  """Imports one of the optional modules that come with retrain.py.

  Args:
    name: The module, e.g. 'tflite_export'.
    asked_by: What asks for it, for the message, e.g. '--tflite_output_file'.
    files: The files it needs beside retrain.py, name.py first.

  Returns:
    The module.

  Raises:
    RetrainError: if name.py is missing, e.g. where retrain.py was copied
      alone.
  """
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


def tflite_export_module():
  """tflite_export.py, which --tflite_output_file needs (see import_extra)."""
  return import_extra('tflite_export', '--tflite_output_file',
                      ('tflite_export.py', 'tflite_metadata.py'))


# ===========================================================================
# Support: flag checks
# ===========================================================================

# The flags that name files, folders or the module.
_PATH_FLAGS = ('image_dir', 'output_graph', 'intermediate_output_graphs_dir',
               'output_labels', 'summaries_dir', 'bottleneck_dir',
               'tfhub_module', 'saved_model_dir', 'checkpoint_path')


def check_flags(flags):
  """Checks the flags and output places before anything is written.

  Args:
    flags: The parsed command line.

  Raises:
    RetrainError: with one sentence on what is wrong and what to do.
  """
  if not flags.image_dir:
    raise RetrainError('Must set flag --image_dir to a folder with one '
                       'sub-folder of images per class.')
  for name in _PATH_FLAGS:
    try:
      getattr(flags, name).encode('utf-8')
    except UnicodeEncodeError:
      raise RetrainError('--%s %s is not valid UTF-8, which TensorFlow cannot '
                         'handle: rename it.' % (
                             name, _printable_path(getattr(flags, name))))
  if not tf.gfile.Exists(flags.image_dir):
    raise RetrainError("Image directory '%s' not found: check the path given "
                       'to --image_dir.' % flags.image_dir)
  if not tf.gfile.IsDirectory(flags.image_dir):
    raise RetrainError('--image_dir %s is a file, not a folder of class '
                       'folders.' % flags.image_dir)
  _check_numbers(flags)
  _check_outputs(flags)
  _check_class_folders(flags.image_dir)
  if not re.match(r'^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$', flags.final_tensor_name):
    raise RetrainError(
        '--final_tensor_name %r is not a valid TensorFlow op name: use '
        'letters, digits, and _ . - / (e.g. final_result).' %
        flags.final_tensor_name)


# The numeric flags' ranges: (flags, whether a value is in range, the range).
_NUMBER_RANGES = (
    (('how_many_training_steps', 'train_batch_size', 'eval_step_interval'),
     lambda value: value > 0, 'a positive number'),
    (('test_batch_size', 'validation_batch_size'),
     lambda value: value > 0 or value == -1,
     'positive, or -1 for the whole set'),
    (('learning_rate',), lambda value: value > 0, 'positive'),
    (('intermediate_store_frequency',), lambda value: value >= 0,
     '0 (off) or positive'),
    (('random_crop', 'random_scale'), lambda value: value >= 0,
     '0 or a positive percentage'),
    (('random_brightness',), lambda value: 0 <= value <= 100,
     'a percentage in [0, 100]'),
    (('decoded_images_mb',), lambda value: value >= 0,
     '0 (off) or a positive number of megabytes'),
    (('tflite_calibration_images',), lambda value: value > 0,
     'a positive number of images'),
    (('momentum', 'dropout_rate', 'label_smoothing'),
     lambda value: 0 <= value < 1, 'in [0, 1)'),
    (('l2_regularizer',), lambda value: value >= 0, '0 (off) or positive'),
    (('save_every_steps',), lambda value: value >= 0,
     '0 (every minute) or positive'),
)


def _check_numbers(flags):
  """RetrainError for the first numeric flag out of its range."""
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


def check_split_and_image_size(flags):
  """RetrainError for --testing_percentage, --validation_percentage or
  --image_size out of range (beam_bottlenecks.py shares these flags)."""
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
  """Checks that every output can be written and nothing of value is lost.

  Raises:
    RetrainError: for the first output place that will not do.
  """
  if flags.saved_model_dir and tf.gfile.IsDirectory(
      flags.saved_model_dir) and tf.gfile.ListDirectory(flags.saved_model_dir):
    raise RetrainError(
        '--saved_model_dir %s already exists and is not empty: use a fresh '
        'numbered version folder, e.g. '
        '--saved_model_dir=/tmp/saved_models/$(date +%%s)/' %
        flags.saved_model_dir)
  if not _clearable_summaries_dir(flags.summaries_dir):
    raise RetrainError(
        '--summaries_dir %s holds more than this tool\'s train/, '
        'validation/ and test/ event folders and would be cleared: point it '
        'at a folder of its own, e.g. /tmp/retrain_logs.' %
        flags.summaries_dir)
  check_writable('summaries_dir', flags.summaries_dir, True)
  check_writable('bottleneck_dir', flags.bottleneck_dir, True)
  check_writable('output_graph', flags.output_graph, False)
  check_writable('output_labels', flags.output_labels, False)
  check_writable('checkpoint_path', flags.checkpoint_path, False)
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


def _check_class_folders(image_dir):
  """Checks that image_dir has at least two class folders with images.

  Raises:
    RetrainError: if it cannot be read, or has fewer than two.
  """
  class_folders = []
  try:
    for name in _class_folders(image_dir, quiet=True):
      if _has_image_file(os.path.join(image_dir, name)):
        class_folders.append(name)
      if len(class_folders) == 2:
        return
  except OSError as e:
    raise RetrainError('--image_dir %s cannot be read (%s): check its '
                       'permissions.' % (image_dir, e.strerror or e))
  if not class_folders:
    raise RetrainError(
        'No valid folders of images found at %s: put the images into one '
        'sub-folder per class (e.g. %s/roses/*.jpg).' % (
            image_dir, image_dir.rstrip('/')))
  raise RetrainError(
      'Only one valid folder of images found at %s (%s) - multiple classes '
      'are needed for classification: add a sub-folder of images for each '
      'other class.' % (image_dir, class_folders[0]))


def _nearest_existing_folder(path):
  folder = os.path.abspath(path)
  while not os.path.exists(folder):
    parent = os.path.dirname(folder)
    if parent == folder:
      break
    folder = parent
  return folder


def check_writable(flag_name, path, is_folder):
  """Raises RetrainError if path (a file or folder) cannot be written.

  Args:
    flag_name: The flag that named path, for the message.
    path: A file or folder to be written; remote paths (gs://...) are
      checked when written.
    is_folder: Whether path is a folder.
  """
  if not is_local_path(path):
    return
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


def _clearable_summaries_dir(summaries_dir):
  """Tells whether summaries_dir holds nothing but this tool's event folders."""
  if not tf.gfile.Exists(summaries_dir):
    return True
  if not tf.gfile.IsDirectory(summaries_dir):
    return False
  entries = set(name.rstrip('/') for name in
                tf.gfile.ListDirectory(summaries_dir))
  return entries <= set(SUMMARY_RUNS)


def _check_categories(image_lists, skipped=()):
  """Stops when a class has no training images; warns about other gaps.

  Args:
    image_lists: OrderedDict of the usable images for each label.
    skipped: (image path, reason) of the images that were skipped.

  Raises:
    RetrainError: if a class has no training image left.
  """
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


# ===========================================================================
# Support: progress
# ===========================================================================


def keras_2():
  """The Keras 2 API, which builds into TF1 graphs: tf_keras from TensorFlow
  2.16 on (tensorflow-hub 0.16 installs it), tf.keras before."""
  try:
    import tf_keras  # pylint: disable=g-import-not-at-top
    return tf_keras
  except ImportError:
    return tf.keras


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
      self._bar = keras_2().utils.Progbar(total, unit_name='image')

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


# ===========================================================================
# Support: process set-up (logging, command line, signals, threads, exit codes)
# ===========================================================================


class _OwnLinesOnly(object):
  """A logging filter that keeps this tool's lines and real errors, not
  TensorFlow's pages of deprecation notes."""

  def filter(self, record):
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


def configure_logging(verbosity_name):
  """Sets TensorFlow's log level (a --logging_verbosity); below DEBUG, only
  this tool's lines show."""
  verbosity = logging_level_verbosity(verbosity_name)
  tf.logging.set_verbosity(verbosity)
  logger = tf.get_logger()
  for existing in list(logger.filters):
    if isinstance(existing, _OwnLinesOnly):
      logger.removeFilter(existing)
  if verbosity_name != 'DEBUG':
    logger.addFilter(_OwnLinesOnly())


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
  """Holds Ctrl-C and SIGTERM (their Python handlers, in the main thread)
  until raise_pending(), e.g. the end of a step; a second one acts at once."""

  def __enter__(self):
    self.pending = None
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):
          self._previous[signum] = handler
          signal.signal(signum, self._hold)
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
  except KeyboardInterrupt:
    sys.stderr.write('\nInterrupted: stopped cleanly. Cached bottlenecks are '
                     'kept; run the same command again to continue.\n')
    return 130
  except _Terminated:
    sys.stderr.write('Terminated: stopped cleanly. Cached bottlenecks are '
                     'kept; run the same command again to continue.\n')
    return 143


def exit_at_once(exit_code):
  """Ends the process once its output is flushed, skipping Python's clean-up
  (seconds to tear down a big module's graphs); every file is closed."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(exit_code)  # pylint: disable=protected-access


# On import: only this tool's lines from TensorFlow's logger (unless DEBUG),
# then TF1 behaviour, whose switch logs deprecation notes.
if not _wants_debug_logs(sys.argv):
  tf.get_logger().addFilter(_OwnLinesOnly())
tf.disable_v2_behavior()

# Importers (tests, notebooks) get the defaults of every flag.
FLAGS = build_parser().parse_args([])

if __name__ == '__main__':
  # The extras (tflite_export.py, tf2_modules.py) import retrain: this module,
  # not a second copy of it with a RetrainError of its own.
  sys.modules.setdefault('retrain', sys.modules[__name__])
  exit_at_once(run_main())
