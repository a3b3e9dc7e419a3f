"""Real MNIST test digits, uploaded as PNG files, get the mu of the training package's torch model."""

import json

import numpy as np
import torch

from harness.bodies import png
from training.config import TrainConfig
from training.data import load_dataset
from training.train import as_pixels, load_best_model


def test_service_mu_matches_torch(client, trained_run, sample_data_dir):
    config = TrainConfig.model_validate(json.loads((trained_run / "model" / "model.json").read_text())["training"])
    model = load_best_model(config.model_copy(update={"out_dir": trained_run}))
    images = load_dataset(sample_data_dir).test.images[:64]
    with torch.inference_mode():
        expected, _ = model.encode(as_pixels(images))
    files = [("file", (f"{i}.png", png(image), "image/png")) for i, image in enumerate(images[:8])]
    batch = client.post("/encode/batch", files=files).json()["items"]
    singles = [
        client.post("/encode", content=png(image), headers={"Content-Type": "image/png"}).json()["mu"]
        for image in images
    ]
    np.testing.assert_allclose([item["mu"] for item in batch], expected[:8].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(singles, expected.numpy(), atol=1e-5, rtol=0)
