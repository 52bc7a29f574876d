#!/usr/bin/env python
"""Exports image feature-vector modules in the TF1 Hub format.

retrain.py needs an image feature-vector module, but tfhub.dev may be out of
reach, so this script makes one locally. It writes the same kind of module
that tfhub.dev used to serve: a SavedModel whose graph (tags {}) has the
signature `default`, with input `images` (float32 [None, H, W, 3], values in
[0, 1]) and output `default` (float32 [None, D]), its variables in the
SavedModel's checkpoint and `tfhub_module.pb` marking the format. It is
written by hand, on TensorFlow 2.15 and 2.21 alike; retrain.py reads it, and
so does hub.Module of tensorflow_hub <= 0.15.

Kinds of module:

  sample_cnn (default): a small convolutional network with fixed random
    weights drawn from --seed. Its features (average and maximum pooled ReLU
    activations at several depths) are good enough to learn the synthetic
    photos in flower_photos_sample/. With --quantize, weights, activations
    and the output features pass through FakeQuantWithMinMaxVars ops, as in a
    module trained for quantization.

  frozen_graph: wraps a frozen classification GraphDef, such as the
    MobileNet and Inception .pb files of the "TensorFlow for Poets" era,
    rescaling the images to the graph's input range and returning the
    bottleneck tensor, flattened, as the feature vector.

  keras: a Keras applications network (inception_v3, mobilenet_v2) without
    its top, pooled, with random, ImageNet or a weights file's values. It is
    built with the Keras 2 API (retrain.keras_2(): tf_keras beside Keras 3,
    tf.keras on TensorFlow 2.15), which builds into a TF1 graph.

Examples:

  python make_image_module.py /tmp/sample_module
  python make_image_module.py --quantize /tmp/sample_module_quantized
  python make_image_module.py --kind frozen_graph \
      --frozen_graph mobilenet_v1_0.25_224/frozen_graph.pb \
      --input_tensor input:0 \
      --bottleneck_tensor MobilenetV1/Logits/AvgPool_1a/AvgPool:0 \
      --image_size 224 --input_range -1,1 /tmp/mobilenet_module
"""

import argparse
import functools
import os
import shutil
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from google.protobuf import message as protobuf_message
# retrain.py loads TensorFlow without its C++ start-up lines, in TF1 mode.
import retrain
import tensorflow.compat.v1 as tf

# Writes the TF1 Hub format by hand, as that example shows.
import half_plus_two

DEFAULT_SAMPLE_IMAGE_SIZE = 128
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 1024

# The sample CNN: (name, kernel size, stride, output channels). The colour
# layers are 1x1 convolutions on the image, so their pooled activations
# describe which colours cover how much of the picture; the conv layers form
# a chain of strided convolutions that respond to edges and textures.
COLOUR_LAYERS = (
    ('colour1', 1, 1, 96),
    ('colour2', 1, 1, 96),
)
CONV_LAYERS = (
    ('conv1', 5, 2, 32),
    ('conv2', 3, 2, 64),
    ('conv3', 3, 2, 96),
    ('conv4', 3, 2, 128),
)
ALL_LAYERS = COLOUR_LAYERS + CONV_LAYERS
# Side of the patches whose average activation the max pooling looks at.
MAX_POOL_PATCH = {'colour1': 4, 'colour2': 4, 'conv1': 4, 'conv2': 2,
                  'conv3': 1, 'conv4': 1}
# The colour layers look at the image averaged over blocks of this side.
COLOUR_INPUT_POOL = 2

# Each ReLU unit gets the bias that makes it fire on this share of the
# calibration pixels, which keeps every unit alive and informative.
ACTIVE_SHARE = 0.5
# Calibration looks at this many images of 128x128 pixels, or at fewer but
# larger images with about as many pixels in all.
NUM_CALIBRATION_IMAGES = 48
# Every output feature is scaled to this mean on the calibration images.
FEATURE_MEAN = 1.0
# Fake-quantization ranges leave this much headroom above the largest value
# seen on the calibration images.
RANGE_HEADROOM = 1.5


class ModuleBuildError(Exception):
  """A user mistake (bad path, bad graph, bad tensor name), as one line."""


# ---------------------------------------------------------------------------
# Export, shared by all kinds of module.
# ---------------------------------------------------------------------------


def _check_export_dir(export_dir):
  if os.path.exists(export_dir):
    if not os.path.isdir(export_dir):
      raise ModuleBuildError('%s exists and is not a directory' % export_dir)
    if os.listdir(export_dir):
      raise ModuleBuildError('%s already exists and is not empty' % export_dir)


