"""From data to a published model folder: train, measure, draw, export."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contract.description import ModelDescription
from contract.geometry import IMAGE_SHAPE
from contract.recipes import Recipe
from training.config import TrainConfig
from training.data import Dataset, class_names, dataset_name, framing_of
from training.evaluate import (
    bernoulli_test_loss,
    importance_weighted_log_likelihood,
    knn_accuracy,
    mean_elbo,
    posterior_means,
)
from training.export import Published, check_folder, export_model
from training.folders import replaced_whole
from training.model import VAE
from training.outliers import OutlierHead, train_outlier_head
from training.plots import draw_all
from training.train import as_pixels, load_best_model, split_training_set

METRICS_SUMMARY = "test_metrics.json"


@dataclass(frozen=True)
class TestSet:
    pixels: torch.Tensor  # (N, 784)
    labels: np.ndarray  # (N,)
    mu: np.ndarray  # (N, K) posterior means under the model


def measure(model: VAE, dataset: Dataset, config: TrainConfig, test: TestSet) -> dict:
    """Every test-set figure of the model card, with how each was computed."""
    train_mu = posterior_means(model, as_pixels(dataset.train.images[: config.train_limit], config.deskew))
    iw_pixels = test.pixels[: config.iw_images]
    metrics = {
        "test_images": len(test.pixels),
        "elbo": mean_elbo(model, test.pixels, seed=config.seed),
        "bernoulli_test_loss": bernoulli_test_loss(model, test.pixels, seed=config.seed),
        "importance_weighted_log_likelihood": {
            "value": importance_weighted_log_likelihood(model, iw_pixels, config.iw_samples, seed=config.seed),
            # the literature's likelihood, whatever the model's, to compare with published figures
            "bernoulli": importance_weighted_log_likelihood(
                model, iw_pixels, config.iw_samples, seed=config.seed, bernoulli=True
            ),
            "samples": config.iw_samples,
            "images": f"first {len(iw_pixels)} test images",
        },
        "knn5_accuracy": knn_accuracy(train_mu, dataset.train.labels[: config.train_limit], test.mu, test.labels),
        "notes": "nats per image; ELBO and Bernoulli loss use one posterior sample per image (as PyTorch's "
        "VAE example does); 5-NN fit on the training images' mu, scored on the test images' mu",
    }
    return metrics


def outlier_head(config: TrainConfig, dataset: Dataset, test: TestSet) -> tuple[OutlierHead, dict]:
    """The run's outlier head, trained on its training images and letters, and what it flags."""
    head = train_outlier_head(split_training_set(dataset, config).train, config)
    with torch.inference_mode():
        flagged = float((head(test.pixels.reshape(-1, *IMAGE_SHAPE)) > 0).float().mean())
    return head, {"letters": config.outlier_letters, "test_images_taken_for_outliers": round(flagged, 4)}


def publish(config: TrainConfig, dataset: Dataset, history: list[dict], export_dir: Path) -> ModelDescription:
    """Evaluate the best weights of a run, draw its figures and export it to export_dir."""
    started = time.perf_counter()
    model = load_best_model(config)
    pixels = as_pixels(dataset.test.images[: config.test_limit], config.deskew)
    test = TestSet(pixels, dataset.test.labels[: config.test_limit], posterior_means(model, pixels))
    metrics = measure(model, dataset, config, test)
    head = None
    if config.outlier_letters:
        head, metrics["outlier_head"] = outlier_head(config, dataset, test)
    metrics["evaluation_seconds"] = round(time.perf_counter() - started, 1)
    metrics["epochs_trained"] = len(history)
    metrics["best_epoch"] = max(history, key=lambda row: row["validation_elbo"])["epoch"]
    metrics["training_seconds"] = round(sum(row["seconds"] for row in history), 1)
    (config.out_dir / METRICS_SUMMARY).write_text(json.dumps(metrics, indent=2) + "\n")
    classes = class_names(dataset, config.data_dir)
    recipe = framing_of(dataset.train.images) if config.recipe == "auto" else Recipe(config.recipe)
    published = Published(dataset_name(dataset, config.data_dir), dataset.sha256, classes, recipe, metrics)
    with replaced_whole(export_dir, check_folder) as folder:
        draw_all(model, test.pixels, test.mu, test.labels, classes, history, folder / "figures")
        return export_model(model, config, folder, head, published, test.pixels, test.labels)
