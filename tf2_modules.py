# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""TF2 SavedModel image feature vectors as retrain.py's modules.

An optional extra of retrain.py, beside it: retrain.py's load_module_spec
imports this module only when --tfhub_module is a TF2 SavedModel (the format
of every current TF Hub / Kaggle image model) rather than a TF1 Hub module.
load_tf2_module finds how the SavedModel takes images and returns features,
and describes it as a TF2ImageModule, which the rest of retrain.py uses as it
uses its own TF1ImageModule. Beam workers (beam_bottlenecks.py) import it too,
for TF2 modules.
"""

import collections

# First: it loads TensorFlow quietly and in TF1 mode.
import retrain
import tensorflow.compat.v1 as tf


class TF2ImageModule(collections.namedtuple(
    'TF2ImageModule', ['handle', 'path', 'image_size', 'variable_size',
                       'feature_width', 'signature', 'input_key',
                       'output_key'], defaults=(None, None, None))):
  """A TF2 SavedModel image feature vector, as load_module_spec describes it.

  It stands in for retrain.TF1ImageModule where the module is a TF2
  SavedModel (the format of every current TF Hub / Kaggle image model): the
  functions of retrain.py that take a module_spec accept either.

  Attributes:
    handle: The --tfhub_module value.
    path: The local SavedModel folder (a URL is downloaded and cached by
      tensorflow_hub).
    image_size: (height, width) the images are resized to.
    variable_size: Whether the SavedModel takes images of any size, so that
      image_size came from --image_size.
    feature_width: The number of features per image.
    signature: None to call the SavedModel itself (the reusable SavedModel
      API of Hub image models), else the name of the signature to call.
    input_key: With a signature, the name of its image input.
    output_key: With a signature, the name of its feature vector output.
  """

  def apply_fn(self):
    """Loads the SavedModel into the current graph.

    Returns:
      A function from images (float [None, height, width, 3] in [0, 1]) to
      features [None, feature_width]; calling it again shares the variables.
    """
    hub = retrain.tensorflow_hub()
    if self.signature is None:
      return hub.KerasLayer(self.path, trainable=False)
    layer = hub.KerasLayer(self.path, trainable=False,
                           signature=self.signature,
                           output_key=self.output_key)
    return lambda images: layer({self.input_key: images})


def _is_image_spec(spec):
  """Tells whether a TensorSpec is float images [batch, height, width, 3]."""
  return (isinstance(spec, tf.TensorSpec) and spec.dtype == tf.float32 and
          spec.shape.ndims == 4 and spec.shape.as_list()[3] in (None, 3))


def _tf2_image_input(loaded):
  """Finds how to feed images to a loaded TF2 SavedModel.

  Returns:
    (signature name or None to call the object, input key, TensorSpec of the
    images), or None when it takes no float [batch, height, width, 3] images.
  """
  call = getattr(loaded, '__call__', None)
  for function in getattr(call, 'concrete_functions', None) or ():
    args, _ = function.structured_input_signature
    if args and _is_image_spec(args[0]):
      return None, None, args[0]
  for name in ('serving_default', 'default'):
    signature = loaded.signatures.get(name) if hasattr(
        loaded, 'signatures') else None
    if signature is None:
      continue
    inputs = signature.structured_input_signature[1]
    if len(inputs) == 1 and _is_image_spec(list(inputs.values())[0]):
      return name, list(inputs)[0], list(inputs.values())[0]
  return None


def _tf2_feature_output_key(signature):
  """The key of a signature's only [batch, features] float output, or None."""
  outputs = signature.structured_outputs
  keys = [key for key, spec in outputs.items()
          if spec.dtype == tf.float32 and spec.shape.ndims == 2]
  for preferred in ('feature_vector', 'default'):
    if preferred in keys:
      return preferred
  return keys[0] if len(keys) == 1 else None


def load_tf2_module(module_handle, path, image_size):
  """Describes a TF2 SavedModel image feature vector.

  Args:
    module_handle: The --tfhub_module value.
    path: The local SavedModel folder.
    image_size: The --image_size value, or None.

  Returns:
    A TF2ImageModule.

  Raises:
    retrain.RetrainError: if the SavedModel cannot be loaded or is not an
      image feature vector, or when its input size and --image_size
      disagree.
  """
  not_a_feature_vector = (
      '--tfhub_module %s is a TF2 SavedModel but not an image feature vector: '
      'it must take float images [batch, height, width, 3] and return '
      '[batch, features]; pick the feature_vector version of the model.' %
      module_handle)
  with tf.Graph().as_default():
    try:
      loaded = retrain.tensorflow_hub().load(path)
    except Exception as e:  # pylint: disable=broad-except
      raise retrain.RetrainError('Could not load the TF2 SavedModel %s: %s' %
                                 (module_handle, retrain.error_reason(e)))
    image_input = _tf2_image_input(loaded)
    if image_input is None:
      raise retrain.RetrainError(not_a_feature_vector)
    signature, input_key, spec = image_input
    output_key = None
    if signature is not None:
      output_key = _tf2_feature_output_key(loaded.signatures[signature])
      if output_key is None:
        raise retrain.RetrainError(not_a_feature_vector)
    height, width = spec.shape.as_list()[1:3]
    variable_size = height is None or width is None
    height, width = retrain.checked_image_size(
        module_handle, (height, width), variable_size, image_size)
    module = TF2ImageModule(module_handle, path, (height, width),
                            variable_size, None, signature, input_key,
                            output_key)
    try:
      features = module.apply_fn()(
          tf.placeholder(tf.float32, [None, height, width, 3]))
    except (ValueError, TypeError) as e:
      raise retrain.RetrainError('%s (%s)' % (not_a_feature_vector[:-1],
                                              retrain.error_reason(e)))
    if (not isinstance(features, tf.Tensor) or features.shape.ndims != 2 or
        features.shape.as_list()[1] is None):
      raise retrain.RetrainError(not_a_feature_vector)
    return module._replace(feature_width=features.shape.as_list()[1])