def export_module(module_fn, export_dir, variable_values=None):
  """Exports the module that module_fn defines, atomically.

  The module is written into a temporary sibling folder first and renamed to
  export_dir only when complete, so an interrupted export leaves no
  half-written module behind.

  Args:
    module_fn: function without arguments that builds the module's graph in
      the current graph and returns its (images, features) tensors.
    export_dir: folder to create; it must not exist or be empty.
    variable_values: optional function without arguments, called once the
      graph exists, that returns {variable name in the module: value} to load
      over the variables' initial values.

  Returns:
    export_dir.

  Raises:
    ModuleBuildError: if export_dir exists and is not an empty folder.
  """
  export_dir = os.path.abspath(export_dir)
  _check_export_dir(export_dir)
  parent = os.path.dirname(export_dir)
  os.makedirs(parent, exist_ok=True)
  staging_root = tempfile.mkdtemp(
      prefix='.%s.tmp-' % os.path.basename(export_dir), dir=parent)
  try:
    staging_dir = os.path.join(staging_root, 'module')
    with tf.Graph().as_default():
      images, features = module_fn()
      variables = {variable.op.name: variable
                   for variable in tf.global_variables()}
      with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        for name, value in (variable_values() if variable_values else
                            {}).items():
          variables[name].load(value, session)
        half_plus_two.write_hub_module(session, staging_dir,
                                       {'images': images},
                                       {'default': features})
    _check_export_dir(export_dir)
    # Renaming onto an empty folder replaces it (POSIX rename semantics).
    os.rename(staging_dir, export_dir)
  finally:
    shutil.rmtree(staging_root, ignore_errors=True)
  return export_dir


def _images_placeholder(image_size):
  return tf.placeholder(tf.float32, [None, image_size, image_size, 3],
                        name='images')


def _check_image_size(image_size):
  if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
    raise ModuleBuildError('image size must be between %d and %d, not %d' %
                           (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, image_size))


# ---------------------------------------------------------------------------
# The sample CNN.
# ---------------------------------------------------------------------------


def _layer_input_channels():
  channels = {}
  previous = 3
  for name, _, _, out_channels in COLOUR_LAYERS:
    channels[name] = previous
    previous = out_channels
  previous = 3
  for name, _, _, out_channels in CONV_LAYERS:
    channels[name] = previous
    previous = out_channels
  return channels


def calibration_images(image_size, seed, count=None):
  """Draws photo-like images to calibrate the sample CNN on.

  Each image is a smooth colour gradient with soft blobs, a few hard-edged
  discs and stripes of random colours, plus pixel noise: enough variety of
  colours, edges and textures to set biases and value ranges without
  depending on any real data set.

  Args:
    image_size: height and width in pixels.
    seed: random seed.
    count: number of images; by default NUM_CALIBRATION_IMAGES, scaled down
      for images larger than 128x128.

  Returns:
    float32 array [count, image_size, image_size, 3] with values in [0, 1].
  """
  if count is None:
    count = int(np.clip(round(NUM_CALIBRATION_IMAGES * (128.0 / image_size)**2),
                        8, NUM_CALIBRATION_IMAGES))
  rng = np.random.default_rng([seed, 1])
  coords = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
  ys, xs = np.meshgrid(coords, coords, indexing='ij')
  images = np.empty((count, image_size, image_size, 3), np.float32)
  for i in range(count):
    image = (rng.uniform(0, 1, 3) + rng.uniform(-0.5, 0.5, 3) * xs[..., None] +
             rng.uniform(-0.5, 0.5, 3) * ys[..., None])
    for _ in range(rng.integers(2, 6)):
      cy, cx = rng.uniform(0, 1, 2)
      radius = rng.uniform(0.05, 0.4)
      distance2 = (ys - cy)**2 + (xs - cx)**2
      blob = np.exp(-distance2 / (2 * radius**2))[..., None]
      image = image * (1 - blob) + rng.uniform(0, 1, 3) * blob
    for _ in range(rng.integers(1, 8)):
      cy, cx = rng.uniform(0, 1, 2)
      radius = rng.uniform(0.02, 0.25)
      disc = (((ys - cy)**2 + (xs - cx)**2) < radius**2)[..., None]
      image = np.where(disc, rng.uniform(0, 1, 3), image)
    frequency = rng.uniform(5, 60)
    angle = rng.uniform(0, np.pi)
    stripes = np.sin(frequency * (np.cos(angle) * xs + np.sin(angle) * ys))
    image = image + rng.uniform(0, 0.15) * stripes[..., None]
    image = image + rng.normal(0, rng.uniform(0.0, 0.05), image.shape)
    images[i] = np.clip(image, 0.0, 1.0)
  return images


