import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyspng
import pytest
from PIL import Image, PngImagePlugin

from contract.mosaic import grid
from contract.recipes import Recipe
from harness.bodies import encoded, png
from service.core.errors import InvalidInput, UnsupportedImage
from service.core.pictures import (
    INLINE_PIXELS,
    WORK_PIXELS,
    GreyPNG,
    Invert,
    Upload,
    grey_pixels,
    model_inputs,
    open_image,
    png_bytes,
    prepare,
    to_uint8,
)
from tests.service.conftest import closed_pool, threads_named
from tests.service.imaging import digit_on_paper, png_with_header
from training.data import load_dataset
from training.train import as_pixels

LIMIT = 25_000_000


def prepared(data: bytes, invert: Invert = Invert.auto, recipe: Recipe = Recipe.digit) -> np.ndarray:
    return prepare(data, invert, recipe, LIMIT)


def test_mnist_images_reach_the_model_bit_for_bit(sample_data_dir):
    images = load_dataset(sample_data_dir).test.images[:50]
    expected = as_pixels(images).numpy().reshape(-1, 1, 28, 28)
    got = np.stack([prepared(png(image), Invert.auto) for image in images])
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)


def _with_text_chunk(picture: np.ndarray) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "a scanner")
    return encoded(Image.fromarray(picture), "PNG", pnginfo=info)


