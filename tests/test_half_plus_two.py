"""Tests for half_plus_two.py: export a Hub module by hand, then reuse it.

The script is run as a user would run it (a subprocess of this Python, from
the repository root); the export is done once per module and reused. The
tests of hub.Module reading the module run where tensorflow_hub still has it
(the classic stack, which run_tests.sh runs this file on too).
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import saved_model_pb2

tf.disable_v2_behavior()
try:
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
except ImportError:
  hub = None

# hub.Module exists in tensorflow_hub <= 0.15 (the classic stack).
needs_hub_module = pytest.mark.skipif(
    not hasattr(hub, 'Module'), reason='tensorflow_hub %s has no hub.Module '
    '(it went in 0.16); run_tests.sh runs these on the classic stack' %
    getattr(hub, '__version__', '(not installed)'))

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, 'half_plus_two.py')
USAGE = 'Usage: half_plus_two.py <export-path>'


def run_script(*args):
  """Runs half_plus_two.py with args; returns the CompletedProcess."""
  env = dict(os.environ)
  # Exercise the script's own log quieting, not an inherited setting.
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  return subprocess.run(
      [sys.executable, SCRIPT] + [str(arg) for arg in args],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def temp_siblings(folder):
  """Names in folder that look like a leftover temporary export folder."""
  return sorted(name for name in os.listdir(folder) if '.tmp-' in name)


def snapshot(folder):
  """Maps each file under folder (relative path) to its bytes."""
  contents = {}
  for dirpath, dirnames, filenames in os.walk(folder):
    for name in dirnames + filenames:
      path = os.path.join(dirpath, name)
      rel = os.path.relpath(path, folder)
      if os.path.isdir(path):
        contents[rel] = None
      else:
        with open(path, 'rb') as f:
          contents[rel] = f.read()
  return contents


def load_script_module():
  """Imports half_plus_two.py in this process, for the failure injections."""
  spec = importlib.util.spec_from_file_location('half_plus_two', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """Exports the module once; returns (export_path, CompletedProcess)."""
  parent = tmp_path_factory.mktemp('hp2')
  # A parent that does not exist yet: the script must create it.
  export_path = parent / 'models' / 'half_plus_two' / '1'
  result = run_script(export_path)
  return export_path, result


def test_export_succeeds_quietly_and_reads_the_module_back(exported):
  export_path, result = exported
  assert result.returncode == 0, result.stderr
  assert result.stdout == (
      'Exported half-plus-two module to %s\n'
      'Read back: y([10.0, 3.0, 4.0]) = [7.0, 3.5, 4.0]\n' % export_path)
  assert result.stderr == ''


def test_module_has_the_tf1_hub_format(exported):
  export_path, _ = exported
  with open(export_path / 'tfhub_module.pb', 'rb') as f:
    assert f.read() == b'\x08\x03'  # ModuleDef(format=FORMAT_V3).
  saved_model = saved_model_pb2.SavedModel()
  with open(export_path / 'saved_model.pb', 'rb') as f:
    saved_model.ParseFromString(f.read())
  meta_graph, = saved_model.meta_graphs
  assert list(meta_graph.meta_info_def.tags) == []
  signature = meta_graph.signature_def['default']
  assert list(signature.inputs) == ['default']
  assert list(signature.outputs) == ['default']
  assert tf.train.load_checkpoint(str(export_path / 'variables' / 'variables')
                                  ).get_variable_to_shape_map() == {
                                      'a': [], 'b': []}


def test_apply_module_restores_the_checkpoint_in_a_graph(exported):
  export_path, _ = exported
  script = load_script_module()
  with tf.Graph().as_default():
    x = tf.placeholder(tf.float32, [None])
    y = script.apply_module(str(export_path), x)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      np.testing.assert_allclose(session.run(y, {x: [10, 3, 4, -2]}),
                                 [7, 3.5, 4, 1])


def test_export_creates_missing_parents_and_leaves_no_temp(exported):
  export_path, _ = exported
  assert os.path.isfile(export_path / 'tfhub_module.pb')
  assert os.path.isfile(export_path / 'saved_model.pb')
  assert os.path.isdir(export_path / 'variables')
  assert os.listdir(export_path.parent) == ['1']


@needs_hub_module
def test_reuse_computes_half_plus_two(exported):
  export_path, _ = exported
  with tf.Graph().as_default():
    y = hub.Module(str(export_path))([10, 3, 4])
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      np.testing.assert_allclose(session.run(y), [7, 3.5, 4])


@needs_hub_module
def test_variables_come_from_the_checkpoint(exported):
  export_path, _ = exported
  with tf.Graph().as_default():
    module = hub.Module(str(export_path))
    y = module(tf.constant([10.0]))
    a = module.variable_map['a']
    b = module.variable_map['b']
    with tf.Session() as session:
      # Not initialized yet: there is nothing to compute with.
      with pytest.raises(tf.errors.FailedPreconditionError):
        session.run(y)
      # The module function initializes a and b to zero; the initializer of
      # a reloaded module reads the exported values from its checkpoint.
      session.run(tf.global_variables_initializer())
      assert session.run([a, b]) == [0.5, 2.0]
      np.testing.assert_allclose(session.run(y), [7.0])


@needs_hub_module
def test_spec_describes_the_signature(exported):
  export_path, _ = exported
  spec = hub.load_module_spec(str(export_path))
  assert spec.get_signature_names() == ['default']
  inputs = spec.get_input_info_dict()
  outputs = spec.get_output_info_dict()
  assert list(inputs) == ['default'] and list(outputs) == ['default']
  assert inputs['default'].dtype == tf.float32
  assert inputs['default'].get_shape().as_list() == [None]
  assert outputs['default'].dtype == tf.float32
  assert outputs['default'].get_shape().as_list() == [None]


@needs_hub_module
def test_trainable_module_learns(exported):
  export_path, _ = exported
  spec = hub.load_module_spec(str(export_path))
  with tf.Graph().as_default():
    module = hub.Module(spec, trainable=True)
    variables = [module.variable_map['a'], module.variable_map['b']]
    assert set(variables) <= set(tf.trainable_variables())
    x = tf.constant([1.0, 2.0, 3.0])
    # Targets of y = 2x + 1, far from the exported a = 0.5, b = 2.0.
    loss = tf.reduce_mean(tf.square(module(x) - tf.constant([3.0, 5.0, 7.0])))
    train_step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      before_loss, before = session.run([loss, variables])
      assert before == [0.5, 2.0]
      session.run(train_step)
      after_loss, after = session.run([loss, variables])
  assert after[0] != before[0] and after[1] != before[1]
  assert after_loss < before_loss


@pytest.mark.parametrize('args', [(), ('one', 'two')],
                         ids=['no-argument', 'two-arguments'])
def test_usage_error(args, tmp_path):
  result = run_script(*[tmp_path / arg for arg in args])
  assert result.returncode != 0
  assert result.stderr == USAGE + '\n'
  assert result.stdout == ''
  assert os.listdir(tmp_path) == []


def test_existing_folder_is_left_untouched(tmp_path):
  target = tmp_path / 'taken'
  target.mkdir()
  (target / 'keep.txt').write_bytes(b'precious\n')
  before = snapshot(target)
  result = run_script(target)
  assert result.returncode != 0
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and 'already exists' in lines[0], result.stderr
  assert str(target) in lines[0]
  assert 'Traceback' not in result.stdout + result.stderr
  assert snapshot(target) == before
  assert temp_siblings(tmp_path) == []


def test_existing_file_is_refused_in_process(tmp_path, capsys):
  script = load_script_module()
  target = tmp_path / 'taken.txt'
  target.write_bytes(b'data')
  assert script.main(['half_plus_two.py', str(target)]) != 0
  captured = capsys.readouterr()
  assert captured.err == ('Path %s already exists. '
                          'Choose a new path or remove it.\n' % target)
  assert target.read_bytes() == b'data'


def test_interrupt_removes_the_temporary_folder(tmp_path, monkeypatch, capsys):
  script = load_script_module()
  real_write_module = script._write_module  # pylint: disable=protected-access

  def write_then_interrupt(module_dir):
    real_write_module(module_dir)
    assert os.listdir(module_dir)  # The module really was half-way done.
    raise KeyboardInterrupt()

  monkeypatch.setattr(script, '_write_module', write_then_interrupt)
  target = tmp_path / 'interrupted'
  assert script.main(['half_plus_two.py', str(target)]) == 130
  assert 'Interrupted' in capsys.readouterr().err
  assert os.listdir(tmp_path) == []


def test_failed_rename_removes_the_temporary_folder(tmp_path, monkeypatch,
                                                   capsys):
  script = load_script_module()

  def failing_rename(src, dst):
    raise OSError('disk on fire')

  monkeypatch.setattr(script.os, 'rename', failing_rename)
  target = tmp_path / 'failed'
  assert script.main(['half_plus_two.py', str(target)]) == 1
  err = capsys.readouterr().err
  assert err == 'Export to %s failed: disk on fire\n' % target
  assert os.listdir(tmp_path) == []


def test_trailing_slash_exports_to_the_folder_itself(tmp_path):
  script = load_script_module()
  target = tmp_path / 'slashed'
  assert script.export_module(str(target) + os.sep) == str(target)
  assert os.listdir(tmp_path) == ['slashed']
  assert os.path.isfile(target / 'tfhub_module.pb')