def _conv_relu(inputs, weights, biases, stride):
  outputs = tf.nn.conv2d(inputs, weights, strides=[1, stride, stride, 1],
                         padding='SAME')
  return tf.nn.relu(tf.nn.bias_add(outputs, biases))


def _pool(activations, patch):
  """Global average, and global maximum of patch x patch local averages.

  Taking the maximum over local averages rather than single pixels makes it
  answer "is there a patch of this colour or texture" and not react to noise.
  """
  patches = activations
  if patch > 1:
    patches = tf.nn.avg_pool2d(activations, patch, patch, padding='SAME')
  return (tf.reduce_mean(activations, axis=[1, 2]),
          tf.reduce_max(patches, axis=[1, 2]))


def _sample_cnn_layers(x, layer_fn):
  """Runs x through the colour and the conv chains of the sample CNN.

  Args:
    x: float32 [N, H, W, 3] images scaled to [-1, 1].
    layer_fn: function (layer name, input, stride) -> layer output.

  Returns:
    A dict: layer name -> output tensor.
  """
  colour_input = x
  if COLOUR_INPUT_POOL > 1:
    colour_input = tf.nn.avg_pool2d(x, COLOUR_INPUT_POOL, COLOUR_INPUT_POOL,
                                    padding='SAME')
  outputs = {}
  for chain, h in ((COLOUR_LAYERS, colour_input), (CONV_LAYERS, x)):
    for name, _, stride, _ in chain:
      h = layer_fn(name, h, stride)
      outputs[name] = h
  return outputs


def _calibration_pass(images, weights, biases, pre_activation_names=()):
  """Runs the sample CNN on numpy images with the given numpy parameters.

  Layers without biases yet get zero biases.

  Args:
    images: float32 [N, H, W, 3] in [0, 1].
    weights: dict of numpy weights by layer name.
    biases: dict of numpy biases by layer name, possibly incomplete.
    pre_activation_names: layers whose pre-activations to return.

  Returns:
    (pre_activations, activation_max, pooled): dicts by layer name of numpy
    values: pre-activations [N, H, W, C] of the requested layers, the
    largest activation of every layer, and the (mean, maximum) pairs of
    _pool() of every layer.
  """
  with tf.Graph().as_default():
    pre_activations = {}

    def layer_fn(name, h, stride):
      pre_activations[name] = tf.nn.conv2d(
          h, weights[name], strides=[1, stride, stride, 1], padding='SAME')
      bias = biases.get(name, np.zeros(weights[name].shape[-1], np.float32))
      return tf.nn.relu(pre_activations[name] + bias)

    activations = _sample_cnn_layers(tf.constant(images) * 2.0 - 1.0,
                                     layer_fn)
    fetches = (
        {name: pre_activations[name] for name in pre_activation_names},
        {name: tf.reduce_max(value) for name, value in activations.items()},
        {name: _pool(value, MAX_POOL_PATCH[name])
         for name, value in activations.items()},
    )
    with tf.Session() as session:
      return session.run(fetches)


def sample_cnn_parameters(image_size, seed):
  """Draws the sample CNN's weights and calibrates it.

  Weights are He-normal random numbers from `seed`. Biases are set layer by
  layer so that each unit fires on ACTIVE_SHARE of the calibration pixels.
  Every output feature then gets a scale that brings its mean on the
  calibration images to FEATURE_MEAN, and every quantization range is taken
  from the largest value seen, with headroom.

  Args:
    image_size: input height and width.
    seed: random seed for the weights and calibration images.

  Returns:
    A dict with numpy float32 values: 'weights' and 'biases' (dicts by layer
    name), 'feature_scale' [D], 'activation_max' (dict by layer name),
    'pooled_max' (dict by layer name: max of the average-pooled features)
    and 'feature_max' (scalar).
  """
  rng = np.random.default_rng([seed, 0])
  in_channels = _layer_input_channels()
  weights = {}
  for name, kernel, _, out_channels in ALL_LAYERS:
    fan_in = kernel * kernel * in_channels[name]
    weights[name] = rng.normal(
        0.0, np.sqrt(2.0 / fan_in),
        (kernel, kernel, in_channels[name], out_channels)).astype(np.float32)
  images = calibration_images(image_size, seed)
  biases = {}
  # Depth by depth, since each layer's bias changes what the next one sees;
  # the colour and the conv chain are independent of each other.
  for depth in range(max(len(COLOUR_LAYERS), len(CONV_LAYERS))):
    names = [chain[depth][0] for chain in (COLOUR_LAYERS, CONV_LAYERS)
             if depth < len(chain)]
    pre_activations, _, _ = _calibration_pass(images, weights, biases, names)
    for name in names:
      pre = pre_activations[name].reshape(-1, weights[name].shape[-1])
      biases[name] = -np.quantile(pre, 1.0 - ACTIVE_SHARE,
                                  axis=0).astype(np.float32)
  _, activation_max, pooled = _calibration_pass(images, weights, biases)
  pooled_values = [t for name, _, _, _ in ALL_LAYERS for t in pooled[name]]

  features = np.concatenate(pooled_values, axis=1)
  means = features.mean(axis=0)
  # Units that barely fire on the calibration images must not be blown up.
  means = np.maximum(means, 0.1 * np.median(means))
  feature_scale = (FEATURE_MEAN / means).astype(np.float32)
  return {
      'weights': weights,
      'biases': biases,
      'feature_scale': feature_scale,
      'activation_max': {
          name: np.float32(value * RANGE_HEADROOM)
          for name, value in activation_max.items()
      },
      'pooled_max': {
          name: np.float32(pooled[name][0].max() * RANGE_HEADROOM)
          for name in pooled
      },
      'feature_max': np.float32(
          (features * feature_scale).max() * RANGE_HEADROOM),
  }


