"""benchmarks.typeset's exact posterior mean, against the closed form of a linear-Gaussian model:
with f(z) = A z + b, P(x | z) = N(f(z), variance I) and the prior N(0, I), the posterior is Gaussian
with mean (A^T A / variance + I)^-1 A^T (x - b) / variance."""

from types import SimpleNamespace

import numpy as np

from benchmarks.typeset import exact_posterior_means

VARIANCE = 4.0  # the posterior's standard deviation, about 0.5, spans many steps of the grid


def test_the_grid_gives_the_linear_gaussian_posterior_mean():
    noise = np.random.default_rng(3)
    weights, bias = noise.normal(0, 0.05, (784, 2)), noise.uniform(0.2, 0.8, 784)
    model = SimpleNamespace(
        decode=lambda z: (z @ weights.T + bias).reshape(-1, 1, 28, 28),
        upright=lambda images: images,
        description=SimpleNamespace(likelihood=SimpleNamespace(kind="gaussian", variance=VARIANCE)),
    )
    truth = noise.normal(0, 1, (6, 2))
    images = (truth @ weights.T + bias + noise.normal(0, VARIANCE**0.5, (6, 784))).reshape(-1, 1, 28, 28)
    precision = weights.T @ weights / VARIANCE + np.eye(2)
    expected = np.linalg.solve(precision, weights.T @ (images.reshape(6, -1) - bias).T / VARIANCE).T
    assert np.abs(exact_posterior_means(model, images) - expected).max() < 0.01
