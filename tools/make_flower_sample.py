#!/usr/bin/env python
"""Draws a small synthetic stand-in for the flower_photos data set.

The real flower_photos archive (about 220 MB) cannot be shipped with this
project, so this script paints five classes of flowers with Pillow, laid out
like flower_photos: one sub-folder per class (daisy, dandelion, roses,
sunflowers, tulips). Each class looks like what a person would call that
flower, and every picture varies in background, number, size, position and
rotation of the flowers, blur, size and aspect ratio, so that telling the
classes apart needs real image features. A few pictures per class are PNG
files, a few use the .jpeg or .JPG extension, and a few come in `_nohash_`
groups (variants of one subject that the hash split keeps together).

The output is deterministic: the same --seed and --per_class always give the
same files.

Usage:
  python tools/make_flower_sample.py [--output_dir DIR] [--per_class N]
                                     [--seed S] [--overwrite]
"""

import argparse
import io
import math
import os
import shutil
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
import retrain  # pylint: disable=g-import-not-at-top,wrong-import-position
DEFAULT_OUTPUT_DIR = os.path.join(REPO_ROOT, 'flower_photos_sample')

# Class folder name -> file name prefix, as in the real flower_photos.
CLASSES = (
    ('daisy', 'daisy'),
    ('dandelion', 'dandelion'),
    ('roses', 'rose'),
    ('sunflowers', 'sunflower'),
    ('tulips', 'tulip'),
)

JPEG_QUALITY = 80
MIN_SIDE = 160
MAX_SIDE = 480
# PNG files are bigger than JPEG files of the same picture, so they are kept
# smaller.
MAX_PNG_SIDE = 240
# Like photos, pictures are at most this much wider than high or vice versa.
MAX_ASPECT_RATIO = 1.8
# Drawing happens at this multiple of the final size, then gets downsampled,
# which anti-aliases the thin petals and rays.
SUPERSAMPLE = 2

README_TEXT = """\
Synthetic flower photos
=======================

These images are synthetic: tools/make_flower_sample.py draws them with
Pillow from a fixed random seed (regenerate with
`python tools/make_flower_sample.py --overwrite`). They are made by this
project, contain no third-party photographs, and are distributed under the
same licence as the project. They mimic the layout of the flower_photos data
set (one folder per class) so that retrain.py can be tried and tested without
downloading anything.
"""


class UsageError(Exception):
  """A mistake on the command line, reported as one line."""


# ---------------------------------------------------------------------------
# Geometry helpers.
# ---------------------------------------------------------------------------


def _rotate(x, y, angle):
  cos_a, sin_a = math.cos(angle), math.sin(angle)
  return x * cos_a - y * sin_a, x * sin_a + y * cos_a


def ellipse_points(cx, cy, rx, ry, angle=0.0, steps=24):
  """Returns the outline of a rotated ellipse as a list of (x, y) points.

  Args:
    cx, cy: centre.
    rx, ry: radii along the ellipse's own axes.
    angle: rotation in radians.
    steps: number of outline points.

  Returns:
    A list of (x, y) tuples for ImageDraw.polygon.
  """
  points = []
  for k in range(steps):
    t = 2.0 * math.pi * k / steps
    dx, dy = _rotate(rx * math.cos(t), ry * math.sin(t), angle)
    points.append((cx + dx, cy + dy))
  return points


def petal_points(cx, cy, angle, inner, length, half_width, bluntness,
                 steps=12):
  """Returns the outline of a petal that points away from (cx, cy).

  Args:
    cx, cy: centre of the flower head.
    angle: direction of the petal in radians.
    inner: distance from the centre where the petal starts.
    length: length of the petal.
    half_width: half of the petal's largest width.
    bluntness: exponent of the width profile; small values (0.3) give
      rounded tips like a daisy's, 1.0 gives pointed tips like a sunflower's.
    steps: number of points per side.

  Returns:
    A list of (x, y) tuples for ImageDraw.polygon.
  """
  side_a, side_b = [], []
  for k in range(steps + 1):
    t = k / steps
    along = inner + length * t
    across = half_width * math.sin(math.pi * t) ** bluntness
    for side, sign in ((side_a, 1.0), (side_b, -1.0)):
      dx, dy = _rotate(along, sign * across, angle)
      side.append((cx + dx, cy + dy))
  return side_a + side_b[::-1]


