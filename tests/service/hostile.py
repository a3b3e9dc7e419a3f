"""A corpus of hostile and odd uploads, each with the status the service must answer and what it
must say: a fragment of the refusal's detail, or the picture whose mu a valid upload must give."""

import io
import os
import struct
import zlib
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from harness.bodies import encoded, png
from tests.service.imaging import digit_on_paper, grey_png, png_chunk, png_with_header


def _rows(width: int, height: int, value: int = 0) -> bytes:
    return (b"\0" + bytes([value]) * width) * height  # filter byte 0 per row


def _animated_gif(frames: int) -> bytes:
    images = [Image.new("L", (16, 16), i % 256) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=1, loop=0)
    return out.getvalue()


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(Image.fromarray(digit_on_paper()).rotate(90, expand=True), "JPEG", exif=exif)


def _as_decoded(data: bytes) -> np.ndarray:
    """The grey pixels Pillow decodes from a lossy upload, upright: what it must read as."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L"))


class Hostile(NamedTuple):
    name: str
    body: bytes
    content_type: str
    status: int
    answer: str | np.ndarray  # a fragment of the refusal's detail, or the picture a 200 must read as


def corpus() -> list[Hostile]:
    good = png(digit_on_paper())
    idat = zlib.compress(_rows(64, 64, 200))
    bomb_text = zlib.compress(b"\0" * 50_000_000, 9)  # 50 MB of text in ~50 kB
    colour_header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # RGB: Pillow reads it, not libspng
    colour_claim = good[:8] + png_chunk(b"IHDR", colour_header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    jpeg = encoded(Image.fromarray(digit_on_paper()), "JPEG")
    cmyk_jpeg = encoded(Image.fromarray(digit_on_paper()).convert("CMYK"), "JPEG")
    turned_jpeg = _exif_rotated_jpeg()
    tiff = encoded(Image.fromarray(digit_on_paper()), "TIFF")
    no_ink = "no ink found"
    cases = [
        ("empty body", b"", "image/png", 422, "empty body: send the image's bytes"),
        ("random bytes", os.urandom(4096), "image/png", 415, "not an image in an accepted format"),
        ("PNG with a bad signature", b"\x89PNX" + good[4:], "image/png", 415, "not an image in an accepted format"),
        # Pillow checks no IDAT CRC, and the pixels themselves are intact: a valid picture, but a blank
        # one, which has no digit to encode (422 "no ink"), as for the other blank pictures below.
        (
            "PNG with a bad CRC",
            grey_png(64, 64, idat)[:33] + png_chunk(b"IDAT", idat, crc=0) + png_chunk(b"IEND", b""),
            "image/png",
            422,
            no_ink,
        ),
        (
            "PNG with a truncated IDAT",
            grey_png(64, 64, idat[: len(idat) // 2]),
            "image/png",
            422,
            "corrupt or truncated",
        ),
        ("PNG without IEND", grey_png(64, 64, idat, end=False), "image/png", 422, no_ink),
        (
            "header claiming 100000x100000",
            png_with_header(100_000, 100_000),
            "image/png",
            422,
            "image has 100000x100000 pixels; the limit is",
        ),
        ("colour PNG claiming 100000x100000, past Pillow's own limit", colour_claim, "image/png", 422, "too large"),
        (
            "a chunk 4 GB long",  # read as signed, its length would step the chunk scan back to where it is
            good[:33] + struct.pack(">I", 2**32 - 12) + b"tEXt" + good[33:],
            "image/png",
            422,
            "corrupt or truncated PNG image",
        ),
        (
            "zlib bomb in the pixels (4000x4000 of zeros)",
            grey_png(4000, 4000, zlib.compress(_rows(4000, 4000), 9)),
            "image/png",
            422,
            no_ink,
        ),
        (
            "zlib bomb in a zTXt chunk",
            grey_png(64, 64, idat, extra=png_chunk(b"zTXt", b"note\0\0" + bomb_text)),
            "image/png",
            422,
            "corrupt or truncated PNG image",
        ),
        (
            "BMP with an unknown header",
            b"BM" + bytes(12) + struct.pack("<I", 7) + bytes(40),
            "image/bmp",
            422,
            "corrupt image header",
        ),
        ("animated GIF, 3000 frames", _animated_gif(3000), "image/gif", 422, no_ink),
        ("16-bit grey PNG", png(digit_on_paper().astype(np.uint16) * 257), "image/png", 200, digit_on_paper()),
        ("CMYK JPEG", cmyk_jpeg, "image/jpeg", 200, _as_decoded(cmyk_jpeg)),
        ("palette PNG", encoded(Image.fromarray(digit_on_paper()).convert("P")), "image/png", 200, digit_on_paper()),
        ("EXIF-rotated JPEG", turned_jpeg, "image/jpeg", 200, _as_decoded(turned_jpeg)),
        ("JPEG declared as PNG", jpeg, "image/png", 200, _as_decoded(jpeg)),
        ("TIFF (not accepted)", tiff, "image/tiff", 415, "'image/tiff' not accepted"),
        ("TIFF declared as PNG", tiff, "image/png", 415, "accepted format"),
        ("SVG", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml", 415, "'image/svg+xml' not accepted"),
    ]
    return [Hostile(*case) for case in cases]
