"""Builds a small TF2 SavedModel image feature vector for the tests.

The format of current TF Hub / Kaggle image models ("reusable SavedModel"):
a tf.function __call__(images, training=False) taking float images
[batch, height, width, 3] with values in [0, 1] and returning features
[batch, features], traced for training False and True, with the variables
saved in the SavedModel. Runs with TF2 behaviour, so in its own process:

  python tests/make_tf2_module.py OUTPUT_DIR [--image_size N]
      [--variable_size] [--signature_only] [--not_image]
  python tests/make_tf2_module.py --all OUTPUT_DIR

--all writes each kind below into a sub-folder of OUTPUT_DIR: fixed,
variable_size, signature_only and not_image.
--variable_size traces __call__ for images of any size (like many Kaggle
models, which then need retrain.py --image_size); --signature_only saves
only a serving_default signature with the output 'feature_vector' and no
__call__; --not_image saves a model that takes vectors, not images.
"""

import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

CHANNELS = 16


class ImageFeatureVector(tf.Module):
  """Mean colour plus pooled ReLU features of one strided 3x3 convolution."""

  def __init__(self):
    super().__init__()
    # Created as zeros and then set, so that a loader that ran the
    # initializers instead of restoring the saved values would give zeros.
    self.kernel = tf.Variable(tf.zeros([3, 3, 3, CHANNELS]), name='kernel')
    self.bias = tf.Variable(tf.zeros([CHANNELS]), name='bias')
    self.kernel.assign(tf.random.stateless_normal([3, 3, 3, CHANNELS],
                                                  seed=[7, 1], stddev=0.5))
    self.bias.assign(tf.fill([CHANNELS], -0.1))

  @tf.function
  def __call__(self, images, training=False):
    del training  # No batch normalisation or dropout here.
    hidden = tf.nn.relu(tf.nn.conv2d(images * 2.0 - 1.0, self.kernel, 2,
                                     'SAME') + self.bias)
    return tf.concat([tf.reduce_mean(images, [1, 2]),
                      tf.reduce_mean(hidden, [1, 2]),
                      tf.reduce_max(hidden, [1, 2])], axis=1)


class VectorModel(tf.Module):
  """Not an image model: takes [batch, 10] vectors."""

  def __init__(self):
    super().__init__()
    self.weights = tf.Variable(tf.ones([10, 4]), name='weights')

  @tf.function(input_signature=[tf.TensorSpec([None, 10], tf.float32)])
  def __call__(self, vectors):
    return tf.matmul(vectors, self.weights)


def save(output_dir, image_size=64, variable_size=False,
         signature_only=False, not_image=False):
  """Saves one kind of test module to output_dir."""
  if not_image:
    tf.saved_model.save(VectorModel(), output_dir)
    return
  size = None if variable_size else image_size
  spec = tf.TensorSpec([None, size, size, 3], tf.float32, name='images')
  model = ImageFeatureVector()
  if signature_only:
    serve = tf.function(
        lambda images: {'feature_vector': model(images)},
        input_signature=[spec])
    root = tf.Module()
    root.model = model
    tf.saved_model.save(root, output_dir,
                        signatures={'serving_default': serve})
    return
  for training in (False, True):
    model.__call__.get_concrete_function(spec, training=training)
  tf.saved_model.save(model, output_dir)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('output_dir')
  parser.add_argument('--all', action='store_true')
  parser.add_argument('--image_size', type=int, default=64)
  parser.add_argument('--variable_size', action='store_true')
  parser.add_argument('--signature_only', action='store_true')
  parser.add_argument('--not_image', action='store_true')
  args = parser.parse_args()
  if args.all:
    save(os.path.join(args.output_dir, 'fixed'), args.image_size)
    save(os.path.join(args.output_dir, 'variable_size'), variable_size=True)
    save(os.path.join(args.output_dir, 'signature_only'),
         args.image_size, signature_only=True)
    save(os.path.join(args.output_dir, 'not_image'), not_image=True)
    return
  save(args.output_dir, args.image_size, args.variable_size,
       args.signature_only, args.not_image)


if __name__ == '__main__':
  main()
