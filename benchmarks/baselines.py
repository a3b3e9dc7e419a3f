"""The yardsticks the service is measured against, in the same framework and server.

- no-op endpoints that read the same request as each real endpoint and return a fixed body of the
  same size: the ceiling of what FastAPI on uvicorn can do with that traffic;
- the naive path: multipart -> PIL -> torch eager, one model call per request;
- a bare ASGI no-op under the same uvicorn (create_bare_app): it reads the body and answers a
  same-size response, the cost of Python and the HTTP server alone;
- the same bare app doing the unavoidable work of /encode on a raw PNG, /decode, /sample and
  /encode/batch (create_bare_work_app): the service's form parser, decoder, model calls, batcher
  and PNG writer, and nothing else, no framework, middleware, validation or logs;
- the bare app doing the work behind the service's own outermost middleware (create_bare_work_intake_app):
  with the request ids, log lines, metrics, limits and time limit the service keeps, and nothing else.
  What the work costs inside a request, where it runs slower than alone (benchmarks.essential).
Fixed bodies come from a JSON file named by VAE_BENCH_FIXTURES ({"encode": str, "png": base64}).
"""

import base64
import gc
import io
import json
import logging
import os
from urllib.parse import parse_qs

import numpy as np
import orjson
import torch
from fastapi import FastAPI, Request, Response
from PIL import Image

from service.core.admission import InFlight
from service.core.pictures import (
    Invert,
    Upload,
    grey_png_codes,
    intensities,
    model_inputs,
    open_image,
    png_bytes,
    training_form,
)
from service.core.served import Assessment, ServedModel
from service.core.verified import VerifiedModel
from service.http.middleware import Intake
from service.http.uploads import form_files
from service.settings import Settings
from training.config import VAEConfig
from training.model import VAE


def create_app() -> FastAPI:
    fixtures = json.loads(open(os.environ["VAE_BENCH_FIXTURES"]).read())
    encode_body = fixtures["encode"].encode()
    png_body = base64.b64decode(fixtures["png"])
    torch.set_num_threads(1)
    model = VAE(VAEConfig(**fixtures["vae"])).eval()
    app = FastAPI()

    @app.post("/noop/raw")
    async def noop_raw(request: Request) -> Response:
        await request.body()
        return Response(encode_body, media_type="application/json")

    @app.post("/noop/multipart")
    async def noop_multipart(request: Request) -> Response:
        form = await request.form(max_files=1000)
        for _, upload in form.multi_items():
            await upload.read()
        return Response(encode_body, media_type="application/json")

    @app.post("/noop/decode")
    async def noop_decode(request: Request) -> Response:
        await request.json()
        return Response(png_body, media_type="image/png")

    @app.get("/noop/sample")
    async def noop_sample() -> Response:
        return Response(png_body, media_type="image/png")

    @app.post("/naive/encode")
    async def naive_encode(request: Request) -> Response:
        form = await request.form()
        image = Image.open(io.BytesIO(await form["file"].read())).convert("L").resize((28, 28))
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).reshape(1, 784)
        with torch.no_grad():
            mu, logvar = model.encode(x)
        return Response(
            json.dumps({"mu": mu[0].tolist(), "sigma": torch.exp(0.5 * logvar)[0].tolist()}),
            media_type="application/json",
        )

    return app


def create_bare_app():
    """An ASGI app with no framework: read the body, answer as many bytes as the service would, the
    /decode and /sample PNG's under /png, the /encode response's under any other path."""
    fixtures = json.loads(open(os.environ["VAE_BENCH_FIXTURES"]).read())
    answers = {}
    for kind, body in (
        ("application/json", fixtures["encode"].encode()),
        ("image/png", base64.b64decode(fixtures["png"])),
    ):
        answers[kind] = body, [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        await _body(receive)
        body, headers = answers["image/png" if scope["path"] == "/png" else "application/json"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def create_bare_work_app():
    """The bare app doing the unavoidable work of the service's requests, as the service does it, for
    the model in VAE_MODEL_DIR: /encode's answer to a raw PNG under POST /, /decode's PNG for one
    latent vector under POST /decode, /sample's PNG of one seeded draw under GET /sample, and
    /encode/batch's answer to a form of 28x28 grey PNGs under POST /batch."""
    settings = Settings()
    model = VerifiedModel.load(settings.model_dir, threads=settings.ort_threads)
    inference = ServedModel("bare", model, settings.max_batch, settings.batch_wait_ms / 1000)

    def encoding(assessed: Assessment, index: int) -> dict:
        novelty = assessed.novelty
        return {
            "mu": assessed.mu[index],
            "sigma": assessed.sigma[index],
            "novelty": {"elbo": float(novelty.elbo[index]), "percentile": float(novelty.percentile[index])},
        }

    async def encode(body: bytes) -> tuple[bytes, bytes]:
        images = (
            await model_inputs([Upload(None, body)], Invert.auto, model.recipe, settings.max_pixels, None, False)
        ).images
        answer = {"model_id": model.id, **encoding(await inference.assess(images), 0)}
        return b"application/json", orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)

    async def encode_batch(body: bytes, content_type: str) -> tuple[bytes, bytes]:
        uploads = form_files(body, content_type, settings.max_batch)
        codes = [grey_png_codes(open_image(upload.data, settings.max_pixels)) for upload in uploads]
        pictures = intensities(np.stack(codes))
        training_form(pictures, np.ones(len(codes), bool), Invert.auto, model.recipe)
        assessed = await inference.assess(pictures[:, None])
        items = [{"filename": upload.filename, **encoding(assessed, index)} for index, upload in enumerate(uploads)]
        answer = {"model_id": model.id, "items": items}
        return b"application/json", orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)

    async def decoded(z: np.ndarray) -> tuple[bytes, bytes]:
        (images,) = await inference.decode(z)
        return b"image/png", png_bytes(images[0, 0])

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        path, body = scope["path"], await _body(receive)
        if scope["method"] == "POST" and path == "/":
            kind, answer = await encode(body)
        elif scope["method"] == "POST" and path == "/batch":
            kind, answer = await encode_batch(body, dict(scope["headers"])[b"content-type"].decode())
        elif scope["method"] == "POST" and path == "/decode":
            kind, answer = await decoded(np.asarray(orjson.loads(body)["z"], np.float32).reshape(1, -1))
        elif scope["method"] == "GET" and path == "/sample":
            seed = int(parse_qs(scope["query_string"].decode())["seed"][0])
            kind, answer = await decoded(
                np.random.default_rng(seed).standard_normal((1, model.latent_size), dtype=np.float32)
            )
        else:  # the harness's readiness probe
            kind, answer = b"text/plain", b""
        headers = [(b"content-type", kind), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200 if answer else 404, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    # As the service's start-up does: without it, the collector's full passes over the loaded
    # libraries' objects were the longest pauses under load.
    gc.collect()
    gc.freeze()
    return app


def create_bare_work_intake_app():
    """The bare work app behind service.http.middleware.Intake, writing its request log lines to stderr."""
    logging.getLogger("service").setLevel(logging.INFO)
    settings = Settings()
    return Intake(create_bare_work_app(), settings, lambda scope: scope["path"], InFlight(settings.max_in_flight))


async def _lifespan(receive, send) -> None:
    while (message := await receive())["type"] != "lifespan.shutdown":
        await send({"type": message["type"] + ".complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)
