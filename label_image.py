# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
r"""Classifies images with the frozen graph and labels that retrain.py wrote.

  python label_image.py --image flower_photos_sample/roses/rose_003.jpg

The defaults match retrain.py's outputs: the graph takes a float image batch
with values in [0, 1] (so --input_mean=0 and --input_std=255) at 'Placeholder',
of the size the graph's input declares, and returns probabilities at
'final_result'. --image takes files or folders; for a folder whose
sub-folders are classes (like --image_dir of retrain.py), the accuracy is
printed too.

With --saved_model_dir, the images go through the SavedModel that
retrain.py --saved_model_dir wrote instead, by its signature 'serving_default'
(float images, normalised as above) or, with --signature serving_bytes, as the
encoded file bytes, the way a TensorFlow Serving client sends them; the
labels come from the SavedModel's serving_bytes signature then.

With --tflite_file, the images go through the TF Lite model that retrain.py
--tflite_output_file wrote, run by TF Lite's interpreter as an app would (float
or uint8 input); the labels come from the model's metadata when it has some.
With --onnx_file, they go through the ONNX model of retrain.py
--onnx_output_file, run by ONNX Runtime, with the labels the model holds.

--output_csv writes one row per image (path, label, score, the next
--top_k - 1 labels and scores, and an error for an image that cannot be
read) instead of printing it, with a progress display; --min_score makes the
label 'unknown' where the top score is below it. For class folders, the
accuracy of each class and the most common confusions are printed.

A multi-label model (retrain.py --image_labels) scores each label on its own:
every label scored at or above --multi_label_threshold is printed (and is in
the CSV's column label, separated by spaces). A frozen graph, a SavedModel or
an ONNX model says itself that it is one (threshold 0.5, or the ONNX model's);
for a TF Lite model, pass --multi_label_threshold.
"""

import argparse
import collections
import csv
import io
import os
import sys
import zipfile

# TensorFlow's C++ log lines only with --verbose (retrain.py, imported for
# its error messages and label rule, would silence them otherwise).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL',
                      '0' if '--verbose' in sys.argv else '3')

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
# First: it loads TensorFlow quietly (but with --verbose) and in TF1 mode.
import retrain
import tensorflow.compat.v1 as tf
import tflite_export
# pylint: enable=g-import-not-at-top,wrong-import-position

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
DEFAULT_LABELS = '/tmp/output_labels.txt'
# The label of an image whose top score is below --min_score.
UNKNOWN = 'unknown'
# How many of the most common confusions a folder's report names.
CONFUSIONS_SHOWN = 5


class LabelImageError(Exception):
  """A mistake of the user's, reported as one line."""


def load_graph(model_file):
  """Loads a frozen GraphDef file into a new tf.Graph."""
  graph_def = tf.GraphDef()
  try:
    with tf.gfile.GFile(model_file, 'rb') as f:
      graph_def.ParseFromString(f.read())
  except (tf.errors.OpError, IOError) as e:
    raise LabelImageError('Cannot read the graph %s: %s' % (model_file, e))
  except Exception:  # pylint: disable=broad-except
    raise LabelImageError('%s is not a frozen GraphDef (.pb) file.' %
                          model_file)
  graph = tf.Graph()
  with graph.as_default():
    tf.import_graph_def(graph_def, name='')
  return graph


def load_labels(label_file):
  """Reads one label per line."""
  if not tf.gfile.Exists(label_file):
    raise LabelImageError(
        'The labels file %s does not exist: pass --labels, the file that '
        'retrain.py --output_labels wrote.' % label_file)
  try:
    with tf.gfile.GFile(label_file) as f:
      return [line.rstrip('\n') for line in f if line.strip()]
  except (tf.errors.OpError, IOError) as e:
    raise LabelImageError('Cannot read the labels file %s (%s): pass '
                          '--labels.' % (label_file, getattr(
                              e, 'strerror', None) or retrain.error_reason(e)))


def _layer_summary(graph):
  """Names the graph's placeholders and its ops that nothing consumes."""
  consumed = set()
  for op in graph.get_operations():
    consumed.update(tensor.op.name for tensor in op.inputs)
  placeholders = [op.name for op in graph.get_operations()
                  if op.type in ('Placeholder', 'PlaceholderWithDefault')]
  outputs = [op.name for op in graph.get_operations()
             if op.name not in consumed and op.type not in ('Const', 'NoOp')]
  return 'placeholders: %s; outputs: %s' % (', '.join(placeholders) or '-',
                                            ', '.join(outputs) or '-')


