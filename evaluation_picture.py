# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""The confusion matrix of retrain.py's final test as a picture for TensorBoard.

retrain.py imports it when it writes the test's summaries; without this file
beside it, the run logs one line and writes the per-class table alone.
"""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def confusion_matrix_png(confusion, label_names):
  """Draws a confusion matrix as a PNG image, for TensorBoard.

  Each cell shows its count, shaded by the share of the true class's images
  it holds: green on the diagonal (right), red elsewhere (wrong), so that
  the errors stand out.

  Args:
    confusion: Integer array [classes, classes], rows: true class, columns:
      predicted class.
    label_names: The class names, in class-index order.

  Returns:
    (PNG bytes, height, width).
  """
  count = len(label_names)
  cell = int(np.clip(720 // max(count, 1), 12, 56))
  font_size = int(np.clip(cell * 0.4, 9, 15))
  try:
    font = ImageFont.load_default(size=font_size)
  except (TypeError, ImportError, OSError):  # Pillow without FreeType.
    font = ImageFont.load_default()
  names = [name if len(name) <= 24 else name[:23] + '~' for name in label_names]
  measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))

  def text_size(text):
    left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
    return right - left, bottom - top

  pad = 6
  line = text_size('Mg')[1] + pad
  names_width = max(text_size(name)[0] for name in names) + 2 * pad
  left = names_width + line
  column_labels_top = 2 * line + 2 * pad
  top = column_labels_top + names_width
  width = left + count * cell + pad
  height = top + count * cell + pad
  image = Image.new('RGB', (max(width, 360), height), 'white')
  draw = ImageDraw.Draw(image)
  draw.text((pad, pad), 'Confusion matrix on the test set', fill='black',
            font=font)
  draw.text((left, line + 2 * pad), 'predicted class', fill='black',
            font=font)
  side = Image.new('RGB', (text_size('true class')[0] + pad, line), 'white')
  ImageDraw.Draw(side).text((0, 0), 'true class', fill='black', font=font)
  image.paste(side.rotate(90, expand=True), (pad, top))
  totals = np.maximum(confusion.sum(axis=1), 1)
  show_numbers = cell >= 2 * font_size
  for row in range(count):
    column_label = Image.new('RGB', (names_width, line), 'white')
    ImageDraw.Draw(column_label).text((pad, 0), names[row], fill='black',
                                      font=font)
    image.paste(column_label.rotate(90, expand=True),
                (left + row * cell + (cell - line) // 2, column_labels_top))
    draw.text((line + pad, top + row * cell + (cell - line) // 2 + pad // 2),
              names[row], fill='black', font=font)
    for column in range(count):
      share = confusion[row, column] / float(totals[row])
      base = (44, 160, 44) if row == column else (214, 39, 40)
      color = tuple(int(255 - share * (255 - c)) for c in base)
      x, y = left + column * cell, top + row * cell
      draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=color,
                     outline=(200, 200, 200))
      if show_numbers:
        text = str(confusion[row, column])
        text_width, text_height = text_size(text)
        draw.text((x + (cell - text_width) / 2, y + (cell - text_height) / 2),
                  text, fill='white' if share > 0.5 else 'black', font=font)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return buffer.getvalue(), image.height, image.width
