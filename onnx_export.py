# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""ONNX export of retrain.py's trained classifier (--onnx_output_file).

An optional extra of retrain.py, beside it: retrain.py imports this module
only when --onnx_output_file asks for an ONNX model, first when it checks the
flags (so that a missing package is said before any training), then for the
export after training. It converts the frozen graph with tf2onnx, runs the
result with ONNX Runtime next to the frozen graph on the run's own images,
and writes the file only when both agree. onnx_session and onnx_labels run
and read a .onnx file for label_image.py and the tests.

The packages (tf2onnx, onnx, onnxruntime) are in requirements-onnx.txt, which
installs beside either stack: pip install -r requirements-onnx.txt.
"""

import collections
import importlib
import time

import numpy as np
# First: it loads TensorFlow quietly and in TF1 mode.
import retrain
import tensorflow.compat.v1 as tf

# The packages each use needs: converting (retrain.py), running (both). onnx
# first: tf2onnx imports it, and a broken onnx should be named as such.
CONVERT_PACKAGES = ('onnx', 'onnxruntime', 'tf2onnx')
RUN_PACKAGES = ('onnxruntime',)

# tf2onnx 1.17's default opset, named so that a newer tf2onnx writes the same
# model; every ONNX Runtime since 1.10 (2021) runs it.
ONNX_OPSET = 15

# The names of the ONNX model's input and output: those of the SavedModel's
# serving_default signature, rather than the graph's 'Placeholder:0'.
INPUT_NAME = 'image'
OUTPUT_NAME = 'prediction'

# Where the model's labels (one per line, class-index order) are kept in its
# metadata_props.
LABELS_KEY = 'labels'
# A multi-label model's --multi_label_threshold, in the same metadata.
THRESHOLD_KEY = 'multi_label_threshold'

# The largest probability difference from the frozen graph that is rounding
# (measured in docs/exports.md); a wrong conversion differs by far more. A
# module with fake quantization ops becomes QuantizeLinear/DequantizeLinear
# pairs, which round some values a quantization step off TensorFlow's.
MAX_PROBABILITY_DIFFERENCE = 1e-3
MAX_QUANTIZED_PROBABILITY_DIFFERENCE = 0.05


def import_packages(asked_by, names=CONVERT_PACKAGES):
  """Imports the packages of requirements-onnx.txt that a flag needs.

  Args:
    asked_by: The flag that needs them, for the message.
    names: The packages' module names.

  Returns:
    The modules, in the order of names.

  Raises:
    retrain.RetrainError: if one is missing or does not import, in one line
      that says what to install.
  """
  modules = []
  for name in names:
    try:
      modules.append(importlib.import_module(name))
    except ImportError as e:
      if e.name != name:  # Installed, but what it imports is missing.
        raise _unusable(asked_by, name, e)
      raise retrain.RetrainError(
          '%s needs the package %s, which is not installed: pip install -r '
          'requirements-onnx.txt (it comes with retrain.py; it installs '
          'tf2onnx, onnx and onnxruntime).' % (asked_by, name))
    except Exception as e:  # pylint: disable=broad-except
      # E.g. an onnx too new for TensorFlow 2.15's ml_dtypes.
      raise _unusable(asked_by, name, e)
  return modules


def _unusable(asked_by, name, error):
  return retrain.RetrainError(
      '%s needs the package %s, which is installed but cannot be imported '
      '(%s): install the versions of requirements-onnx.txt: pip install -r '
      'requirements-onnx.txt.' % (asked_by, name, retrain.error_reason(error)))


def _graph_def_for_onnx(eval_session, fetches):
  """The frozen eval graph, each PlaceholderWithDefault an Identity, its
  function calls inlined.

  The new layer's input is one (training feeds it bottlenecks); tf2onnx would
  make it a second model input. As an Identity of its default it passes the
  module's features on, as the frozen graph does when run. A TF2 module is a
  StatefulPartitionedCall of its functions, which tf2onnx leaves as it is.

  Args:
    eval_session: The EvalSession with the trained values.
    fetches: The input's and the output's tensor names, which stay.
  """
  graph_def = retrain.frozen_graph_def(eval_session)
  for node in graph_def.node:
    if node.op == 'PlaceholderWithDefault':
      node.op = 'Identity'
      node.attr['T'].CopyFrom(node.attr['dtype'])
      del node.attr['dtype']
      del node.attr['shape']
  if not graph_def.library.function:
    return graph_def
  # As TensorFlow's convert_variables_to_constants_v2 inlines: Grappler's
  # function optimizer alone, aggressive so that stateful calls go too.
  from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, rewriter_config_pb2  # pylint: disable=g-import-not-at-top,g-multiple-import
  from tensorflow.python.grappler import tf_optimizer  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():  # Not the collections of the run's graph.
    meta_graph = tf.train.export_meta_graph(graph_def=graph_def)
  kept = meta_graph_pb2.CollectionDef()
  kept.node_list.value.extend(fetches)
  meta_graph.collection_def['train_op'].CopyFrom(kept)
  config = config_pb2.ConfigProto()
  rewrite_options = config.graph_options.rewrite_options
  rewrite_options.min_graph_nodes = -1
  rewrite_options.optimizers.append('function')
  rewrite_options.function_optimization = (
      rewriter_config_pb2.RewriterConfig.AGGRESSIVE)
  return tf_optimizer.OptimizeGraph(config, meta_graph)


def convert_to_onnx(eval_session, labels):
  """Converts the trained classifier to an ONNX model.

  Args:
    eval_session: The EvalSession with the trained values.
    labels: The class names in class-index order, kept in the model's
      metadata_props under LABELS_KEY (and a multi-label layer's threshold
      under THRESHOLD_KEY).

  Returns:
    The model's bytes: input INPUT_NAME, float [batch, H, W, 3] in [0, 1];
    output OUTPUT_NAME, the probabilities [batch, classes].

  Raises:
    retrain.RetrainError: if tf2onnx cannot convert the graph.
  """
  onnx, _, tf2onnx = import_packages('--onnx_output_file')
  input_name = eval_session.resized_input_tensor.name
  output_name = eval_session.final_tensor_name + ':0'
  try:
    model, _ = tf2onnx.convert.from_graph_def(
        _graph_def_for_onnx(eval_session, [input_name, output_name]),
        name='retrained_image_classifier',
        input_names=[input_name], output_names=[output_name],
        opset=ONNX_OPSET, tensors_to_rename={input_name: INPUT_NAME,
                                             output_name: OUTPUT_NAME})
  except Exception as e:  # pylint: disable=broad-except
    raise retrain.RetrainError(
        'tf2onnx cannot convert the trained graph (%s); the other outputs are '
        'written, only --onnx_output_file is not.' % retrain.error_reason(e))
  for value in list(model.graph.input) + list(model.graph.output):
    value.type.tensor_type.shape.dim[0].dim_param = 'batch'
  props = {LABELS_KEY: '\n'.join(labels)}
  if eval_session.multi_label_threshold is not None:
    props[THRESHOLD_KEY] = repr(eval_session.multi_label_threshold)
  onnx.helper.set_model_props(model, props)
  return model.SerializeToString()


def onnx_session(model, providers=None):
  """ONNX Runtime's InferenceSession of a model's bytes or file.

  Args:
    model: The .onnx file's bytes, or its path.
    providers: Execution providers; default: every one installed (a GPU's
      with onnxruntime-gpu).

  Returns:
    The InferenceSession.

  Raises:
    retrain.RetrainError: if onnxruntime is not installed.
    ValueError: if the bytes or the file are not an ONNX model it can run.
  """
  onnxruntime, = import_packages('--onnx_file', RUN_PACKAGES)
  options = onnxruntime.SessionOptions()
  options.log_severity_level = 3  # Errors only: not its start-up notes.
  try:
    return onnxruntime.InferenceSession(
        model, options,
        providers=providers or onnxruntime.get_available_providers())
  except Exception as e:  # pylint: disable=broad-except
    # onnxruntime's own exception types differ between releases.
    raise ValueError(retrain.error_reason(e))


def onnx_labels(session):
  """The labels in an ONNX model's metadata (convert_to_onnx), or None."""
  text = session.get_modelmeta().custom_metadata_map.get(LABELS_KEY)
  return text.split('\n') if text else None


