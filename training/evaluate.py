"""Test-set figures: ELBO and its terms, the reference's Bernoulli loss, IWAE log-likelihood, 5-NN."""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.neighbors import KNeighborsClassifier
from tqdm import tqdm

from training.model import VAE, bernoulli_log_likelihood, gaussian_kl

EVAL_BATCH = 2000


@torch.inference_mode()
def mean_elbo(model: VAE, pixels: torch.Tensor, seed: int) -> dict[str, float]:
    """ELBO per image (nats) and its terms, with a fixed sampling seed so that runs compare."""
    model.eval()
    noise = torch.Generator().manual_seed(seed)  # its own: the caller's random numbers stay as they were
    reconstruction = kl = 0.0
    for batch in pixels.split(EVAL_BATCH):
        terms = model.elbo(batch, noise)
        reconstruction += terms.reconstruction.sum().item()
        kl += terms.kl.sum().item()
    n = len(pixels)
    return {"elbo": (reconstruction - kl) / n, "reconstruction": reconstruction / n, "kl": kl / n}


@torch.inference_mode()
def bernoulli_test_loss(model: VAE, pixels: torch.Tensor, seed: int) -> float:
    """PyTorch's VAE example's test loss, whatever the model's likelihood: summed BCE of the
    decoder means (at one posterior sample, as the example does) against the intensities, plus KL."""
    model.eval()
    noise = torch.Generator().manual_seed(seed)
    total = 0.0
    for batch in pixels.split(EVAL_BATCH):
        mu, logvar = model.encode(batch)
        logits = model.decode(model.reparameterize(mu, logvar, noise))
        total += F.binary_cross_entropy_with_logits(logits, batch, reduction="sum").item()
        total += gaussian_kl(mu, logvar).sum().item()
    return total / len(pixels)


@torch.inference_mode()
def importance_weighted_log_likelihood(
    model: VAE, pixels: torch.Tensor, samples: int, seed: int, chunk: int = 50, bernoulli: bool = False
) -> float:
    """Mean over images of log p(x) ~ log mean_k p(x|z_k) p(z_k) / q(z_k|x) (Burda et al. 2015),
    under the model's own likelihood or, with `bernoulli`, the literature's."""
    model.eval()
    noise = torch.Generator().manual_seed(seed)
    log_likelihood = bernoulli_log_likelihood if bernoulli else None
    total = 0.0
    batches = tqdm(pixels.split(chunk), desc=f"log-likelihood, {samples} samples", unit="batch", leave=False)
    for batch in batches:
        total += model.importance_terms(batch, samples, noise, log_likelihood).bound().sum().item()
    return total / len(pixels)


@torch.inference_mode()
def posterior_means(model: VAE, pixels: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model.encode(batch)[0] for batch in pixels.split(EVAL_BATCH)]).numpy()


def knn_accuracy(
    train_mu: np.ndarray, train_labels: np.ndarray, test_mu: np.ndarray, test_labels: np.ndarray, k: int = 5
) -> float:
    """How well the latent space keeps same-digit images together (labels used only here)."""
    classifier = KNeighborsClassifier(n_neighbors=k).fit(train_mu, train_labels)
    return float(classifier.score(test_mu, test_labels))