def _constant_variable(name, value, trainable=True):
  return tf.get_variable(name, initializer=tf.constant(value),
                         trainable=trainable)


def _fake_quant(inputs, name, low, high):
  """Fake-quantizes to 8 bits in [low, high], held in fixed variables."""
  with tf.variable_scope(name):
    min_var = _constant_variable('min', np.float32(low), trainable=False)
    max_var = _constant_variable('max', np.float32(high), trainable=False)
  return tf.quantization.fake_quant_with_min_max_vars(
      inputs, min_var, max_var, num_bits=8)


def _fake_quant_weights(weights, values, name):
  """Symmetric 8-bit fake quantization of conv weights, one range per layer.

  One range for the whole tensor rather than one per output channel: TF Lite
  runs per-channel quantized convolutions only in int8, not in the uint8 of a
  fully quantized model converted with inference_type=tf.uint8.
  """
  limit = np.float32(np.abs(values).max())
  with tf.variable_scope(name):
    min_var = _constant_variable('min', -limit, trainable=False)
    max_var = _constant_variable('max', limit, trainable=False)
  return tf.quantization.fake_quant_with_min_max_vars(
      weights, min_var, max_var, num_bits=8, narrow_range=True)


def sample_cnn_module_fn(params, image_size, quantize):
  """Builds the sample CNN module graph.

  Args:
    params: dict from sample_cnn_parameters().
    image_size: input height and width.
    quantize: whether to fake-quantize weights, activations and features.

  Returns:
    (images, features).
  """
  images = _images_placeholder(image_size)
  maybe_quant = _fake_quant if quantize else (lambda x, *unused: x)
  x = maybe_quant(images, 'images_quant', 0.0, 1.0)
  # Each arithmetic step gets its own range, so that a quantized TF Lite model
  # runs it in uint8 instead of dequantizing the input.
  x = maybe_quant(x * 2.0, 'scaled_quant', 0.0, 2.0)
  x = maybe_quant(x - 1.0, 'input_quant', -1.0, 1.0)

  def layer_fn(name, h, stride):
    with tf.variable_scope(name):
      weights = _constant_variable('weights', params['weights'][name])
      biases = _constant_variable('biases', params['biases'][name])
      if quantize:
        weights = _fake_quant_weights(weights, params['weights'][name],
                                      'weights_quant')
      h = _conv_relu(h, weights, biases, stride)
      return maybe_quant(h, 'activation_quant', 0.0,
                         params['activation_max'][name])

  activations = _sample_cnn_layers(x, layer_fn)
  pooled = []
  for name, _, _, _ in ALL_LAYERS:
    with tf.variable_scope(name):
      mean, maximum = _pool(activations[name], MAX_POOL_PATCH[name])
      # The maximum of quantized values is already on the activation grid.
      mean = maybe_quant(mean, 'mean_quant', 0.0, params['pooled_max'][name])
      pooled.extend((mean, maximum))
  features = tf.concat(pooled, axis=1)
  features = features * tf.constant(params['feature_scale'])
  features = maybe_quant(features, 'features_quant', 0.0,
                         params['feature_max'])
  return images, tf.identity(features, name='features')


