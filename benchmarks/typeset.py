"""Where typeset digits land, digit by digit: for each model, the share of the pictures benchmark's
typeset digits (harness.pictures, condition `fonts`) whose mu has their own digit among its 5
nearest training images' mu, and where the ones that miss go. For a model of two dimensions, also
where the exact posterior mean places them (P(z | x) summed over a grid of the plane): the best any
encoder of that decoder could do, so a miss there is the generative model's, not the encoder's.

    python -m benchmarks.typeset [--count 1000] [--models mnist mnist-k16] [--data-dir ../shared/data/mnist]

The pictures are framed in process by the service's picture pipeline, as /encode frames them.
"""

import argparse
from pathlib import Path

import numpy as np
from scipy.special import softmax
from sklearn.neighbors import KNeighborsClassifier

from contract.novelty import SMALLEST_PROBABILITY
from contract.recipes import Recipe
from harness.pictures import corpus
from service.core.pictures import Invert, prepare
from service.core.verified import VerifiedModel
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


def _misses(landed: np.ndarray, digit: int) -> str:
    kinds, counts = np.unique(landed[landed != digit], return_counts=True)
    return ", ".join(f"{count} as {kind}" for kind, count in zip(kinds, counts, strict=True))


def exact_posterior_means(
    model: VerifiedModel, images: np.ndarray, reach: float = 4.0, points: int = 161
) -> np.ndarray:
    """images (N, 1, 28, 28) -> the mean of P(z | x) for each (N, 2), from the decoder and the prior
    N(0, I) over a grid of the plane out to `reach` standard deviations."""
    axis = np.linspace(-reach, reach, points, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    means = model.decode(grid).reshape(len(grid), -1).astype(np.float64)
    seen = model.upright(images).reshape(len(images), -1).astype(np.float64)
    likelihood = model.description.likelihood
    if likelihood.kind == "gaussian":  # log P(x | z), less what does not depend on z
        log_likelihood = (seen @ means.T - 0.5 * np.square(means).sum(1)) / likelihood.variance
    else:
        means = np.clip(means, SMALLEST_PROBABILITY, 1 - SMALLEST_PROBABILITY)
        log_likelihood = seen @ (np.log(means) - np.log1p(-means)).T + np.log1p(-means).sum(1)
    return softmax(log_likelihood - 0.5 * np.square(grid).sum(1), axis=1) @ grid


def _row(name: str, landed: np.ndarray, labels: np.ndarray) -> str:
    shown = [np.mean(landed[labels == digit] == digit) if (labels == digit).any() else None for digit in range(10)]
    shares = " | ".join("-" if share is None else f"{share:.2f}" for share in shown)
    missed = "; ".join(f"{digit}: {_misses(landed[labels == digit], digit)}" for digit in (6, 9))
    return f"| {name} | {np.mean(landed == labels):.3f} | {shares} | {missed} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="typeset digits (the first test labels)")
    parser.add_argument("--models", nargs="+", default=["mnist", "mnist-k16"], help="bundled models' names")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    options = parser.parse_args()
    data = load_dataset(options.data_dir)
    pictures = list(corpus(data.test.images[: options.count], data.test.labels[: options.count], "fonts"))
    inputs = np.stack([prepare(picture.data, Invert.auto, Recipe.digit) for picture in pictures])
    labels = np.array([picture.label for picture in pictures])
    train = (data.train.images.astype(np.float32) / 255)[:, None]
    print(f"| model | all | {' | '.join(str(digit) for digit in range(10))} | where 6s and 9s go |")
    print(f"|---|---|{'---|' * 10}---|")
    for name in options.models:
        model = VerifiedModel.load(ROOT / "models" / name, threads=1)
        neighbours = KNeighborsClassifier(n_neighbors=5).fit(model.encode(train)[0], data.train.labels)
        print(_row(name, neighbours.predict(model.encode(inputs)[0]), labels), flush=True)
        if model.description.latent_size == 2:
            landed = neighbours.predict(exact_posterior_means(model, inputs))
            print(_row(f"{name}, exact posterior mean", landed, labels), flush=True)


if __name__ == "__main__":
    main()
