"""What the exporter says about a model beside its weights: recipe, classes, novelty reference."""

import json

import numpy as np
import onnxruntime
import torch

from contract.geometry import Recipe
from contract.novelty import elbo_at_mean
from tests.conftest import FASHION_MNIST
from training.config import TrainConfig
from training.data import framing_of, load_dataset
from training.model import VAE, gaussian_kl
from training.train import as_pixels, load_best_model


def test_the_novelty_score_is_the_elbo_at_the_posterior_mean(trained_run, sample_data_dir):
    """The service's numpy score against the training code's own likelihood and KL, in torch."""
    description = json.loads((trained_run / "model" / "model.json").read_text())
    model: VAE = load_best_model(
        TrainConfig.model_validate(description["training"]).model_copy(update={"out_dir": trained_run})
    )
    x = as_pixels(load_dataset(sample_data_dir).test.images[:50])
    with torch.inference_mode():
        mu, logvar = model.encode(x)
        expected = (model.log_likelihood(x, model.decode(mu)) - gaussian_kl(mu, logvar)).numpy()
    images = x.numpy().reshape(-1, 1, 28, 28)
    encoder = onnxruntime.InferenceSession(trained_run / "model" / "encoder.onnx")
    decoder = onnxruntime.InferenceSession(trained_run / "model" / "decoder.onnx")
    onnx_mu, onnx_sigma = encoder.run(None, {"image": images})
    means = decoder.run(None, {"z": onnx_mu})[0]
    got = elbo_at_mean(images, means, onnx_mu, onnx_sigma, "gaussian", description["likelihood"]["variance"])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=0.5)
    quantiles = description["novelty"]["test_quantiles"]
    assert quantiles == sorted(quantiles) and len(quantiles) == 201


def test_the_recipe_and_classes_are_written(trained_run):
    description = json.loads((trained_run / "model" / "model.json").read_text())
    assert description["preprocessing"]["recipe"] == "digit"
    assert description["classes"] == [str(digit) for digit in range(10)]


def test_digits_and_clothes_get_their_own_recipe(sample_data_dir):
    assert framing_of(load_dataset(sample_data_dir).train.images) is Recipe.digit
    if FASHION_MNIST.is_dir():
        assert framing_of(load_dataset(FASHION_MNIST).train.images[:2000]) is Recipe.object
