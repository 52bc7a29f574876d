# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""TF Lite export of retrain.py's trained classifier (--tflite_output_file).

An optional extra of retrain.py, beside it: retrain.py imports this module
only when --tflite_output_file asks for a TF Lite model, first when it checks
the flags (so that a missing file is said before any training), then for the
export after training. It converts the frozen graph to a .tflite file, float
or quantized as --tflite_quantize says, puts TF Lite metadata (labels,
normalisation) into it with tflite_metadata.py, and compares the model's
accuracy with the frozen graph's. tflite_interpreter and tflite_predictor run
a .tflite file for label_image.py and the tests.
"""

import collections
import functools
import logging
import os
import random
import sys
import tempfile

import numpy as np
# First: it loads TensorFlow quietly and in TF1 mode.
import retrain
import tensorflow.compat.v1 as tf


# What export_tflite wrote: the model's bytes, its quantization (one of
# retrain.TFLITE_QUANTIZATIONS; 'uint8' for a FakeQuant-instrumented module
# too) and whether the TF Lite metadata (labels, normalisation) is in it.
TfliteExport = collections.namedtuple('TfliteExport', [
    'content', 'quantization', 'has_metadata'])


def export_tflite(tflite_file, module_spec, class_count, eval_session=None,
                  quantize='none', calibration_images=None, labels=None):
  """Converts the trained classifier to a TF Lite model file.

  The model takes one image, float [1, height, width, 3] in [0, 1], and
  returns the probabilities [1, classes]. quantize 'dynamic' stores the
  weights in 8 bits and 'float16' in 16; 'uint8' quantizes every op,
  calibrated on calibration_images, with uint8 input (real value = q / 255,
  i.e. the pixel values as they are) and uint8 probabilities (real value =
  q / 256). A module instrumented for quantization (FakeQuant ops) always
  gives the 'uint8' model, without calibration.

  The file holds TF Lite metadata (tflite_with_metadata): the labels, the
  input normalisation and range, a name and a description, which MediaPipe's
  and the Task Library's classifiers read.

  Args:
    tflite_file: Where to write the .tflite file.
    module_spec: The image module, as load_module_spec returns it.
    class_count: Number of classes.
    eval_session: An EvalSession to reuse; built if None.
    quantize: One of retrain.TFLITE_QUANTIZATIONS (--tflite_quantize).
    calibration_images: For 'uint8': float images [N, height, width, 3] in
      [0, 1], decoded as for training.
    labels: The class names in class-index order, for the metadata; the class
      indices as strings if None.

  Returns:
    A TfliteExport.

  Raises:
    retrain.RetrainError: if TF Lite cannot convert the graph.
  """
  if eval_session is None:
    eval_session = retrain.build_eval_session(module_spec, class_count)
  graph_def = retrain.frozen_graph_def(eval_session)
  if any(node.op in retrain.FAKE_QUANT_OPS for node in graph_def.node):
    quantize = 'fake_quant'
  with tf.Graph().as_default() as graph:
    tf.import_graph_def(graph_def, name='')
    converter = _tflite_converter(
        graph, eval_session.resized_input_tensor.op.name,
        eval_session.final_tensor_name, quantize, calibration_images)
    try:
      tflite_model = _quietly(converter.convert)
    except Exception as e:  # pylint: disable=broad-except
      raise retrain.RetrainError(
          'TF Lite cannot convert the trained graph (%s); the frozen graph, '
          'labels and SavedModel are written, only --tflite_output_file is '
          'not.' % retrain.error_reason(e))
  quantize = 'uint8' if quantize == 'fake_quant' else quantize
  if labels is None:
    labels = [str(index) for index in range(class_count)]
  with_metadata = tflite_with_metadata(
      tflite_model, labels, TfliteNormalization(0.0, 255.0),
      'Image classifier retrained by retrain.py (%s)' % quantize)
  if with_metadata is None:
    tf.logging.info('TF Lite metadata (labels, normalisation) not written: '
                    'put tflite_metadata.py (it comes with retrain.py) '
                    'beside retrain.py, in %s.',
                    os.path.dirname(os.path.abspath(retrain.__file__)))
  retrain.write_file_atomically(tflite_file, with_metadata or tflite_model,
                                mode='wb')
  return TfliteExport(with_metadata or tflite_model, quantize,
                      with_metadata is not None)


def _tflite_converter(graph, input_name, final_tensor_name, quantize,
                      calibration_images):
  """The TFLiteConverter of graph for one image, set up for quantize
  (one of retrain.TFLITE_QUANTIZATIONS, or 'fake_quant')."""
  lite_input = graph.get_tensor_by_name(input_name + ':0')
  lite_input.set_shape([1] + lite_input.get_shape().as_list()[1:])
  converter = tf.lite.TFLiteConverter(
      graph.as_graph_def(), [lite_input],
      [graph.get_tensor_by_name(final_tensor_name + ':0')])
  if quantize == 'fake_quant':
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {input_name: (0.0, 255.0)}
  elif quantize != 'none':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantize == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif quantize == 'uint8':
    converter.representative_dataset = functools.partial(
        _calibration_samples, calibration_images)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
  return converter


def _calibration_samples(images):
  """Yields each image as a representative input [1, H, W, 3].

  The first comes with one pixel value 0 and one 1, so that the calibrated
  input range is exactly [0, 1]: the uint8 input is then the pixel values
  0-255 as they are.
  """
  for index, image in enumerate(images):
    image = np.array(image[None], dtype=np.float32)
    if index == 0:
      image.flat[0], image.flat[-1] = 0.0, 1.0
    yield [image]


# How retrain.py exports to TF Lite: the flags --tflite_output_file,
# --tflite_quantize, --tflite_calibration_images and --random_seed (which
# draws the calibration images).
TfliteOptions = collections.namedtuple('TfliteOptions', [
    'tflite_file', 'quantize', 'calibration_images', 'seed'])

def export_checked_tflite(options, module_spec, eval_session, run_images):
  """Writes the TF Lite model, then logs its accuracy beside the graph's.

  The model is run with TF Lite's interpreter on the test images (or the
  validation images when there is no test image), and one line compares it
  with the frozen graph on the same images.

  Args:
    options: TfliteOptions.
    module_spec: The image module, as load_module_spec returns it.
    eval_session: The run's EvalSession.
    run_images: retrain.RunImages, for the calibration and the check.

  Returns:
    The TfliteExport.
  """
  labels = retrain.label_names_of(run_images.image_lists)
  decoded_batches = functools.partial(
      retrain.decode_entries, image_shape=run_images.image_shape)
  calibration_images = None
  if options.quantize == 'uint8':
    entries = retrain.image_entries(run_images.image_lists,
                                    run_images.image_dir, 'training')
    entries = random.Random(options.seed).sample(
        entries, min(options.calibration_images, len(entries)))
    calibration_images = np.concatenate(
        [images for _, images in decoded_batches(entries)])
  tf.logging.info('Save TF Lite model to : ' + options.tflite_file)
  exported = export_tflite(options.tflite_file, module_spec, len(labels),
                           eval_session, options.quantize,
                           calibration_images, labels)
  if exported.quantization == 'uint8':
    tf.logging.info('The TF Lite model is fully quantized: uint8 input (the '
                    'pixel values 0-255) and uint8 output (probability * '
                    '256)')
  for category in ('testing', 'validation'):
    entries = retrain.image_entries(run_images.image_lists,
                                    run_images.image_dir, category)
    if entries:
      break
  else:
    tf.logging.warning('There are no test or validation images: the TF Lite '
                       'model is not checked.')
    return exported
  check = check_tflite_model(exported.content, eval_session,
                             decoded_batches(entries))
  tf.logging.info(
      'TF Lite (%s) %s accuracy = %.1f%% (N=%d), frozen graph %.1f%%, %s '
      'agreement %d/%d, %.2f MB',
      {'none': 'float32'}.get(exported.quantization, exported.quantization),
      'test' if category == 'testing' else 'validation',
      100.0 * check.tflite_correct / check.count, check.count,
      100.0 * check.graph_correct / check.count,
      'top-1' if eval_session.multi_label_threshold is None else 'label-set',
      check.agreeing, check.count, len(exported.content) / 1e6)
  return exported


# What check_tflite_model found: how many images, how many the TF Lite model
# and the frozen graph classify right, and on how many their top-1 agree.
TfliteCheck = collections.namedtuple('TfliteCheck', [
    'count', 'tflite_correct', 'graph_correct', 'agreeing'])


def check_tflite_model(tflite_model, eval_session, batches):
  """Classifies images with a TF Lite model and with the eval graph.

  Args:
    tflite_model: The .tflite file's bytes.
    eval_session: The EvalSession of the same trained layer.
    batches: (class indices, float images [n, H, W, 3] in [0, 1]) pairs.

  Returns:
    A TfliteCheck.
  """
  probabilities = eval_session.sess.graph.get_tensor_by_name(
      eval_session.final_tensor_name + ':0')
  predict = tflite_predictor(tflite_model)
  threshold = eval_session.multi_label_threshold
  count = tflite_correct = graph_correct = agreeing = 0
  for truth, images in batches:
    graph_top = retrain.predicted_classes(eval_session.sess.run(
        probabilities, {eval_session.resized_input_tensor: images}), threshold)
    tflite_top = retrain.predicted_classes(
        np.array([predict(image) for image in images]), threshold)
    count += len(truth)
    tflite_correct += retrain.count_equal(tflite_top, truth)
    graph_correct += retrain.count_equal(graph_top, truth)
    agreeing += retrain.count_equal(tflite_top, graph_top)
  return TfliteCheck(count, tflite_correct, graph_correct, agreeing)


def tflite_interpreter(model_content=None, model_path=None):
  """TF Lite's interpreter for a model's bytes or file.

  LiteRT's (ai_edge_litert, requirements.txt), which replaces the deprecated
  tf.lite.Interpreter; that one where LiteRT is not installed (TensorFlow
  2.15's stack, requirements-classic.txt, has no LiteRT).

  Args:
    model_content: The .tflite file's bytes, or None.
    model_path: The .tflite file, if model_content is None.

  Returns:
    The interpreter, its tensors not allocated yet.

  Raises:
    ValueError: if the bytes or the file are not a TF Lite model.
  """
  try:
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  except ImportError:
    return tf.lite.Interpreter(model_content=model_content,
                               model_path=model_path)
  return litert.Interpreter(model_content=model_content, model_path=model_path)


def tflite_predictor(tflite_model):
  """Returns a function from a float image [H, W, 3] in [0, 1] to the TF
  Lite model's probabilities, quantizing input and output as the model
  says."""
  interpreter = tflite_interpreter(model_content=tflite_model)
  _quietly(interpreter.allocate_tensors)  # Not its XNNPACK line.
  input_details = interpreter.get_input_details()[0]
  output_details = interpreter.get_output_details()[0]

  def predict(image):
    if input_details['dtype'] != np.float32:
      scale, zero_point = input_details['quantization']
      info = np.iinfo(input_details['dtype'])
      image = np.clip(np.round(image / scale + zero_point), info.min,
                      info.max).astype(input_details['dtype'])
    interpreter.set_tensor(input_details['index'], image[None])
    interpreter.invoke()
    output = interpreter.get_tensor(output_details['index'])[0]
    if output_details['dtype'] != np.float32:
      scale, zero_point = output_details['quantization']
      output = (output.astype(np.float32) - zero_point) * scale
    return output

  return predict


# The input normalisation that TF Lite metadata declares: the model reads
# (pixel value - mean) / std. retrain.py's models read values in [0, 1]:
# mean 0, std 255 (a uint8 model's quantization says the same).
TfliteNormalization = collections.namedtuple('TfliteNormalization', [
    'mean', 'std'])


def tflite_with_metadata(tflite_model, labels, normalization, description):
  """Adds image classifier metadata to a TF Lite model.

  The metadata holds a name and description, the input's normalisation and
  range, and the labels as an associated file (labels.txt), which MediaPipe's
  ImageClassifier, the TF Lite Task Library and Android Studio read. It is
  written by tflite_metadata.py, which comes with retrain.py.

  Args:
    tflite_model: The model's bytes.
    labels: The class names in class-index order.
    normalization: A TfliteNormalization.
    description: The model's description.

  Returns:
    The model's bytes with the metadata, or None if tflite_metadata.py is not
    beside retrain.py.
  """
  try:
    import tflite_metadata  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if e.name != 'tflite_metadata':  # Not missing, broken: say what broke.
      raise
    return None
  return tflite_metadata.with_image_classifier_metadata(
      tflite_model, labels, normalization.mean, normalization.std,
      'retrained_image_classifier', description)


class _StderrToFile(object):
  """Sends what C++ code writes to stderr (file descriptor 2) to a file.

  The TF Lite converter prints pages of op statistics to stderr that
  TF_CPP_MIN_LOG_LEVEL does not silence; its errors reach Python as
  exceptions anyway.
  """

  def __enter__(self):
    sys.stderr.flush()
    self._saved = os.dup(2)
    self._file = tempfile.TemporaryFile()
    os.dup2(self._file.fileno(), 2)
    return self

  def __exit__(self, *unused_exc_info):
    sys.stderr.flush()
    os.dup2(self._saved, 2)
    os.close(self._saved)
    self._file.close()
    return False


def _quietly(function):
  """Calls function with what C++ code prints to stderr kept out of sight.

  Unless the logging is DEBUG. The root logger's handlers are kept as they
  were: the TF Lite converter adds one, which would print every later line
  of this tool twice.
  """
  root_handlers = list(logging.getLogger().handlers)
  try:
    if tf.logging.get_verbosity() <= tf.logging.DEBUG:
      return function()
    with _StderrToFile():
      return function()
  finally:
    logging.getLogger().handlers[:] = root_handlers
