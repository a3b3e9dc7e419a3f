"""A model trained upright (model.json's preprocessing.deskew, as the bundled MNIST model is): the
service shears every input as training did, whichever way it comes in, and says so: checked
against scipy's shear (the contract tests' oracle) and the ONNX graphs run directly."""

import json

import numpy as np
import onnxruntime
import pytest

from contract.novelty import elbo_at_mean
from contract.recipes import Recipe
from harness.bodies import png
from service.core.pictures import Invert, prepare
from service.core.verified import VerifiedModel
from tests.conftest import BUNDLED_MODEL
from tests.contract.test_deskew import oracle
from tests.service.conftest import make_client
from training.data import load_dataset

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model() -> VerifiedModel:
    return VerifiedModel.load(BUNDLED_MODEL, threads=1)


@pytest.fixture(scope="module")
def digits(sample_data_dir) -> np.ndarray:
    """(20, 1, 28, 28): real test digits, most of them leaning"""
    return (load_dataset(sample_data_dir).test.images[:20].astype(np.float32) / 255)[:, None]


def upright(images: np.ndarray) -> np.ndarray:
    return np.stack([oracle(image[0].astype(np.float64)) for image in images])[:, None].astype(np.float32)


def as_the_bundled_model_sees(images: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) -> what the bundled model's graphs are given: upright if it was trained so."""
    description = json.loads((BUNDLED_MODEL / "model.json").read_text())
    return upright(images) if description["preprocessing"]["deskew"] else images


def graph(name: str, inputs: dict) -> list[np.ndarray]:
    return onnxruntime.InferenceSession(BUNDLED_MODEL / f"{name}.onnx").run(None, inputs)


def test_the_bundled_model_was_trained_upright(model):
    assert model.description.preprocessing.deskew
    assert model.description.training["deskew"]


def test_the_encoder_sees_each_digit_upright(model, digits):
    expected_mu, expected_sigma = graph("encoder", {"image": upright(digits)})
    mu, sigma = model.encode(digits)
    np.testing.assert_allclose(mu, expected_mu, atol=TOLERANCE)
    np.testing.assert_allclose(sigma, expected_sigma, atol=TOLERANCE)
    leaning_mu, _ = graph("encoder", {"image": digits})
    assert np.abs(mu - leaning_mu).max() > 0.1  # the shear moves the points: the check above can fail


def test_the_novelty_score_is_of_the_upright_digit(model, digits):
    seen, mu, sigma, means, elbo, _ = model.assess(digits)
    np.testing.assert_allclose(seen, upright(digits), atol=TOLERANCE)
    (expected_means,) = graph("decoder", {"z": mu})
    np.testing.assert_allclose(means, expected_means, atol=TOLERANCE)
    likelihood = model.description.likelihood
    expected = elbo_at_mean(upright(digits), means, mu, sigma, likelihood.kind, likelihood.variance)
    np.testing.assert_allclose(elbo, expected, rtol=1e-4)


def test_the_model_input_shown_is_the_upright_one(digits):
    picture = png((digits[3, 0] * 255).astype(np.uint8))
    framed = prepare(picture, Invert.auto, Recipe.digit)
    with make_client(BUNDLED_MODEL) as client:
        response = client.post(
            "/encode", content=picture, headers={"Content-Type": "image/png"}, params={"model_input": "true"}
        )
    assert response.status_code == 200, response.text
    shown = np.array(response.json()["model_input"]["pixels"], np.float32)
    np.testing.assert_allclose(shown, upright(framed[None])[0, 0], atol=1e-3)
    assert np.abs(shown - framed[0]).max() > 0.3
