"""The novelty score against a separate implementation of the same ELBO: torch.distributions'
densities and KL divergence, not the formulas the score is written with."""

import numpy as np
import pytest
import torch
from scipy.special import expit
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from contract.novelty import Percentiles, elbo_at_mean, reference_quantiles, with_outlier_head


def inputs(likelihood: str):
    """Four images, decoder means and posteriors whose sigmas are far from 1 (0.05 to 3), so that a
    variance passed off as a standard deviation, or a KL term off by a factor, moves the score by
    far more than the tolerance."""
    noise = np.random.default_rng(7)
    images = noise.random((4, 1, 28, 28))
    if likelihood == "bernoulli":
        images = (images > 0.5).astype(np.float64)
    means = noise.uniform(0.02, 0.98, (4, 1, 28, 28))
    mu = noise.normal(0, 2, (4, 2))
    sigma = np.array([[0.05, 3.0], [0.2, 0.5], [2.0, 0.1], [1.5, 0.3]])
    return images, means, mu, sigma


def oracle(images, means, mu, sigma, likelihood: str, variance: float | None) -> np.ndarray:
    x, f = torch.tensor(images.reshape(4, -1)), torch.tensor(means.reshape(4, -1))
    if likelihood == "gaussian":
        decoder = Independent(Normal(f, torch.tensor(variance).sqrt()), 1)
    else:
        decoder = Independent(Bernoulli(probs=f), 1)
    posterior = Independent(Normal(torch.tensor(mu), torch.tensor(sigma)), 1)
    prior = Independent(Normal(torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64)), 1)
    return (decoder.log_prob(x) - kl_divergence(posterior, prior)).numpy()


@pytest.mark.parametrize("likelihood, variance", [("gaussian", 0.05), ("gaussian", 1.0), ("bernoulli", None)])
def test_the_score_is_the_elbo_at_the_mean_as_torch_distributions_computes_it(likelihood, variance):
    images, means, mu, sigma = inputs(likelihood)
    expected = oracle(images, means, mu, sigma, likelihood, variance)
    score = elbo_at_mean(images, means, mu, sigma, likelihood, variance)
    assert score.dtype == np.float32
    # float32's rounding of scores of hundreds to thousands of nats: a few thousandths of a nat,
    # far below the smallest KL term here (about 0.1 nat)
    np.testing.assert_allclose(score, expected, rtol=0, atol=0.01)


def test_a_mean_of_exactly_zero_or_one_gives_a_finite_score():
    images = np.zeros((1, 1, 28, 28))
    images[0, 0, 0, :3] = 1
    means = np.zeros((1, 1, 28, 28))
    means[0, 0, 0, :3] = 1
    score = elbo_at_mean(images, means, np.zeros((1, 2)), np.ones((1, 2)), "bernoulli", None)
    assert np.isfinite(score).all() and score[0] == pytest.approx(0.0, abs=1e-3)  # a perfect fit costs nothing


def test_a_percentile_is_the_share_of_reference_scores_below():
    reference = np.arange(1000, dtype=np.float64)  # scores 0 .. 999
    percentiles = Percentiles(reference_quantiles(reference))
    assert len(reference_quantiles(reference)) == 201
    found = percentiles(np.array([-5.0, 0.0, 499.5, 999.0, 2000.0]))
    np.testing.assert_allclose(found, [0.0, 0.0, 50.0, 100.0, 100.0], atol=1e-9)
    assert percentiles(np.array([9.99]))[0] == pytest.approx(1.0, abs=1e-3)  # the "below 1" edge


def test_the_reference_quantiles_are_201_scores_in_thousandths_of_a_nat():
    scores = np.linspace(-200.123456, -100.654321, 1000)
    quantiles = reference_quantiles(scores)
    assert len(quantiles) == 201 and quantiles[0] == -200.123 and quantiles[-1] == -100.654
    assert quantiles[100] == round(float(np.median(scores)), 3)


def test_the_outlier_head_lowers_the_score_by_its_weight_times_minus_log_p_familiar():
    """Against scipy's logistic function: log-odds 0 costs 100 log 2 nats, a confident "familiar"
    (-30) nothing, a confident "outlier" (+30) 3,000 nats; extreme log-odds stay finite."""
    elbo = np.array([250.0, 250.0, 250.0, 250.0, -80.0])
    log_odds = np.array([0.0, -30.0, 30.0, 800.0, -2.5])
    with np.errstate(divide="ignore"):
        expected = elbo + 100 * np.log(expit(-log_odds))
    expected[3] = 250.0 - 100 * 800.0  # expit underflows to 0 there; the exact value is -log-odds
    got = with_outlier_head(elbo, log_odds)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)
