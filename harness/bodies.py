"""Request bodies for tests and benchmarks: encoded images and multipart forms."""

import io

import numpy as np
from PIL import Image

BOUNDARY = "harnessboundary"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def encoded(image: Image.Image, format: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def png(pixels: np.ndarray) -> bytes:
    return encoded(Image.fromarray(pixels))


def multipart(files: list[bytes]) -> bytes:
    """A multipart form of PNG files, each in a field named "file"; send it with MULTIPART_TYPE."""
    parts = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    )
    return parts + f"--{BOUNDARY}--\r\n".encode()