def get_layer(graph, name):
  """Returns the tensor of the op `name`, or a one-line error naming options."""
  op_name = name.split(':')[0]
  try:
    return graph.get_operation_by_name(op_name).outputs[0]
  except KeyError:
    raise LabelImageError("The graph has no layer '%s' (%s)." %
                          (op_name, _layer_summary(graph)))


def list_images(paths):
  """Expands files and folders into [(image path, class folder or None)]."""
  images = []
  for path in paths:
    if os.path.isdir(path):
      for root, _, files in sorted(os.walk(path)):
        relative = os.path.relpath(root, path)
        class_name = None if relative == '.' else relative.split(os.sep)[0]
        for name in sorted(files):
          if name.lower().endswith(IMAGE_EXTENSIONS):
            images.append((os.path.join(root, name), class_name))
    elif os.path.isfile(path):
      images.append((path, None))
    else:
      raise LabelImageError('Image %s not found.' % path)
  if not images:
    raise LabelImageError('No .jpg, .jpeg or .png image found in %s.' %
                          ', '.join(paths))
  return images


def build_reader(input_height, input_width, input_mean, input_std):
  """Returns (file bytes placeholder, normalised [1, H, W, 3] image)."""
  file_data = tf.placeholder(tf.string, name='file_data')
  image = tf.cast(tf.image.decode_jpeg(file_data, channels=3), tf.float32)
  resized = tf.image.resize_bilinear(tf.expand_dims(image, 0),
                                     [input_height, input_width])
  return file_data, tf.divide(tf.subtract(resized, [input_mean]), [input_std])


def _label_of_folder(class_name, labels):
  """The label retrain.py gives a class folder, if it is one of labels."""
  label = retrain.label_of_folder(class_name)
  return label if label in labels else None


def _size_from_shape(shape, args, what):
  """The input (height, width): the flags' if given, else the input's own."""
  height, width = args.input_height, args.input_width
  dims = shape.as_list() if shape.ndims == 4 else [None] * 4
  height = dims[1] if height is None else height
  width = dims[2] if width is None else width
  if not height or not width:
    raise LabelImageError('The input %s has no fixed size: pass '
                          '--input_height and --input_width.' % what)
  return int(height), int(width)


def _graph_classifier(sess, args):
  """(a function from image file bytes to probabilities, the output's name,
  no labels, the multi-label threshold or None) of --graph."""
  graph_def = load_graph(args.graph).as_graph_def()
  with sess.graph.as_default():
    tf.import_graph_def(graph_def, name='')
  input_tensor = get_layer(sess.graph, args.input_layer)
  output_tensor = get_layer(sess.graph, args.output_layer)
  return (_float_image_predictor(sess, input_tensor, output_tensor, args,
                                 'layer %s' % args.input_layer),
          args.output_layer, None, _sigmoid_threshold(output_tensor))


def _sigmoid_threshold(output_tensor):
  """0.5 if output_tensor is retrain.py's multi-label layer (a sigmoid, maybe
  behind an Identity), else None."""
  op = output_tensor.op
  while op.type == 'Identity':
    op = op.inputs[0].op
  return 0.5 if op.type == 'Sigmoid' else None


def _float_image_predictor(sess, input_tensor, output_tensor, args, where):
  """Returns a function from image file bytes to the output for float input.

  The bytes are decoded, resized to the input's size and normalised with
  --input_mean and --input_std, then fed to input_tensor.
  """
  height, width = _size_from_shape(input_tensor.get_shape(), args, where)
  with sess.graph.as_default():
    file_data, normalised = build_reader(height, width, args.input_mean,
                                         args.input_std)

  def predict(image_data):
    pixels = sess.run(normalised, {file_data: image_data})
    return sess.run(output_tensor, {input_tensor: pixels})

  return predict


