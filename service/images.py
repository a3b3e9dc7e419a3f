"""Pictures in and out: any uploaded image -> the model's 28x28 input; pixel means -> PNG.

The input recipe is MNIST's own (LeCun et al.): grey, white ink on black, cropped to the ink,
scaled to fit a 20x20 box keeping the aspect ratio, and placed in 28x28 with its centre of
mass at the centre. A 28x28 image is taken to be in that form already and only turned grey
and white-on-black, so an MNIST image reaches the model bit for bit as in training.
"""

import io
from enum import StrEnum

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIDE = 28
BOX = 20
ACCEPTED_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "WEBP")
ACCEPTED_MEDIA_TYPES = {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/x-ms-bmp"}
INK_THRESHOLD = 0.1  # of full scale, after the background is subtracted


class Invert(StrEnum):
    auto = "auto"  # invert when the picture's border is lighter than mid-grey on average (ink on paper)
    yes = "yes"
    no = "no"


class ImageRejected(Exception):
    """The upload cannot be used; status says why (415 unsupported format, 422 unusable image)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageRejected(422, "empty image: the file has no bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)  # reads the header only
    except UnidentifiedImageError as error:
        raise ImageRejected(415, "not an image in an accepted format (PNG, JPEG, GIF, BMP, WebP)") from error
    except Image.DecompressionBombError as error:  # Pillow's own limit, far above max_pixels by default
        raise ImageRejected(422, f"image too large: {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # what Pillow raises for broken headers
        raise ImageRejected(422, f"corrupt image header ({error})") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(422, f"image has {width}x{height} pixels; the limit is {max_pixels} in all")
    if width == 0 or height == 0:
        raise ImageRejected(422, "image has no pixels")
    try:
        image.seek(0)  # the first frame of an animation is the picture
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageRejected(422, f"corrupt or truncated {image.format} image ({error})") from error
    return image


def _grey(image: Image.Image) -> np.ndarray:
    """Intensities in [0, 1], float32; transparent areas count as white paper."""
    if "exif" in image.info:  # parsing EXIF costs a tenth of a request: only when there is some
        image = ImageOps.exif_transpose(image)
    if image.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        pixels = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(pixels.max()), 1.0)
        return np.clip(pixels / top, 0, 1)
    if image.mode == "L":
        return np.asarray(image, dtype=np.float32) / 255.0
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("RGB").convert("L"), dtype=np.float32) / 255.0


def _border(pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def _fit_and_centre(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, scale to fit 20x20, centre by centre of mass in 28x28, quantise like MNIST."""
    rows, columns = np.nonzero(ink > INK_THRESHOLD)
    if len(rows) == 0:
        return np.zeros((SIDE, SIDE), np.float32)
    crop = ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    scale = BOX / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    boxed = np.asarray(Image.fromarray(crop).resize((width, height), Image.LANCZOS)).clip(0, 1)
    total = boxed.sum()
    centre_row = (boxed.sum(axis=1) @ np.arange(height)) / total if total else (height - 1) / 2
    centre_column = (boxed.sum(axis=0) @ np.arange(width)) / total if total else (width - 1) / 2
    top = int(np.clip(round(SIDE / 2 - 0.5 - centre_row), 0, SIDE - height))
    left = int(np.clip(round(SIDE / 2 - 0.5 - centre_column), 0, SIDE - width))
    canvas = np.zeros((SIDE, SIDE), np.float32)
    canvas[top : top + height, left : left + width] = boxed
    return np.round(canvas * 255) / np.float32(255.0)


def to_model_input(data: bytes, invert: Invert, max_pixels: int) -> np.ndarray:
    """An uploaded image's bytes -> float32 (1, 28, 28) in [0, 1], white digit on black."""
    pixels = _grey(_open(data, max_pixels))
    if invert is Invert.yes or (invert is Invert.auto and _border(pixels).mean() > 0.5):
        pixels = 1.0 - pixels
    if pixels.shape == (SIDE, SIDE):
        return pixels[None]
    # Photos: the paper is rarely black; stretch from the background level to the brightest ink.
    background, peak = float(np.median(_border(pixels))), float(pixels.max())
    ink = np.clip((pixels - background) / (peak - background), 0, 1) if peak > background else pixels * 0
    return _fit_and_centre(ink.astype(np.float32))[None]


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)


def grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """(N, 1, 28, 28) -> one mosaic in row-major order, as square as the count allows by default."""
    count = len(images)
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    padded = np.zeros((rows * columns, SIDE, SIDE), images.dtype)
    padded[:count] = images[:, 0]
    return padded.reshape(rows, columns, SIDE, SIDE).swapaxes(1, 2).reshape(rows * SIDE, columns * SIDE)


def png_bytes(pixels: np.ndarray, upscale: int = 1) -> bytes:
    """A (H, W) array of intensities in [0, 1] -> PNG bytes, each pixel an upscale x upscale block."""
    image = Image.fromarray(to_uint8(pixels))
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
