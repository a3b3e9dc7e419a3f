"""The outlier head: trained after the VAE on letters set in the run's fonts, exported as a graph of
its own, part of the model's id, and read by the service as a lower novelty percentile."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from scipy.special import expit

from contract.description import sha256_of
from harness.pictures import available_fonts
from service.core.errors import ModelError
from service.core.verified import VerifiedModel
from tests.model_folders import rewritten
from training.cli import main
from training.data import load_dataset
from training.typeset import LETTERS, typeset

pytestmark = pytest.mark.skipif(not available_fonts(), reason="no fonts: apt-get install fonts-dejavu-core")
WEIGHT = 100  # nats per nat of the head's -log P(familiar | x): the model card's figure, stated again


@pytest.fixture(scope="module")
def folder(tmp_path_factory, sample_data_dir) -> Path:
    out = tmp_path_factory.mktemp("headrun")
    fonts = ",".join(str(font) for font in available_fonts()[:2])
    main(
        ["train", "--data-dir", str(sample_data_dir), "--out-dir", str(out), "--epochs", "2"]
        + ["--vae.hidden-sizes", "[32]", "--iw-samples", "20", "--iw-images", "10", "--validation-size", "100"]
        + ["--typeset-fonts", fonts, "--typeset-count", "100", "--outlier-letters", "208"]
    )
    return out / "model"


def test_the_head_is_listed_checked_and_part_of_the_id(folder):
    description = json.loads((folder / "model.json").read_text())
    assert description["outliers"]["file"] == "outliers.onnx"
    assert description["outliers"]["sha256"] == sha256_of(folder / "outliers.onnx")
    digests = "".join(sha256_of(folder / f"{graph}.onnx") for graph in ("encoder", "decoder", "outliers"))
    assert description["id"].endswith(hashlib.sha256(digests.encode()).hexdigest()[:12])
    assert set(description["parity_max_abs_difference"]) == {"encoder", "decoder", "outliers"}
    assert description["metrics"]["outlier_head"]["letters"] == 208


def combined(folder: Path, images: np.ndarray) -> np.ndarray:
    """The novelty score, from the graphs and the model card's formula, without the service's code."""
    variance = json.loads((folder / "model.json").read_text())["likelihood"]["variance"]
    mu, sigma = onnxruntime.InferenceSession(folder / "encoder.onnx").run(None, {"image": images})
    means = onnxruntime.InferenceSession(folder / "decoder.onnx").run(None, {"z": mu})[0]
    log_odds = onnxruntime.InferenceSession(folder / "outliers.onnx").run(None, {"image": images})[0]
    x, f = images.reshape(len(images), -1).astype(np.float64), means.reshape(len(means), -1)
    log_likelihood = -0.5 * ((x - f) ** 2).sum(1) / variance - 0.5 * x.shape[1] * np.log(2 * np.pi * variance)
    kl = 0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2)).sum(1)
    return log_likelihood - kl + WEIGHT * np.log(expit(-log_odds.astype(np.float64)))


def test_the_percentile_is_of_the_elbo_lowered_by_the_heads_verdict(folder, sample_data_dir):
    digits = load_dataset(sample_data_dir).test.images[:40]
    letters = typeset(LETTERS, tuple(available_fonts()[:2]), 52, seed=9).images
    images = (np.concatenate([digits, letters]).astype(np.float32) / 255)[:, None]
    model = VerifiedModel.load(folder, threads=1)
    _, mu, sigma, _, elbo, percentile = model.assess(images)
    quantiles = json.loads((folder / "model.json").read_text())["novelty"]["test_quantiles"]
    expected = np.interp(combined(folder, images), quantiles, np.linspace(0, 100, len(quantiles)))
    np.testing.assert_allclose(percentile, expected, atol=0.05)
    assert not np.allclose(elbo, combined(folder, images), atol=1)  # the head moved the scores


def test_the_test_quantiles_are_of_the_combined_score(folder, sample_data_dir):
    test = (load_dataset(sample_data_dir).test.images.astype(np.float32) / 255)[:, None]
    quantiles = json.loads((folder / "model.json").read_text())["novelty"]["test_quantiles"]
    expected = np.quantile(combined(folder, test), np.linspace(0, 1, len(quantiles)))
    np.testing.assert_allclose(quantiles, expected, atol=0.01)


def test_a_changed_head_is_refused(folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "model")
    (copy / "outliers.onnx").write_bytes((copy / "outliers.onnx").read_bytes() + b"\0")
    with pytest.raises(ModelError, match=r"outliers.onnx: sha256 .* does not match model.json"):
        VerifiedModel.load(copy, threads=1)


def test_letters_without_fonts_are_refused_in_one_line(tmp_path, sample_data_dir):
    with pytest.raises(SystemExit, match="^vae-train: --outlier-letters sets letters in the typeset fonts: give "):
        main(["train", "--data-dir", str(sample_data_dir), "--out-dir", str(tmp_path), "--outlier-letters", "5"])


def test_a_head_that_takes_another_shape_is_named_with_the_shape_it_takes(folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "model")
    head = onnx.load(copy / "outliers.onnx")
    head.graph.input[0].type.tensor_type.shape.dim[-1].dim_value = 32
    rewritten(copy, "outliers", head)
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(copy, threads=1)
    assert str(refused.value) == f"{copy}: outlier head input ['N', 1, 28, 32] is not [N, 1, 28, 28]"


def test_a_head_that_answers_a_column_is_refused(folder, tmp_path):
    # a head exported as Linear(..., 1) without the squeeze: (N, 1) against the ELBO's (N,)
    # would broadcast to (N, N) scores
    copy = shutil.copytree(folder, tmp_path / "model")
    head = onnx.load(copy / "outliers.onnx")
    log_odds = head.graph.output[0]
    head.graph.node.append(onnx.helper.make_node("Unsqueeze", [log_odds.name, "axis"], ["column"]))
    head.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1]), "axis"))
    head.graph.output[0].CopyFrom(onnx.helper.make_tensor_value_info("column", onnx.TensorProto.FLOAT, ["N", 1]))
    rewritten(copy, "outliers", head)
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(copy, threads=1)
    assert str(refused.value) == f"{copy}: outlier head output ['N', 1] is not [N], one log-odds per image"