def _saved_model_classifier(sess, args):
  """Returns a function from image file bytes to probabilities (SavedModel).

  The signature's input is either float images, fed decoded and normalised
  like --graph's, or a batch of encoded images (string), fed the file bytes.

  Returns:
    (the function, the output's name, the labels that the signature
    serving_bytes holds, or None, the multi-label threshold or None).
  """
  try:
    meta_graph = tf.saved_model.loader.load(
        sess, [tf.saved_model.tag_constants.SERVING], args.saved_model_dir)
  except (RuntimeError, IOError, OSError, tf.errors.OpError) as e:
    raise LabelImageError('Cannot load the SavedModel %s: %s' % (
        args.saved_model_dir, retrain.error_reason(e)))
  signatures = meta_graph.signature_def
  if args.signature not in signatures:
    raise LabelImageError('The SavedModel has no signature %s (it has: %s).' %
                          (args.signature, ', '.join(sorted(signatures))))
  signature = signatures[args.signature]
  outputs = signature.outputs
  output_key = 'prediction' if 'prediction' in outputs else (
      list(outputs)[0] if len(outputs) == 1 else None)
  if len(signature.inputs) != 1 or output_key is None:
    raise LabelImageError(
        "The signature %s must have one input and an output 'prediction' "
        '(inputs: %s; outputs: %s).' % (args.signature,
                                       ', '.join(signature.inputs),
                                       ', '.join(outputs)))
  input_info = list(signature.inputs.values())[0]
  input_tensor = sess.graph.get_tensor_by_name(input_info.name)
  output_tensor = sess.graph.get_tensor_by_name(outputs[output_key].name)
  labels = saved_model_labels(sess, signatures)
  threshold = _sigmoid_threshold(output_tensor)
  if input_tensor.dtype == tf.string:
    return (lambda image_data: sess.run(output_tensor,
                                        {input_tensor: [image_data]}),
            output_key, labels, threshold)
  return (_float_image_predictor(sess, input_tensor, output_tensor, args,
                                 'of the signature %s' % args.signature),
          output_key, labels, threshold)


def saved_model_labels(sess, signatures):
  """The labels of retrain.py's SavedModel, in class-index order, or None.

  Its signature serving_bytes has an output 'classes' that picks the top
  class's label out of a constant list of every label.
  """
  if 'serving_bytes' not in signatures or (
      'classes' not in signatures['serving_bytes'].outputs):
    return None
  classes = sess.graph.get_tensor_by_name(
      signatures['serving_bytes'].outputs['classes'].name)
  table = classes.op.inputs[0] if classes.op.inputs else None
  if table is None or table.op.type != 'Const' or table.dtype != tf.string:
    return None
  return [label.decode('utf-8') for label in sess.run(table)]


def _tflite_classifier(sess, args):
  """Returns a function from image file bytes to probabilities (--tflite_file).

  The bytes are decoded, resized to the model's input size and normalised
  like --graph's; a uint8 model gets them quantized as its input says.

  Returns:
    (the function, the output's name, the labels of the model's metadata, or
    None, and None: only --multi_label_threshold makes it multi-label).
  """
  try:
    with tf.gfile.GFile(args.tflite_file, 'rb') as f:
      content = f.read()
    interpreter = tflite_export.tflite_interpreter(model_content=content)
  except (tf.errors.OpError, IOError) as e:
    raise LabelImageError('Cannot read the TF Lite model %s: %s' % (
        args.tflite_file, retrain.error_reason(e)))
  except ValueError:
    raise LabelImageError('%s is not a TF Lite model (.tflite) file.' %
                          args.tflite_file)
  input_details = interpreter.get_input_details()
  if len(input_details) != 1 or len(input_details[0]['shape']) != 4:
    raise LabelImageError('The TF Lite model must have one image input '
                          '[1, height, width, 3].')
  height, width = _size_from_shape(
      tf.TensorShape(input_details[0]['shape']), args, 'of the TF Lite model')
  with sess.graph.as_default():
    file_data, normalised = build_reader(height, width, args.input_mean,
                                         args.input_std)
  predict_image = tflite_export.tflite_predictor(content)

  def predict(image_data):
    return predict_image(sess.run(normalised, {file_data: image_data})[0])

  return predict, "the TF Lite model's output", tflite_labels(content), None