def onnx_multi_label_threshold(session):
  """A multi-label model's threshold in its metadata, or None."""
  text = session.get_modelmeta().custom_metadata_map.get(THRESHOLD_KEY)
  return float(text) if text else None


# What check_onnx_model found: how many images, how many the ONNX model and
# the frozen graph classify right, on how many their top-1 agree, and the
# largest difference of a probability.
OnnxCheck = collections.namedtuple('OnnxCheck', [
    'count', 'onnx_correct', 'graph_correct', 'agreeing', 'max_difference'])


def check_onnx_model(session, eval_session, batches):
  """Classifies images with an ONNX model and with the eval graph.

  Args:
    session: The ONNX model's InferenceSession.
    eval_session: The EvalSession of the same trained layer.
    batches: (class indices, float images [n, H, W, 3] in [0, 1]) pairs.

  Returns:
    An OnnxCheck.
  """
  probabilities = eval_session.sess.graph.get_tensor_by_name(
      eval_session.final_tensor_name + ':0')
  threshold = eval_session.multi_label_threshold
  count = onnx_correct = graph_correct = agreeing = 0
  max_difference = 0.0
  for truth, images in batches:
    expected = eval_session.sess.run(
        probabilities, {eval_session.resized_input_tensor: images})
    actual, = session.run([OUTPUT_NAME], {INPUT_NAME: images})
    onnx_top = retrain.predicted_classes(actual, threshold)
    graph_top = retrain.predicted_classes(expected, threshold)
    count += len(truth)
    onnx_correct += retrain.count_equal(onnx_top, truth)
    graph_correct += retrain.count_equal(graph_top, truth)
    agreeing += retrain.count_equal(onnx_top, graph_top)
    max_difference = max(max_difference,
                         float(np.max(np.abs(actual - expected))))
  return OnnxCheck(count, onnx_correct, graph_correct, agreeing,
                   max_difference)


