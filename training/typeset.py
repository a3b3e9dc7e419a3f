"""Characters set in fonts, framed as the service frames a typeset upload: printed digits to train
beside MNIST, and printed letters for the outlier head (training.outliers) to learn to refuse.

MNIST holds handwriting only, and a two-dimensional model trained on it alone places printed 5s, 8s
and 9s among other digits: nothing like them is in its data. A few thousand printed digits among
the training images give them a place next to their handwritten kind. The fonts used here should
be other than those the pictures benchmark sets its digits in, so that its figure is for faces the
model has not seen.
"""

import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from contract.recipes import frame_digit
from training.data import Split
from training.errors import DataError

CANVAS = 200  # pixels on a side; the character is set at SIZE and turned, then framed as an upload would be
SIZE = 120
MAX_TURN_DEGREES = 12  # printed characters are upright; the turn stands in for a page not quite straight
DIGITS = string.digits
LETTERS = string.ascii_letters


def _set(character: str, font: ImageFont.FreeTypeFont, degrees: float) -> np.ndarray:
    page = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(page).text((CANVAS // 2, CANVAS // 2), character, fill=255, font=font, anchor="mm")
    turned = page.rotate(degrees, resample=Image.BILINEAR)
    return frame_digit(np.asarray(turned, dtype=np.float32) / 255)


def typeset(characters: str, fonts: tuple[Path, ...], count: int, seed: int) -> Split:
    """count characters, each of `characters` in turn and the fonts in turn, MNIST-framed, white on
    black; labels index `characters`. The fonts are checked here, not when a run is configured, so
    that a finished run re-exports on a machine without them."""
    missing = [str(font) for font in fonts if not font.is_file()]
    if missing:
        raise DataError(f"no such font file: {', '.join(missing)}")
    faces = [ImageFont.truetype(str(font), SIZE) for font in fonts]
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(characters)
    images = [
        _set(
            characters[label],
            faces[(index // len(characters)) % len(faces)],
            rng.uniform(-MAX_TURN_DEGREES, MAX_TURN_DEGREES),
        )
        for index, label in enumerate(labels)
    ]
    return Split(np.round(np.stack(images) * 255).astype(np.uint8), labels.astype(np.uint8))


def typeset_digits(fonts: tuple[Path, ...], count: int, seed: int) -> Split:
    """count printed digits, labelled by their value."""
    return typeset(DIGITS, fonts, count, seed)