def _onnx_classifier(sess, args):
  """Returns a function from image file bytes to probabilities (--onnx_file).

  The bytes are decoded, resized to the model's input size and normalised
  like --graph's, then run by ONNX Runtime.

  Returns:
    (the function, the output's name, the labels the model holds, or None,
    the multi-label threshold it holds, or None).
  """
  try:
    import onnx_export  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if e.name != 'onnx_export':
      raise
    raise LabelImageError('--onnx_file needs onnx_export.py beside '
                          'label_image.py: copy it from the same project.')
  try:
    with tf.gfile.GFile(args.onnx_file, 'rb') as f:
      session = onnx_export.onnx_session(f.read())
  except (tf.errors.OpError, IOError) as e:
    raise LabelImageError('Cannot read the ONNX model %s: %s' % (
        args.onnx_file, retrain.error_reason(e)))
  except retrain.RetrainError as e:  # onnxruntime is not installed.
    raise LabelImageError(str(e))
  except ValueError as e:
    raise LabelImageError('%s is not an ONNX model (.onnx) file that ONNX '
                          'Runtime can run (%s).' % (args.onnx_file, e))
  inputs = session.get_inputs()
  if len(inputs) != 1 or len(inputs[0].shape) != 4:
    raise LabelImageError('The ONNX model must have one image input '
                          '[batch, height, width, 3].')
  shape = [dim if isinstance(dim, int) else None for dim in inputs[0].shape]
  height, width = _size_from_shape(tf.TensorShape(shape), args,
                                   'of the ONNX model')
  with sess.graph.as_default():
    file_data, normalised = build_reader(height, width, args.input_mean,
                                         args.input_std)

  def predict(image_data):
    pixels = sess.run(normalised, {file_data: image_data})
    return session.run(None, {inputs[0].name: pixels})[0]

  return (predict, "the ONNX model's output",
          onnx_export.onnx_labels(session),
          onnx_export.onnx_multi_label_threshold(session))


def tflite_labels(content):
  """The labels file in a TF Lite model's metadata, as a list, or None.

  The metadata's associated files are a zip archive at the end of the model.
  """
  try:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
      names = [name for name in archive.namelist() if name.endswith('.txt')]
      if not names:
        return None
      text = archive.read(names[0]).decode('utf-8')
  except (zipfile.BadZipFile, UnicodeDecodeError):
    return None
  return [line.rstrip('\r') for line in text.split('\n') if line.strip()]


def _load_model(sess, args):
  """Loads the model that the flags name, and its labels.

  Returns:
    (a function from image file bytes to probabilities, the output's name,
    the labels, where the labels come from, the multi-label threshold or
    None for a model whose scores are class probabilities).
  """
  if args.onnx_file:
    classifier = _onnx_classifier
  elif args.tflite_file:
    classifier = _tflite_classifier
  elif args.saved_model_dir:
    classifier = _saved_model_classifier
  else:
    classifier = _graph_classifier
  predict, output_name, labels, threshold = classifier(sess, args)
  labels_source = 'the model'
  if args.labels or not labels:
    labels_source = args.labels or DEFAULT_LABELS
    labels = load_labels(labels_source)
  return (predict, output_name, labels, labels_source,
          args.multi_label_threshold or threshold)


def _classify_file(predict, path):
  """(probabilities, None), or (None, why) if the image cannot be read."""
  try:
    with open(path, 'rb') as f:
      return np.squeeze(predict(f.read())), None
  except (tf.errors.OpError, IOError) as e:
    return None, retrain.error_reason(e)


def _top_labels(scores, labels, args, threshold=None):
  """[(label, score)] of the --top_k best, and the predicted label: the
  best, or UNKNOWN if its score is below --min_score; for a multi-label
  model, every label scored at or above threshold (UNKNOWN if none is)."""
  top = scores.argsort()[-args.top_k:][::-1]
  pairs = [(labels[i], float(scores[i])) for i in top]
  if threshold is not None:
    return pairs, ' '.join(labels[i] for i in scores.argsort()[::-1]
                           if scores[i] >= threshold) or UNKNOWN
  return pairs, pairs[0][0] if pairs[0][1] >= args.min_score else UNKNOWN


def _print_image(path, pairs, predicted, alone, threshold=None):
  """Prints one image's labels: lines of 'label score' if it is the only
  image, else one line 'path: label score, ...'; for a multi-label model
  (threshold), its predicted labels first."""
  listed = ['%s %.5f' % pair for pair in pairs]
  if alone:
    if threshold is not None:
      print('Labels scored at least %g: %s' % (threshold, predicted))
    elif predicted == UNKNOWN:
      print('%s (the top score is below --min_score)' % UNKNOWN)
    print('\n'.join(listed))
  elif predicted == UNKNOWN or threshold is not None:
    print('%s: %s (%s)' % (path, predicted, ', '.join(listed)))
  else:
    print('%s: %s' % (path, ', '.join(listed)))