def _noisy_page(side: int) -> np.ndarray:
    page = np.random.default_rng(side).normal(200, 20, (side, side + 37)).clip(0, 255).astype(np.uint8)
    page[side // 4 : side // 2, side // 3 : side // 3 + side // 20] = 10
    return page


@pytest.mark.parametrize(
    "data",
    [
        png(np.frombuffer(bytes(range(256)) * 4, np.uint8)[:784].reshape(28, 28)),
        png(digit_on_paper()),
        png(_noisy_page(900)),  # over WORK_PIXELS: box-reduced first
        _with_text_chunk(digit_on_paper()),
    ],
    ids=["28x28", "page", "large page", "text chunk"],
)
def test_grey_pngs_decoded_by_libspng_give_what_pillow_gives(data):
    opened = open_image(data, LIMIT)
    assert isinstance(opened, GreyPNG)
    by_pillow = grey_pixels(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(grey_pixels(opened), by_pillow)


def test_grey_pngs_with_transparency_or_orientation_are_left_to_pillow():
    transparent = encoded(Image.fromarray(digit_on_paper()), "PNG", transparency=255)  # the paper is see-through
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = encoded(Image.fromarray(digit_on_paper()).rotate(90, expand=True), "PNG", exif=exif)
    for data in (transparent, turned):
        assert isinstance(open_image(data, LIMIT), Image.Image)
    rows, columns = np.nonzero(prepared(turned)[0] > 0.5)
    assert np.ptp(rows) > np.ptp(columns)  # upright, as the EXIF orientation says


def test_a_photo_of_dark_ink_becomes_an_mnist_style_digit():
    pixels = prepared(png(digit_on_paper()), Invert.auto)[0]
    rows, columns = np.nonzero(pixels > 0.1)
    assert rows.max() - rows.min() + 1 == 20  # the long side fits the 20x20 box
    assert columns.max() - columns.min() + 1 <= 20
    centre = np.array([(pixels.sum(1) @ np.arange(28)), (pixels.sum(0) @ np.arange(28))]) / pixels.sum()
    assert np.abs(centre - 13.5).max() <= 0.5
    assert pixels[0].max() == 0 and pixels.max() == 1  # black paper, white ink


def test_inversion_can_be_forced_off():
    forced = prepared(png(digit_on_paper()), Invert.no)[0]
    automatic = prepared(png(digit_on_paper()), Invert.auto)[0]
    assert not np.array_equal(forced, automatic)


def _ink_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.nonzero(pixels > 0.5)
    return rows.min(), rows.max(), columns.min(), columns.max()


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_a_jpeg_past_the_work_size_is_decoded_at_a_reduced_scale_and_reads_as_the_full_decode(mode):
    """libjpeg decodes at 1/2, 1/4 or 1/8 scale for a fraction of the work: a 1600x1200 photo is
    decoded at 800x600, the largest of its scales that still covers the work size, then halved;
    a PNG of that size has no such scales and is reduced from its full size by 3."""
    page = Image.fromarray(np.kron(digit_on_paper(), np.ones((6, 6), np.uint8))[:, 100:1700].copy())
    assert page.size == (1600, 1200) and page.width * page.height > WORK_PIXELS
    jpeg = encoded(page.convert(mode), "JPEG", quality=95)
    pixels = grey_pixels(open_image(jpeg, LIMIT))
    assert pixels.shape == (300, 400)
    assert grey_pixels(open_image(encoded(page), LIMIT)).shape == (400, 534)  # Pillow's reduce keeps a part block
    full = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L").reduce(4), np.float32) / 255
    assert np.abs(pixels - full).mean() < 0.02


def test_a_16_bit_picture_larger_than_the_work_size_reads_as_its_8_bit_twin():
    codes = np.kron(digit_on_paper(), np.ones((3, 3), np.uint8))
    assert codes.size > WORK_PIXELS
    sixteen = grey_pixels(open_image(encoded(Image.fromarray(codes.astype(np.uint16) * 257)), LIMIT))
    eight = grey_pixels(open_image(encoded(Image.fromarray(codes)), LIMIT))
    assert sixteen.size <= WORK_PIXELS
    np.testing.assert_allclose(sixteen, eight, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "CMYK", "I;16"])
def test_every_colour_mode_gives_the_same_digit(mode):
    grey = Image.fromarray(digit_on_paper())
    if mode == "I;16":
        picture = Image.fromarray(digit_on_paper().astype(np.uint16) * 257)  # 255 * 257 = 65535
        sixteen, eight = (grey_pixels(open_image(encoded(image), LIMIT)) for image in (picture, grey))
        np.testing.assert_array_equal(sixteen, eight)
    else:
        picture = grey.convert(mode)
    format = "JPEG" if mode == "CMYK" else "PNG"
    reference = prepared(encoded(grey), Invert.auto)
    got = prepared(encoded(picture, format), Invert.auto)
    if format == "JPEG":  # lossy: the same ink box, give or take a pixel
        assert np.abs(np.subtract(_ink_box(got[0]), _ink_box(reference[0]))).max() <= 1
    else:
        assert np.abs(got - reference).max() <= 1 / 255


@pytest.mark.parametrize("format", ["JPEG", "GIF", "BMP", "WEBP"])
def test_accepted_formats(format):
    got = prepared(encoded(Image.fromarray(digit_on_paper()).convert("RGB"), format))
    assert got.shape == (1, 28, 28) and got.max() > 0.5


def test_exif_orientation_is_honoured():
    upright = Image.fromarray(digit_on_paper())  # a vertical bar
    stored = upright.rotate(90, expand=True)  # stored lying down; EXIF says "turn 90 degrees clockwise"
    exif = Image.Exif()
    exif[0x0112] = 6
    got = prepared(encoded(stored, "JPEG", exif=exif), Invert.auto)[0]
    rows, columns = np.nonzero(got > 0.5)
    assert np.ptp(rows) > np.ptp(columns)  # seen as intended: upright


def test_transparent_background_counts_as_paper():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[20:80, 45:55] = (0, 0, 0, 255)  # black ink on a transparent sheet
    got = prepared(png(rgba), Invert.auto)[0]
    assert got.max() > 0.5 and got[0].max() == 0


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (b"", InvalidInput, "empty"),
        (b"\x00\x01 definitely not an image", UnsupportedImage, "accepted format"),
        (png_with_header(100_000, 100_000), InvalidInput, "limit"),
        (png(digit_on_paper())[:-40], InvalidInput, "corrupt or truncated"),
        (png(digit_on_paper()).replace(b"IDAT", b"IDAX"), InvalidInput, "corrupt or truncated"),
        (encoded(Image.fromarray(digit_on_paper()).convert("RGB"), "PNG")[:-40], InvalidInput, "corrupt or truncated"),
    ],
)
def test_unusable_uploads_are_rejected_with_a_reason(data, kind, message):
    with pytest.raises(kind, match=message) as raised:
        prepared(data, Invert.auto)
    assert type(raised.value) is kind


def test_grid_and_png_round_trip():
    images = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    mosaic = grid(images)
    assert mosaic.shape == (56, 84)
    np.testing.assert_array_equal(mosaic[28:, 28:56], images[4, 0])
    written = png_bytes(mosaic, upscale=3)
    decoded = Image.open(io.BytesIO(written))
    assert decoded.size == (84 * 3, 56 * 3) and decoded.mode == "L"
    blocks = np.round(mosaic * 255).astype(np.uint8).repeat(3, axis=0).repeat(3, axis=1)
    np.testing.assert_array_equal(np.asarray(decoded), blocks)
    np.testing.assert_array_equal(pyspng.load(written), blocks)  # libspng checks every chunk's CRC
    assert written.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82")  # the PNG spec's IEND: empty, and this CRC


