"""Shared fixtures: modules and images the tests build themselves, offline."""

import csv
import glob
import os
import re
import shutil
import subprocess
import sys

# Before TensorFlow loads (it imports jax, when MediaPipe brought it, and jax
# sets its own default of 1): the scripts the tests run stay as quiet as for
# a user.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(REPO_DIR, 'flower_photos_sample')
sys.path.insert(0, REPO_DIR)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import pytest
# First, so that TensorFlow loads as for a user: quietly, in TF1 mode.
import retrain
import tensorflow.compat.v1 as tf
import tflite_export
# pylint: enable=g-import-not-at-top,wrong-import-position


def pytest_configure(config):
  """Warnings from libraries that a user's run never shows (Python shows
  DeprecationWarning only for __main__'s code, and retrain.py imports
  tensorflow_hub quietly)."""
  for line in (
      # TensorFlow's AutoGraph (gast) on Python 3.13.
      'ignore::DeprecationWarning:gast.*',
      # tensorflow_hub 0.16's import of pkg_resources.
      'ignore:pkg_resources is deprecated:UserWarning'):
    config.addinivalue_line('filterwarnings', line)


def run_tool(script, args, timeout=900, env=None):
  """Runs one of the project's scripts (or a copy of one, given by its full
  path) as a user would; returns the result."""
  full_env = dict(os.environ)
  full_env.update(env or {})
  return subprocess.run(
      [sys.executable, os.path.join(REPO_DIR, script)] + list(args),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      timeout=timeout, env=full_env, check=False)


def run_retrain_alone(folder, args):
  """Runs retrain.py copied alone into folder, as a user who took only that
  file, with none of the project's other files on the Python path (an
  in-process Beam test may have put the project on PYTHONPATH)."""
  os.makedirs(folder, exist_ok=True)
  script = shutil.copy(os.path.join(REPO_DIR, 'retrain.py'), folder)
  return run_tool(script, args, env={'PYTHONPATH': ''})


def retrain_output_args(out_dir, bottleneck_dir=None):
  """Flags that keep every output of a retrain.py run inside out_dir."""
  return [
      '--output_graph', os.path.join(out_dir, 'output_graph.pb'),
      '--output_labels', os.path.join(out_dir, 'output_labels.txt'),
      '--summaries_dir', os.path.join(out_dir, 'retrain_logs'),
      '--bottleneck_dir', bottleneck_dir or os.path.join(out_dir, 'bottleneck'),
      '--checkpoint_path', os.path.join(out_dir, 'checkpoint', 'model'),
      '--intermediate_output_graphs_dir', os.path.join(out_dir, 'intermediate'),
  ]


def sample_paths():
  """Every image of the shipped sample, sorted."""
  return sorted(path for path in glob.glob(os.path.join(SAMPLE_DIR, '*', '*'))
                if path.lower().endswith(('.jpg', '.jpeg', '.png')))


def decode_images(paths, size):
  """Images decoded and resized as retrain.py does: float [N, H, W, 3]."""
  import retrain  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    data = tf.placeholder(tf.string)
    image = retrain.decode_and_resize(data, size, size, 3)
    with tf.Session() as sess:
      return np.concatenate([sess.run(image, {data: open(path, 'rb').read()})
                             for path in paths])


def graph_probabilities(graph_file, images):
  """The frozen graph's probabilities for float images [N, H, W, 3]."""
  graph_def = tf.GraphDef()
  with open(graph_file, 'rb') as f:
    graph_def.ParseFromString(f.read())
  with tf.Graph().as_default():
    output, = tf.import_graph_def(graph_def, return_elements=['final_result:0'],
                                  name='')
    with tf.Session() as sess:
      return sess.run(output, {'Placeholder:0': images})


def tflite_probabilities(tflite_file, images):
  """Runs a .tflite on each image; returns (probabilities, in/out details)."""
  interpreter = tflite_export.tflite_interpreter(model_path=tflite_file)
  interpreter.allocate_tensors()
  input_details = interpreter.get_input_details()[0]
  output_details = interpreter.get_output_details()[0]
  results = []
  for image in images:
    if input_details['dtype'] == np.uint8:
      scale, zero_point = input_details['quantization']
      image = np.clip(np.round(image / scale + zero_point), 0,
                      255).astype(np.uint8)
    interpreter.set_tensor(input_details['index'], image[None])
    interpreter.invoke()
    output = interpreter.get_tensor(output_details['index'])[0]
    if output_details['dtype'] == np.uint8:
      scale, zero_point = output_details['quantization']
      output = (output.astype(np.float32) - zero_point) * scale
    results.append(output)
  return np.array(results), input_details, output_details


