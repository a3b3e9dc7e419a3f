"""The figures of a trained model, as PNG files: matplotlib's object API, no pyplot state."""

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.stats import norm

from contract.geometry import SIDE
from contract.mosaic import grid
from training.model import VAE


def _save_mosaic(mosaic: np.ndarray, title: str, path: Path) -> None:
    figure = Figure(figsize=(mosaic.shape[1] / 50, mosaic.shape[0] / 50 + 0.4))
    axes = figure.subplots()
    axes.imshow(mosaic, cmap="gray", vmin=0, vmax=1)
    axes.set_title(title)
    axes.axis("off")
    figure.savefig(path, dpi=100, bbox_inches="tight")


def latent_scatter(mu: np.ndarray, labels: np.ndarray, classes: list[str], path: Path) -> None:
    """Test-set posterior means on the plane of z1, z2, coloured by class, over the prior's contours."""
    figure = Figure(figsize=(7, 6))
    axes = figure.subplots()
    span = max(4.0, float(np.abs(mu[:, :2]).max()) * 1.05)
    grid = np.linspace(-span, span, 200)
    xx, yy = np.meshgrid(grid, grid)
    axes.contour(xx, yy, norm.pdf(xx) * norm.pdf(yy), levels=6, colors="grey", linewidths=0.7)
    points = axes.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6, vmin=-0.5, vmax=9.5)
    bar = figure.colorbar(points, ticks=range(len(classes)), label="class")
    bar.ax.set_yticklabels(classes)
    axes.set(xlabel="z1", ylabel="z2", title="Test-set mu(x), with the prior N(0, I)", aspect="equal")
    figure.savefig(path, dpi=100, bbox_inches="tight")


@torch.inference_mode()
def manifold(model: VAE, path: Path, steps: int = 20) -> None:
    """Decoded means over a grid of z at the prior's quantiles (first two latent dimensions)."""
    quantiles = norm.ppf(np.linspace(0.03, 0.97, steps)).astype(np.float32)
    z = torch.zeros(steps * steps, model.config.latent_size)
    z1, z2 = np.meshgrid(quantiles, quantiles[::-1])
    z[:, 0], z[:, 1] = torch.from_numpy(z1.ravel()), torch.from_numpy(z2.ravel())
    images = torch.sigmoid(model.decode(z)).reshape(-1, SIDE, SIDE).numpy()
    _save_mosaic(grid(images[:, None], steps), "Decoded f(z) over the latent plane", path)


@torch.inference_mode()
def reconstructions(model: VAE, pixels: torch.Tensor, path: Path, count: int = 16) -> None:
    """Originals (odd rows) above the decoded posterior means (even rows)."""
    originals = pixels[:count]
    decoded = torch.sigmoid(model.decode(model.encode(originals)[0]))
    pairs = torch.stack([originals, decoded], dim=0).reshape(2, 2, count // 2, -1).transpose(0, 1)
    _save_mosaic(
        grid(pairs.reshape(-1, 1, SIDE, SIDE).numpy(), count // 2),
        "Originals and reconstructions f(mu(x))",
        path,
    )


@torch.inference_mode()
def prior_samples(model: VAE, path: Path, count: int = 64, seed: int = 0) -> None:
    z = torch.randn(count, model.config.latent_size, generator=torch.Generator().manual_seed(seed))
    images = torch.sigmoid(model.decode(z)).reshape(-1, SIDE, SIDE).numpy()
    _save_mosaic(grid(images[:, None], 8), "Means f(z) of draws z ~ N(0, I)", path)


def training_curves(history: list[dict], path: Path) -> None:
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    axes.plot(epochs, [row["train_elbo"] for row in history], label="train")
    axes.plot(epochs, [row["validation_elbo"] for row in history], label="validation")
    axes.set(xlabel="epoch", ylabel="ELBO per image (nats)", title="Training curves")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    figure.savefig(path, dpi=100, bbox_inches="tight")


def draw_all(
    model: VAE,
    test_pixels: torch.Tensor,
    test_mu: np.ndarray,
    test_labels: np.ndarray,
    classes: list[str],
    history: list[dict],
    folder: Path,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    latent_scatter(test_mu, test_labels, classes, folder / "latent.png")
    manifold(model, folder / "manifold.png")
    reconstructions(model, test_pixels, folder / "reconstructions.png")
    prior_samples(model, folder / "samples.png")
    training_curves(history, folder / "training.png")
