"""The work no implementation of an endpoint can skip, timed in process with the service's libraries
(libspng, Pillow, onnxruntime, numpy): decoding the uploaded PNG, the model calls (for /encode the encoder and,
for the novelty score it returns by default, the decoder and the score), encoding the output PNG, the
prior draw.

With the bare ASGI no-op's CPU per request, it gives the performance issue's budget: what the service
may spend on everything else (validation, batching, the response, logs, metrics, limits).
Timed alone, these costs come out lower than inside a request, where the request path and the model
evict each other from the caches: the budgets are generous.
"""

import statistics
import timeit
from functools import partial
from pathlib import Path

import numpy as np
import pyspng

from contract.geometry import IMAGE_SHAPE
from service.core.pictures import png_bytes
from service.core.verified import VerifiedModel

# What the model calls cost per request: at one connection alone, at eight or more shared by up to eight.
BATCH_AT_CONNECTIONS = {1: 1, 8: 8, 64: 8}
BATCH64 = 64


def _microseconds(call) -> float:
    """One call's time: the median of 5 repeats of as many calls as take 0.2 s."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return statistics.median(timer.repeat(repeat=5, number=number)) / number * 1e6


def essential_work_us(model_dir: Path, digit: bytes) -> dict[str, dict[int, float]]:
    """For each endpoint and connection count: microseconds of unavoidable work per request."""
    model = VerifiedModel.load(model_dir, threads=1)
    images = [np.zeros((rows, *IMAGE_SHAPE), np.float32) for rows in (1, 8)]
    latents = [np.zeros((rows, model.latent_size), np.float32) for rows in (1, 8)]
    output = model.decode(latents[0])[0, 0]

    png_decode = _microseconds(partial(pyspng.load, digit))  # as the service decodes a grey PNG
    png_encode = _microseconds(partial(png_bytes, output))
    prior_draw = _microseconds(lambda: np.random.default_rng(1).standard_normal((1, model.latent_size), np.float32))
    encoder = {len(batch): _microseconds(partial(model.encode, batch)) / len(batch) for batch in images}
    # /encode returns the novelty score by default: its decoder call and arithmetic are part of the work
    assessment = {len(batch): _microseconds(partial(model.assess, batch)) / len(batch) for batch in images}
    decoder = {len(batch): _microseconds(partial(model.decode, batch)) / len(batch) for batch in latents}

    def per_connections(cost) -> dict[int, float]:
        return {conns: round(cost(batch), 1) for conns, batch in BATCH_AT_CONNECTIONS.items()}

    encoding = per_connections(lambda batch: png_decode + assessment[batch])  # the same for either body
    batch = batch64_work_us(model, digit)
    return {
        "encode_raw": encoding,
        "encode_multipart": encoding,
        "decode": per_connections(lambda batch: decoder[batch] + png_encode),
        "sample": per_connections(lambda batch: prior_draw + decoder[batch] + png_encode),
        "encode_batch64": per_connections(lambda _: batch),
        "novelty_score": per_connections(lambda batch: assessment[batch] - encoder[batch]),
    }


def batch64_work_us(model: VerifiedModel, digit: bytes) -> float:
    """The unavoidable work of an /encode/batch of 64 copies of the digit: 64 decodes, one model call."""
    images = np.zeros((BATCH64, *IMAGE_SHAPE), np.float32)
    return BATCH64 * _microseconds(partial(pyspng.load, digit)) + _microseconds(partial(model.assess, images))
