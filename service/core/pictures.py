"""Pictures in and out, the one pipeline every front end, test and benchmark calls: an uploaded
image's bytes -> grey intensities -> the model's 28x28 input (by the model's recipe, see
contract.recipes); pixel means -> PNG.

A 28x28 image is taken to be in the training data's form already and only turned grey and
white-on-black, so an MNIST image reaches the model bit for bit as in training. Larger pictures are
decoded at reduced size where the format allows it (JPEG's DCT scaling) and box-reduced to at most
WORK_PIXELS before any float work: the recipe needs far fewer pixels than a phone takes.

The commonest upload, an 8-bit greyscale PNG such as an MNIST digit, is decoded by libspng
(pyspng) instead of Pillow: the same bytes, at a fraction of the cost of Pillow's plugin machinery,
which was the largest part of a small /encode.
"""

from __future__ import annotations  # the nested helpers' annotations are not built on every call

import asyncio
import io
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from enum import StrEnum
from typing import NamedTuple, TypeVar

import numpy as np
import pyspng
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from contract.geometry import SIDE
from contract.recipes import (
    RECIPES,
    Box,
    NoInk,
    Recipe,
    SeveralDigits,
    TooManyDigits,
    border,
    frame_digits,
    ink_is_dark,
)
from service.core.errors import InvalidInput, Refused, UnsupportedImage

WORK_PIXELS = 512 * 512
# A number spreads its digits across the page, and each needs about the pixels a lone digit has at
# WORK_PIXELS: reduced to that, digits a twentieth of the page high lost their strokes' shape.
NUMBER_WORK_PIXELS = 2048 * 2048
ACCEPTED_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "WEBP")
# The content decides the format; these are the names clients give images, common misspellings included.
ACCEPTED_MEDIA_TYPES = {
    "image/png",
    "image/x-png",
    "image/jpeg",
    "image/jpg",
    "image/pjpeg",
    "image/gif",
    "image/bmp",
    "image/x-ms-bmp",
    "image/x-bmp",
    "image/webp",
}


class Invert(StrEnum):
    auto = "auto"  # invert when the ink is darker than the paper (the picture's border)
    yes = "yes"
    no = "no"


INLINE_PIXELS = 64 * 64  # pictures up to this size are framed on the caller's thread: a hop costs more
Result = TypeVar("Result")


class Upload(NamedTuple):
    """One picture as it arrived: its file name, if it had one, and its bytes."""

    filename: str | None
    data: bytes


class GreyPNG(NamedTuple):
    """An 8-bit greyscale PNG whose pixels are the whole picture: no transparency to put on paper,
    no EXIF orientation to apply."""

    data: bytes
    width: int
    height: int


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY_8_BIT = (8, 0)  # IHDR's bit depth and colour type
_PIXEL_CHANGING_CHUNKS = {b"tRNS", b"eXIf"}