def export_sample_cnn_module(export_dir, image_size=DEFAULT_SAMPLE_IMAGE_SIZE,
                             seed=0, quantize=False):
  """Exports the sample CNN as an image feature-vector module.

  Args:
    export_dir: folder to create; it must not exist or be empty.
    image_size: input height and width in pixels.
    seed: random seed of the weights; the same seed gives the same module.
    quantize: whether to instrument the module with FakeQuant ops.

  Returns:
    export_dir.

  Raises:
    ModuleBuildError: on a bad export_dir or image_size.
  """
  _check_image_size(image_size)
  if seed < 0:
    raise ModuleBuildError('seed must not be negative, not %d' % seed)
  _check_export_dir(export_dir)
  params = sample_cnn_parameters(image_size, seed)
  module_fn = functools.partial(sample_cnn_module_fn, params=params,
                                image_size=image_size, quantize=quantize)
  return export_module(module_fn, export_dir)


# ---------------------------------------------------------------------------
# Frozen classification graphs.
# ---------------------------------------------------------------------------


def _tensor_name(name):
  return name if ':' in name else name + ':0'


def load_graph_def(path):
  """Reads a binary GraphDef file.

  Args:
    path: file name.

  Returns:
    A tf.GraphDef.

  Raises:
    ModuleBuildError: if the file cannot be read or holds no GraphDef.
  """
  if not tf.gfile.Exists(path) or tf.gfile.IsDirectory(path):
    raise ModuleBuildError('%s is not a file' % path)
  try:
    with tf.gfile.GFile(path, 'rb') as f:
      data = f.read()
  except tf.errors.OpError as e:
    raise ModuleBuildError('cannot read %s: %s' % (path, e.message)) from None
  graph_def = tf.GraphDef()
  try:
    graph_def.ParseFromString(data)
  except (protobuf_message.DecodeError, RuntimeWarning, ValueError):
    graph_def = None
  if graph_def is None or not graph_def.node:
    raise ModuleBuildError('%s is not a binary GraphDef (.pb) file' % path)
  return graph_def


def _import_and_get(graph_def, tensor_names, input_map=None):
  """Imports graph_def into the current graph and returns named tensors."""
  try:
    return tf.import_graph_def(graph_def, input_map=input_map,
                               return_elements=list(tensor_names),
                               name='frozen_graph')
  except (ValueError, KeyError, TypeError) as e:
    message = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
    raise ModuleBuildError('cannot use the frozen graph: %s' %
                           message) from None


def _bottleneck_shape(graph_def, input_tensor, bottleneck_tensor, batch_size,
                      image_size):
  """Static shape of the bottleneck when fed a batch of batch_size images.

  Returns:
    The shape as a list, or None if the graph cannot take such a batch.
  """
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32,
                            [batch_size, image_size, image_size, 3])
    try:
      bottleneck, = tf.import_graph_def(
          graph_def, input_map={input_tensor: images},
          return_elements=[bottleneck_tensor], name='frozen_graph')
    except ValueError:
      return None
  return bottleneck.shape.as_list() if bottleneck.shape.rank else []


def inspect_frozen_graph(graph_def, input_tensor, bottleneck_tensor,
                         image_size):
  """Checks the tensor names and works out how to wrap the graph.

  Args:
    graph_def: the frozen graph.
    input_tensor: name of the image input tensor, e.g. 'input:0'.
    bottleneck_tensor: name of the feature tensor.
    image_size: the input size to use, or None to read it from the graph.

  Returns:
    A tuple (graph_def, image_size, feature_size, per_image): graph_def is
    pruned to the nodes the bottleneck needs (the classifier head often has
    the batch size baked in); per_image is True when even the pruned graph
    only works on one image at a time.

  Raises:
    ModuleBuildError: on a bad tensor name or an unusable graph.
  """
  node_names = {node.name for node in graph_def.node}
  for flag, name in (('--input_tensor', input_tensor),
                     ('--bottleneck_tensor', bottleneck_tensor)):
    if name.split(':')[0] not in node_names:
      raise ModuleBuildError('%s %s: the frozen graph has no such tensor' %
                             (flag, name))
  graph_def = tf.graph_util.extract_sub_graph(
      graph_def, [bottleneck_tensor.split(':')[0]])
  if input_tensor.split(':')[0] not in {node.name for node in graph_def.node}:
    raise ModuleBuildError('--bottleneck_tensor %s does not depend on '
                           '--input_tensor %s' %
                           (bottleneck_tensor, input_tensor))
  with tf.Graph().as_default():
    graph_input, _ = _import_and_get(graph_def,
                                     [input_tensor, bottleneck_tensor])
  if graph_input.dtype != tf.float32:
    raise ModuleBuildError(
        '--input_tensor %s has type %s; only float32 image inputs can be '
        'wrapped' % (input_tensor, graph_input.dtype.name))
  shape = graph_input.shape
  if shape.rank is not None and (shape.rank != 4 or
                                 shape.as_list()[3] not in (None, 3)):
    raise ModuleBuildError('--input_tensor %s has shape %s, not [batch, '
                           'height, width, 3]' % (input_tensor, shape))
  graph_size = shape.as_list()[1:3] if shape.rank == 4 else [None, None]
  if image_size is None:
    if None in graph_size or graph_size[0] != graph_size[1]:
      raise ModuleBuildError('the frozen graph does not fix a square input '
                             'size; pass --image_size')
    image_size = graph_size[0]
  _check_image_size(image_size)
  for dim in graph_size:
    if dim is not None and dim != image_size:
      raise ModuleBuildError('--image_size %d does not match the input %s of '
                             'shape %s' % (image_size, input_tensor, shape))

  # A batch of 2 shows whether the graph is tied to single images.
  dims = _bottleneck_shape(graph_def, input_tensor, bottleneck_tensor, 2,
                           image_size)
  per_image = dims is None or dims[:1] != [2]
  if per_image:
    dims = _bottleneck_shape(graph_def, input_tensor, bottleneck_tensor, 1,
                             image_size)
    if dims is None:
      raise ModuleBuildError('the frozen graph does not accept %dx%d images '
                             'at %s' % (image_size, image_size, input_tensor))
  if not dims or None in dims[1:]:
    raise ModuleBuildError('--bottleneck_tensor %s has no fully known shape '
                           'per image (%s)' % (bottleneck_tensor, dims))
  feature_size = int(np.prod(dims[1:]))
  return graph_def, image_size, feature_size, per_image


