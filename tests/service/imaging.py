"""Building test pictures in memory."""

import struct
import zlib

import numpy as np


def digit_on_paper(width: int = 300, height: int = 200) -> np.ndarray:
    """A dark bar-shaped 'digit' off-centre on light paper: what a phone photo of a '1' looks like."""
    paper = np.full((height, width), 230, np.uint8)
    paper[40:160, 200:230] = 20
    return paper


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def grey_png(width: int, height: int, idat: bytes, extra: bytes = b"", end: bool = True) -> bytes:
    """A hand-built 8-bit grey PNG: the header says width x height, whatever the IDAT holds."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    tail = png_chunk(b"IEND", b"") if end else b""
    return b"\x89PNG\r\n\x1a\n" + header + extra + png_chunk(b"IDAT", idat) + tail


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, followed by a tiny IDAT and IEND."""
    return grey_png(width, height, zlib.compress(b"\0" * 10))
