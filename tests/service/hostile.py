"""A corpus of hostile and odd uploads, each with the status the service must answer."""

import io
import os
import zlib

import numpy as np
from PIL import Image

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


def corpus() -> list[tuple[str, bytes, str, int]]:
    """(name, body, declared content type, expected status)."""
    good = png(digit_on_paper())
    idat = zlib.compress(_rows(64, 64, 200))
    bomb_text = zlib.compress(b"\0" * 50_000_000, 9)  # 50 MB of text in ~50 kB
    return [
        ("empty body", b"", "image/png", 422),
        ("random bytes", os.urandom(4096), "image/png", 415),
        ("PNG with a bad signature", b"\x89PNX" + good[4:], "image/png", 415),
        # Pillow checks no IDAT CRC, and the pixels themselves are intact: a valid picture, but a blank
        # one, which has no digit to encode (422 "no ink"), as for the other blank pictures below.
        (
            "PNG with a bad CRC",
            grey_png(64, 64, idat)[:33] + png_chunk(b"IDAT", idat, crc=0) + png_chunk(b"IEND", b""),
            "image/png",
            422,
        ),
        ("PNG with a truncated IDAT", grey_png(64, 64, idat[: len(idat) // 2]), "image/png", 422),
        ("PNG without IEND", grey_png(64, 64, idat, end=False), "image/png", 422),
        ("header claiming 100000x100000", png_with_header(100_000, 100_000), "image/png", 422),
        (
            "zlib bomb in the pixels (4000x4000 of zeros)",
            grey_png(4000, 4000, zlib.compress(_rows(4000, 4000), 9)),
            "image/png",
            422,
        ),
        (
            "zlib bomb in a zTXt chunk",
            grey_png(64, 64, idat, extra=png_chunk(b"zTXt", b"note\0\0" + bomb_text)),
            "image/png",
            422,
        ),
        ("animated GIF, 3000 frames", _animated_gif(3000), "image/gif", 422),
        ("16-bit grey PNG", png(digit_on_paper().astype(np.uint16) * 257), "image/png", 200),
        ("CMYK JPEG", encoded(Image.fromarray(digit_on_paper()).convert("CMYK"), "JPEG"), "image/jpeg", 200),
        ("palette PNG", encoded(Image.fromarray(digit_on_paper()).convert("P")), "image/png", 200),
        ("EXIF-rotated JPEG", _exif_rotated_jpeg(), "image/jpeg", 200),
        ("JPEG declared as PNG", encoded(Image.fromarray(digit_on_paper()), "JPEG"), "image/png", 200),
        ("TIFF (not accepted)", encoded(Image.fromarray(digit_on_paper()), "TIFF"), "image/tiff", 415),
        ("TIFF declared as PNG", encoded(Image.fromarray(digit_on_paper()), "TIFF"), "image/png", 415),
        ("SVG", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml", 415),
    ]