def read_csv(path):
  """The header and the rows of a CSV file that label_image.py wrote."""
  with open(path, newline='', encoding='utf-8') as f:
    header, *rows = list(csv.reader(f))
  return header, rows


def saved_model_cli():
  """The saved_model_cli command that comes with TensorFlow."""
  script = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  if os.path.isfile(script):
    return [script]
  return [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli']


def run_command(command, timeout=300):
  """Runs a command (not one of the project's scripts); returns the result."""
  return subprocess.run(command, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=timeout,
                        check=False, env=dict(os.environ,
                                              TF_CPP_MIN_LOG_LEVEL='3'))


@pytest.fixture(scope='session')
def sample_images():
  """The sample's paths, and its images decoded for the 128x128 sample module."""
  paths = sample_paths()
  return paths, decode_images(paths, 128)


class ModulePipeline(object):
  """The sample module's graph, decoding ops and Session, as retrain.py's
  create_bottleneck_session opens them for computing bottlenecks."""

  def __init__(self, module_dir, bottleneck_precision='float32',
               image_size=None):
    import retrain  # pylint: disable=g-import-not-at-top
    self.spec = retrain.load_module_spec(module_dir, image_size=image_size)
    self.sess, self.tensors = retrain.create_bottleneck_session(
        self.spec, bottleneck_precision)
    self.graph = self.sess.graph
    (self.jpeg_data, self.decoded_image, self.resized_input,
     self.bottleneck) = self.tensors
    self.image_height, self.image_width, _ = retrain.module_image_shape(
        self.spec)
    self.feature_width = self.spec.feature_width

  def decode(self, image_data):
    """The image decoded and resized as for the module, [1, H, W, 3]."""
    return self.sess.run(self.decoded_image, {self.jpeg_data: image_data})

  def close(self):
    self.sess.close()


def cache_files(bottleneck_dir):
  """{path relative to bottleneck_dir: file text} of every file below it."""
  files = {}
  for root, _, names in os.walk(bottleneck_dir):
    for name in names:
      path = os.path.join(root, name)
      with open(path) as f:
        files[os.path.relpath(path, bottleneck_dir)] = f.read()
  return files


def retrain_cache(module_dir, image_dir, bottleneck_dir, image_size=None):
  """{path: text} of what retrain.py's cache_bottlenecks writes for image_dir."""
  import retrain  # pylint: disable=g-import-not-at-top
  pipeline = ModulePipeline(module_dir, image_size=image_size)
  image_lists = retrain.create_image_lists(image_dir, 10, 10)
  module_name = retrain.module_cache_name(module_dir, module_spec=pipeline.spec)
  retrain.cache_bottlenecks(pipeline.sess, image_lists, image_dir,
                            bottleneck_dir, *pipeline.tensors,
                            module_name=module_name)
  pipeline.close()
  return cache_files(bottleneck_dir)


def assert_same_cache_values(written, reference):
  """Same cache file paths (nothing left over), values within 1e-5."""
  assert sorted(written) == sorted(reference)
  for path, text in reference.items():
    np.testing.assert_allclose(np.array(written[path].split(','), np.float32),
                               np.array(text.split(','), np.float32),
                               rtol=1e-5, atol=1e-7, err_msg=path)


def assert_retrain_finds_the_cache_complete(module_dir, bottleneck_dir,
                                            out_dir):
  """retrain.py (3 steps) on the sample with bottleneck_dir computes nothing."""
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', module_dir,
      '--how_many_training_steps', '3'] + retrain_output_args(
          out_dir, bottleneck_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  assert '250 bottlenecks found in the cache, 0 to compute.' in result.stdout
  assert 'Final test accuracy = ' in result.stdout

def beam_summary_line(output):
  """beam_bottlenecks.py's 'Bottlenecks: ...' summary line in output."""
  match = re.search(r'^Bottlenecks: .*$', output, re.M)
  assert match, output[-3000:]
  return match.group(0)


@pytest.fixture()
def module_pipeline(sample_module):
  """A ModulePipeline on the sample module, for one test."""
  pipeline = ModulePipeline(sample_module)
  yield pipeline
  pipeline.close()


def write_any_size_module(module_dir, attached_size=None, channels=3):
  """Writes a TF1 Hub module that takes images of any size: their mean colour.

  Args:
    module_dir: The folder to write.
    attached_size: (height, width) to attach as the module's ImageModuleInfo,
      as hub.attach_image_module_info did, or None.
    channels: The images' channels (3 for an image feature vector).

  Returns:
    module_dir.
  """
  import half_plus_two  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [None, None, None, channels],
                            name='images')
    scale = tf.get_variable('scale', initializer=2.0)
    features = tf.reduce_mean(images, axis=[1, 2]) * scale
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      half_plus_two.write_hub_module(sess, module_dir, {'images': images},
                                     {'default': features})
  if attached_size:
    # ModuleAttachment(key='image_module_info', value=ImageModuleInfo(
    # default_image_size=(height, width))), encoded by hand: field numbers
    # and wire types (2: bytes, 0: varint) as in tensorflow_hub's protos.
    height, width = attached_size
    size = b'\x08' + bytes([height]) + b'\x10' + bytes([width])
    info = b'\x0a' + bytes([len(size)]) + size
    key = b'image_module_info'
    attachment = (b'\x0a' + bytes([len(key)]) + key + b'\x12' +
                  bytes([len(info)]) + info)
    path = os.path.join(module_dir, 'saved_model.pb')
    saved_model = saved_model_pb2.SavedModel()
    with open(path, 'rb') as f:
      saved_model.ParseFromString(f.read())
    saved_model.meta_graphs[0].collection_def[
        'hub_module_attachments'].bytes_list.value.append(attachment)
    with open(path, 'wb') as f:
      f.write(saved_model.SerializeToString())
  return module_dir


