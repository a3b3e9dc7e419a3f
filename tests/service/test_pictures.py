"""Real pictures: MNIST test digits as people upload them land with their own digit."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier

from contract.recipes import Recipe
from harness.bodies import encoded, png
from harness.pictures import ALL_CONDITIONS, corpus, target_for
from service.core.errors import InvalidInput, Refused
from service.core.pictures import Invert, prepare
from service.core.verified import VerifiedModel
from tests.conftest import BUNDLED_MODEL
from training.data import load_dataset

DIGITS_PER_CONDITION = 1000  # the benchmark's count: at 100 one digit is 0.01, as much as some margins


@pytest.fixture(scope="module")
def bundled() -> VerifiedModel:
    return VerifiedModel.load(BUNDLED_MODEL, threads=1)


@pytest.fixture(scope="module")
def neighbours(bundled, mnist_dir) -> KNeighborsClassifier:
    train = load_dataset(mnist_dir).train
    mu = bundled.encode((train.images.astype(np.float32) / 255)[:, None])[0]
    return KNeighborsClassifier(n_neighbors=5).fit(mu, train.labels)


def _prepared(condition: str, digits: np.ndarray, labels: np.ndarray, recipe: Recipe) -> tuple[np.ndarray, ...]:
    """The condition's pictures of the digits, as the service frames them, with their labels; a
    picture the service would refuse is left out, so that it counts as wrong."""
    inputs, kept = [], []
    for picture in corpus(digits, labels, condition, seed=0):
        try:
            inputs.append(prepare(picture.data, Invert.auto, recipe, 10**8))
            kept.append(picture.label)
        except Refused:
            continue
    return np.stack(inputs), np.array(kept)


@pytest.mark.slow  # 1,000 digits in each of the benchmark's conditions, as it measures them
def test_every_condition_meets_its_target(bundled, neighbours, mnist_dir):
    test = load_dataset(mnist_dir).test
    digits, labels = test.images[:DIGITS_PER_CONDITION], test.labels[:DIGITS_PER_CONDITION]
    # Making and framing the pictures is nearly all of the test's time, and each condition's is its own.
    workers = ProcessPoolExecutor(len(os.sched_getaffinity(0)), mp_context=multiprocessing.get_context("spawn"))
    with workers:
        prepared = workers.map(_prepared, ALL_CONDITIONS, repeat(digits), repeat(labels), repeat(bundled.recipe))
        accuracy = {
            condition: float((neighbours.predict(bundled.encode(inputs)[0]) == kept).sum() / len(digits))
            for condition, (inputs, kept) in zip(ALL_CONDITIONS, prepared, strict=True)
        }
    clean = accuracy.pop("clean")
    missed = {
        condition: (figure, target_for(condition, clean))
        for condition, figure in accuracy.items()
        if figure < target_for(condition, clean)
    }
    assert not missed, f"clean {clean:.3f}; below target (accuracy, target): {missed}"


OFF_FORM = {  # a 28x28 digit, framed as MNIST's are, on paper that is not MNIST's black
    "black ink on mid-grey paper": lambda digit: 0.5 * (1 - digit),
    "black ink on grey paper": lambda digit: 0.6 * (1 - digit),
    "black ink on light-grey paper": lambda digit: 0.8 * (1 - digit),
    "white ink on dark-grey paper": lambda digit: 0.3 + 0.7 * digit,
}


@pytest.mark.parametrize("condition", OFF_FORM)
def test_a_28x28_digit_off_training_form_is_framed_and_lands_with_its_kind(bundled, neighbours, mnist_dir, condition):
    test = load_dataset(mnist_dir).test
    digits, labels = test.images[:400] / 255, test.labels[:400]

    def accuracy(pictures: np.ndarray) -> float:
        codes = np.rint(pictures * 255).astype(np.uint8)
        inputs = [prepare(png(picture), Invert.auto, bundled.recipe) for picture in codes]
        return float((neighbours.predict(bundled.encode(np.stack(inputs))[0]) == labels).mean())

    clean = accuracy(digits)
    assert accuracy(OFF_FORM[condition](digits)) >= 0.9 * clean


def test_a_blank_page_is_not_a_digit():
    page = np.full((300, 400), 235, np.uint8)
    noisy = np.clip(page + np.random.default_rng(0).normal(0, 8, page.shape), 0, 255).astype(np.uint8)
    for picture in (page, noisy):
        with pytest.raises(InvalidInput, match="no ink"):
            prepare(encoded(Image.fromarray(picture), "JPEG"), Invert.auto, Recipe.digit)


def test_specks_far_from_the_digit_do_not_widen_its_frame():
    page = np.full((400, 400), 230, np.uint8)
    page[100:300, 190:210] = 20  # a '1'
    clean = prepare(encoded(Image.fromarray(page)), Invert.auto, Recipe.digit)
    page[5:8, 5:8] = 0  # a speck in the corner
    page[380:390, 370:378] = 30  # and a small blob
    specked = prepare(encoded(Image.fromarray(page)), Invert.auto, Recipe.digit)
    assert np.abs(specked - clean).max() < 0.1  # the same frame; the ink's level may shift a little


def test_light_falling_across_the_page_is_not_ink():
    columns = np.linspace(0, 100, 400)[None, :]  # 100 grey levels darker from left to right
    page = np.clip(235 - columns + np.zeros((400, 1)), 0, 255)
    page[100:300, 190:210] -= 180
    pixels = prepare(encoded(Image.fromarray(page.astype(np.uint8))), Invert.auto, Recipe.digit)
    rows, columns = np.nonzero(pixels[0] > 0.1)
    assert np.ptp(rows) + 1 == 20 and np.ptp(columns) + 1 <= 4  # the bar alone, fitted to the 20x20 box


FASHION_MODEL = BUNDLED_MODEL.parent / "fashion-mnist"


@pytest.mark.slow
def test_clothes_upscaled_tenfold_land_where_the_originals_do(fashion_mnist_dir):
    model = VerifiedModel.load(FASHION_MODEL, threads=1)
    assert model.recipe is Recipe.object
    data = load_dataset(fashion_mnist_dir)
    train_mu = model.encode((data.train.images.astype(np.float32) / 255)[:, None])[0]
    neighbours = KNeighborsClassifier(n_neighbors=5).fit(train_mu, data.train.labels)
    images, labels = data.test.images[:500], data.test.labels[:500]
    originals = model.encode((images.astype(np.float32) / 255)[:, None])[0]
    upscaled = np.stack(
        [
            prepare(encoded(Image.fromarray(image).resize((280, 280), Image.BICUBIC)), Invert.auto, model.recipe)
            for image in images
        ]
    )
    original_accuracy = neighbours.score(originals, labels)
    assert neighbours.score(model.encode(upscaled)[0], labels) >= 0.9 * original_accuracy