def classify(args):
  """Classifies the images; prints the results or writes them to
  --output_csv, then the report of class folders. Returns the exit code."""
  images = list_images(args.image)
  if args.output_csv:
    retrain.check_writable('output_csv', args.output_csv, False)
  rows, outcomes = [], []
  with tf.Session(graph=tf.Graph()) as sess:
    predict, output_name, labels, labels_source, threshold = _load_model(
        sess, args)
    progress = args.output_csv and retrain.Progress(
        len(images), 'images classified',
        report=lambda line: print(line, flush=True))
    for path, class_name in images:
      scores, error = _classify_file(predict, path)
      if error is None and (scores.ndim == 0 or len(scores) != len(labels)):
        raise LabelImageError(
            'The output %s gives %s values but %s has %d labels.' %
            (output_name, scores.size, labels_source, len(labels)))
      pairs, predicted = ([], None) if error else _top_labels(
          scores, labels, args, threshold)
      if args.output_csv:
        rows.append(_csv_row(path, pairs, predicted, error))
        progress.add(1)
      elif error:
        print('%s: skipped, cannot be decoded (%s)' % (path, error))
      else:
        _print_image(path, pairs, predicted, len(images) == 1, threshold)
      expected = class_name and _label_of_folder(class_name, labels)
      if expected and not error:
        outcomes.append((expected, predicted))
  if args.output_csv:
    write_csv(args.output_csv, rows, min(args.top_k, len(labels)))
    unreadable = sum(1 for row in rows if row[-1])
    print('Wrote %d rows to %s%s.' % (
        len(rows), args.output_csv,
        ' (%d image(s) cannot be read: see the column error)' % unreadable
        if unreadable else ''))
  print_folder_report(outcomes, labels)
  return 0


def _csv_row(path, pairs, predicted, error):
  """One row: path, label, score, label_2, score_2, ..., error."""
  # A file name that is not UTF-8 still gets a row, its odd bytes replaced.
  row = [os.fsencode(path).decode('utf-8', 'replace')]
  if error:
    return row + [error]  # write_csv pads it.
  row += [predicted, '%.5f' % pairs[0][1]]
  for label, score in pairs[1:]:
    row += [label, '%.5f' % score]
  return row + ['']


def write_csv(csv_file, rows, top_k):
  """Writes the report atomically: an interrupted run leaves no half file.

  Args:
    csv_file: The file to write (--output_csv).
    rows: The rows of _csv_row; an error row is padded to the header.
    top_k: How many labels and scores a row has.
  """
  header = ['path', 'label', 'score']
  for rank in range(2, top_k + 1):
    header += ['label_%d' % rank, 'score_%d' % rank]
  text = io.StringIO()
  writer = csv.writer(text)
  writer.writerow(header + ['error'])
  for row in rows:
    writer.writerow(row[:1] + (row[1:-1] or [''] * 2 * top_k) + row[-1:])
  folder = os.path.dirname(os.path.abspath(csv_file))
  if not tf.gfile.Exists(folder):
    tf.gfile.MakeDirs(folder)
  retrain.write_file_atomically(csv_file, text.getvalue())


def print_folder_report(outcomes, labels):
  """Prints the accuracy of each class, the most common confusions and the
  accuracy of the images in class folders (nothing if there are none).

  Args:
    outcomes: (true label, predicted label) of each image in a class folder.
    labels: The model's labels, in the order to list the classes in.
  """
  if not outcomes:
    return
  totals = collections.Counter(truth for truth, _ in outcomes)
  right = collections.Counter(truth for truth, predicted in outcomes
                              if truth == predicted)
  width = max(len(label) for label in totals)
  print('Accuracy per class:')
  for label in labels:
    if totals[label]:
      print('  %-*s %5.1f%% (%d of %d)' % (
          width, label, 100.0 * right[label] / totals[label], right[label],
          totals[label]))
  confusions = collections.Counter(outcome for outcome in outcomes
                                   if outcome[0] != outcome[1])
  if confusions:
    print('Most common confusions (true class -> predicted label):')
    for (truth, predicted), count in sorted(
        confusions.items(), key=lambda item: (-item[1], item[0]))[
            :CONFUSIONS_SHOWN]:
      print('  %s -> %s: %d' % (truth, predicted, count))
  correct = sum(right.values())
  print('Accuracy: %.1f%% (%d of %d images in class folders)' %
        (100.0 * correct / len(outcomes), correct, len(outcomes)))