@pytest.fixture(scope='session')
def sample_module(tmp_path_factory):
  """The default sample CNN module (what the README's demo builds)."""
  import make_image_module  # pylint: disable=g-import-not-at-top
  return make_image_module.export_sample_cnn_module(
      str(tmp_path_factory.mktemp('modules') / 'sample_cnn'))


@pytest.fixture(scope='session')
def quantized_module(tmp_path_factory):
  """The sample CNN instrumented with FakeQuant ops."""
  import make_image_module  # pylint: disable=g-import-not-at-top
  return make_image_module.export_sample_cnn_module(
      str(tmp_path_factory.mktemp('modules') / 'sample_cnn_quant'),
      quantize=True)


def write_color_images(class_dir, base_color, count, seed, png_every=5):
  """Writes noisy images of one dominant colour, of varying sizes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(class_dir, exist_ok=True)
  rng = np.random.RandomState(seed)
  for i in range(count):
    height, width = 40 + 3 * i, 60 - i
    pixels = np.clip(rng.randn(height, width, 3) * 35 + base_color, 0, 255)
    extension = 'png' if i % png_every == 0 else 'jpg'
    Image.fromarray(pixels.astype(np.uint8)).save(
        os.path.join(class_dir, 'image_%02d.%s' % (i, extension)))


@pytest.fixture()
def color_image_dir(tmp_path):
  """Three small classes of coloured noise: quick to cache and to learn."""
  root = tmp_path / 'images'
  for seed, (name, color) in enumerate([('red', (210, 40, 40)),
                                        ('Green_Leaves', (40, 200, 40)),
                                        ('blue', (40, 40, 210))]):
    write_color_images(str(root / name), color, 24, seed)
  return str(root)


@pytest.fixture(scope='session')
def tf2_modules(tmp_path_factory):
  """TF2 SavedModel image feature vectors (tests/make_tf2_module.py --all).

  Built in a process of their own, since saving needs TF2 behaviour: a dict
  of folders by kind: 'fixed' (64x64 input), 'variable_size', 'signature_only'
  and 'not_image'.
  """
  root = str(tmp_path_factory.mktemp('tf2_modules'))
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_DIR, 'tests', 'make_tf2_module.py'),
       '--all', root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stdout[-3000:]
  return {kind: os.path.join(root, kind) for kind in
          ('fixed', 'variable_size', 'signature_only', 'not_image')}


@pytest.fixture(scope='session')
def trained_run(sample_module, tmp_path_factory):
  """A seeded retrain.py run on the sample with the SavedModel and TF Lite on.

  Returns:
    A dict: 'dir' (all outputs), 'graph', 'labels', 'saved_model', 'tflite',
    'summaries' paths, 'module' (the sample module) and 'output' (what the
    run printed).
  """
  out_dir = str(tmp_path_factory.mktemp('trained_run'))
  paths = {
      'dir': out_dir,
      'module': sample_module,
      'graph': os.path.join(out_dir, 'output_graph.pb'),
      'labels': os.path.join(out_dir, 'output_labels.txt'),
      'saved_model': os.path.join(out_dir, 'saved_models', '1'),
      'tflite': os.path.join(out_dir, 'model.tflite'),
      'summaries': os.path.join(out_dir, 'retrain_logs'),
  }
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '1000', '--random_seed', '1',
      '--saved_model_dir', paths['saved_model'],
      '--tflite_output_file', paths['tflite']] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  paths['output'] = result.stdout
  return paths


def png_bytes(pixels, bit_depth=8, declared_size=None, rows=None):
  """Encodes a PNG by hand (PIL cannot write 16-bit colour PNGs).

  Args:
    pixels: uint8 or uint16 array [height, width, 3] (RGB) or [height, width, 4]
      (RGBA).
    bit_depth: 8 or 16.
    declared_size: (height, width) to write into the header instead of the
      real one (a decompression bomb's lie).
    rows: how many rows of pixel data to store (default: all).

  Returns:
    The PNG file's bytes.
  """
  import struct  # pylint: disable=g-import-not-at-top
  import zlib  # pylint: disable=g-import-not-at-top

  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

  height, width, channels = pixels.shape
  declared_height, declared_width = declared_size or (height, width)
  color_type = {3: 2, 4: 6}[channels]
  dtype = '>u2' if bit_depth == 16 else 'u1'
  raw = b''.join(b'\x00' + row.astype(dtype).tobytes()
                 for row in pixels[:rows])
  header = struct.pack('>IIBBBBB', declared_width, declared_height, bit_depth,
                       color_type, 0, 0, 0)
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
          chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


# The name of a file whose name is not valid UTF-8 (Latin-1 'été.jpg').
NON_UTF8_NAME = os.fsdecode(b'\xe9t\xe9.jpg')


def write_bad_images(class_dir, seed=0, huge=True):
  """Adds every kind of odd, broken or hostile image file to a class folder.

  Args:
    class_dir: an existing class folder that already holds good images.
    seed: seed of the random pixels and bytes.
    huge: whether to write the 12000 x 12000 JPEG (a few seconds).

  Returns:
    {file name: None if the image must be used, else a piece of the reason it
    must be skipped with}. 'no_permission.jpg' can still be read by root.
  """
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  rgb = np.clip(rng.randn(48, 64, 3) * 35 + (210, 40, 40), 0,
                255).astype(np.uint8)

  def encoded(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()

  jpeg = encoded(Image.fromarray(rgb), 'JPEG', quality=90)
  frames = [Image.fromarray(rgb).convert('P'),
            Image.fromarray(255 - rgb).convert('P')]
  animated = io.BytesIO()
  frames[0].save(animated, 'GIF', save_all=True, append_images=frames[1:])
  rgba = np.dstack([rgb, rng.randint(0, 256, rgb.shape[:2])]).astype(np.uint8)
  files = {
      'truncated.jpg': (jpeg[:len(jpeg) // 2], 'damaged or truncated'),
      'zero_bytes.jpg': (b'', 'empty'),
      'random_bytes.jpg': (rng.bytes(3000), 'unknown file format'),
      'png_named.jpg': (encoded(Image.fromarray(rgb), 'PNG'), None),
      'gif_named.jpg': (encoded(Image.fromarray(rgb).convert('P'), 'GIF'),
                        None),
      'animated_gif_named.jpg': (animated.getvalue(), 'an animated GIF'),
      'bmp_named.jpg': (encoded(Image.fromarray(rgb), 'BMP'), 'a BMP image'),
      'cmyk.jpg': (encoded(Image.fromarray(rgb).convert('CMYK'), 'JPEG',
                           quality=95), None),
      'grayscale.jpg': (encoded(Image.fromarray(rgb).convert('L'), 'JPEG',
                                quality=95), None),
      'rgba.png': (png_bytes(rgba), None),
      'sixteen_bit.png': (png_bytes(rgb.astype(np.uint16) * 257, 16), None),
      'one_pixel.jpg': (encoded(Image.fromarray(rgb[:1, :1]), 'JPEG'), None),
      'bomb.png': (png_bytes(rgb, declared_size=(20000, 20000), rows=2),
                   '20000 x 20000 pixels, more than the'),
      'my photo ñ 日本.jpg': (jpeg, None),
      'long_name_' + 'x' * 230 + '.jpg': (jpeg, None),
      'no_permission.jpg': (jpeg, 'cannot be read'),
      NON_UTF8_NAME: (jpeg, 'not valid UTF-8'),
  }
  expected = {}
  for name, (data, reason) in files.items():
    with open(os.path.join(os.fsencode(class_dir), os.fsencode(name)),
              'wb') as f:
      f.write(data)
    expected[name] = reason
  if huge:
    Image.new('RGB', (12000, 12000), (210, 40, 40)).save(
        os.path.join(class_dir, 'huge_12000x12000.jpg'), quality=90)
    expected['huge_12000x12000.jpg'] = None
  os.chmod(os.path.join(class_dir, 'no_permission.jpg'), 0)
  os.symlink('png_named.jpg', os.path.join(class_dir, 'link_to_image.jpg'))
  expected['link_to_image.jpg'] = None
  os.symlink('missing.jpg', os.path.join(class_dir, 'dangling_link.jpg'))
  expected['dangling_link.jpg'] = 'broken symbolic link'
  os.mkfifo(os.path.join(class_dir, 'named_pipe.jpg'))
  expected['named_pipe.jpg'] = 'not a regular file'
  return expected
