"""Fuzzing the image decoding path with random and mutated image bytes.

Whatever the bytes, decoding gives either a float image of the module's size
with values in [0, 1], or a one-line reason to skip the file; never a crash,
a hang or an attempt to allocate a huge image.
"""

import io
import os
import struct
import tempfile
import zlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import image_checks
import retrain
from conftest import ModulePipeline, png_bytes

tf.disable_v2_behavior()

SIZE = 32


def _seed_images():
  """Small valid files of every format and flavour the decoder accepts."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  rgb = rng.randint(0, 256, (24, 20, 3)).astype(np.uint8)

  def encoded(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()

  return [
      encoded(Image.fromarray(rgb), 'JPEG', quality=90),
      encoded(Image.fromarray(rgb), 'JPEG', quality=75, progressive=True),
      encoded(Image.fromarray(rgb).convert('L'), 'JPEG'),
      encoded(Image.fromarray(rgb).convert('CMYK'), 'JPEG'),
      encoded(Image.fromarray(rgb), 'PNG'),
      encoded(Image.fromarray(rgb).convert('P'), 'GIF'),
      png_bytes(np.dstack([rgb, rgb[..., :1]])),
      png_bytes(rgb.astype(np.uint16) * 257, bit_depth=16),
  ]


SEEDS = _seed_images()


def _with_png_size(data, height, width):
  """Rewrites a PNG's IHDR size, with a valid CRC (a decompression bomb)."""
  header = data[16:20 + 13 - 4]
  header = struct.pack('>II', width, height) + header[8:]
  crc = struct.pack('>I', zlib.crc32(b'IHDR' + header) & 0xffffffff)
  return data[:16] + header + crc + data[33:]


def _with_jpeg_size(data, height, width):
  """Rewrites the size in a JPEG's first start-of-frame marker."""
  for marker in (b'\xff\xc0', b'\xff\xc2'):
    position = data.find(marker)
    if position >= 0:
      return (data[:position + 5] + struct.pack('>HH', height, width) +
              data[position + 9:])
  return data


@st.composite
def image_bytes(draw):
  """Random bytes, or a valid image with random damage."""
  kind = draw(st.sampled_from(['random', 'magic', 'mutated', 'truncated',
                               'size']))
  if kind == 'random':
    return draw(st.binary(max_size=2048))
  if kind == 'magic':
    magic = draw(st.sampled_from([b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n',
                                  b'GIF89a', b'BM']))
    return magic + draw(st.binary(max_size=2048))
  data = draw(st.sampled_from(SEEDS))
  if kind == 'truncated':
    return data[:draw(st.integers(0, len(data)))]
  if kind == 'size':
    height = draw(st.integers(0, 65535))
    width = draw(st.integers(0, 65535))
    if data.startswith(b'\x89PNG'):
      return _with_png_size(data, draw(st.integers(0, 2 ** 32 - 1)),
                            draw(st.integers(0, 2 ** 32 - 1)))
    if data.startswith(b'GIF'):
      return data[:6] + struct.pack('<HH', width, height) + data[10:]
    return _with_jpeg_size(data, height, width)
  data = bytearray(data)
  for _ in range(draw(st.integers(1, 8))):
    position = draw(st.integers(0, len(data) - 1))
    operation = draw(st.sampled_from(['set', 'insert', 'delete']))
    value = draw(st.integers(0, 255))
    if operation == 'set':
      data[position] = value
    elif operation == 'insert':
      data.insert(position, value)
    elif len(data) > 1:
      del data[position]
  return bytes(data)


@pytest.fixture(scope='module')
def decoder():
  with tf.Graph().as_default() as graph:
    image_data = tf.placeholder(tf.string)
    decoded = retrain.decode_and_resize(image_data, SIZE, SIZE, 3)
  with tf.Session(graph=graph) as sess:
    yield sess, image_data, decoded


def _check_decodes_or_gives_a_reason(sess, image_data, decoded, data):
  reason = image_checks.decode_or_explain(sess, data, image_data, decoded)[1]
  if reason is not None:
    assert reason.startswith(('it ', 'the file is empty')), reason
    assert '\n' not in reason and 'Graph execution' not in reason, reason
    return
  image = sess.run(decoded, {image_data: data})
  assert image.shape == (1, SIZE, SIZE, 3)
  assert image.dtype == np.float32
  assert np.all(np.isfinite(image))
  assert image.min() >= 0.0 and image.max() <= 1.0