def _check_images(run_images):
  """(category, [(path, class index)]): the test images, else the
  validation images, else the training images (always some)."""
  for category in ('testing', 'validation', 'training'):
    entries = retrain.image_entries(run_images.image_lists,
                                    run_images.image_dir, category)
    if entries:
      return category, entries
  return 'training', []


def export_checked_onnx(onnx_file, eval_session, run_images):
  """Converts the classifier to ONNX, checks it, then writes it atomically.

  ONNX Runtime runs the model next to the frozen graph on the test images
  (else the validation, else the training images); one line logs how they
  compare. The file is written only if no probability differs by more than
  MAX_PROBABILITY_DIFFERENCE (MAX_QUANTIZED_PROBABILITY_DIFFERENCE for a
  module with fake quantization ops).

  Args:
    onnx_file: Where to write the .onnx file (--onnx_output_file).
    eval_session: The run's EvalSession.
    run_images: retrain.RunImages, for the check.

  Returns:
    The OnnxCheck.

  Raises:
    retrain.RetrainError: if the model cannot be converted or run, or
      disagrees with the frozen graph; the file is not written then.
  """
  tf.logging.info('Save ONNX model to : ' + onnx_file)
  start = time.time()
  content = convert_to_onnx(eval_session,
                            retrain.label_names_of(run_images.image_lists))
  seconds = time.time() - start
  try:
    session = onnx_session(content, providers=['CPUExecutionProvider'])
  except ValueError as e:
    raise retrain.RetrainError(
        'ONNX Runtime cannot run the converted model (%s); the other outputs '
        'are written, only --onnx_output_file is not.' % e)
  category, entries = _check_images(run_images)
  check = check_onnx_model(session, eval_session, retrain.decode_entries(
      entries, run_images.image_shape))
  words = {'testing': 'test'}.get(category, category)
  agreement = ('top-1' if eval_session.multi_label_threshold is None
               else 'label-set')
  if check.max_difference > (MAX_QUANTIZED_PROBABILITY_DIFFERENCE
                             if eval_session.wants_quantization else
                             MAX_PROBABILITY_DIFFERENCE):
    raise retrain.RetrainError(
        'The ONNX model disagrees with the frozen graph on the %s images '
        '(max probability difference %.3g, %s agreement %d/%d), so %s is '
        'not written (the other outputs are): use the versions of '
        'requirements-onnx.txt.' % (words, check.max_difference, agreement,
                                    check.agreeing, check.count, onnx_file))
  retrain.write_file_atomically(onnx_file, content, mode='wb')
  tf.logging.info(
      'ONNX %s accuracy = %.1f%% (N=%d), frozen graph %.1f%%, %s '
      'agreement %d/%d, max probability difference %.1e, %.2f MB, converted '
      'in %.1f s', words, 100.0 * check.onnx_correct / max(check.count, 1),
      check.count, 100.0 * check.graph_correct / max(check.count, 1),
      agreement, check.agreeing, check.count, check.max_difference, len(content) / 1e6,
      seconds)
  return check
