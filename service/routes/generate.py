"""POST /decode, /sample and /interpolate: latent vectors -> images, as PNG or JSON."""

import secrets
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from service.deps import serving
from service.errors import Problem
from service.images import Invert
from service.inference import Inference
from service.params import from_query, from_query_and_json, json_body_docs, query_docs
from service.responses import (
    IMAGE_ERRORS,
    UPSCALE,
    DecodeResponse,
    InterpolateResponse,
    SampleResponse,
    check_upscale,
    image_responses,
    images_response,
)
from service.uploads import image_request_body, model_inputs, read_images

router = APIRouter(tags=["generate"])

Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _as_rows(value: object) -> object:
    """A single latent vector is a batch of one."""
    if isinstance(value, list) and value and not isinstance(value[0], list):
        return [value]
    return value


_VECTOR = {"type": "array", "items": {"type": "number"}, "minItems": 1}
Z_SCHEMA = WithJsonSchema({"anyOf": [_VECTOR, {"type": "array", "items": _VECTOR, "minItems": 1}]})


class DecodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    z: Annotated[list[list[Coordinate]], BeforeValidator(_as_rows), Z_SCHEMA] = Field(
        description="One latent vector of the model's latent size, or a list of them.",
        examples=[[0.5, -1.0], [[0.0, 0.0], [1.5, 0.5]]],
    )
    upscale: int = UPSCALE


Z_IN_BODY = frozenset({"z"})
# Seeds stay integers that JavaScript's numbers hold exactly, so that a browser can replay them.
MAX_SEED = 2**53 - 1


class SampleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1, description="How many draws (at most VAE_MAX_SAMPLES).")
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Same seed, same images; random if absent. At most 2^53 - 1."
    )
    temperature: float = Field(
        1.0, gt=0, le=10, allow_inf_nan=False, description="Scale of the prior's standard deviation."
    )
    upscale: int = UPSCALE


async def _render(
    request: Request,
    inference: Inference,
    z: np.ndarray,
    upscale: int,
    body: dict,
    headers: dict[str, str] | None = None,
    columns: int | None = None,
) -> Response:
    (images,) = await inference.decode(z)
    return images_response(request, z, images, upscale, {"model_id": inference.model.id, **body}, headers, columns)


@router.post(
    "/decode",
    responses=image_responses(DecodeResponse),
    openapi_extra=json_body_docs(DecodeRequest) | query_docs(DecodeRequest, body_only=Z_IN_BODY),
    summary="Decode latent vectors to images",
)
async def decode(request: Request) -> Response:
    """z -> the decoder's pixel means f(z), as a PNG by default. `upscale` may come in the query
    string or in the body, not both."""
    settings, inference, _ = serving(request)
    params = await from_query_and_json(DecodeRequest, request, body_only=Z_IN_BODY)
    upscale, rows = params.upscale, params.z
    check_upscale(upscale, settings.max_upscale)
    if not rows:
        raise Problem(422, "z is empty; send one latent vector or a list of them")
    if len(rows) > settings.max_batch:
        raise Problem(422, f"{len(rows)} latent vectors in one request; the limit is {settings.max_batch}")
    latent = inference.model.latent_size
    for index, row in enumerate(rows):
        if len(row) != latent:
            raise Problem(422, f"z[{index}] has {len(row)} values; this model's latent size is {latent}")
    return await _render(request, inference, np.asarray(rows, dtype=np.float32), upscale, {})


async def _sample(request: Request, params: SampleRequest) -> Response:
    settings, inference, _ = serving(request)
    if params.n > settings.max_samples:
        raise Problem(422, f"n={params.n} is over the limit of {settings.max_samples}")
    check_upscale(params.upscale, settings.max_upscale)
    seed = secrets.randbelow(MAX_SEED + 1) if params.seed is None else params.seed
    z = np.random.default_rng(seed).standard_normal((params.n, inference.model.latent_size), dtype=np.float32)
    z *= np.float32(params.temperature)
    return await _render(
        request, inference, z, params.upscale, {"seed": seed, "temperature": params.temperature}, {"X-Seed": str(seed)}
    )


