"""The model's image: 28x28 grey, one channel, intensities in [0, 1], white on black, framed by a recipe."""

SIDE = 28
PIXELS = SIDE * SIDE
IMAGE_SHAPE = (1, SIDE, SIDE)  # one picture as the graphs take it: (channels, height, width)
BOX = 20  # MNIST scales each digit to fit a 20x20 box inside the 28x28 frame