def build_parser():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--graph', default='/tmp/output_graph.pb',
                      help='Frozen graph to load.')
  parser.add_argument('--labels', default=None,
                      help='Labels file, one label per line; default: the '
                      "model's own (a SavedModel, a .tflite with metadata), "
                      'else %s.' % DEFAULT_LABELS)
  parser.add_argument('--input_layer', default='Placeholder',
                      help='Name of the input layer.')
  parser.add_argument('--output_layer', default='final_result',
                      help='Name of the output layer.')
  parser.add_argument('--input_height', type=int, default=None,
                      help='Input height; default: from the graph.')
  parser.add_argument('--input_width', type=int, default=None,
                      help='Input width; default: from the graph.')
  parser.add_argument('--input_mean', type=float, default=0,
                      help='Subtracted from each pixel value (0-255).')
  parser.add_argument('--input_std', type=float, default=255,
                      help='Pixel values are divided by this after the mean.')
  parser.add_argument('--top_k', type=int, default=5,
                      help='How many labels to print per image.')
  parser.add_argument('--image', nargs='+', required=True,
                      help='Image files or folders to classify.')
  parser.add_argument('--saved_model_dir', default='',
                      help='Classify through this SavedModel (from retrain.py '
                      '--saved_model_dir) instead of --graph.')
  parser.add_argument('--signature', default='serving_default',
                      help='With --saved_model_dir: the signature to call, '
                      'serving_default (float images) or serving_bytes '
                      '(encoded image files).')
  parser.add_argument('--tflite_file', default='',
                      help='Classify through this TF Lite model (from '
                      'retrain.py --tflite_output_file) instead of --graph.')
  parser.add_argument('--onnx_file', default='',
                      help='Classify through this ONNX model (from retrain.py '
                      '--onnx_output_file) with ONNX Runtime instead of '
                      '--graph.')
  parser.add_argument('--output_csv', default='',
                      help='Write one row per image to this CSV file '
                      '(path, label, score, label_2, score_2, ... up to '
                      '--top_k, error) instead of printing it.')
  parser.add_argument('--min_score', type=float, default=0.0,
                      help="Report the label '%s' for an image whose top "
                      'score is below this (0-1).' % UNKNOWN)
  parser.add_argument('--multi_label_threshold', type=float, default=None,
                      help='For a multi-label model (retrain.py '
                      '--image_labels): print every label scored at least '
                      'this. Default: the model\'s own (0.5); a TF Lite '
                      'model needs it.')
  parser.add_argument('--verbose', action='store_true',
                      help="Show TensorFlow's own log lines.")
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  if args.input_std == 0:
    print('ERROR: --input_std must not be 0.', file=sys.stderr)
    return 1
  if args.top_k <= 0:
    print('ERROR: --top_k must be positive.', file=sys.stderr)
    return 1
  if not 0 <= args.min_score <= 1:
    print('ERROR: --min_score must be between 0 and 1.', file=sys.stderr)
    return 1
  threshold = args.multi_label_threshold
  if threshold is not None and not 0 < threshold < 1:
    print('ERROR: --multi_label_threshold must be between 0 and 1.',
          file=sys.stderr)
    return 1
  for name in ('input_height', 'input_width'):
    if getattr(args, name) is not None and getattr(args, name) <= 0:
      print('ERROR: --%s must be a positive number of pixels.' % name,
            file=sys.stderr)
      return 1
  if not args.verbose:
    tf.get_logger().setLevel('ERROR')
  tf.disable_v2_behavior()
  try:
    return classify(args)
  except (LabelImageError, retrain.RetrainError) as e:
    print('ERROR: %s' % e, file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print('Interrupted%s.' % (': %s is not written' % args.output_csv
                              if args.output_csv else ''), file=sys.stderr)
    return 130


if __name__ == '__main__':
  sys.exit(main())
