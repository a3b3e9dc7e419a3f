"""A model kind is a choice: the convolutional networks train, export and serve through the same
exporter and service as the design's MLP."""

import httpx
import numpy as np
import onnxruntime
import pytest
import torch

from harness.bodies import png
from harness.server import running_server
from training.cli import main
from training.config import VAEConfig
from training.data import load_dataset
from training.model import VAE


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_each_kind_maps_pixels_to_the_same_shapes(architecture):
    vae = VAE(VAEConfig(architecture=architecture, latent_size=3, hidden_sizes=(16,), channels=(4, 8)))
    mu, logvar = vae.encode(torch.rand(5, 784, generator=torch.Generator().manual_seed(0)))
    assert mu.shape == logvar.shape == (5, 3)
    assert vae.decode(mu).shape == (5, 784)


def test_conv_has_convolutions():
    vae = VAE(VAEConfig(architecture="conv", channels=(4, 8)))
    layers = [type(layer).__name__ for layer in vae.modules()]
    assert layers.count("Conv2d") == 2 and layers.count("ConvTranspose2d") == 2


def test_conv_refuses_more_halvings_than_the_side_allows():
    with pytest.raises(ValueError, match="at most 2"):
        VAEConfig(architecture="conv", channels=(4, 8, 16))


def test_conv_trains_exports_and_is_served_unchanged(tmp_path, sample_data_dir):
    out = tmp_path / "conv"
    main(
        ["train", "--data-dir", str(sample_data_dir), "--out-dir", str(out), "--epochs", "1"]
        + ["--vae.architecture", "conv", "--vae.channels", "[4,8]", "--vae.hidden-sizes", "[32]"]
        + ["--batch-size", "64", "--iw-samples", "10", "--iw-images", "10", "--validation-size", "100"]
    )
    digit = load_dataset(sample_data_dir).test.images[0]  # (28, 28) uint8, white on black: sent as is
    encoder = onnxruntime.InferenceSession(out / "model" / "encoder.onnx")
    expected_mu, expected_sigma = encoder.run(None, {"image": (digit / np.float32(255)).reshape(1, 1, 28, 28)})
    with running_server(out / "model") as server:
        answer = httpx.post(f"{server.url}/encode", content=png(digit), headers={"Content-Type": "image/png"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        np.testing.assert_allclose(body["mu"], expected_mu[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(body["sigma"], expected_sigma[0], rtol=1e-5, atol=1e-6)
        assert httpx.get(f"{server.url}/models").json()  # the folder is listed like any other
