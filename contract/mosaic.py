"""Many 28x28 images as one picture: figures in training, PNG grids in responses."""

import numpy as np

from contract.geometry import SIDE


def grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """(N, 1, 28, 28) -> one mosaic in row-major order, as square as the count allows by default."""
    count = len(images)
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    padded = np.zeros((rows * columns, SIDE, SIDE), images.dtype)
    padded[:count] = images[:, 0]
    return padded.reshape(rows, columns, SIDE, SIDE).swapaxes(1, 2).reshape(rows * SIDE, columns * SIDE)