def frozen_graph_module_fn(graph_def, input_tensor, bottleneck_tensor,
                           image_size, input_range, feature_size, per_image):
  """Builds a module graph that wraps a frozen graph.

  Args:
    graph_def: the frozen graph.
    input_tensor: name of its image input tensor.
    bottleneck_tensor: name of its feature tensor.
    image_size: input height and width.
    input_range: (low, high) of the pixel values the graph expects.
    feature_size: number of values in one image's bottleneck.
    per_image: whether to run the graph on one image at a time.

  Returns:
    (images, features).
  """
  images = _images_placeholder(image_size)
  low, high = input_range
  scaled = images * (high - low) + low

  def bottleneck_of(batch):
    bottleneck, = tf.import_graph_def(graph_def,
                                      input_map={input_tensor: batch},
                                      return_elements=[bottleneck_tensor],
                                      name='frozen_graph')
    return bottleneck

  if per_image:
    # The graph's batch size is baked into its ops; feed it images one by one.
    features = tf.map_fn(
        lambda image: tf.reshape(bottleneck_of(image[None]), [feature_size]),
        scaled, dtype=tf.float32, back_prop=False)
  else:
    features = tf.reshape(bottleneck_of(scaled), [-1, feature_size])
  return images, tf.identity(features, name='features')


def export_frozen_graph_module(export_dir, frozen_graph_path, input_tensor,
                               bottleneck_tensor, image_size=None,
                               input_range=(-1.0, 1.0)):
  """Exports a frozen classification graph as a feature-vector module.

  Args:
    export_dir: folder to create; it must not exist or be empty.
    frozen_graph_path: binary GraphDef file.
    input_tensor: name of the float image input, e.g. 'input:0'.
    bottleneck_tensor: name of the feature tensor, e.g.
      'MobilenetV1/Logits/AvgPool_1a/AvgPool:0'.
    image_size: input height and width, or None to take it from the graph.
    input_range: (low, high) of the pixel values the graph expects; the
      module's [0, 1] images are mapped linearly onto it.

  Returns:
    export_dir.

  Raises:
    ModuleBuildError: on a bad path, graph, tensor name or size.
  """
  _check_export_dir(export_dir)
  low, high = input_range
  if not low < high:
    raise ModuleBuildError('input range must be LOW,HIGH with LOW < HIGH, not '
                           '%s,%s' % (low, high))
  input_tensor = _tensor_name(input_tensor)
  bottleneck_tensor = _tensor_name(bottleneck_tensor)
  graph_def = load_graph_def(frozen_graph_path)
  graph_def, image_size, feature_size, per_image = inspect_frozen_graph(
      graph_def, input_tensor, bottleneck_tensor, image_size)
  module_fn = functools.partial(
      frozen_graph_module_fn, graph_def=graph_def, input_tensor=input_tensor,
      bottleneck_tensor=bottleneck_tensor, image_size=image_size,
      input_range=(float(low), float(high)), feature_size=feature_size,
      per_image=per_image)
  return export_module(module_fn, export_dir)