def test_intensities_outside_0_1_become_the_nearest_8_bit_code_not_a_wrapped_one():
    codes = to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 1.5, 2.5], np.float32))
    np.testing.assert_array_equal(codes, [0, 0, 128, 255, 255, 255])  # 127.5 rounds half to even
    assert codes.dtype == np.uint8


def _framed_by_mnist(digit: np.ndarray, background: float) -> np.ndarray:
    """An MNIST digit (white on black) on a uniform background of that intensity, ink still white."""
    return np.rint((background + (1 - background) * digit / 255) * 255).astype(np.uint8)


@pytest.mark.parametrize("recipe", list(Recipe))
def test_a_28x28_picture_is_sent_as_it_is_up_to_its_recipes_border_and_framed_past_it(sample_data_dir, recipe):
    from contract.recipes import RECIPES

    digit = load_dataset(sample_data_dir).test.images[0]
    limit = RECIPES[recipe].border_up_to
    at_limit = np.floor(limit * 255) / 255  # the darkest 8-bit background at or under the limit
    past = at_limit + 1 / 255
    for background, sent_as_is in ((0.0, True), (at_limit, True), (past, False)):
        picture = _framed_by_mnist(digit, background)
        as_is = (picture / np.float32(255)).astype(np.float32)[None]
        got = prepared(png(picture), Invert.auto, recipe)
        assert bool(np.array_equal(got, as_is)) is sent_as_is, (recipe, background)
        inverted = prepared(png(255 - picture), Invert.auto, recipe)  # dark ink on light paper: 1 - x
        assert bool(np.allclose(inverted, as_is, rtol=0, atol=1e-6)) is sent_as_is, (recipe, background)


