"""Pictures of numbers: /encode/digits finds each digit where it was written, left to right, and
encodes it as /encode encodes that digit alone; /encode refuses a number instead of answering for
one of its digits. The pages are real MNIST test digits written side by side at known places."""

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import ExifTags, Image

from contract.recipes import Recipe
from harness.bodies import encoded, png
from service.core.errors import InvalidInput
from service.core.pictures import INLINE_PIXELS, Invert, Upload, digit_inputs, prepare
from tests.conftest import BUNDLED_MODEL
from tests.service.conftest import assert_problem, closed_pool, make_client, threads_named
from training.data import load_dataset

SCALE = 5  # page pixels per MNIST pixel
PITCH = 28  # MNIST pixels from one digit's frame to the next
MARGIN = 20


def page_of(digits: np.ndarray, scale: int = SCALE, pitch: int = PITCH) -> tuple[bytes, list[tuple[int, int]]]:
    """The digits, dark on light paper, side by side; and each one's frame, left and right, on the page."""
    width = MARGIN * 2 + pitch * (len(digits) - 1) + 28
    ink = np.zeros((28 + 2 * MARGIN, width), np.float32)
    for index, digit in enumerate(digits):
        frame = ink[MARGIN : MARGIN + 28, MARGIN + index * pitch : MARGIN + index * pitch + 28]
        np.maximum(frame, digit / 255, out=frame)
    page = Image.fromarray(np.round(235 - 215 * ink).astype(np.uint8))
    page = page.resize((page.width * scale, page.height * scale), Image.BICUBIC)
    frames = [((MARGIN + index * pitch) * scale, (MARGIN + index * pitch + 28) * scale) for index in range(len(digits))]
    return encoded(page), frames


@pytest.fixture(scope="module")
def test_digits(sample_data_dir) -> tuple[np.ndarray, np.ndarray]:
    test = load_dataset(sample_data_dir).test
    return test.images, test.labels


@pytest.fixture(scope="module")
def bundled():
    with make_client(BUNDLED_MODEL) as client:
        yield client