# ---------------------------------------------------------------------------
# Keras applications architectures.
# ---------------------------------------------------------------------------

# Architecture -> (name in keras.applications, default image size). Both take
# pixel values in [-1, 1] ("tf" preprocessing).
KERAS_ARCHITECTURES = {
    'inception_v3': ('InceptionV3', 299),
    'mobilenet_v2': ('MobileNetV2', 224),
}


def _keras_feature_model(architecture, image_size, weights):
  constructor = getattr(retrain.keras_2().applications,
                        KERAS_ARCHITECTURES[architecture][0])
  return constructor(input_shape=(image_size, image_size, 3),
                     include_top=False, pooling='avg', weights=weights)


def keras_module_fn(architecture, image_size, weight_names):
  """Builds a module graph around a Keras applications network.

  Args:
    architecture: a key of KERAS_ARCHITECTURES.
    image_size: input height and width.
    weight_names: a list that receives the module's variable names in the
      order of the Keras model's weights (filled on the first call).

  Returns:
    (images, features).
  """
  images = _images_placeholder(image_size)
  model = _keras_feature_model(architecture, image_size, weights=None)
  features = model(images * 2.0 - 1.0, training=False)
  if not weight_names:
    weight_names.extend(weight.name.split(':')[0] for weight in model.weights)
  return images, tf.identity(features, name='features')


def _keras_weight_values(architecture, image_size, weights):
  """Loads 'imagenet' or a weights file into the model; returns the values."""
  # Keras 2 loads the weights into the default Session.
  with tf.Graph().as_default(), tf.Session():
    try:
      model = _keras_feature_model(architecture, image_size, weights)
    except Exception as e:  # pylint: disable=broad-except
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(
          e).__name__
      where = ('downloading the ImageNet weights needs the network; pass a '
               'local weights file instead' if weights == 'imagenet' else
               'is it a Keras weights file for %s without its top '
               'layer?' % architecture)
      raise ModuleBuildError('could not load %s weights %s (%s): %s' %
                             (architecture, weights, reason, where))
    return model.get_weights()


def export_keras_module(export_dir, architecture, image_size=None,
                        weights='none'):
  """Exports a Keras applications network as a feature-vector module.

  Args:
    export_dir: folder to create; it must not exist or be empty.
    architecture: a key of KERAS_ARCHITECTURES, e.g. 'inception_v3'.
    image_size: input height and width; the architecture's default if None.
    weights: 'none' (random initial weights, for benchmarks), 'imagenet'
      (downloaded by Keras, needs the network) or a Keras weights file of the
      network without its top layer.

  Returns:
    export_dir.

  Raises:
    ModuleBuildError: on an unknown architecture or weights that cannot load.
  """
  _check_export_dir(export_dir)
  if architecture not in KERAS_ARCHITECTURES:
    raise ModuleBuildError('unknown architecture %s; choose one of %s' % (
        architecture, ', '.join(sorted(KERAS_ARCHITECTURES))))
  image_size = image_size or KERAS_ARCHITECTURES[architecture][1]
  if weights not in ('none', 'imagenet') and not os.path.isfile(weights):
    raise ModuleBuildError('weights file %s not found' % weights)
  values = (None if weights == 'none' else
            _keras_weight_values(architecture, image_size, weights))
  weight_names = []
  module_fn = functools.partial(keras_module_fn, architecture=architecture,
                                image_size=image_size,
                                weight_names=weight_names)
  return export_module(
      module_fn, export_dir,
      variable_values=values and (lambda: dict(zip(weight_names, values))))


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------


def _parse_range(text):
  try:
    low, high = (float(part) for part in text.split(','))
  except ValueError:
    raise argparse.ArgumentTypeError(
        'expected LOW,HIGH such as -1,1, not %r' % text) from None
  if not low < high:
    raise argparse.ArgumentTypeError('LOW must be below HIGH in %r' % text)
  return low, high


def _join_input_range(argv):
  """Turns `--input_range -1,1` into `--input_range=-1,1`.

  argparse would otherwise take a value starting with '-' for an option.
  """
  joined = []
  index = 0
  while index < len(argv):
    if argv[index] == '--input_range' and index + 1 < len(argv):
      joined.append('--input_range=' + argv[index + 1])
      index += 2
    else:
      joined.append(argv[index])
      index += 1
  return joined