def test_seed_images_all_decode(decoder):
  for data in SEEDS:
    assert image_checks.decode_or_explain(decoder[0], data, decoder[1],
                                      decoder[2])[1] is None


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=image_bytes())
def test_random_and_mutated_bytes_decode_or_give_a_reason(decoder, data):
  _check_decodes_or_gives_a_reason(*decoder, data)


@pytest.fixture(scope='module')
def shared_pipeline(sample_module):
  pipeline = ModulePipeline(sample_module)
  yield pipeline
  pipeline.close()


@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(image_bytes(), min_size=1, max_size=10))
def test_cache_bottlenecks_caches_or_skips_every_fuzzed_file(shared_pipeline,
                                                            files):
  sess, tensors = shared_pipeline.sess, shared_pipeline.tensors
  with tempfile.TemporaryDirectory() as root:
    image_dir = os.path.join(root, 'images')
    for class_name in ('a', 'b'):
      os.makedirs(os.path.join(image_dir, class_name))
    for index, data in enumerate(files):
      with open(os.path.join(image_dir, 'ab'[index % 2],
                             'file_%02d.jpg' % index), 'wb') as f:
        f.write(data)
    image_lists = retrain.create_image_lists(image_dir, 10, 10)
    bottleneck_dir = os.path.join(root, 'bottleneck')
    skipped = retrain.cache_bottlenecks(sess, image_lists, image_dir,
                                        bottleneck_dir, *tensors,
                                        module_name='m', batch_size=4)
    kept = sum(len(lists[category]) for lists in image_lists.values()
               for category in ('training', 'testing', 'validation'))
    assert kept + len(skipped) == len(files)
    cached = [name for class_name in ('a', 'b') if os.path.isdir(
        os.path.join(bottleneck_dir, class_name)) for name in os.listdir(
            os.path.join(bottleneck_dir, class_name))]
    assert len(cached) == kept
    for path, reason in skipped:
      assert os.path.basename(path) + '_m.txt' not in cached
      assert reason and '\n' not in reason


def test_lying_png_headers_are_refused_before_decoding(decoder):
  for height, width in [(2 ** 32 - 1, 2 ** 32 - 1), (2 ** 32 - 1, 1),
                        (6000, 6000), (1, 2 ** 31)]:
    reason = image_checks.decode_or_explain(
        decoder[0], _with_png_size(SEEDS[4], height, width), decoder[1],
        decoder[2])[1]
    assert reason.startswith('it is %d x %d pixels, more than the' % (
        width, height)), reason


def _with_gif_frames(data, frame_size=None, frames=1):
  """A single-frame GIF with its frame resized in the descriptor, or repeated."""
  flags = data[10]
  start = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
  while data[start] == 0x21:  # Extensions before the image descriptor.
    start += 2
    while data[start]:
      start += data[start] + 1
    start += 1
  assert data[start] == 0x2c
  trailer = data.rindex(b'\x3b')
  frame = data[start:trailer]
  if frame_size:
    frame = frame[:5] + struct.pack('<HH', *frame_size) + frame[9:]
  return data[:start] + frame * frames + data[trailer:]


def test_gif_bombs_are_refused_before_decoding(decoder, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.new('P', (20, 10)).save(buffer, 'GIF')
  gif = buffer.getvalue()
  cases = [
      (_with_gif_frames(gif, (60000, 60000)),
       'its GIF frame is 60000 x 60000 pixels, more than the'),
      (_with_gif_frames(gif, frames=500), 'it is an animated GIF (500 frames)'),
  ]
  for data, expected in cases:
    reason = image_checks.decode_or_explain(decoder[0], data, decoder[1],
                                        decoder[2])[1]
    assert reason.startswith(expected), reason
    path = str(tmp_path / 'bomb.jpg')
    with open(path, 'wb') as f:
      f.write(data)
    assert image_checks.why_file_unusable(path).startswith(expected)
  assert image_checks.decode_or_explain(decoder[0], gif, decoder[1],
                                    decoder[2])[1] is None


def test_progressive_jpeg_with_a_lying_header_is_refused(decoder):
  # Its coefficients alone would take 30000 * 30000 * 2 bytes and more.
  reason = image_checks.decode_or_explain(
      decoder[0], _with_jpeg_size(SEEDS[1], 30000, 30000), decoder[1],
      decoder[2])[1]
  assert reason.startswith(
      'it is a 30000 x 30000 pixel JPEG that is damaged or needs more memory '
      'than the JPEG decoder may use (JPEGMEM='), reason