def _jitter_colour(rng, colour, amount):
  return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255))
               for c in colour)


def _shade(colour, factor):
  return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


# ---------------------------------------------------------------------------
# Backgrounds.
# ---------------------------------------------------------------------------


def _smooth_noise(rng, height, width, cells, amplitude):
  """Low-frequency colour noise: a small random grid upsampled bicubically."""
  grid = rng.normal(0.0, 1.0, size=(cells, cells, 3))
  grid = ((grid - grid.min()) / (np.ptp(grid) + 1e-6) * 255).astype(np.uint8)
  field = Image.fromarray(grid, 'RGB').resize((width, height), Image.BICUBIC)
  return (np.asarray(field, np.float32) / 255.0 - 0.5) * 2.0 * amplitude


def _vertical_gradient(height, width, top, bottom):
  t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
  top = np.asarray(top, np.float32)[None, None, :]
  bottom = np.asarray(bottom, np.float32)[None, None, :]
  return np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3))


def draw_background(rng, width, height):
  """Paints grass, sky over a meadow, soil, or blurred foliage.

  Args:
    rng: numpy Generator.
    width, height: canvas size in pixels.

  Returns:
    An RGB PIL image.
  """
  kind = rng.choice(['grass', 'sky', 'soil', 'foliage'], p=[0.35, 0.25, 0.15,
                                                          0.25])
  if kind == 'sky':
    horizon = int(height * rng.uniform(0.35, 0.7))
    sky = _vertical_gradient(horizon, width,
                             _jitter_colour(rng, (110, 160, 225), 25),
                             _jitter_colour(rng, (190, 215, 240), 20))
    meadow = _vertical_gradient(height - horizon, width,
                                _jitter_colour(rng, (80, 140, 60), 25),
                                _jitter_colour(rng, (40, 95, 30), 20))
    pixels = np.concatenate([sky, meadow], axis=0)
  elif kind == 'soil':
    pixels = _vertical_gradient(height, width,
                                _jitter_colour(rng, (120, 90, 60), 20),
                                _jitter_colour(rng, (85, 60, 40), 20))
  else:
    top = (70, 130, 50) if kind == 'grass' else (40, 80, 35)
    bottom = (45, 100, 35) if kind == 'grass' else (60, 110, 45)
    pixels = _vertical_gradient(height, width, _jitter_colour(rng, top, 25),
                                _jitter_colour(rng, bottom, 25))
  pixels = pixels + _smooth_noise(rng, height, width,
                                  int(rng.integers(3, 8)),
                                  rng.uniform(10, 30))
  image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), 'RGB')
  draw = ImageDraw.Draw(image)
  scale = min(width, height)
  if kind == 'grass' or (kind == 'sky' and rng.random() < 0.7):
    top_limit = 0 if kind == 'grass' else horizon
    for _ in range(int(rng.integers(40, 120))):
      x = rng.uniform(0, width)
      y = rng.uniform(top_limit, height)
      blade = rng.uniform(0.05, 0.2) * scale
      lean = rng.uniform(-0.4, 0.4) * blade
      draw.line([(x, y), (x + lean, y - blade)],
                fill=_jitter_colour(rng, (60, 120, 40), 35),
                width=max(1, int(scale / 150)))
  elif kind == 'foliage':
    for _ in range(int(rng.integers(8, 20))):
      x, y = rng.uniform(0, width), rng.uniform(0, height)
      r = rng.uniform(0.05, 0.25) * scale
      draw.polygon(ellipse_points(x, y, r, r * rng.uniform(0.4, 1.0),
                                  rng.uniform(0, math.pi)),
                   fill=_jitter_colour(rng, (55, 105, 45), 40))
    image = image.filter(ImageFilter.GaussianBlur(scale / 40))
  elif kind == 'soil':
    for _ in range(int(rng.integers(30, 80))):
      x, y = rng.uniform(0, width), rng.uniform(0, height)
      r = rng.uniform(0.003, 0.015) * scale
      draw.ellipse([x - r, y - r, x + r, y + r],
                   fill=_jitter_colour(rng, (100, 75, 50), 35))
    for _ in range(int(rng.integers(0, 4))):
      x, y = rng.uniform(0, width), rng.uniform(0, height)
      r = rng.uniform(0.05, 0.12) * scale
      draw.polygon(ellipse_points(x, y, r, r * 0.4, rng.uniform(0, math.pi)),
                   fill=_jitter_colour(rng, (60, 120, 45), 25))
  elif kind == 'sky' and rng.random() < 0.6:
    for _ in range(int(rng.integers(1, 4))):
      x, y = rng.uniform(0, width), rng.uniform(0, horizon * 0.8)
      r = rng.uniform(0.08, 0.2) * scale
      draw.polygon(ellipse_points(x, y, r, r * 0.45, 0.0),
                   fill=_jitter_colour(rng, (240, 240, 245), 10))
  return image