def digits_of(client, data: bytes, **params) -> dict:
    response = client.post("/encode/digits", content=data, headers={"Content-Type": "image/png"}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def mu_of(client, data: bytes) -> list[float]:
    response = client.post("/encode", content=data, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()["mu"]


def test_each_digit_of_a_number_is_found_left_to_right_where_it_was_written(bundled, test_digits):
    images, _ = test_digits
    for start in range(0, 30, 5):
        digits = images[start : start + 5]
        page, frames = page_of(digits)
        items = digits_of(bundled, page)["items"]
        assert len(items) == len(digits)
        for item, (left, right) in zip(items, frames, strict=True):
            box = item["box"]
            # the ink's box lies inside the digit's own frame, and fills at least a third of its width
            assert left <= box["left"] and box["left"] + box["width"] <= right
            assert box["width"] >= (right - left) // 6 and box["height"] >= 10 * SCALE
            assert MARGIN * SCALE <= box["top"] and box["top"] + box["height"] <= (MARGIN + 28) * SCALE


def test_each_digit_lands_where_the_same_digit_alone_on_the_page_does(bundled, test_digits):
    images, _ = test_digits
    digits = images[10:14]
    together = digits_of(bundled, page_of(digits)[0], model_input="true")["items"]
    for item, digit in zip(together, digits, strict=True):
        (alone,) = digits_of(bundled, page_of(digit[None])[0], model_input="true")["items"]
        # framed from the whole page's ink threshold, not the digit's own: the same 28x28 within a
        # few grey levels, and a point a small step away on a plane that spans about 6 units
        pixels = np.subtract(item["model_input"]["pixels"], alone["model_input"]["pixels"])
        assert np.abs(pixels).mean() < 0.02
        assert np.hypot(*np.subtract(item["mu"], alone["mu"])) < 0.3


def test_a_lone_digit_is_encoded_exactly_as_encode_encodes_it(bundled, test_digits):
    images, _ = test_digits
    page = page_of(images[3:4])[0]
    (item,) = digits_of(bundled, page)["items"]
    assert item["mu"] == mu_of(bundled, page)
    digit = png(images[3])  # a 28x28 MNIST digit is one digit, sent as it is
    (item,) = digits_of(bundled, digit)["items"]
    assert item["box"] == {"left": 0, "top": 0, "width": 28, "height": 28}
    assert item["mu"] == mu_of(bundled, digit)


def test_digits_that_touch_are_cut_apart(bundled, test_digits):
    images, _ = test_digits
    wide = [index for index, image in enumerate(images) if np.ptp(np.nonzero(image.max(axis=0) > 64)[0]) >= 16][:3]
    page, frames = page_of(images[wide], pitch=18)  # frames 10 MNIST pixels over each other: strokes meet
    items = digits_of(bundled, page)["items"]
    assert len(items) == 3
    centres = [item["box"]["left"] + item["box"]["width"] / 2 for item in items]
    assert all(left <= centre <= right for centre, (left, right) in zip(centres, frames, strict=True))


@pytest.mark.parametrize(
    "page_size", [(2200, 1400), (6000, 300)], ids=["a page", "a strip longer than the work size of one digit"]
)
def test_digits_a_twentieth_of_the_page_high_are_found(bundled, test_digits, page_size):
    images, _ = test_digits
    digits = images[20:24]
    strip = np.zeros((28, 28 * 4), np.uint8)
    for index, digit in enumerate(digits):
        strip[:, 28 * index : 28 * index + 28] = digit
    width, short = page_size
    side = round(28 * short / 20 / 20)  # the ink is 20 of the frame's 28 pixels
    page = Image.new("L", (width, short), 235)
    written = Image.fromarray(255 - strip).resize((side * 4, side), Image.BICUBIC)
    left, top = width // 4, (short - side) // 2
    page.paste(written, (left, top))
    items = digits_of(bundled, encoded(page))["items"]
    assert len(items) == 4
    for index, item in enumerate(items):
        assert left + index * side - 2 <= item["box"]["left"] <= left + (index + 1) * side


def test_encode_refuses_a_number_and_says_how_many_digits_it_found(bundled, test_digits):
    page = page_of(test_digits[0][:3])[0]
    response = bundled.post("/encode", content=page, headers={"Content-Type": "image/png"})
    assert_problem(response, 422, "found 3 digits side by side")
    assert "/encode/digits" in response.json()["detail"]


def test_a_model_that_frames_objects_has_no_digits_to_find(test_digits):
    with make_client(BUNDLED_MODEL.parent / "fashion-mnist") as client:
        page = page_of(test_digits[0][:2])[0]
        response = client.post("/encode/digits", content=page, headers={"Content-Type": "image/png"})
        assert_problem(response, 422, "frames each picture as one object")


def test_more_digits_than_a_request_may_hold_are_refused_with_the_limit(bundled):
    page = np.full((300, 80 * 30 + 60), 235, np.uint8)
    for index in range(80):  # eighty 1s in a row
        page[100:200, 30 + 30 * index : 38 + 30 * index] = 20
    response = bundled.post(
        "/encode/digits", content=encoded(Image.fromarray(page)), headers={"Content-Type": "image/png"}
    )
    limit = bundled.engine.settings.max_batch
    assert_problem(response, 422, f"found 80 digits side by side; the limit is {limit} per picture")


def test_boxes_are_where_a_viewer_sees_the_digits_in_a_photo_turned_by_its_exif(bundled, test_digits):
    """A phone stores a photo sideways and says so in EXIF (orientation 6: turn it a quarter
    clockwise to show it); the boxes are in the picture as shown, not as stored."""
    images, _ = test_digits
    shown = Image.open(io.BytesIO(page_of(images[5:8])[0]))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    stored = encoded(shown.rotate(90, expand=True), "JPEG", quality=95, exif=exif)
    upright = digits_of(bundled, encoded(shown, "JPEG", quality=95))["items"]
    turned = digits_of(bundled, stored)["items"]
    for item, (left, right) in zip(turned, page_of(images[5:8])[1], strict=True):
        assert left <= item["box"]["left"] and item["box"]["left"] + item["box"]["width"] <= right
    sides = ("left", "top", "width", "height")
    boxes = [[[item["box"][side] for side in sides] for item in items] for items in (turned, upright)]
    assert np.abs(np.subtract(*boxes)).max() <= 3


def inputs_of(data: bytes, invert: Invert = Invert.auto, pool: ThreadPoolExecutor | None = None):
    """The core's digits of a picture, as the engine asks for them."""
    return asyncio.run(digit_inputs(Upload(None, data), invert, Recipe.digit, 10**8, 10, pool))


def test_a_28x28_picture_not_in_training_form_is_one_digit_framed_as_encode_frames_it(test_digits):
    images, _ = test_digits
    dark_on_white = png(255 - images[3])
    found = inputs_of(dark_on_white)
    assert found.boxes == [(0, 0, 28, 28)] and found.inverted
    np.testing.assert_array_equal(found.images[0], prepare(dark_on_white, Invert.auto, Recipe.digit))
    assert not inputs_of(png(images[3])).inverted  # in training form: white ink on black already


def test_a_28x28_picture_without_ink_is_refused_as_encode_refuses_it():
    blank = png(np.full((28, 28), 128, np.uint8))  # mid-grey: not in training form, and no ink
    with pytest.raises(InvalidInput) as refused:
        prepare(blank, Invert.auto, Recipe.digit)
    with pytest.raises(InvalidInput) as refused_as_digits:
        inputs_of(blank)
    assert refused_as_digits.value.detail == refused.value.detail  # not named as one file of several


def test_a_page_without_ink_says_what_to_send_and_why_transparency_hides_light_ink():
    blank = np.full((100, 200), 235, np.uint8)
    with pytest.raises(InvalidInput, match="send a picture with a visible digit$"):
        inputs_of(png(blank))
    light_on_clear = Image.new("LA", (200, 100), (0, 0))
    light_on_clear.paste((250, 255), (60, 20, 80, 80))  # a light stroke on a transparent page
    with pytest.raises(InvalidInput, match="transparent areas count as white paper"):
        inputs_of(encoded(light_on_clear))
    palette = Image.new("P", (200, 100), 0)  # colour 0 transparent, as a GIF or a PNG's tRNS says
    palette.putpalette([0, 0, 0, 250, 250, 250])
    palette.paste(1, (60, 20, 80, 80))
    for format in ("PNG", "GIF"):
        with pytest.raises(InvalidInput, match="transparent areas count as white paper"):
            inputs_of(encoded(palette, format, transparency=0))


def test_small_pages_are_framed_where_they_arrive_and_larger_ones_in_the_picture_pool(test_digits):
    images, _ = test_digits
    small = np.full((64, 64), 235, np.uint8)  # INLINE_PIXELS exactly
    assert small.size == INLINE_PIXELS
    small[18:46, 4:32], small[18:46, 32:60] = 255 - images[0], 255 - images[1]
    inline = inputs_of(png(small), pool=closed_pool())
    assert len(inline.boxes) == 2 and inline.inverted

    page = page_of(images[:2])[0]
    with ThreadPoolExecutor(1, thread_name_prefix="digits-test-pool") as pool:
        pooled = inputs_of(page, pool=pool)
        assert threads_named("digits-test-pool") == 1  # the page was framed there
    alone = inputs_of(page)
    assert pooled.boxes == alone.boxes and len(alone.boxes) == 2
    np.testing.assert_array_equal(pooled.images, alone.images)