def test_training_form_reads_the_border_as_contract_recipes_reads_one(sample_data_dir):
    """MNIST digits whose border (some of its sides, or its corners alone) is brightened to a mean
    near the digit recipe's 0.1: each is sent as it is exactly when the border's mean, its four sides
    with each corner on two, is within the limit."""
    from contract.recipes import RECIPES

    def border_mean(picture: np.ndarray) -> float:
        return (picture[0].sum() + picture[-1].sum() + picture[:, 0].sum() + picture[:, -1].sum()) / (4 * 28)

    limit, rng = RECIPES[Recipe.digit].border_up_to, np.random.default_rng(5)
    outer = np.zeros((28, 28), bool)
    outer[[0, -1]], outer[:, [0, -1]] = True, True
    sides = [outer & (np.arange(28)[:, None] == 0), outer & (np.arange(28)[:, None] == 27)]
    sides += [outer & (np.arange(28)[None] == 0), outer & (np.arange(28)[None] == 27)]
    corners = np.zeros((28, 28), bool)
    corners[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    decisions = []
    for index, digit in enumerate(load_dataset(sample_data_dir).test.images[:40]):
        lit = corners | sides[index % 4] if index % 2 else sides[index % 4] | sides[(index + 1) % 4]
        wanted = rng.uniform(0.085, 0.115) * 112  # the border's sum: 112 places, corners counted twice
        weights = np.where(lit, rng.uniform(0.5, 1, (28, 28)), 0)
        picture = digit.copy()
        picture[lit] = np.clip(np.rint(255 * weights[lit] * wanted / (112 * border_mean(weights))), 0, 255)
        as_is = (picture / np.float32(255)).astype(np.float32)[None]
        within = bool(border_mean(as_is[0]) <= limit)
        assert bool(np.array_equal(prepared(png(picture), Invert.auto), as_is)) is within, index
        decisions.append(within)
    assert 10 <= sum(decisions) <= 30  # both sides of the limit, often


@pytest.mark.parametrize("invert, flips", [(Invert.yes, True), (Invert.no, False)])
def test_a_given_polarity_decides_training_form_on_the_picture_it_makes(sample_data_dir, invert, flips):
    digit = load_dataset(sample_data_dir).test.images[0]
    light = 255 - digit  # black ink on white paper: in training form only once inverted
    if flips:
        got = prepared(png(light), invert)
        np.testing.assert_allclose(got[0], digit / np.float32(255), rtol=0, atol=1e-6)  # 1 - x, in float32
    else:  # taken as it is, white paper is ink over the whole picture: not a training image, and no digit
        with pytest.raises(InvalidInput, match="no ink found"):
            prepared(png(light), invert)


def inputs(*uploads: Upload, pool: ThreadPoolExecutor | None = None, named: bool = True):
    return asyncio.run(model_inputs(list(uploads), Invert.auto, Recipe.digit, LIMIT, pool, named))


def test_a_28x28_digit_in_colour_reaches_the_model_as_its_grey_png_does(sample_data_dir):
    digit = load_dataset(sample_data_dir).test.images[0]
    grey = prepared(png(digit))
    np.testing.assert_array_equal(prepared(encoded(Image.fromarray(digit).convert("RGB"))), grey)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_refused_28x28_file_of_several_is_named_by_its_place_and_name(sample_data_dir, mode):
    digit = load_dataset(sample_data_dir).test.images[0]
    broken = encoded(Image.fromarray(digit).convert(mode))
    broken = broken[: broken.index(b"IEND") - 20]  # the picture's data cut short
    with pytest.raises(InvalidInput, match=r"^file 1 \('b.png'\): "):
        inputs(Upload("a.png", png(digit)), Upload("b.png", broken))


def test_inversions_are_counted_in_and_out_of_training_form(sample_data_dir):
    digit = load_dataset(sample_data_dir).test.images[0]
    dark_on_white = png(255 - digit)  # in training form once inverted
    photo = encoded(Image.fromarray(digit_on_paper()), "JPEG", quality=95)  # dark ink, framed
    counted = inputs(Upload(None, dark_on_white), Upload(None, png(digit)), Upload(None, photo))
    assert (counted.framed, counted.inverted) == (1, 2)


def test_a_refused_small_picture_of_several_is_named_by_its_place_and_name(sample_data_dir):
    blank = png(np.full((40, 40), 128, np.uint8))
    with pytest.raises(InvalidInput, match=r"^file 1 \('b.png'\): no ink found"):
        inputs(Upload("a.png", png(load_dataset(sample_data_dir).test.images[0])), Upload("b.png", blank))


def test_a_small_picture_is_framed_as_its_bicubic_enlargement_is():
    """Pictures under 112 pixels are enlarged by the whole factor that reaches it before framing,
    so that a digit keeps its strokes' shape: a 56-pixel picture is framed as Pillow's own 2x
    bicubic enlargement of it is, give or take the enlargement's 8-bit rounding."""
    small = np.array(Image.fromarray(digit_on_paper()).resize((84, 56), Image.LANCZOS))
    enlarged = Image.fromarray(small).resize((168, 112), Image.BICUBIC)
    difference = np.abs(prepared(png(small)) - prepared(encoded(enlarged)))
    assert difference.mean() < 0.01


def test_small_pictures_are_framed_where_they_arrive_and_larger_ones_in_the_picture_pool():
    small = np.array(Image.fromarray(digit_on_paper()).resize((64, 64)))  # INLINE_PIXELS exactly
    assert small.size == INLINE_PIXELS
    assert inputs(Upload(None, png(small)), pool=closed_pool()).framed == 1
    large = png(digit_on_paper())
    with ThreadPoolExecutor(1, thread_name_prefix="pictures-test-pool") as pool:
        pooled = inputs(Upload(None, large), pool=pool)
        assert threads_named("pictures-test-pool") == 1  # the picture was framed there
    np.testing.assert_array_equal(pooled.images, inputs(Upload(None, large)).images)


@pytest.mark.parametrize("width, height", [(0, 5), (5, 0)])
def test_a_picture_without_rows_or_columns_is_refused_by_name(width, height):
    with pytest.raises(InvalidInput, match="^image has no pixels$"):
        open_image(png_with_header(width, height), LIMIT)
    assert open_image(png_with_header(1, 1), LIMIT).width == 1


def test_a_png_claiming_2_to_the_31_pixels_across_is_refused_as_too_large():
    with pytest.raises(InvalidInput, match=f"^image has 2147483648x1 pixels; the limit is {LIMIT} in all$"):
        open_image(png_with_header(2**31, 1), LIMIT)


def test_what_is_no_picture_is_refused_with_what_to_send():
    with pytest.raises(InvalidInput, match="^empty image: the file has no bytes$"):
        open_image(b"", LIMIT)
    with pytest.raises(UnsupportedImage, match=r"^not an image in an accepted format \(PNG, JPEG, GIF, BMP, WebP\)$"):
        open_image(b"hello", LIMIT)
    with pytest.raises(UnsupportedImage, match="^not an image in an accepted format"):
        prepared(png(digit_on_paper())[:30])  # a PNG cut inside its header


def test_a_picture_28_pixels_high_but_wider_is_framed(sample_data_dir):
    digit = load_dataset(sample_data_dir).test.images[0]
    wide = np.zeros((28, 40), np.uint8)
    wide[:, 6:34] = digit
    np.testing.assert_allclose(prepared(png(wide)), prepared(png(np.pad(wide, ((6, 6), (0, 0))))), atol=0.05)