# ---------------------------------------------------------------------------
# Flowers. Each painter draws one flower head of radius `r` at (cx, cy).
# ---------------------------------------------------------------------------


def draw_stem(draw, rng, x, y, length, width, lean):
  """A green stem from (x, y) downwards, with one or two leaves."""
  end_x, end_y = x + lean, y + length
  stem_colour = _jitter_colour(rng, (60, 120, 40), 20)
  draw.line([(x, y), (end_x, end_y)], fill=stem_colour, width=max(1, width))
  for _ in range(int(rng.integers(0, 3))):
    t = rng.uniform(0.3, 0.8)
    side = rng.choice([-1.0, 1.0])
    angle = math.pi / 2 + side * rng.uniform(0.6, 1.2)
    draw.polygon(petal_points(x + lean * t, y + length * t, -angle + math.pi,
                              0, length * rng.uniform(0.25, 0.4),
                              width * 2.5, 0.8),
                 fill=_jitter_colour(rng, (55, 125, 45), 20))


def paint_daisy(draw, rng, cx, cy, r, angle):
  """White, thin, blunt petals around a small yellow centre."""
  count = int(rng.integers(14, 27))
  white = _jitter_colour(rng, (248, 248, 245), 6)
  outline = _shade(white, 0.78)
  inner = r * 0.15
  for k in range(count):
    a = angle + 2 * math.pi * k / count + rng.uniform(-0.08, 0.08)
    length = r * rng.uniform(0.75, 0.9)
    draw.polygon(petal_points(cx, cy, a, inner, length,
                              r * rng.uniform(0.07, 0.1), 0.35),
                 fill=_jitter_colour(rng, white, 5), outline=outline)
  centre = r * rng.uniform(0.22, 0.3)
  yellow = _jitter_colour(rng, (245, 195, 25), 12)
  draw.ellipse([cx - centre, cy - centre, cx + centre, cy + centre],
               fill=yellow, outline=_shade(yellow, 0.8))
  for _ in range(int(centre)):
    dx, dy = _rotate(rng.uniform(0, centre * 0.8), 0, rng.uniform(0, 6.3))
    dot = max(1.0, centre * 0.08)
    draw.ellipse([cx + dx - dot, cy + dy - dot, cx + dx + dot, cy + dy + dot],
                 fill=_shade(yellow, rng.uniform(0.8, 0.95)))


def paint_dandelion(draw, rng, cx, cy, r, angle):
  """A dense, fluffy disk of many thin yellow rays."""
  base = _jitter_colour(rng, (255, 228, 35), 8)
  draw.ellipse([cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55],
               fill=_shade(base, 0.9))
  ray_width = max(1, int(r / 30))
  for ring in range(4):
    reach = r * (1.0 - 0.2 * ring)
    orange = 0.03 * ring
    for _ in range(int(40 + 10 * r ** 0.5 * (4 - ring))):
      a = rng.uniform(0, 2 * math.pi)
      start = reach * rng.uniform(0.0, 0.3)
      end = reach * rng.uniform(0.75, 1.0)
      x0, y0 = _rotate(start, 0, a)
      x1, y1 = _rotate(end, 0, a + rng.uniform(-0.06, 0.06))
      colour = (base[0], int(base[1] * (1 - orange) - rng.integers(0, 15)),
                int(rng.integers(0, 40)))
      draw.line([(cx + x0, cy + y0), (cx + x1, cy + y1)], fill=colour,
                width=ray_width)
  centre = r * 0.12
  draw.ellipse([cx - centre, cy - centre, cx + centre, cy + centre],
               fill=_shade(base, 0.85))