@router.post(
    "/sample",
    responses=image_responses(SampleResponse),
    openapi_extra=json_body_docs(SampleRequest, optional=True) | query_docs(SampleRequest),
    summary="Draw images from the prior",
)
async def sample(request: Request) -> Response:
    """n draws z ~ N(0, temperature^2 I), decoded. The seed used is returned in X-Seed (and in JSON).
    Each parameter may come in the query string or in the JSON body, not both."""
    return await _sample(request, await from_query_and_json(SampleRequest, request, optional=True))


@router.get(
    "/sample",
    responses=image_responses(SampleResponse),
    openapi_extra=query_docs(SampleRequest),
    summary="Draw images from the prior (query parameters)",
)
async def sample_get(request: Request) -> Response:
    """As POST /sample, with the parameters in the query string, for a browser or an <img> tag."""
    if await request.body():
        raise Problem(422, "GET /sample reads its parameters from the query string; to send JSON, use POST /sample")
    return await _sample(request, from_query(SampleRequest, request))


class WalkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(8, ge=2, description="Images along the path, both ends included (at most VAE_MAX_BATCH).")
    path: Literal["straight", "spherical"] = Field(
        "spherical",
        description="straight: evenly spaced on the segment; spherical: along the great circle, which keeps "
        "the points as far from the origin as a prior draw would be.",
    )
    upscale: int = UPSCALE


class InterpolateRequest(WalkParams):
    start: list[Coordinate] = Field(description="The first latent vector.", examples=[[-1.5, 0.0]])
    end: list[Coordinate] = Field(description="The last latent vector.", examples=[[1.5, 0.5]])


class PicturesWalkParams(WalkParams):
    invert: Invert = Field(Invert.auto, description="As for /encode.")


ENDS_IN_BODY = frozenset({"start", "end"})


def walk(start: np.ndarray, end: np.ndarray, steps: int, path: str) -> np.ndarray:
    """(K,), (K,) -> (steps, K) points from start to end."""
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    norms = np.linalg.norm(start) * np.linalg.norm(end)
    angle = np.arccos(np.clip(start @ end / norms, -1, 1)) if norms > 0 else 0.0
    if path == "straight" or np.sin(angle) < 1e-6:  # parallel or zero ends: no great circle to follow
        return (1 - t) * start + t * end
    return (np.sin((1 - t) * angle) * start + np.sin(t * angle) * end) / np.sin(angle)


@router.post(
    "/interpolate",
    responses=image_responses(InterpolateResponse, IMAGE_ERRORS),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": InterpolateRequest.model_json_schema()},
                **image_request_body(True)["requestBody"]["content"],
            },
        }
    }
    | query_docs(PicturesWalkParams),
    summary="Images along a path between two latent vectors or two pictures",
)
async def interpolate(request: Request) -> Response:
    """Between `start` and `end` (a JSON body), or between the posterior means of two pictures (a
    multipart form of two files, parameters in the query string): `steps` decoded images, as a PNG
    strip by default."""
    serving_now = serving(request)
    settings, inference, _ = serving_now
    pictures = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
    if pictures:
        params = from_query(PicturesWalkParams, request)
    else:
        params = await from_query_and_json(InterpolateRequest, request, body_only=ENDS_IN_BODY)
    check_upscale(params.upscale, settings.max_upscale)
    if params.steps > settings.max_batch:
        raise Problem(422, f"steps={params.steps} is over the limit of {settings.max_batch}")
    if pictures:
        uploads = await read_images(request, max_files=2)
        if len(uploads) != 2:
            raise Problem(422, "one picture sent; send two files, the start and the end")
        mu, _ = await inference.encode(await model_inputs(serving_now, uploads, params.invert, batch=True))
        start, end = mu
    else:
        latent = inference.model.latent_size
        for name, value in (("start", params.start), ("end", params.end)):
            if len(value) != latent:
                raise Problem(422, f"{name} has {len(value)} values; this model's latent size is {latent}")
        start, end = np.asarray(params.start, np.float32), np.asarray(params.end, np.float32)
    z = walk(start, end, params.steps, params.path).astype(np.float32)
    return await _render(request, inference, z, params.upscale, {"path": params.path}, columns=params.steps)
