# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""TF Lite metadata for retrain.py's image classifiers, without MediaPipe.

retrain.py --tflite_output_file imports this module (it lives beside
retrain.py) to put into each .tflite file what MediaPipe's ImageClassifier, the
TF Lite Task Library and Android Studio read: a name and a description, the
input's normalisation and value range, and the labels. The format is TF Lite's
metadata schema (metadata_schema.fbs, which MediaPipe ships; file identifier
M001): a ModelMetadata flatbuffer in one of the model's buffers, named by the
model's metadata entry TFLITE_METADATA, and the associated files (labels.txt)
in a zip archive appended to the model.

Why by hand: MediaPipe's metadata writer does not import in the MediaPipe
releases that install beside TensorFlow 2.21, and tflite-support, the other
writer, is archived. The flatbuffers package and TensorFlow's own TF Lite
schema code, which this module needs, come with TensorFlow 2.15 and 2.21 alike.
"""

import io
import zipfile

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.tools import flatbuffer_utils

# The model's metadata entry that metadata readers look for.
METADATA_NAME = b'TFLITE_METADATA'
# The associated file that holds the labels, one a line, in class order.
LABELS_FILE = 'labels.txt'
# The metadata schema's file identifier; readers refuse a buffer without it.
_METADATA_IDENTIFIER = b'M001'
# Every field written here exists since schema 1.0.0; a reader older than
# min_parser_version would refuse the metadata, so the lowest one is right.
_MIN_PARSER_VERSION = '1.0.0'
# The zip entries' date: fixed, so that a seeded run writes the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# Values of metadata_schema.fbs's enums and unions.
_COLOR_SPACE_RGB = 1
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType.
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties.
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions.

# The fields of each table written, in metadata_schema.fbs's order, which
# gives each field's slot (a union takes two: its type, then its value).
# Later fields, never written, are left out.
_ASSOCIATED_FILE = ('name', 'description', 'type')
_IMAGE_PROPERTIES_FIELDS = ('color_space',)
_CONTENT = ('content_properties_type', 'content_properties')
_NORMALIZATION = ('mean', 'std')
_PROCESS_UNIT = ('options_type', 'options')
_STATS = ('max', 'min')
_TENSOR_METADATA = ('name', 'description', 'dimension_names', 'content',
                    'process_units', 'stats', 'associated_files')
_SUBGRAPH_METADATA = ('name', 'description', 'input_tensor_metadata',
                      'output_tensor_metadata')
_MODEL_METADATA = ('name', 'description', 'version', 'subgraph_metadata',
                   'author', 'license', 'associated_files',
                   'min_parser_version')


class _Byte(int):
  """A one-byte field's value (an enum or a union's type), not an offset."""


def with_image_classifier_metadata(tflite_model, labels, mean, std, name,
                                   description):
  """Adds image classifier metadata to a TF Lite model.

  Any metadata and associated files the model had are replaced.

  Args:
    tflite_model: The model's bytes: one image input [1, H, W, 3] (float or
      uint8) and one output, the probabilities of the classes.
    labels: The class names in class-index order.
    mean: The input normalisation: the model reads (pixel value - mean) / std.
    std: See mean.
    name: The model's name.
    description: The model's description.

  Returns:
    The model's bytes with the metadata.

  Raises:
    ValueError: if the model has more than one input or output.
  """
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_model))
  subgraph = model.subgraphs[0]
  if len(subgraph.inputs) != 1 or len(subgraph.outputs) != 1:
    raise ValueError('An image classifier has one input and one output, not '
                     '%d and %d.' % (len(subgraph.inputs),
                                     len(subgraph.outputs)))
  quantized = [subgraph.tensors[index].type == tflite_schema.TensorType.UINT8
               for index in (subgraph.inputs[0], subgraph.outputs[0])]
  # The tensors' value ranges (Stats): a uint8 tensor holds 0-255 whatever
  # it stands for; the float input is the pixel values 0-255 normalised.
  input_range = (0.0, 255.0) if quantized[0] else ((0.0 - mean) / std,
                                                   (255.0 - mean) / std)
  output_range = (0.0, 255.0) if quantized[1] else (0.0, 1.0)
  metadata = _model_metadata(name, description, (mean, std), input_range,
                             output_range)
  _set_metadata_buffer(model, metadata)
  return _with_associated_files(
      flatbuffer_utils.convert_object_to_bytearray(model),
      {LABELS_FILE: '\n'.join(str(label) for label in labels)})


def _model_metadata(name, description, normalization, input_range,
                    output_range):
  """The ModelMetadata flatbuffer's bytes for one image input and one output
  of class probabilities, given (mean, std) and the (min, max) ranges."""
  builder = flatbuffers.Builder(1024)
  text = builder.CreateString
  image = _tensor_metadata(
      builder, 'image', 'Input image to be processed.',
      _table(builder, _CONTENT,
             content_properties_type=_Byte(_IMAGE_PROPERTIES),
             content_properties=_table(builder, _IMAGE_PROPERTIES_FIELDS,
                                       color_space=_Byte(_COLOR_SPACE_RGB))),
      input_range,
      process_units=_vector(builder, [_table(
          builder, _PROCESS_UNIT, options_type=_Byte(_NORMALIZATION_OPTIONS),
          options=_table(builder, _NORMALIZATION,
                         mean=_floats(builder, [normalization[0]]),
                         std=_floats(builder, [normalization[1]])))]))
  labels_file = _table(
      builder, _ASSOCIATED_FILE, name=text(LABELS_FILE),
      description=text('Labels for categories that the model can recognize.'),
      type=_Byte(_TENSOR_AXIS_LABELS))
  scores = _tensor_metadata(
      builder, 'score', 'Score of the labels respectively.',
      _table(builder, _CONTENT,
             content_properties_type=_Byte(_FEATURE_PROPERTIES),
             content_properties=_table(builder, ())),
      output_range, associated_files=_vector(builder, [labels_file]))
  subgraph = _table(builder, _SUBGRAPH_METADATA,
                    input_tensor_metadata=_vector(builder, [image]),
                    output_tensor_metadata=_vector(builder, [scores]))
  builder.Finish(_table(builder, _MODEL_METADATA, name=text(name),
                        description=text(description),
                        subgraph_metadata=_vector(builder, [subgraph]),
                        min_parser_version=text(_MIN_PARSER_VERSION)),
                 file_identifier=_METADATA_IDENTIFIER)
  return bytes(builder.Output())


def _tensor_metadata(builder, name, description, content, value_range,
                     **fields):
  """Writes a TensorMetadata table with a (min, max) value_range as Stats,
  and further fields (offsets) by name; returns its offset."""
  stats = _table(builder, _STATS, max=_floats(builder, [value_range[1]]),
                 min=_floats(builder, [value_range[0]]))
  return _table(builder, _TENSOR_METADATA, name=builder.CreateString(name),
                description=builder.CreateString(description),
                content=content, stats=stats, **fields)


def _table(builder, layout, **fields):
  """Writes a table; returns its offset.

  Args:
    builder: The flatbuffers.Builder.
    layout: The table's field names in the schema's order.
    **fields: Values by field name: offsets of what the builder has written
      already (flatbuffers tables cannot nest while being written), or _Byte.

  Returns:
    The table's offset.
  """
  builder.StartObject(len(layout))
  for field, value in fields.items():
    if isinstance(value, _Byte):
      builder.PrependUint8Slot(layout.index(field), value, 0)
    else:
      builder.PrependUOffsetTRelativeSlot(layout.index(field), value, 0)
  return builder.EndObject()


def _vector(builder, offsets):
  """Writes a vector of tables (their offsets); returns its offset."""
  builder.StartVector(4, len(offsets), 4)
  for offset in reversed(offsets):
    builder.PrependUOffsetTRelative(offset)
  return builder.EndVector()


def _floats(builder, values):
  """Writes a vector of float32 values; returns its offset."""
  return builder.CreateNumpyVector(np.asarray(values, dtype='<f4'))


def _set_metadata_buffer(model, metadata):
  """Stores metadata in a buffer of model (a ModelT) that its metadata entry
  TFLITE_METADATA names: the entry's buffer if it has one already."""
  buffer = tflite_schema.BufferT()
  buffer.data = np.frombuffer(metadata, dtype=np.uint8)
  for entry in model.metadata or []:
    if entry.name == METADATA_NAME:
      model.buffers[entry.buffer] = buffer
      return
  entry = tflite_schema.MetadataT()
  entry.name = METADATA_NAME
  entry.buffer = len(model.buffers)
  model.buffers.append(buffer)
  model.metadata = (model.metadata or []) + [entry]


def _with_associated_files(model, files):
  """The model's bytes followed by a zip archive of files ({name: text}).

  The archive is written where it ends up, after the model, so that its
  offsets count from the model's start as readers expect; its entries are
  stored uncompressed (MediaPipe refuses compressed ones) and dated _ZIP_DATE.
  """
  output = io.BytesIO()
  output.write(model)
  with zipfile.ZipFile(output, 'w', zipfile.ZIP_STORED) as archive:
    for name, text in files.items():
      archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_DATE),
                       text.encode('utf-8'))
  return output.getvalue()