# Crimson and soft pinks for roses; tulips get scarlet, magenta-pink, purple
# and orange, so the two red-and-pink classes overlap without being equal.
ROSE_COLOURS = ((195, 15, 45), (150, 10, 35), (235, 110, 150), (245, 165, 185),
                (210, 40, 85))


def paint_rose(draw, rng, cx, cy, r, angle):
  """Rings of overlapping rounded petals, darker towards a spiral centre."""
  base = _jitter_colour(rng, ROSE_COLOURS[rng.integers(len(ROSE_COLOURS))], 12)
  for _ in range(int(rng.integers(1, 4))):
    a = rng.uniform(0, 2 * math.pi)
    draw.polygon(petal_points(cx, cy, a, r * 0.6, r * 0.7, r * 0.28, 0.8),
                 fill=_jitter_colour(rng, (50, 110, 40), 20),
                 outline=(35, 80, 30))
  rings = int(rng.integers(3, 5))
  for ring in range(rings):
    t = ring / rings
    reach = r * (1.0 - 0.75 * t)
    petals = int(rng.integers(5, 8))
    colour = _shade(base, 1.0 - 0.25 * t + rng.uniform(-0.05, 0.05))
    for k in range(petals):
      a = angle + 2 * math.pi * (k + 0.5 * ring) / petals
      pr = reach * 0.5
      px, py = _rotate(reach - pr, 0, a)
      draw.polygon(ellipse_points(cx + px, cy + py, pr, pr * 0.85, a),
                   fill=colour, outline=_shade(colour, 0.7))
  swirl_colour = _shade(base, 0.55)
  points = []
  for k in range(40):
    t = k / 39
    rad = r * 0.25 * t
    dx, dy = _rotate(rad, 0, angle + 4 * math.pi * t)
    points.append((cx + dx, cy + dy))
  draw.line(points, fill=swirl_colour, width=max(1, int(r / 25)))


def paint_sunflower(draw, rng, cx, cy, r, angle):
  """Pointed yellow-orange petals around a large dark brown seed disk."""
  centre = r * rng.uniform(0.45, 0.55)
  for layer in range(2):
    count = int(rng.integers(18, 30))
    colour = _jitter_colour(rng, (248, 190 - 15 * layer, 10), 10)
    for k in range(count):
      a = angle + 2 * math.pi * (k + 0.5 * layer) / count
      draw.polygon(petal_points(cx, cy, a, centre * 0.8,
                                (r - centre * 0.8) * rng.uniform(0.85, 1.0),
                                r * rng.uniform(0.09, 0.13), 0.9),
                   fill=_jitter_colour(rng, colour, 8),
                   outline=_shade(colour, 0.8))
  brown = _jitter_colour(rng, (75, 42, 15), 10)
  draw.ellipse([cx - centre, cy - centre, cx + centre, cy + centre],
               fill=brown, outline=_shade(brown, 0.6))
  for _ in range(int(centre * 2)):
    dx, dy = _rotate(centre * 0.9 * math.sqrt(rng.uniform()), 0,
                     rng.uniform(0, 2 * math.pi))
    dot = max(1.0, centre * 0.05)
    draw.ellipse([cx + dx - dot, cy + dy - dot, cx + dx + dot, cy + dy + dot],
                 fill=_shade(brown, rng.uniform(0.5, 1.5)))


TULIP_COLOURS = ((230, 45, 20), (120, 30, 125), (245, 120, 20), (230, 80, 185),
                 (185, 20, 110))


