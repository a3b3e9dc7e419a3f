"""Pictures as upload files: a path, encoded bytes, a PIL image or an array."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

Picture = str | Path | bytes | Image.Image | np.ndarray


def as_file(picture: Picture, name: str = "image") -> tuple[str, bytes]:
    """(file name, encoded bytes). Arrays are (H, W) or (H, W, channels), uint8, or floats in [0, 1]."""
    if isinstance(picture, np.ndarray) and (picture.ndim not in (2, 3) or is_many(picture)):
        raise ValueError(
            f"an array of shape {picture.shape} is not one picture: send (H, W) or (H, W, channels), "
            "or a list (or an (N, H, W) stack) of pictures"
        )
    if isinstance(picture, str | Path):
        path = Path(picture)
        return path.name, path.read_bytes()
    if isinstance(picture, bytes):
        return name, picture
    if isinstance(picture, np.ndarray):
        if picture.dtype != np.uint8:
            if not np.issubdtype(picture.dtype, np.floating) or picture.min() < 0 or picture.max() > 1:
                raise ValueError("an array picture must be uint8, or floats in [0, 1]")
            picture = np.round(picture * 255).astype(np.uint8)
        picture = Image.fromarray(picture)
    if isinstance(picture, Image.Image):
        out = io.BytesIO()
        picture.save(out, format="PNG")
        return f"{name}.png", out.getvalue()
    raise TypeError(f"a picture is a path, bytes, a PIL image or a numpy array, not {type(picture).__name__}")


CHANNELS = (1, 3, 4)  # grey, RGB, RGBA: the last axis of an (H, W, channels) picture


def is_many(pictures: object) -> bool:
    """A list or tuple holds many pictures, and so does a stack of arrays, (N, H, W) or (N, H, W,
    channels); anything else (an (H, W) or (H, W, channels) array included) is one."""
    if isinstance(pictures, np.ndarray):
        return pictures.ndim == 4 or (pictures.ndim == 3 and pictures.shape[-1] not in CHANNELS)
    return isinstance(pictures, list | tuple)


def image_of(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image
