"""What the client returns: numpy arrays and PIL images."""

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Encoding:
    """Q(Z|x) for one picture (mu and sigma of shape (K,)) or many ((N, K)), with the novelty score:
    elbo in nats, and the percentile of the model's test images whose novelty score (the ELBO, lowered
    by the model's outlier head if it has one) was lower."""

    model_id: str
    mu: np.ndarray
    sigma: np.ndarray
    elbo: np.ndarray
    percentile: np.ndarray


@dataclass(frozen=True)
class Digits:
    """The digits of a picture of a number, left to right: each one's Q(Z|x) (as an Encoding of
    many) and its box in the picture, (N, 4) left, top, width, height in its pixels."""

    encoding: Encoding
    boxes: np.ndarray


@dataclass(frozen=True)
class Samples:
    model_id: str
    seed: int  # send it again for the same images
    z: np.ndarray  # (n, K)
    images: list[Image.Image]