def paint_tulip(draw, rng, cx, cy, r, angle):
  """A cup of three tall petals on a long green stem with blade leaves."""
  lean = rng.uniform(-0.15, 0.15) * r * 4
  stem_length = r * rng.uniform(2.0, 4.0)
  stem_width = max(2, int(r * 0.12))
  stem_colour = _jitter_colour(rng, (60, 125, 45), 20)
  draw.line([(cx, cy + r * 0.5), (cx + lean, cy + stem_length)],
            fill=stem_colour, width=stem_width)
  for side in (-1.0, 1.0):
    if rng.random() < 0.75:
      base_x, base_y = cx + lean * 0.9, cy + stem_length * 0.95
      blade_angle = -math.pi / 2 + side * rng.uniform(0.15, 0.5)
      draw.polygon(petal_points(base_x, base_y, blade_angle, 0,
                                stem_length * rng.uniform(0.5, 0.8),
                                r * rng.uniform(0.18, 0.28), 0.8),
                   fill=_jitter_colour(rng, (70, 135, 55), 20),
                   outline=(40, 90, 35))
  colour = _jitter_colour(rng, TULIP_COLOURS[rng.integers(len(TULIP_COLOURS))],
                          15)
  tilt = angle * 0.25
  up = -math.pi / 2 + tilt
  for offset, shade in ((-0.35, 0.8), (0.35, 0.8), (0.0, 1.0)):
    base_x, base_y = _rotate(offset * r * 0.6, r * 0.5, tilt)
    draw.polygon(petal_points(cx + base_x, cy + base_y, up + offset * 0.5,
                              0, r * 1.35, r * 0.42, 0.45),
                 fill=_shade(colour, shade), outline=_shade(colour, 0.6))
  # The cup's rounded bottom.
  draw.polygon(ellipse_points(cx + _rotate(0, r * 0.35, tilt)[0],
                              cy + _rotate(0, r * 0.35, tilt)[1],
                              r * 0.55, r * 0.3, tilt),
               fill=_shade(colour, 0.9))


# Class -> (painter, [min, max) number of flowers, range of the main
# flower's radius as a share of the picture's shorter side).
PAINTERS = {
    'daisy': (paint_daisy, (1, 7), (0.15, 0.38)),
    'dandelion': (paint_dandelion, (1, 5), (0.15, 0.4)),
    'roses': (paint_rose, (1, 4), (0.18, 0.42)),
    'sunflowers': (paint_sunflower, (1, 4), (0.2, 0.45)),
    'tulips': (paint_tulip, (1, 6), (0.11, 0.22)),
}


def draw_scene(class_name, rng, width, height):
  """Paints one picture of `class_name` flowers.

  Args:
    class_name: one of the folder names in CLASSES.
    rng: numpy Generator that decides everything about the picture.
    width, height: final size in pixels.

  Returns:
    An RGB PIL image of the given size.
  """
  painter, count_range, radius_range = PAINTERS[class_name]
  big_w, big_h = width * SUPERSAMPLE, height * SUPERSAMPLE
  image = draw_background(rng, big_w, big_h)
  draw = ImageDraw.Draw(image)
  scale = min(big_w, big_h)
  count = int(rng.integers(*count_range))
  # The first flower is the largest; the rest are smaller, like in photos
  # with one flower in focus.
  radii = sorted((rng.uniform(*radius_range) * scale for _ in range(count)),
                 reverse=True)
  if count > 1:
    radii = [radii[0]] + [rad * rng.uniform(0.5, 0.9) for rad in radii[1:]]
  for index in reversed(range(count)):  # Large flowers drawn last, in front.
    radius = radii[index]
    if index == 0:
      # The main flower stays (nearly) whole in the picture.
      margin_x = min(radius * 0.9, big_w * 0.45)
      margin_y = min(radius * 0.9, big_h * 0.45)
      cx = rng.uniform(margin_x, big_w - margin_x)
      cy = rng.uniform(margin_y, big_h - margin_y)
    else:
      cx = rng.uniform(0.1, 0.9) * big_w
      cy = rng.uniform(0.15, 0.85) * big_h
    if class_name == 'tulips':
      cy = min(cy, rng.uniform(0.2, 0.55) * big_h)
    elif rng.random() < 0.6:
      draw_stem(draw, rng, cx, cy + radius * 0.3,
                rng.uniform(1.0, 3.0) * radius, max(2, int(radius * 0.08)),
                rng.uniform(-0.3, 0.3) * radius)
    painter(draw, rng, cx, cy, radius, rng.uniform(0, 2 * math.pi))
  image = image.resize((width, height), Image.LANCZOS)
  pixels = np.asarray(image, np.float32)
  pixels += rng.normal(0.0, rng.uniform(1.0, 4.0), size=pixels.shape)
  image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), 'RGB')
  if rng.random() < 0.35:
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.8)))
  image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.15))
  image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
  return image


