import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from training.config import VAEConfig
from training.evaluate import importance_weighted_log_likelihood, mean_elbo
from training.model import VAE, gaussian_kl


def tiny(likelihood: str = "bernoulli", variance: float = 0.1) -> VAE:
    """The same weights every time; torch initialises layers from its global generator, so the seed
    is set in a fork of it, and the other tests' random numbers stay as they were."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return VAE(VAEConfig(latent_size=2, hidden_sizes=(8,), likelihood=likelihood, gaussian_variance=variance))


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.rand(5, 784, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_terms_match_the_textbook(likelihood, pixels):
    model = tiny(likelihood, variance=0.05)
    terms = model.elbo(pixels, torch.Generator().manual_seed(2))
    # Recompute from the same posterior sample with torch.distributions, independently of the model's code.
    mu, logvar = model.encode(pixels)
    epsilon = torch.randn(mu.shape, generator=torch.Generator().manual_seed(2))
    z = mu + epsilon * torch.exp(0.5 * logvar)
    means = torch.sigmoid(model.decode(z))
    if likelihood == "bernoulli":
        # Intensities in [0, 1] put into the Bernoulli formula, as the literature and the reference do.
        expected = (pixels * means.log() + (1 - pixels) * (1 - means).log()).sum(-1)
    else:
        expected = Normal(means, math.sqrt(0.05)).log_prob(pixels).sum(-1)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(terms.reconstruction, expected, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(terms.kl, kl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms.elbo, expected - kl, rtol=1e-5, atol=1e-3)


def test_bernoulli_term_on_binary_pixels_is_the_bernoulli_log_likelihood():
    model = tiny()
    binary = (torch.rand(3, 784, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    logits = model.decode(torch.zeros(3, 2))
    torch.testing.assert_close(model.log_likelihood(binary, logits), Bernoulli(logits=logits).log_prob(binary).sum(-1))


def test_closed_form_kl_agrees_with_monte_carlo():
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[-1.0, 0.7]])
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert gaussian_kl(mu, logvar).item() == pytest.approx(monte_carlo.item(), abs=0.01)


def test_importance_weighted_bound_is_above_the_elbo(pixels):
    model = tiny()
    elbo = sum(mean_elbo(model, pixels, seed=seed)["elbo"] for seed in range(20)) / 20
    iwae = importance_weighted_log_likelihood(model, pixels, samples=1000, seed=0)
    assert iwae > elbo


@pytest.mark.parametrize("kl_weight", [1.0, 0.3])
def test_importance_weighted_bound_matches_torch_distributions(pixels, kl_weight):
    """The bound from the same draws, recomputed with torch.distributions: log mean_s of
    p(x|z_s) (p(z_s) / q(z_s|x))^kl_weight."""
    model, samples = tiny("gaussian", variance=0.05), 7
    bound = model.importance_terms(pixels, samples, torch.Generator().manual_seed(4)).bound(kl_weight)
    mu, logvar = model.encode(pixels)
    posterior = Normal(mu, torch.exp(0.5 * logvar))
    z = mu + torch.exp(0.5 * logvar) * torch.randn(samples, *mu.shape, generator=torch.Generator().manual_seed(4))
    likelihood = Normal(
        torch.sigmoid(model.decode(z.flatten(0, 1))).unflatten(0, (samples, len(pixels))), math.sqrt(0.05)
    )
    log_weights = likelihood.log_prob(pixels).sum(-1) + kl_weight * (
        Normal(0.0, 1.0).log_prob(z).sum(-1) - posterior.log_prob(z).sum(-1)
    )
    expected = torch.log(torch.exp(log_weights.double()).mean(0)).float()
    torch.testing.assert_close(bound, expected, rtol=1e-5, atol=1e-3)


def test_the_reparameterised_sample_is_drawn_in_the_posteriors_precision():
    """A float64 posterior gets a float64 draw: mu + eps * sigma with eps as torch draws it in
    float64 from the same generator (a float32 draw is a different sequence of numbers)."""
    mu = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -2.0], [1.0, 0.5]], dtype=torch.float64)
    z = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    epsilon = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert z.dtype == torch.float64
    torch.testing.assert_close(z, mu + epsilon * torch.exp(0.5 * logvar), rtol=0, atol=1e-12)
