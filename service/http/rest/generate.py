"""POST /decode, /sample and /interpolate: latent vectors -> images, as PNG or JSON."""

from functools import partial
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from starlette.responses import Response

from service.core.pictures import Invert
from service.core.served import MAX_SEED, Path
from service.http.problems import Problem
from service.http.responses import (
    IMAGE_ERRORS,
    UPSCALE,
    DecodeResponse,
    InterpolateResponse,
    SampleResponse,
    check_upscale,
    image_responses,
    images_response,
)
from service.http.routing import Call, Images, JSONBody, JSONOrImages, Route

TAGS = ("generate",)
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _as_rows(value: object) -> object:
    """A single latent vector is a batch of one."""
    if isinstance(value, list) and value and not isinstance(value[0], list):
        return [value]
    return value


_VECTOR = {"type": "array", "items": {"type": "number"}, "minItems": 1}
Z_SCHEMA = WithJsonSchema({"anyOf": [_VECTOR, {"type": "array", "items": _VECTOR, "minItems": 1}]})


class DecodeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upscale: int = UPSCALE


class DecodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    z: Annotated[list[list[Coordinate]], BeforeValidator(_as_rows), Z_SCHEMA] = Field(
        description="One latent vector of the model's latent size, or a list of them.",
        examples=[[0.5, -1.0], [[0.0, 0.0], [1.5, 0.5]]],
    )
    upscale: int = UPSCALE


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


async def decode(call: Call) -> Response:
    """z -> the decoder's pixel means f(z), as a PNG by default. `upscale` may come in the query
    string or in the body, not both."""
    check_upscale(call.params.upscale, call.engine.settings.max_upscale)
    z, images = await call.model.decoded(call.params.z)
    return images_response(call.request, z, images, call.params.upscale, {"model_id": call.model.model.id})


async def sample(call: Call) -> Response:
    """n draws z ~ N(0, temperature^2 I), decoded. The seed used is returned in X-Seed (and in JSON).
    Each parameter may come in the query string or in the JSON body, not both."""
    params: SampleRequest = call.params
    settings = call.engine.settings
    check_upscale(params.upscale, settings.max_upscale)
    draw = await call.model.sampled(params.n, params.seed, params.temperature, settings.max_samples)
    body = {"model_id": call.model.model.id, "seed": draw.seed, "temperature": params.temperature}
    return images_response(call.request, draw.z, draw.images, params.upscale, body, {"X-Seed": str(draw.seed)})


async def sample_get(call: Call) -> Response:
    """As POST /sample, with the parameters in the query string, for a browser or an <img> tag."""
    if await call.request.body():
        raise Problem(422, "GET /sample reads its parameters from the query string; to send JSON, use POST /sample")
    return await sample(call)


class WalkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(8, ge=2, description="Images along the path, both ends included (at most VAE_MAX_BATCH).")
    path: Path = Field(
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


async def interpolate(call: Call) -> Response:
    """Between `start` and `end` (a JSON body), or between the posterior means of two pictures (a
    multipart form of two files, parameters in the query string): `steps` decoded images, as a PNG
    strip by default."""
    params, served = call.params, call.model
    check_upscale(params.upscale, call.engine.settings.max_upscale)
    served.check_steps(params.steps)
    if call.uploads is None:
        start, end = params.start, params.end
    else:
        if len(call.uploads) != 2:
            raise Problem(422, "one picture sent; send two files, the start and the end")
        images = await call.engine.model_inputs(served, call.uploads, params.invert, named=True)
        (start, end), _ = await served.encode(images)
    z, images = await served.walked(start, end, params.steps, params.path)
    body = {"model_id": served.model.id, "path": params.path}
    return images_response(call.request, z, images, params.upscale, body, columns=params.steps)


# Each of them serves one model: the default one, or the one /models/{model}/... names.
generation = partial(Route, tags=TAGS, serves_model=True, per_model=True)
ROUTES = [
    generation(
        ("POST",), "/decode", decode, "Decode latent vectors to images",
        query=DecodeParams, body=JSONBody(DecodeRequest), responses=image_responses(DecodeResponse),
    ),
    generation(
        ("POST",), "/sample", sample, "Draw images from the prior",
        query=SampleRequest, body=JSONBody(SampleRequest, optional=True), responses=image_responses(SampleResponse),
    ),
    generation(
        ("GET",), "/sample", sample_get, "Draw images from the prior (query parameters)",
        query=SampleRequest, responses=image_responses(SampleResponse),
    ),
    generation(
        ("POST",), "/interpolate", interpolate, "Images along a path between two latent vectors or two pictures",
        query=PicturesWalkParams,
        body=JSONOrImages(JSONBody(InterpolateRequest), Images(max_files=2)),
        responses=image_responses(InterpolateResponse, IMAGE_ERRORS),
    ),
]  # fmt: skip
