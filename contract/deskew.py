"""Deskewing: each digit sheared along its rows until its ink has no slant, as in the classic
nearest-neighbour results on MNIST (LeCun et al.'s list of classifiers). Slant is the largest way
one writer's 7 differs from another's; a plane of two dimensions that need not spend one of them on
it keeps more room for the digits' kinds, and a printed 6, upright, lies nearer a handwritten one.

The shear is the one that makes the ink's covariance of row and column zero, about the ink's centre
of mass, so a deskewed digit stays where the recipe centred it and keeps its ink.
"""

import numpy as np

from contract.geometry import PIXELS, SIDE

FAINTEST = 1e-6  # total ink below this is none
FLATTEST = 1e-3  # a row variance below this (in rows squared) is ink on one row, with no slant to read
# in double precision, so that a deskewed image is within a rounding of float32 of the exact shear
_ROWS, _COLUMNS = np.mgrid[:SIDE, :SIDE].astype(np.float64)
# per image, one product gives the ink's sums of 1, row, column, row^2 and row x column
_MOMENTS = np.stack(
    [np.ones(PIXELS), _ROWS.ravel(), _COLUMNS.ravel(), _ROWS.ravel() ** 2, (_ROWS * _COLUMNS).ravel()], 1
)


def slant(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """images (N, 28, 28) -> each one's ink slant (columns per row) and its centre row; an image
    without ink, or with ink on one row only, has no slant."""
    ink, row, column, row_squared, row_column = (images.reshape(-1, PIXELS) @ _MOMENTS).T
    weight = 1 / np.maximum(ink, FAINTEST)
    centre_row, centre_column = row * weight, column * weight
    row_variance = row_squared * weight - centre_row**2
    covariance = row_column * weight - centre_row * centre_column
    shear = np.where(row_variance > FLATTEST, covariance / np.maximum(row_variance, FLATTEST), 0)
    return shear, centre_row


def deskewed(images: np.ndarray) -> np.ndarray:
    """float32 (..., 28, 28) in [0, 1] -> the same shape, each image upright: pixel (r, c) is read
    from (r, c + slant * (r - centre row)), linearly between columns, zero beyond the edges."""
    flat = np.asarray(images, np.float64).reshape(-1, SIDE, SIDE)
    shear, centre_row = slant(flat)
    source = _COLUMNS + shear[:, None, None] * (_ROWS - centre_row[:, None, None])
    source = np.clip(source, -1, SIDE, out=source)  # beyond the edges, every read is of the zero border
    left = np.floor(source)
    right_weight = source - left
    # each row with one zero column before it and two after, so column c is at c + 1 and c = -1 ... 29 exist
    width = SIDE + 3
    bordered = np.zeros((len(flat), SIDE, width))
    bordered[:, :, 1 : SIDE + 1] = flat
    row_starts = np.arange(len(flat) * SIDE).reshape(-1, SIDE, 1) * width + 1
    at_left = left.astype(np.intp) + row_starts
    line = bordered.ravel()
    upright = line.take(at_left) * (1 - right_weight) + line.take(at_left + 1) * right_weight
    return upright.astype(np.float32).reshape(images.shape)
