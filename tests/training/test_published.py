"""What the exporter says about a model beside its weights: recipe, classes, novelty reference."""

import json

import numpy as np
import onnxruntime
import pytest
import torch

from contract.description import sha256_of
from contract.novelty import elbo_at_mean
from contract.recipes import Recipe
from contract.reference import read_reference
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


def test_digits_and_clothes_get_their_own_recipe(sample_data_dir, fashion_mnist_dir):
    assert framing_of(load_dataset(sample_data_dir).train.images) is Recipe.digit
    assert framing_of(load_dataset(fashion_mnist_dir).train.images[:2000]) is Recipe.object


def test_the_reference_set_is_the_test_set_through_the_encoder(trained_run, sample_data_dir):
    folder = trained_run / "model"
    description = json.loads((folder / "model.json").read_text())
    reference = description["reference"]
    test = load_dataset(sample_data_dir).test
    mu, sigma, labels = read_reference(folder / reference["file"], reference["count"], description["latent_size"])
    encoder = onnxruntime.InferenceSession(folder / "encoder.onnx")
    expected_mu, expected_sigma = encoder.run(None, {"image": (test.images[:, None] / np.float32(255))})
    np.testing.assert_array_equal(labels, test.labels)
    np.testing.assert_allclose(mu, expected_mu, atol=1e-6)
    np.testing.assert_allclose(sigma, expected_sigma, atol=1e-6)
    assert reference["sha256"] == sha256_of(folder / reference["file"])


@pytest.mark.slow
def test_the_exported_sigma_is_the_standard_deviation_of_q(trained_run, sample_data_dir, tmp_path):
    """On a model whose sigma is far from 1 (there the variance and the deviation differ by far
    more than any tolerance), the ONNX encoder's sigma is torch.distributions' stddev of Q(Z|x)."""
    import shutil

    from torch.distributions import Normal

    from training.cli import main

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("model"))
    weights = torch.load(run / "best.pt", weights_only=True)
    last = max(name for name in weights if name.startswith("encoder.") and name.endswith(".bias"))
    latent = weights[last].shape[0] // 2
    weights[last][latent:] -= 4.0  # logvar down by 4: sigma about e^-2 of what it was
    torch.save(weights, run / "best.pt")
    main(["export", "--out-dir", str(run), "--export-dir", str(run / "model")])

    config = TrainConfig.model_validate(torch.load(run / "last.pt", weights_only=False)["config"])
    vae = VAE(config.vae)
    vae.load_state_dict(weights)
    pixels = torch.as_tensor(load_dataset(sample_data_dir).test.images[:64] / 255, dtype=torch.float32)
    with torch.no_grad():
        mu, logvar = vae.encode(pixels.flatten(1))
    q = Normal(mu, torch.exp(0.5 * logvar))
    encoder = onnxruntime.InferenceSession(run / "model" / "encoder.onnx")
    onnx_mu, onnx_sigma = encoder.run(None, {"image": pixels[:, None].numpy()})
    assert float(q.stddev.median()) < 0.2  # far from 1: sigma and sigma^2 tell apart
    np.testing.assert_allclose(onnx_sigma, q.stddev.numpy(), rtol=1e-4)
    np.testing.assert_allclose(onnx_mu, q.mean.numpy(), rtol=1e-4, atol=1e-5)
