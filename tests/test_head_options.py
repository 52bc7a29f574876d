"""The head options of issue 12: optimizer, dropout, L2, label smoothing and
the accuracy gate change training as documented and never reach an export."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import retrain
from conftest import (SAMPLE_DIR, decode_images, graph_probabilities,
                      retrain_output_args, run_tool, sample_paths)

tf.disable_v2_behavior()


def _training_graph(head_options, width=8, class_count=3):
  """A training graph of the new layer on a bottleneck placeholder."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1)
    layer = retrain._add_new_layer(  # pylint: disable=protected-access
        class_count, 'final_result', tf.placeholder(tf.float32, [None, width]),
        False, True, head_options)
  return graph, layer


def _op_types(graph):
  return {op.type for op in graph.get_operations()}


def _ancestors(tensor):
  """The ops that tensor (or op) depends on."""
  seen = set()
  stack = [getattr(tensor, 'op', tensor)]
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return seen


@pytest.mark.parametrize('optimizer,op_type', [
    ('gradient_descent', 'ApplyGradientDescent'),
    ('momentum', 'ApplyMomentum'),
    ('adam', 'ApplyAdam')])
def test_optimizer_flag_picks_the_update_op(optimizer, op_type):
  graph, layer = _training_graph(retrain.HeadOptions(0.1, optimizer, 0.5))
  types = _op_types(graph)
  assert op_type in types
  others = {'ApplyGradientDescent', 'ApplyMomentum', 'ApplyAdam'} - {op_type}
  assert not types & others
  # Each train step counts itself in the global step (what resuming reads).
  assert layer.global_step.op.name == 'global_step'
  if optimizer == 'momentum':
    updates = [op for op in graph.get_operations()
               if op.type == 'ApplyMomentum']
    assert len(updates) == 2  # The weights and the biases.
    with tf.Session(graph=graph) as sess:
      for update in updates:
        assert sess.run(update.inputs[4]) == pytest.approx(0.5)


def test_default_head_is_the_originals_plain_gradient_descent():
  graph, _ = _training_graph(retrain.HeadOptions(0.1))
  names = [op.name for op in graph.get_operations()]
  assert not [name for name in names if 'dropout' in name or 'l2_' in name]
  assert 'SparseSoftmaxCrossEntropyWithLogits' in _op_types(graph)
  assert 'ApplyGradientDescent' in _op_types(graph)


def _run_steps(graph, layer, features, labels, steps):
  """Trains for steps; returns (cross entropies, final tensor values)."""
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    feed = {layer.bottleneck_input: features,
            layer.ground_truth_input: labels}
    losses = []
    for _ in range(steps):
      losses.append(sess.run([layer.cross_entropy, layer.train_step],
                             feed)[0])
    weights = sess.run(graph.get_tensor_by_name(
        'final_retrain_ops/weights/final_weights:0'))
    finals = [sess.run(layer.final_tensor, feed) for _ in range(2)]
  return losses, finals, weights


def test_dropout_drops_inputs_in_training_only():
  rng = np.random.RandomState(0)
  features = rng.rand(50, 8).astype(np.float32) + 1
  labels = rng.randint(0, 3, 50).astype(np.int64)
  graph, layer = _training_graph(retrain.HeadOptions(0.0, dropout_rate=0.5))
  # The final tensor (accuracies, exports) does not see the dropout.
  assert not [op for op in _ancestors(layer.final_tensor)
              if 'dropout' in op.name]
  assert [op for op in _ancestors(layer.cross_entropy)
          if op.type.startswith('StatelessRandomUniform')]
  # With a learning rate of 0 the weights stay: the loss still changes from
  # step to step (a new mask each step), the final tensor does not.
  losses, finals, _ = _run_steps(graph, layer, features, labels, 4)
  assert len(set(np.float32(losses).tolist())) == 4
  np.testing.assert_array_equal(finals[0], finals[1])
  plain_graph, plain_layer = _training_graph(retrain.HeadOptions(0.0))
  plain_losses, _, _ = _run_steps(plain_graph, plain_layer, features, labels,
                                  4)
  assert len(set(np.float32(plain_losses).tolist())) == 1


def test_label_smoothing_is_the_cross_entropy_with_smoothed_labels():
  features = np.eye(3, dtype=np.float32) * 4
  labels = np.array([0, 1, 2], np.int64)
  graph, layer = _training_graph(
      retrain.HeadOptions(0.0, label_smoothing=0.3), width=3)
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    weights = graph.get_tensor_by_name(
        'final_retrain_ops/weights/final_weights:0')
    sess.run(tf.assign(weights, np.eye(3, dtype=np.float32)))
    loss = sess.run(layer.cross_entropy, {layer.bottleneck_input: features,
                                          layer.ground_truth_input: labels})
  logits = features
  log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  smoothed = np.eye(3) * 0.7 + 0.1
  assert loss == pytest.approx(-(smoothed * log_p).sum(1).mean(), rel=1e-5)