def pick_size(rng):
  """Returns a random (width, height), landscape or portrait."""
  long_side = int(rng.integers(MIN_SIDE + 40, MAX_SIDE + 1))
  short_side = int(rng.integers(
      max(MIN_SIDE, int(math.ceil(long_side / MAX_ASPECT_RATIO))),
      long_side + 1))
  if rng.random() < 0.5:
    return long_side, short_side
  return short_side, long_side


def make_variant(image, rng):
  """A re-shot of the same subject: cropped, maybe mirrored, relit."""
  width, height = image.size
  keep = rng.uniform(0.8, 0.95)
  crop_w, crop_h = int(width * keep), int(height * keep)
  left = int(rng.integers(0, width - crop_w + 1))
  top = int(rng.integers(0, height - crop_h + 1))
  variant = image.crop((left, top, left + crop_w, top + crop_h))
  if rng.random() < 0.5:
    variant = variant.transpose(Image.FLIP_LEFT_RIGHT)
  variant = ImageEnhance.Brightness(variant).enhance(rng.uniform(0.85, 1.15))
  if rng.random() < 0.3:
    variant = variant.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
  return variant


# ---------------------------------------------------------------------------
# File layout.
# ---------------------------------------------------------------------------


def _split_of(file_name, testing_percentage=10, validation_percentage=10):
  """The set retrain.py puts file_name in with its default percentages."""
  percentage = retrain._percentage_hash(file_name)  # pylint: disable=protected-access
  if percentage < validation_percentage:
    return 'validation'
  if percentage < testing_percentage + validation_percentage:
    return 'testing'
  return 'training'


