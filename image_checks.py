# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""Why an image file cannot be used, in the user's words, and the checks that
keep a bad file from hanging or flooding the reader: a named pipe, an animated
GIF (its decoder expands every frame first), a GIF frame or a JPEG too large.

An extra of retrain.py, beside it, used while caching: before an image is read
and for every image that fails. A copy of retrain.py alone reads images as the
original did and reports TensorFlow's own words (it says so in one line).
"""

import os
import re

import retrain
import tensorflow.compat.v1 as tf

# retrain.py's decoder guards the same sizes, from the same header reader.
# pylint: disable=protected-access
MAX_IMAGE_PIXELS = retrain.MAX_IMAGE_PIXELS


def why_file_unusable(image_path):
  """Why a local image can't be read, or None; a pipe would hang the reader."""
  if not retrain.is_local_path(image_path):
    return None
  if os.path.islink(image_path) and not os.path.exists(image_path):
    return 'it is a broken symbolic link (to %s)' % os.readlink(image_path)
  if not os.path.exists(image_path):
    return 'it does not exist (any more)'
  if not os.path.isfile(image_path):
    return 'it is not a regular file'
  try:
    with os.fdopen(os.open(image_path, os.O_RDONLY), 'rb') as image_file:
      if image_file.read(4) == b'GIF8':
        return why_gif_is_unsafe(b'GIF8' + image_file.read())
  except OSError as e:
    return 'it cannot be read (%s)' % (e.strerror or e)
  return None


def why_gif_is_unsafe(image_data):
  """Why a GIF must not be decoded (each frame is expanded first), or None."""
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


def read_image_file(image_path):
  """(bytes, None), or (None, why the file cannot be read)."""
  reason = why_file_unusable(image_path)
  if reason:
    return None, reason
  try:
    with tf.gfile.GFile(image_path, 'rb') as image_file:
      return image_file.read(), None
  except (tf.errors.OpError, OSError) as e:
    return None, 'it cannot be read (%s)' % retrain.error_reason(e)


def decode_or_explain(sess, image_data, jpeg_data_tensor,
                       decoded_image_tensor):
  """(the decoded image, None), or (None, why it fails, in the user's words)."""
  if not image_data:
    return None, 'the file is empty'
  reason = image_data.startswith(b'GIF8') and why_gif_is_unsafe(image_data)
  if reason:
    return None, reason
  try:
    return sess.run(decoded_image_tensor, {jpeg_data_tensor: image_data}), None
  except tf.errors.OpError as e:
    reason = retrain.error_reason(e)  # Put into the user's words below.
  if 'Invalid JPEG data' in reason:
    with tf.Graph().as_default(), tf.Session() as header_session:
      data = tf.placeholder(tf.string)
      try:  # The size that the JPEG's header declares.
        height, width, is_jpeg = header_session.run(
            retrain._image_header_size(data), {data: image_data})
      except tf.errors.OpError:
        is_jpeg = False
    if is_jpeg and height * width > MAX_IMAGE_PIXELS:
      return None, ('it is a %d x %d pixel JPEG that is damaged or needs more '
                    'memory than the JPEG decoder may use (JPEGMEM=%s): scale '
                    'it down' % (width, height, os.environ.get('JPEGMEM')))
  too_large = re.search(r'Image too large:\] \[(\d+)\] \[x\] \[(\d+)\]', reason)
  if too_large:
    return None, ('it is %s x %s pixels, more than the %d this tool decodes '
                  '(MAX_IMAGE_PIXELS): scale it down' % (
                      too_large.group(1), too_large.group(2), MAX_IMAGE_PIXELS))
  if 'animated gifs' in reason:
    return None, ('it is an animated GIF (%s): save one frame as a JPEG or '
                  'PNG' % reason.split(',')[0])
  if 'BMP format' in reason:
    return None, 'it is a BMP image: convert it to JPEG or PNG'
  if 'Unknown image file format' in reason:
    return None, 'it is not a JPEG, PNG or GIF image (unknown file format)'
  return None, 'it is a damaged or truncated image (%s)' % reason
