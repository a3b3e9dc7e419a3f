"""The model's image: 28x28 grey, one channel, intensities in [0, 1], white on black, framed by a recipe."""

from enum import StrEnum

SIDE = 28
PIXELS = SIDE * SIDE
IMAGE_SHAPE = (1, SIDE, SIDE)  # one picture as the graphs take it: (channels, height, width)
BOX = 20  # MNIST scales each digit to fit a 20x20 box inside the 28x28 frame


class Recipe(StrEnum):
    """How the training images were framed, so that uploads can be framed the same way."""

    digit = "digit"  # MNIST: fitted to a 20x20 box, centred by centre of mass
    object = "object"  # Fashion-MNIST: longest side 28, centred