def parse_args(argv=None):
  """Parses and cross-checks the command line."""
  parser = argparse.ArgumentParser(
      description='Export an image feature-vector module in the TF1 Hub '
      'format.')
  parser.add_argument('output_dir',
                      help='Folder to write the module to (must not exist or '
                      'be empty).')
  parser.add_argument('--kind', choices=('sample_cnn', 'frozen_graph', 'keras'),
                      default='sample_cnn',
                      help='What to export (default: %(default)s).')
  parser.add_argument('--image_size', type=int, default=None,
                      help='Input height and width (default: %d for '
                      'sample_cnn, the graph\'s own size for frozen_graph).' %
                      DEFAULT_SAMPLE_IMAGE_SIZE)
  parser.add_argument('--seed', type=int, default=None,
                      help='sample_cnn: random seed of the weights '
                      '(default: 0).')
  parser.add_argument('--quantize', action='store_true',
                      help='sample_cnn: add FakeQuant ops for quantization.')
  parser.add_argument('--frozen_graph',
                      help='frozen_graph: binary GraphDef (.pb) file.')
  parser.add_argument('--input_tensor', default=None,
                      help='frozen_graph: float image input tensor '
                      '(default: input:0).')
  parser.add_argument('--bottleneck_tensor', default=None,
                      help='frozen_graph: feature tensor, e.g. '
                      'MobilenetV1/Logits/AvgPool_1a/AvgPool:0.')
  parser.add_argument('--input_range', type=_parse_range, default=None,
                      help='frozen_graph: LOW,HIGH of the pixel values the '
                      'graph expects (default: -1,1).')
  parser.add_argument('--architecture', default=None,
                      choices=sorted(KERAS_ARCHITECTURES),
                      help='keras: the Keras applications network '
                      '(default: inception_v3).')
  parser.add_argument('--weights', default=None,
                      help='keras: none (random, for benchmarks), imagenet '
                      '(downloads; needs the network) or a Keras weights '
                      'file of the network without its top (default: none).')
  args = parser.parse_args(_join_input_range(
      sys.argv[1:] if argv is None else list(argv)))

  if args.kind != 'keras':
    for flag in ('architecture', 'weights'):
      if getattr(args, flag) is not None:
        parser.error('--%s only applies to --kind keras' % flag)
  if args.kind == 'keras':
    for flag in ('frozen_graph', 'input_tensor', 'bottleneck_tensor',
                 'input_range', 'seed'):
      if getattr(args, flag) is not None:
        parser.error('--%s does not apply to --kind keras' % flag)
    if args.quantize:
      parser.error('--quantize only applies to --kind sample_cnn')
    args.architecture = args.architecture or 'inception_v3'
    args.weights = args.weights or 'none'
  elif args.kind == 'sample_cnn':
    for flag in ('frozen_graph', 'input_tensor', 'bottleneck_tensor',
                 'input_range'):
      if getattr(args, flag) is not None:
        parser.error('--%s only applies to --kind frozen_graph' % flag)
    if args.image_size is None:
      args.image_size = DEFAULT_SAMPLE_IMAGE_SIZE
    if args.seed is None:
      args.seed = 0
    if args.seed < 0:
      parser.error('--seed must not be negative')
  else:
    for flag in ('seed', 'quantize'):
      if getattr(args, flag) not in (None, False):
        parser.error('--%s only applies to --kind sample_cnn' % flag)
    if not args.frozen_graph:
      parser.error('--kind frozen_graph needs --frozen_graph')
    if not args.bottleneck_tensor:
      parser.error('--kind frozen_graph needs --bottleneck_tensor')
    if args.input_tensor is None:
      args.input_tensor = 'input:0'
    if args.input_range is None:
      args.input_range = (-1.0, 1.0)
  if args.image_size is not None and not (
      MIN_IMAGE_SIZE <= args.image_size <= MAX_IMAGE_SIZE):
    parser.error('--image_size must be between %d and %d' %
                 (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE))
  return args


def main(argv=None):
  args = parse_args(argv)
  tf.logging.set_verbosity(tf.logging.ERROR)
  try:
    if args.kind == 'sample_cnn':
      path = export_sample_cnn_module(args.output_dir, args.image_size,
                                      args.seed, args.quantize)
    elif args.kind == 'keras':
      path = export_keras_module(args.output_dir, args.architecture,
                                 args.image_size, args.weights)
    else:
      path = export_frozen_graph_module(
          args.output_dir, args.frozen_graph, args.input_tensor,
          args.bottleneck_tensor, args.image_size, args.input_range)
  except (ModuleBuildError, OSError) as e:
    print('make_image_module.py: error: %s' % e, file=sys.stderr)
    return 1
  print('Exported %s module to %s' % (args.kind, path))
  return 0


if __name__ == '__main__':
  sys.exit(main())