def plan_class_files(prefix, per_class):
  """Decides the file names of one class folder.

  The number in each name is chosen so that retrain.py's hash split with its
  default 10% / 10% puts a tenth of the files in each of the testing and
  validation sets: a sample this small could otherwise leave a class without
  any validation image.

  Args:
    prefix: file name prefix of the class, e.g. 'rose'.
    per_class: number of files to plan.

  Returns:
    A list of (subject_index, variant_index or None, file_name). Files with
    the same subject_index and a variant_index belong to one _nohash_ group.
  """
  group_sizes = [3, 2, 3, 2][:max(1, per_class // 15)]
  while sum(group_sizes) > per_class:
    group_sizes.pop()
  singles = per_class - sum(group_sizes)
  png_count = max(1, per_class // 16)
  held_out = max(1, int(round(per_class * 0.1)))
  room = {'validation': held_out, 'testing': held_out,
          'training': per_class - 2 * held_out}
  used_numbers = set()

  def pick_number(size, name_for):
    """The lowest free number whose name's set has room for size files."""
    number = 0
    while True:
      if number not in used_numbers:
        split = _split_of(name_for(number))
        if room[split] >= size:
          room[split] -= size
          used_numbers.add(number)
          return number
      number += 1

  # The _nohash_ groups are the hardest to fit, so they choose first.
  group_numbers = [
      pick_number(size, lambda n: '%s_%03d' % (prefix, n))
      for size in group_sizes]
  plan = []
  for subject in range(singles):
    # Spread the unusual extensions over the folder deterministically.
    slot = subject % 16
    if subject // 16 < png_count and slot == 5:
      extension = '.png'
    elif slot == 9:
      extension = '.jpeg'
    elif slot == 13:
      extension = '.JPG'
    else:
      extension = '.jpg'
    number = pick_number(
        1, lambda n, ext=extension: '%s_%03d%s' % (prefix, n, ext))
    plan.append((subject, None, '%s_%03d%s' % (prefix, number, extension)))
  for group, size in enumerate(group_sizes):
    subject = singles + group
    for variant in range(size):
      plan.append((subject, variant, '%s_%03d_nohash_%d.jpg' % (
          prefix, group_numbers[group], variant)))
  return plan


def encode(image, file_name):
  """Returns `image` encoded as PNG or JPEG, as file_name's extension says."""
  buffer = io.BytesIO()
  if file_name.lower().endswith('.png'):
    # A palette keeps the few PNG files small; the picture stays recognisable.
    image.quantize(colors=256, method=Image.MEDIANCUT,
                   dither=Image.Dither.NONE).save(buffer, 'PNG', optimize=True)
  else:
    image.save(buffer, 'JPEG', quality=JPEG_QUALITY, optimize=True)
  return buffer.getvalue()


def generate(output_dir, per_class, seed, overwrite):
  """Writes the sample data set.

  Args:
    output_dir: folder that receives one sub-folder per class.
    per_class: number of images per class.
    seed: base random seed.
    overwrite: whether existing class folders may be replaced.

  Returns:
    A dict: class name -> number of files written.

  Raises:
    UsageError: when output_dir is a file, or a class folder already holds
      files and overwrite is off.
  """
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UsageError('%s exists and is not a folder' % output_dir)
  for class_name, _ in CLASSES:
    class_dir = os.path.join(output_dir, class_name)
    if os.path.isdir(class_dir) and os.listdir(class_dir) and not overwrite:
      raise UsageError('%s already holds files; pass --overwrite to replace '
                       'them' % class_dir)
  os.makedirs(output_dir, exist_ok=True)
  counts = {}
  for class_index, (class_name, prefix) in enumerate(CLASSES):
    class_dir = os.path.join(output_dir, class_name)
    if os.path.isdir(class_dir):
      shutil.rmtree(class_dir)
    os.makedirs(class_dir)
    subjects = {}
    for subject, variant, file_name in plan_class_files(prefix, per_class):
      if subject not in subjects:
        rng = np.random.default_rng([seed, class_index, subject])
        width, height = pick_size(rng)
        if file_name.lower().endswith('.png'):
          width, height = min(width, MAX_PNG_SIDE), min(height, MAX_PNG_SIDE)
        subjects[subject] = draw_scene(class_name, rng, width, height)
      image = subjects[subject]
      if variant is not None:
        image = make_variant(
            image, np.random.default_rng([seed, class_index, subject,
                                          variant + 1]))
      with open(os.path.join(class_dir, file_name), 'wb') as f:
        f.write(encode(image, file_name))
    counts[class_name] = len(os.listdir(class_dir))
  with open(os.path.join(output_dir, 'README.txt'), 'w') as f:
    f.write(README_TEXT)
  return counts


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description='Draw synthetic flower photos for retrain.py.')
  parser.add_argument('--output_dir', default=DEFAULT_OUTPUT_DIR,
                      help='Where to write the class folders '
                      '(default: %(default)s).')
  parser.add_argument('--per_class', type=int, default=50,
                      help='Images per class (default: %(default)s).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Random seed (default: %(default)s).')
  parser.add_argument('--overwrite', action='store_true',
                      help='Replace existing class folders.')
  args = parser.parse_args(argv)
  if args.per_class < 1:
    parser.error('--per_class must be at least 1')
  if args.seed < 0:
    parser.error('--seed must not be negative')
  return args


def main(argv=None):
  args = parse_args(argv)
  try:
    counts = generate(args.output_dir, args.per_class, args.seed,
                      args.overwrite)
  except (UsageError, OSError) as e:
    print('make_flower_sample.py: error: %s' % e, file=sys.stderr)
    return 1
  total_bytes = sum(
      os.path.getsize(os.path.join(root, name))
      for root, _, names in os.walk(args.output_dir) for name in names)
  print('Wrote %s to %s (%.2f MB).' % (
      ', '.join('%d %s' % (n, c) for c, n in counts.items()),
      args.output_dir, total_bytes / 1e6))
  return 0


if __name__ == '__main__':
  sys.exit(main())
