"""Printed digits in training: framed as MNIST's, added to the training images only, and set in
other fonts than the pictures benchmark measures the bundled model with."""

import json

import numpy as np
import pytest

from contract.description import DESCRIPTION_FILE
from contract.geometry import BOX, SIDE
from harness.pictures import FONT_FILES, FONT_ROOT, available_fonts
from tests.conftest import BUNDLED_MODEL
from training.config import TrainConfig
from training.data import load_dataset
from training.errors import DataError
from training.train import split_training_set
from training.typeset import typeset_digits

pytestmark = pytest.mark.skipif(not available_fonts(), reason="no fonts: apt-get install fonts-dejavu-core")


def test_printed_digits_are_framed_as_mnist_frames_its_digits():
    printed = typeset_digits(tuple(available_fonts()[:2]), count=40, seed=0)
    assert printed.images.shape == (40, SIDE, SIDE) and printed.images.dtype == np.uint8
    assert list(printed.labels[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    for image in printed.images:
        rows, columns = np.nonzero(image > 0)
        assert rows.max() - rows.min() < BOX + 2 and columns.max() - columns.min() < BOX + 2
        centre = np.array([rows @ image[rows, columns], columns @ image[rows, columns]]) / image[rows, columns].sum()
        assert np.abs(centre - (SIDE - 1) / 2).max() < 1.5  # centre of mass at the centre, as MNIST placed its digits
    assert len({image.tobytes() for image in printed.images}) == 40  # each turned its own way


def test_printed_digits_join_the_training_images_not_the_validation_set(sample_data_dir):
    dataset = load_dataset(sample_data_dir)
    plain = TrainConfig(data_dir=sample_data_dir, validation_size=10)
    printed = plain.model_copy(update={"typeset_fonts": tuple(available_fonts()[:1]), "typeset_count": 30})
    without, with_printed = split_training_set(dataset, plain), split_training_set(dataset, printed)
    assert len(with_printed.train) == len(without.train) + 30
    assert with_printed.validation.equal(without.validation)


def test_a_missing_font_file_is_named_before_training(tmp_path):
    with pytest.raises(DataError, match="no such font file: .*nofont.ttf"):
        typeset_digits((tmp_path / "nofont.ttf",), count=10, seed=0)


def test_the_bundled_model_never_saw_the_fonts_it_is_measured_with():
    training = json.loads((BUNDLED_MODEL / DESCRIPTION_FILE).read_text())["training"]
    trained_on = {str(font) for font in training["typeset_fonts"]}
    assert trained_on, "the bundled model was trained with printed digits"
    assert not trained_on & {str(FONT_ROOT / name) for name in FONT_FILES}
