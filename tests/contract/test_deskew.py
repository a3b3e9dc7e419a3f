"""Deskewing against a separate implementation: the slant from numpy's weighted covariance and the
shear done by scipy's affine_transform, not the moments and reads it is written with; on real
digits (the sample MNIST files) and on shapes whose answer is known."""

import numpy as np
import pytest
from scipy import ndimage

from contract.deskew import deskewed
from training.data import load_dataset


def oracle(image: np.ndarray) -> np.ndarray:
    rows, columns = np.mgrid[:28, :28]
    if image.sum() == 0:
        return image
    covariance = np.cov(rows.ravel(), columns.ravel(), aweights=image.ravel(), bias=True)
    if covariance[0, 0] == 0:
        return image
    slope = covariance[0, 1] / covariance[0, 0]
    centre_row = np.average(rows.ravel(), weights=image.ravel())
    # output (r, c) reads input (r, c + slope * (r - centre_row)), zero beyond the edges
    matrix = np.array([[1.0, 0.0], [slope, 1.0]])
    return ndimage.affine_transform(image, matrix, offset=[0, -slope * centre_row], order=1, mode="grid-constant")


@pytest.fixture(scope="module")
def digits(sample_data_dir) -> np.ndarray:
    return load_dataset(sample_data_dir).test.images[:200].astype(np.float32) / 255


def ink_slant(images: np.ndarray) -> np.ndarray:
    rows, columns = np.mgrid[:28, :28]
    return np.array([np.cov(rows.ravel(), columns.ravel(), aweights=image.ravel())[0, 1] for image in images])


def test_real_digits_are_sheared_as_scipy_shears_them(digits):
    expected = np.stack([oracle(image.astype(np.float64)) for image in digits])
    np.testing.assert_allclose(deskewed(digits), expected, atol=1e-4)


def test_the_batch_shape_is_kept_and_each_image_is_sheared_alone(digits):
    batch = digits[:5, None]
    upright = deskewed(batch)
    assert upright.shape == (5, 1, 28, 28) and upright.dtype == np.float32
    np.testing.assert_allclose(upright[3], deskewed(batch[3:4])[0], atol=1e-5)


def test_deskewed_digits_lean_no_more_and_keep_their_ink_and_centre(digits):
    upright = deskewed(digits)
    slanted = np.abs(ink_slant(digits))
    assert np.median(slanted) > 2  # MNIST's digits lean: the check below has something to remove
    assert np.abs(ink_slant(upright)).max() < 0.05 * slanted.max()
    np.testing.assert_allclose(upright.sum((1, 2)), digits.sum((1, 2)), rtol=0.02)
    rows = np.arange(28)
    np.testing.assert_allclose(
        upright.sum(2) @ rows / upright.sum((1, 2)), digits.sum(2) @ rows / digits.sum((1, 2)), atol=1e-3
    )


def test_a_sheared_bar_stands_up_again():
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 13:15] = 1
    leaning = ndimage.affine_transform(bar, [[1, 0], [-0.4, 1]], offset=[0, 0.4 * 13.5], order=1, mode="grid-constant")
    upright = deskewed(leaning.astype(np.float32))

    def centre_columns(image):
        return image[4:24] @ np.arange(28) / image[4:24].sum(1)

    assert np.ptp(centre_columns(leaning)) > 6
    np.testing.assert_allclose(centre_columns(upright), 13.5, atol=0.05)


@pytest.mark.parametrize("flat", ["blank", "one row"])
def test_images_without_a_slant_are_left_as_they_are(flat):
    image = np.zeros((28, 28), np.float32)
    if flat == "one row":
        image[14, 5:20] = 1
    np.testing.assert_array_equal(deskewed(image), image)


def test_ink_sheared_past_the_frame_is_gone_and_nothing_comes_in_from_the_edges():
    # a stroke from corner to corner with a short bar at the left edge: the shear moves columns by
    # up to ten on each side, so reads fall beyond both edges
    image = np.zeros((28, 28), np.float32)
    image[np.arange(28), np.arange(28)] = 1
    image[20:27, 0] = 1
    upright = deskewed(image)
    np.testing.assert_allclose(upright, oracle(image.astype(np.float64)), atol=1e-4)
    assert upright.sum() < image.sum() - 1
