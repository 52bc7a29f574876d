# Copyright 2026 The retrain authors. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
r"""Builds, exports and reads back the smallest possible TF1 Hub module.

The module computes y = a*x + b for a float32 vector x, with the variables
a = 0.5 and b = 2.0 stored in the module's checkpoint, so that

  y([10, 3, 4])  ==  [7, 3.5, 4]

A module in the TF1 Hub format is a SavedModel with

  1. one graph with the empty set of tags,
  2. the signature 'default' in it (inputs and outputs by name),
  3. the variables' values in its checkpoint (variables/),
  4. the file tfhub_module.pb, a ModuleDef message that says format 3.

This script writes those four parts by hand, with the SavedModel Builder of
TensorFlow 2.15 and 2.21 alike. hub.Module of tensorflow_hub <= 0.15 reads
the result (hub.Module(EXPORT_PATH)([10, 3, 4])); tensorflow_hub 0.16 no
longer has hub.Module, so the script then reads the module back itself, the
way retrain.py reads image modules: it imports the graph, feeds x through
the signature's input and lets the variables' initializers restore their
values from the checkpoint.

Usage:

  python half_plus_two.py /tmp/half_plus_two/1

The export is atomic: the module is written into a temporary folder next to
EXPORT_PATH and renamed into place only once complete. An existing EXPORT_PATH
is never touched.
"""

import os
import shutil
import signal
import sys
import tempfile

if __name__ == '__main__':
  # Ctrl-C while TensorFlow imports (seconds) just ends the program, without
  # a traceback; main() catches interrupts itself once there is work to undo.
  signal.signal(signal.SIGINT, signal.SIG_DFL)

# TensorFlow's C++ code logs spurious lines at import ("Unable to register
# cuDNN factory ...", oneDNN notes), so level 2 (hide INFO and WARNING) is not
# quiet enough; TensorFlow >= 2.19 prints some whatever the level says, so
# stderr is closed while it loads. Real failures still reach the user as
# Python exceptions, raised once stderr is back.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
_stderr = os.dup(2)
_devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(_devnull, 2)
os.close(_devnull)
try:
  # pylint: disable=g-import-not-at-top,wrong-import-position
  from absl import logging as absl_logging
  import tensorflow.compat.v1 as tf
  from tensorflow.core.protobuf import saved_model_pb2
  # pylint: enable=g-import-not-at-top,wrong-import-position
finally:
  os.dup2(_stderr, 2)

# Before disable_v2_behavior(), which itself logs deprecation warnings.
tf.logging.set_verbosity(tf.logging.ERROR)
absl_logging.set_verbosity(absl_logging.ERROR)
tf.disable_v2_behavior()

USAGE = 'Usage: half_plus_two.py <export-path>'
# What main feeds the module it read back: y is [7.0, 3.5, 4.0].
READ_BACK_X = [10.0, 3.0, 4.0]


class ExportError(Exception):
  """An export that cannot be done, with a message meant for the user."""


def half_plus_two_graph():
  """Defines the module's graph, y = a*x + b, in the current graph.

  Returns:
    (x, y): the input and output tensors.
  """
  # Zeros, not 0.5 and 2.0: the real values are assigned later and reach the
  # users of the module only through its checkpoint.
  a = tf.get_variable('a', shape=[], dtype=tf.float32,
                      initializer=tf.zeros_initializer())
  b = tf.get_variable('b', shape=[], dtype=tf.float32,
                      initializer=tf.zeros_initializer())
  x = tf.placeholder(tf.float32, shape=[None], name='x')
  return x, a * x + b


def apply_module(module_dir, x):
  """Reads a TF1 Hub module into the current graph and applies it to x.

  Args:
    module_dir: the module's folder.
    x: the tensor to feed to the signature 'default' input 'default'.

  Returns:
    The tensor of the signature's output 'default'. Running the global
    variables initializer sets the module's variables to the checkpoint's
    values.
  """
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(module_dir, 'saved_model.pb'), 'rb') as f:
    saved_model.ParseFromString(f.read())
  meta_graph, = [meta_graph for meta_graph in saved_model.meta_graphs
                 if not meta_graph.meta_info_def.tags]
  signature = meta_graph.signature_def['default']
  tf.train.import_meta_graph(
      meta_graph, import_scope='module',
      input_map={signature.inputs['default'].name: x})
  tf.train.init_from_checkpoint(
      os.path.join(module_dir, 'variables', 'variables'),
      {variable.op.name[len('module/'):]: variable
       for variable in tf.global_variables()
       if variable.op.name.startswith('module/')})
  return tf.get_default_graph().get_tensor_by_name(
      'module/' + signature.outputs['default'].name)