def test_l2_regularizer_shrinks_the_weights():
  rng = np.random.RandomState(1)
  features = rng.rand(60, 8).astype(np.float32)
  labels = (features[:, 0] > features[:, 1]).astype(np.int64)
  norms = []
  for l2 in (0.0, 0.5):
    graph, layer = _training_graph(retrain.HeadOptions(0.5, l2_regularizer=l2),
                                   class_count=2)
    if l2:
      assert [op for op in _ancestors(layer.train_step)
              if op.name.startswith('l2_regularizer/')]
    _, _, weights = _run_steps(graph, layer, features, labels, 200)
    norms.append(np.square(weights).sum())
  assert norms[1] < 0.5 * norms[0]


def _node_kinds(graph_file):
  graph_def = tf.GraphDef()
  with open(graph_file, 'rb') as f:
    graph_def.ParseFromString(f.read())
  return sorted((node.name, node.op) for node in graph_def.node)


def _saved_model_ops(saved_model_dir):
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(saved_model_dir, 'saved_model.pb'), 'rb') as f:
    saved_model.ParseFromString(f.read())
  return sorted((node.name, node.op) for meta in saved_model.meta_graphs
                for node in meta.graph_def.node)


def test_head_options_never_reach_the_exports(trained_run, sample_module,
                                              tmp_path):
  out_dir = str(tmp_path)
  saved_model_dir = os.path.join(out_dir, 'saved_models', '1')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '200', '--random_seed', '1',
      '--optimizer', 'adam', '--learning_rate', '0.001',
      '--dropout_rate', '0.3', '--l2_regularizer', '0.001',
      '--label_smoothing', '0.1', '--assert_accuracy_at_least', '0.5',
      '--saved_model_dir', saved_model_dir] + retrain_output_args(out_dir))
  assert result.returncode == 0, result.stdout[-3000:]
  graph_file = os.path.join(out_dir, 'output_graph.pb')
  # The same nodes as the default run's exports: no dropout, no optimizer.
  assert _node_kinds(graph_file) == _node_kinds(trained_run['graph'])
  assert _saved_model_ops(saved_model_dir) == _saved_model_ops(
      trained_run['saved_model'])
  images = decode_images(sample_paths()[:8], 128)
  first = graph_probabilities(graph_file, images)
  np.testing.assert_array_equal(first, graph_probabilities(graph_file, images))


def test_accuracy_below_the_bar_exits_non_zero_and_exports_nothing(
    sample_module, tmp_path):
  out_dir = str(tmp_path)
  saved_model_dir = os.path.join(out_dir, 'saved_models', '1')
  tflite_file = os.path.join(out_dir, 'model.tflite')
  result = run_tool('retrain.py', [
      '--image_dir', SAMPLE_DIR, '--tfhub_module', sample_module,
      '--how_many_training_steps', '2', '--learning_rate', '0.0001',
      '--random_seed', '1', '--assert_accuracy_at_least', '1',
      '--saved_model_dir', saved_model_dir, '--tflite_output_file',
      tflite_file] + retrain_output_args(out_dir))
  assert result.returncode == 1, result.stdout[-3000:]
  checkpoint = os.path.join(out_dir, 'checkpoint', 'model')
  last = result.stdout.strip().splitlines()[-1]
  assert last.startswith('ERROR: Final test accuracy ')
  assert last.endswith('% is below --assert_accuracy_at_least 1: nothing '
                       'exported; the trained layer is kept in ' +
                       checkpoint + '.')
  for path in (os.path.join(out_dir, 'output_graph.pb'),
               os.path.join(out_dir, 'output_labels.txt'), saved_model_dir,
               tflite_file):
    assert not os.path.exists(path), path
  assert os.path.exists(checkpoint + '.index')


@pytest.mark.parametrize('flag,value,message', [
    ('--dropout_rate', '1', '--dropout_rate must be in [0, 1), not 1.0.'),
    ('--label_smoothing', '-0.1',
     '--label_smoothing must be in [0, 1), not -0.1.'),
    ('--momentum', '1.5', '--momentum must be in [0, 1), not 1.5.'),
    ('--l2_regularizer', '-1',
     '--l2_regularizer must be 0 (off) or positive, not -1.0.'),
    ('--save_every_steps', '-5',
     '--save_every_steps must be 0 (every minute) or positive, not -5.'),
    ('--assert_accuracy_at_least', '90',
     '--assert_accuracy_at_least is a fraction in [0, 1] (e.g. 0.9 for 90%), '
     'not 90.0.'),
])
def test_head_and_resume_flags_out_of_range_are_one_line(tmp_path, flag,
                                                          value, message):
  flags = retrain.build_parser().parse_args(
      ['--image_dir', SAMPLE_DIR, flag, value] +
      retrain_output_args(str(tmp_path)))
  with pytest.raises(retrain.RetrainError) as error:
    retrain.check_flags(flags)
  assert str(error.value) == message
