"""The VAE of the design: an encoder to Q(Z|x), a decoder to P(X|z), prior N(0, I); the networks'
kind (the design's MLP, or convolutions) is the config's architecture (training.networks)."""

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from contract.geometry import PIXELS
from training.config import VAEConfig
from training.networks import build


class ELBOTerms(NamedTuple):
    reconstruction: torch.Tensor  # (B,) one-sample estimate of E_q[log p(x|z)], in nats
    kl: torch.Tensor  # (B,) KL(q(z|x) || p(z)), in closed form

    @property
    def elbo(self) -> torch.Tensor:
        return self.reconstruction - self.kl


class ImportanceTerms(NamedTuple):
    log_likelihood: torch.Tensor  # (S, B) log p(x|z_s) for S draws z_s ~ q(z|x)
    log_prior_ratio: torch.Tensor  # (S, B) log p(z_s) - log q(z_s|x)

    def bound(self, kl_weight: float = 1.0) -> torch.Tensor:
        """(B,) log mean_s p(x|z_s) (p(z_s) / q(z_s|x))^kl_weight: at weight 1, the importance-weighted
        bound on log p(x) of Burda et al. (2015), which tightens as S grows; below 1, its warm-up."""
        samples = len(self.log_likelihood)
        return torch.logsumexp(self.log_likelihood + kl_weight * self.log_prior_ratio, dim=0) - math.log(samples)


class VAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        # psi(x; zeta): pixels -> (mu, logvar) of Q(Z|x); f(z; theta): z -> pixel logits, whose
        # sigmoid is the pixel means
        self.encoder, self.decoder = build(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (B, K) each
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, 784) logits

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=noise, dtype=mu.dtype, device=mu.device)
        return mu + eps * torch.exp(0.5 * logvar)

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log P(x|z) per image, summed over pixels; logits (..., 784) broadcast against x."""
        if self.config.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, logits)
        variance = self.config.gaussian_variance
        squared_error = (x - torch.sigmoid(logits)).square().sum(-1)
        return -0.5 * squared_error / variance - 0.5 * PIXELS * math.log(2 * math.pi * variance)

    def elbo(self, x: torch.Tensor, noise: torch.Generator | None = None) -> ELBOTerms:
        """The ELBO's two terms for images x (B, 784) in [0, 1], with one reparameterised sample
        drawn from the generator `noise`."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, noise)
        return ELBOTerms(self.log_likelihood(x, self.decode(z)), gaussian_kl(mu, logvar))

    def importance_terms(
        self,
        x: torch.Tensor,
        samples: int,
        noise: torch.Generator | None = None,
        log_likelihood: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> ImportanceTerms:
        """The terms of the importance-weighted bound for images x (B, 784), with `samples`
        reparameterised draws from `noise`, under the model's likelihood or the one given."""
        mu, logvar = self.encode(x)  # (B, K)
        eps = torch.randn(samples, *mu.shape, generator=noise, dtype=mu.dtype, device=mu.device)  # (S, B, K)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_q = standard_normal_log_density(eps) - logvar.sum(-1) / 2  # (S, B)
        logits = self.decode(z.flatten(0, 1)).unflatten(0, z.shape[:2])  # (S, B, 784): networks take (N, K)
        return ImportanceTerms(
            (log_likelihood or self.log_likelihood)(x, logits), standard_normal_log_density(z) - log_q
        )


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log P(x|z) per image with the decoder's means read as Bernoulli probabilities of the
    intensities: the literature's likelihood, so any model compares with published figures."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: Kingma & Welling (2014), Appendix B."""
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1)