def read_back(module_dir, x_values):
  """Returns the module's y for x_values, computed in a graph of its own."""
  with tf.Graph().as_default():
    y = apply_module(module_dir, tf.constant(x_values, tf.float32))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      return session.run(y).tolist()


def _check_free(export_path):
  """Raises ExportError if something (even a broken link) is at export_path."""
  if os.path.lexists(export_path):
    raise ExportError(
        'Path %s already exists. Choose a new path or remove it.' % export_path)


def _write_module(module_dir):
  """Builds the module, sets a = 0.5 and b = 2.0 and exports it to module_dir.

  Args:
    module_dir: path of the module folder to create; must not exist.
  """
  with tf.Graph().as_default():
    x, y = half_plus_two_graph()
    a, b = tf.global_variables()
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      session.run([tf.assign(a, 0.5), tf.assign(b, 2.0)])
      write_hub_module(session, module_dir, {'default': x}, {'default': y})


def write_hub_module(session, module_dir, inputs, outputs):
  """Writes a Session's graph and variables as a TF1 Hub format module.

  make_image_module.py writes its image modules with it too.

  Args:
    session: A Session on the module's graph, its variables set.
    module_dir: The folder to write (it must not exist, or be empty).
    inputs: The signature 'default''s inputs, {name: tensor}.
    outputs: Its outputs, {name: tensor}.
  """
  builder = tf.saved_model.Builder(module_dir)
  builder.add_meta_graph_and_variables(
      session, tags=[], signature_def_map={
          'default': tf.saved_model.predict_signature_def(inputs, outputs)})
  builder.save()
  # A ModuleDef message with format = 3 (FORMAT_V3): field 1, varint 3.
  with open(os.path.join(module_dir, 'tfhub_module.pb'), 'wb') as f:
    f.write(b'\x08\x03')


def export_module(export_path):
  """Exports the half-plus-two module to export_path, atomically.

  The module is written into a temporary sibling folder of export_path, which
  is renamed to export_path when complete and removed on any failure or
  interrupt. Missing parent folders are created.

  Args:
    export_path: path of the module folder to create; must not exist yet.

  Returns:
    The absolute path of the exported module.

  Raises:
    ExportError: if export_path already exists.
    OSError, tf.errors.OpError: if writing the module fails.
  """
  _check_free(export_path)
  # normpath drops a trailing slash, which would put the temporary folder
  # inside the target instead of next to it.
  target = os.path.abspath(os.path.normpath(export_path))
  parent, base = os.path.split(target)
  os.makedirs(parent, exist_ok=True)
  # mkdtemp, not a fixed '<path>.tmp-<pid>': a stale folder left by a killed
  # run with the same pid cannot collide.
  temp_dir = tempfile.mkdtemp(prefix='%s.tmp-%d-' % (base, os.getpid()),
                              dir=parent)
  try:
    _write_module(temp_dir)
    # Something may have appeared at the target while TensorFlow was working;
    # os.rename would silently replace an empty folder there.
    _check_free(export_path)
    os.chmod(temp_dir, 0o777 & ~_umask())
    os.rename(temp_dir, target)
  except BaseException:
    shutil.rmtree(temp_dir, ignore_errors=True)
    raise
  return target


def _umask():
  """Returns the process umask (which can only be read by setting it)."""
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _raise_keyboard_interrupt(signum, frame):
  """Signal handler raising KeyboardInterrupt, so that cleanups run."""
  del signum, frame  # Unused.
  raise KeyboardInterrupt()


def _one_line(error):
  """Returns the first non-empty line of an exception's message."""
  for line in str(error).splitlines():
    if line.strip():
      return line.strip()
  return type(error).__name__


def main(argv):
  """Runs the script.

  Args:
    argv: the command line, argv[0] being the program name.

  Returns:
    The process exit code: 0 on success, 1 on failure, 2 on a usage error,
    130 when interrupted.
  """
  if len(argv) != 2 or not argv[1]:
    print(USAGE, file=sys.stderr)
    return 2
  export_path = argv[1]
  interrupts = (signal.SIGINT, signal.SIGTERM)
  previous_handlers = [signal.signal(signum, _raise_keyboard_interrupt)
                       for signum in interrupts]
  try:
    export_module(export_path)
  except ExportError as e:
    print(str(e), file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print('Interrupted; nothing was exported to %s.' % export_path,
          file=sys.stderr)
    return 130
  except Exception as e:  # pylint: disable=broad-except
    print('Export to %s failed: %s' % (export_path, _one_line(e)),
          file=sys.stderr)
    return 1
  finally:
    for signum, handler in zip(interrupts, previous_handlers):
      signal.signal(signum, handler)
  print('Exported half-plus-two module to %s' % export_path)
  print('Read back: y(%s) = %s' % (READ_BACK_X, read_back(export_path,
                                                          READ_BACK_X)))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
