"""A run trained upright (--deskew): everything the export measures and records is of the upright
test digits, as the service will see them; checked with scipy's shear (the contract tests' oracle)
and the exported graphs run directly."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from contract.reference import read_reference
from harness.pictures import available_fonts
from tests.service.test_upright import upright
from tests.training.test_outliers import combined
from training.cli import main
from training.data import load_dataset

pytestmark = pytest.mark.skipif(not available_fonts(), reason="no fonts: apt-get install fonts-dejavu-core")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, sample_data_dir) -> Path:
    out = tmp_path_factory.mktemp("uprightrun")
    fonts = ",".join(str(font) for font in available_fonts()[:2])
    main(
        ["train", "--data-dir", str(sample_data_dir), "--out-dir", str(out), "--epochs", "2", "--deskew"]
        + ["--vae.hidden-sizes", "[32]", "--iw-samples", "20", "--iw-images", "10", "--validation-size", "100"]
        + ["--typeset-fonts", fonts, "--typeset-count", "100", "--outlier-letters", "208"]
    )
    return out / "model"


@pytest.fixture(scope="module")
def test_digits(sample_data_dir) -> np.ndarray:
    return (load_dataset(sample_data_dir).test.images.astype(np.float32) / 255)[:, None]


def test_the_folder_says_its_inputs_are_sheared_upright(folder):
    description = json.loads((folder / "model.json").read_text())
    assert description["preprocessing"]["deskew"] is True
    assert description["training"]["deskew"] is True


def test_the_reference_set_is_of_the_upright_test_digits(folder, test_digits):
    description = json.loads((folder / "model.json").read_text())
    mu, _, _ = read_reference(folder / "reference.bin", description["reference"]["count"], 2)
    expected, _ = onnxruntime.InferenceSession(folder / "encoder.onnx").run(None, {"image": upright(test_digits)})
    np.testing.assert_allclose(mu, expected, atol=1e-4)


def test_the_novelty_quantiles_are_of_the_upright_test_digits(folder, test_digits):
    quantiles = json.loads((folder / "model.json").read_text())["novelty"]["test_quantiles"]
    levels = np.linspace(0, 1, len(quantiles))
    np.testing.assert_allclose(quantiles, np.quantile(combined(folder, upright(test_digits)), levels), atol=0.01)
    assert not np.allclose(quantiles, np.quantile(combined(folder, test_digits), levels), atol=0.5)
