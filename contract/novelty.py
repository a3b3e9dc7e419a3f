"""The novelty score: the model's evidence for an input, so that an app can reject what is unlike
the training data.

The score is the ELBO at the posterior mean, in nats: log P(x | z = mu) - KL(Q(Z|x) || N(0, I)).
Taking z = mu instead of a random draw makes it deterministic (the same picture, the same score)
and costs one decoder call. A model with an outlier head (training.outliers) also lowers the score
by OUTLIER_WEIGHT nats for each nat of the head's -log P(familiar | x): the ELBO scores printed
letters as it scores digits, the head tells them apart. The score is reported with its percentile
among the model's test images, whose scores the exporter records as quantiles in the model's
description.
"""

import numpy as np

from contract.geometry import PIXELS

QUANTILES = 201  # the test images' scores at 0, 0.5, ..., 100 percent
SMALLEST_PROBABILITY = 1e-6  # a Bernoulli mean of exactly 0 or 1 would give an infinite score
# Large enough that a confident head (log-odds of 3 or more) outweighs the spread of the test
# images' ELBOs, small enough that its doubts about a real digit (log-odds near 0) cost less than it.
OUTLIER_WEIGHT = 100.0


def elbo_at_mean(
    images: np.ndarray, means: np.ndarray, mu: np.ndarray, sigma: np.ndarray, likelihood: str, variance: float | None
) -> np.ndarray:
    """images, means (N, 1, 28, 28) in [0, 1]; mu, sigma (N, K) -> the score of each image (N,)."""
    x, f = images.reshape(len(images), PIXELS), means.reshape(len(means), PIXELS)
    if likelihood == "gaussian":
        log_likelihood = -0.5 * np.square(x - f).sum(1) / variance - 0.5 * PIXELS * np.log(2 * np.pi * variance)
    else:
        f = np.clip(f, SMALLEST_PROBABILITY, 1 - SMALLEST_PROBABILITY)
        log_likelihood = (x * np.log(f) + (1 - x) * np.log1p(-f)).sum(1)
    kl = 0.5 * (np.square(mu) + np.square(sigma) - 2 * np.log(sigma) - 1).sum(1)  # Kingma & Welling, App. B
    return (log_likelihood - kl).astype(np.float32)


def with_outlier_head(elbo: np.ndarray, outlier_log_odds: np.ndarray) -> np.ndarray:
    """The ELBO (N,) less OUTLIER_WEIGHT * -log P(familiar | x), from the head's log-odds (N,)
    that x is an outlier: log P(familiar | x) = -softplus(log-odds)."""
    return (elbo - OUTLIER_WEIGHT * np.logaddexp(0, outlier_log_odds)).astype(np.float32)


def reference_quantiles(scores: np.ndarray) -> list[float]:
    return [round(float(q), 3) for q in np.quantile(scores, np.linspace(0, 1, QUANTILES))]


class Percentiles:
    """Where a score falls among the test images' scores, given their quantiles."""

    def __init__(self, quantiles: list[float]):
        self._scores = np.asarray(quantiles)
        self._percents = np.linspace(0, 100, len(quantiles))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Share of the test images (in percent) that scored lower: near 0, unlike anything tested;
        0 and 100 beyond the lowest and highest (np.interp holds the end values)."""
        return np.interp(scores, self._scores, self._percents)
