"""Each limit of a request's content at exactly the limit, which is served in full, and one past it,
which is a 422 that names the limit: images per request, latent vectors, draws, upscale, pixels.
(The body's bytes and the requests in flight are tried at their edges in test_limits.py.)"""

import struct
import zlib

import numpy as np
import pytest

from harness.bodies import MULTIPART_TYPE, multipart, png
from service.settings import Settings
from tests.conftest import SAMPLE_DATA
from tests.service.conftest import served_by
from training.data import load_dataset

LIMITS = Settings(max_batch=4, max_samples=5, max_upscale=3, max_pixels=10_000)
DIGITS = load_dataset(SAMPLE_DATA).test.images
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def client():
    with served_by(LIMITS) as served:
        yield served


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, read without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def page(height: int, width: int) -> bytes:
    """A digit, white ink on black, on a page of height x width pixels."""
    pixels = np.zeros((height, width), np.uint8)
    pixels[height // 2 - 14 : height // 2 + 14, width // 2 - 14 : width // 2 + 14] = DIGITS[0]
    return png(pixels)


def test_images_per_request_up_to_the_limit(client):
    files = [png(digit) for digit in DIGITS[: LIMITS.max_batch + 1]]
    answer = client.post("/encode/batch", content=multipart(files[:-1]), headers={"Content-Type": MULTIPART_TYPE})
    assert answer.status_code == 200 and len(answer.json()["items"]) == LIMITS.max_batch
    over = client.post("/encode/batch", content=multipart(files), headers={"Content-Type": MULTIPART_TYPE})
    assert over.status_code == 422
    assert over.json()["detail"] == f"too many files; the limit is {LIMITS.max_batch}: send at most 4 images"


def test_latent_vectors_per_request_up_to_the_limit(client):
    answer = client.post("/decode", json={"z": [[0.1, -0.2]] * LIMITS.max_batch}, headers=JSON)
    assert answer.status_code == 200 and len(answer.json()["images"]) == LIMITS.max_batch
    over = client.post("/decode", json={"z": [[0.1, -0.2]] * (LIMITS.max_batch + 1)})
    assert over.status_code == 422
    assert over.json()["detail"] == "5 latent vectors in one request; the limit is 4"


def test_draws_up_to_the_limit(client):
    answer = client.post("/sample", json={"n": LIMITS.max_samples, "seed": 1}, headers=JSON)
    assert answer.status_code == 200 and len(answer.json()["images"]) == LIMITS.max_samples
    over = client.post("/sample", json={"n": LIMITS.max_samples + 1})
    assert over.status_code == 422 and over.json()["detail"] == "n=6 is over the limit of 5"


def test_upscale_up_to_the_limit(client):
    answer = client.post(f"/decode?upscale={LIMITS.max_upscale}", json={"z": [0.1, -0.2]})
    assert answer.status_code == 200 and png_size(answer.content) == (28 * 3, 28 * 3)
    over = client.post(f"/decode?upscale={LIMITS.max_upscale + 1}", json={"z": [0.1, -0.2]})
    assert over.status_code == 422 and over.json()["detail"] == "upscale 4 is over the limit of 3"


def test_pixels_up_to_the_limit(client):
    at_limit = client.post("/encode", content=page(100, 100), headers={"Content-Type": "image/png"})
    under = client.post("/encode", content=page(90, 90), headers={"Content-Type": "image/png"})
    assert at_limit.status_code == 200
    # the recipe frames the digit by its ink: on either page, the same input to the model
    np.testing.assert_allclose(at_limit.json()["mu"], under.json()["mu"], atol=1e-3)
    over = client.post("/encode", content=page(101, 100), headers={"Content-Type": "image/png"})
    assert over.status_code == 422
    assert over.json()["detail"] == "image has 100x101 pixels; the limit is 10000 in all"


def test_the_pixel_limit_is_read_from_the_header_before_any_decoding(client):
    """A PNG that claims 50,000 x 50,000 pixels over a few bytes of data is refused by its size."""
    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    answer = client.post("/encode", content=data, headers={"Content-Type": "image/png"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == "image has 50000x50000 pixels; the limit is 10000 in all"