def _grey_png(data: bytes) -> GreyPNG | None:
    """The upload as a GreyPNG if it is one (its chunk headers say so), else None: Pillow takes it."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    if (depth, colour) != _GREY_8_BIT:
        return None
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind in _PIXEL_CHANGING_CHUNKS:
            return None
        position += 12 + length  # length, type, data, CRC
    return GreyPNG(data, width, height)


def _checked_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidInput(f"image has {width}x{height} pixels; the limit is {max_pixels} in all")
    if width == 0 or height == 0:
        raise InvalidInput("image has no pixels")


def open_image(data: bytes, max_pixels: int) -> Image.Image | GreyPNG:
    """The picture's header read and checked; its pixels are decoded by grey_pixels."""
    if not data:
        raise InvalidInput("empty image: the file has no bytes")
    grey_png = _grey_png(data)
    if grey_png is not None:
        _checked_size(grey_png.width, grey_png.height, max_pixels)
        return grey_png
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)  # reads the header only
    except UnidentifiedImageError as error:
        raise UnsupportedImage("not an image in an accepted format (PNG, JPEG, GIF, BMP, WebP)") from error
    except Image.DecompressionBombError as error:  # Pillow's own limit, far above max_pixels by default
        raise InvalidInput(f"image too large: {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # what Pillow raises for broken headers
        raise InvalidInput(f"corrupt image header ({error})") from error
    _checked_size(*image.size, max_pixels)
    return image


def _decoded(image: Image.Image, work_pixels: int) -> Image.Image:
    width, height = image.size
    if image.format == "JPEG" and width * height > work_pixels:
        scale = np.sqrt(work_pixels / (width * height))
        image.draft(None, (int(width * scale), int(height * scale)))  # the mode as it is; a smaller scale
    try:
        image.seek(0)  # the first frame of an animation is the picture
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidInput(f"corrupt or truncated {image.format} image ({error})") from error
    return image


def _reduced(image: Image.Image, work_pixels: int) -> Image.Image:
    if image.width * image.height <= work_pixels:
        return image
    return image.reduce(int(np.ceil(np.sqrt(image.width * image.height / work_pixels))))


_TURNED_A_QUARTER = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def shown_size(image: Image.Image | GreyPNG) -> tuple[int, int]:
    """Width and height of the picture as a viewer shows it, its EXIF orientation applied; read
    before decoding, which may reduce a JPEG."""
    width, height = image.width, image.height
    if isinstance(image, Image.Image) and image.getexif().get(ExifTags.Base.Orientation) in _TURNED_A_QUARTER:
        return height, width
    return width, height


def is_transparent(image: Image.Image | GreyPNG) -> bool:
    return isinstance(image, Image.Image) and (image.mode in {"RGBA", "LA"} or "transparency" in image.info)


def _grey(image: Image.Image, work_pixels: int) -> np.ndarray:
    """Intensities in [0, 1], float32, at most work_pixels; transparent areas count as white paper."""
    if "exif" in image.info:  # parsing EXIF is costly: only when there is some
        image = ImageOps.exif_transpose(image)
    if image.mode == "I;16":  # a 16-bit grey PNG: of the formats accepted, the one with codes past 8 bits
        return np.asarray(_reduced(image.convert("F"), work_pixels)) / np.float32(65535)  # reduce takes no I;16
    if is_transparent(image):
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    if image.mode != "L":
        image = image.convert("RGB").convert("L")
    return intensities(np.asarray(_reduced(image, work_pixels)))


_LARGEST_CODE = np.float32(255)  # a float32 divisor: the division runs in float32, as training's does


def intensities(codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """8-bit codes (uint8, or already float32) as intensities in [0, 1], float32; into out, if given."""
    return np.divide(codes, _LARGEST_CODE, out=out)


def grey_png_codes(png: GreyPNG) -> np.ndarray:
    """A GreyPNG's pixels as decoded, 8-bit codes (uint8)."""
    try:
        return pyspng.load(png.data)
    except RuntimeError as error:
        raise InvalidInput(f"corrupt or truncated PNG image ({error})") from error


def _grey_png_pixels(png: GreyPNG, work_pixels: int) -> np.ndarray:
    """As _grey gives them, for a GreyPNG."""
    codes = grey_png_codes(png)
    if codes.size > work_pixels:
        codes = np.asarray(_reduced(Image.fromarray(codes), work_pixels))
    return intensities(codes)


def grey_pixels(image: Image.Image | GreyPNG, work_pixels: int = WORK_PIXELS) -> np.ndarray:
    """An opened upload's intensities in [0, 1], float32, at most work_pixels."""
    if isinstance(image, GreyPNG):
        return _grey_png_pixels(image, work_pixels)
    return _grey(_decoded(image, work_pixels), work_pixels)


def training_sized(image: Image.Image | GreyPNG) -> bool:
    """A 28x28 picture may be framed as the training images are (training_form decides)."""
    return image.width == SIDE and image.height == SIDE


# A picture's border (as contract.recipes.border reads it) as weights on its flattened pixels: each
# pixel once per side it lies on.
_BORDER = np.bincount(border(np.arange(SIDE * SIDE).reshape(SIDE, SIDE)), minlength=SIDE * SIDE).astype(np.float64)
_BORDER_COUNT = _BORDER.sum()  # the border's sum over this is its mean intensity


def training_form(
    pictures: np.ndarray, sized: np.ndarray, invert: Invert, recipe: Recipe
) -> tuple[np.ndarray, np.ndarray]:
    """Which of the pictures (N, 28, 28), those of them that are 28x28 (sized) as decoded, are in
    training form: white ink on a black background once their polarity is taken, as the training
    images are, and which of those were inverted. They are inverted in place where their polarity
    says so; the others are left as they are, to be framed by the recipe (a digit on grey paper is
    not an MNIST image).

    A picture in training form has a border of background only, so a light border means dark ink:
    the cheap test keeps the most common upload fast, and runs once for the whole batch. The border
    is summed in float64, which holds the products and sums of 8- and 16-bit intensities exactly,
    in any order: a picture gets the same input alone or in a batch."""
    if not sized.any():
        return sized, sized
    border = pictures.reshape(len(pictures), -1) @ _BORDER  # exact: integer weights, float64 sums
    flip = border > 0.5 * _BORDER_COUNT if invert is Invert.auto else np.full(len(sized), invert is Invert.yes)
    background = np.where(flip, _BORDER_COUNT - border, border)
    in_form = sized & (background <= RECIPES[recipe].border_up_to * _BORDER_COUNT)
    if np.count_nonzero(flip := flip & in_form):
        np.subtract(1.0, pictures, out=pictures, where=flip[:, None, None])
    return in_form, flip


SMALL_SIDE = 4 * SIDE  # pictures smaller than this are enlarged before their framing


def _enlarged(pixels: np.ndarray) -> np.ndarray:
    """A small picture, enlarged (bicubic) by the whole factor that brings its longer side to
    SMALL_SIDE: cropped and scaled at its own pixel grain, a digit would lose its strokes' shape."""
    factor = -(-SMALL_SIDE // max(pixels.shape))
    if factor <= 1:
        return pixels
    height, width = pixels.shape
    image = Image.fromarray(pixels.astype(np.float32), "F").resize((width * factor, height * factor), Image.BICUBIC)
    return np.clip(np.asarray(image), 0, 1)


def _bright_ink(pixels: np.ndarray, invert: Invert) -> tuple[np.ndarray, bool]:
    """A picture's intensities with its ink bright, at the size framing needs, and whether they
    were inverted."""
    inverted = invert is Invert.yes or (invert is Invert.auto and ink_is_dark(pixels))
    return _enlarged(1.0 - pixels if inverted else pixels), inverted


@contextmanager
def _refusals(recipe: Recipe, transparent: bool) -> Iterator[None]:
    """A framing's refusal, as the message that says what to send instead."""
    try:
        yield
    except NoInk as error:
        if transparent:
            raise InvalidInput(
                f"{error}; transparent areas count as white paper, so light ink on a transparent background "
                "does not show: flatten the picture onto a dark background (or draw dark ink) and send it again"
            ) from error
        raise InvalidInput(f"{error}; send a picture with a visible {recipe.value}") from error
    except TooManyDigits as error:
        raise InvalidInput(str(error)) from error
    except SeveralDigits as error:
        raise InvalidInput(
            f"{error}: this takes one digit; send the picture to /encode/digits for each digit's place and encoding"
        ) from error


def framed_input(pixels: np.ndarray, invert: Invert, recipe: Recipe, transparent: bool) -> tuple[np.ndarray, bool]:
    """A picture not in training form, as intensities -> float32 (28, 28), framed by the recipe, and
    whether it was inverted."""
    bright, inverted = _bright_ink(pixels, invert)
    with _refusals(recipe, transparent):
        return RECIPES[recipe].frame(bright), inverted


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)  # np.round's halves to even, without its wrapper


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray, upscale: int = 1) -> bytes:
    """A (H, W) array of intensities in [0, 1] -> an 8-bit greyscale PNG, each pixel an upscale x
    upscale block. Written here: such a PNG is three chunks around zlib's output, and Pillow's
    encoder, through its plugin machinery, cost several times the compression for a 28x28 image."""
    grey = to_uint8(pixels)
    if upscale > 1:
        grey = grey.repeat(upscale, axis=0).repeat(upscale, axis=1)
    height, width = grey.shape
    rows = np.zeros((height, 1 + width), np.uint8)  # each row led by its filter type, 0: none
    rows[:, 1:] = grey
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, deflate, no interlace
    return b"".join(
        (
            PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
            _png_chunk(b"IEND", b""),
        )
    )


class ModelInputs(NamedTuple):
    images: np.ndarray  # (N, 1, 28, 28)
    framed: int  # how many went through the recipe, not being in training form
    inverted: int  # how many were inverted, framed or not


async def model_inputs(
    uploads: list[Upload], invert: Invert, recipe: Recipe, max_pixels: int, pool: Executor | None, named: bool
) -> ModelInputs:
    """The model input (N, 1, 28, 28) of each upload, and how many were framed and inverted.
    Pictures in training form are decoded where this runs and take their polarity together; other
    small pictures are framed here too, where the hop to a thread would cost more than the work;
    larger ones in the pool, if one is given, so that decoding a photo never holds up other
    requests. With named, a refusal names the file."""

    def on_file(index: int, step: Callable[..., Result], *arguments: object) -> Result:
        try:
            return step(*arguments)
        except Refused as error:
            if not named:
                raise
            raise type(error)(f"file {index} ({uploads[index].filename!r}): {error.detail}") from None

    def framed(image: Image.Image | GreyPNG) -> tuple[np.ndarray, bool]:
        return framed_input(grey_pixels(image), invert, recipe, is_transparent(image))

    images = [on_file(index, open_image, upload.data, max_pixels) for index, upload in enumerate(uploads)]
    sized = [training_sized(image) for image in images]
    pictures = np.zeros((len(images), SIDE, SIDE), np.float32)  # those framed later must not read as NaN
    # The 8-bit codes of grey PNGs in training form become intensities together, in one operation.
    coded = [form and isinstance(image, GreyPNG) for form, image in zip(sized, images, strict=True)]
    for index, image in enumerate(images):
        if coded[index]:
            pictures[index] = on_file(index, grey_png_codes, image)
        elif sized[index]:
            pictures[index] = on_file(index, grey_pixels, image)
    if all(coded):
        intensities(pictures, out=pictures)
    elif any(coded):
        pictures[coded] = intensities(pictures[coded])
    in_form, flipped = training_form(pictures, np.array(sized), invert, recipe)
    others = [index for index, form in enumerate(in_form) if not form]
    if not others:
        return ModelInputs(pictures[:, None], 0, int(np.count_nonzero(flipped)))
    if pool is None or all(images[index].width * images[index].height <= INLINE_PIXELS for index in others):
        framings = [on_file(index, framed, images[index]) for index in others]
    else:
        loop = asyncio.get_running_loop()
        framings = await asyncio.gather(
            *(loop.run_in_executor(pool, on_file, index, framed, images[index]) for index in others)
        )
    for index, (frame, _) in zip(others, framings, strict=True):
        pictures[index] = frame
    inverted = int(np.count_nonzero(flipped)) + sum(inverted for _, inverted in framings)
    return ModelInputs(pictures[:, None], len(others), inverted)


class DigitInputs(NamedTuple):
    images: np.ndarray  # (N, 1, 28, 28), one per digit, left to right
    boxes: list[Box]  # where each digit is, in the picture's pixels (as shown, EXIF orientation applied)
    inverted: bool


def _digits_framed(image: Image.Image | GreyPNG, invert: Invert, most: int) -> DigitInputs:
    width, height = shown_size(image)
    pixels = grey_pixels(image, NUMBER_WORK_PIXELS)
    bright, inverted = _bright_ink(pixels, invert)
    with _refusals(Recipe.digit, is_transparent(image)):
        found = frame_digits(bright, most)
    across, down = width / bright.shape[1], height / bright.shape[0]
    boxes = [box.scaled(across, down) for box, _ in found]
    return DigitInputs(np.stack([frame for _, frame in found])[:, None], boxes, inverted)


async def digit_inputs(
    upload: Upload, invert: Invert, recipe: Recipe, max_pixels: int, most: int, pool: Executor | None
) -> DigitInputs:
    """The model input of each digit of a picture of a number, left to right, with its box; at
    most `most` digits. A 28x28 picture is one digit, as model_inputs takes it."""
    if recipe is not Recipe.digit:
        raise InvalidInput(f"this model frames each picture as one {recipe.value}; finding digits needs a digit model")
    image = open_image(upload.data, max_pixels)
    if training_sized(image):
        prepared = await model_inputs([upload], invert, recipe, max_pixels, pool, named=False)
        return DigitInputs(prepared.images, [Box(0, 0, SIDE, SIDE)], bool(prepared.inverted))
    if pool is None or image.width * image.height <= INLINE_PIXELS:
        return _digits_framed(image, invert, most)
    return await asyncio.get_running_loop().run_in_executor(pool, _digits_framed, image, invert, most)


def prepare(data: bytes, invert: Invert, recipe: Recipe, max_pixels: int = 25_000_000) -> np.ndarray:
    """One picture's bytes -> its model input (1, 28, 28), as a request's: model_inputs, run here."""
    # A loop of its own rather than asyncio.run, whose SIGINT handling formats the finished task,
    # arrays and all (signal.getsignal builds the message of a ValueError it then discards): that
    # doubled the time of each call.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(
            model_inputs([Upload(None, data)], invert, recipe, max_pixels, None, named=False)
        ).images[0]
    finally:
        loop.close()
