"""Response bodies shared by the routes: JSON via orjson, images as PNG, the documented errors."""

import base64

import numpy as np
import orjson
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from contract.mosaic import grid
from service.core.pictures import png_bytes
from service.http.problems import PROBLEM_MEDIA_TYPE, Problem

PNG = "image/png"


class JSONResponse(Response):
    """orjson, with numpy arrays serialised natively."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


PROBLEM_REFERENCE = {"$ref": "#/components/schemas/ProblemDetails"}  # defined once, by service.docs


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REFERENCE}}}


ERRORS = {
    404: _problem("No model of that name is served; `detail` lists the names there are."),
    413: _problem("Request body over the size limit (VAE_MAX_BODY_BYTES)."),
    422: _problem("The request is well-formed but unusable; `detail` says what to fix."),
    503: _problem("The model is not loaded yet, or the service is at capacity; see Retry-After."),
}
IMAGE_ERRORS = {
    **ERRORS,
    415: _problem("The body is not an image in an accepted format (PNG, JPEG, GIF, BMP, WebP)."),
}


class DecodedImage(BaseModel):
    z: list[float] = Field(description="The latent vector decoded.", examples=[[0.0, 0.0]])
    pixels: list[list[float]] = Field(description="28x28 pixel means f(z) in [0, 1], white on black, row by row.")
    png_base64: str = Field(description="The same image as a PNG (upscaled as asked), base64-encoded.")


class DecodeResponse(BaseModel):
    model_id: str = Field(examples=["mnist-k2-gaussian-8bbbf6d57483"])
    images: list[DecodedImage] = Field(description="One per latent vector, in order.")


class ModelInput(BaseModel):
    pixels: list[list[float]] = Field(description="28x28 intensities in [0, 1], white on black, row by row.")
    png_base64: str = Field(description="The same 28x28 as a PNG, base64-encoded.")


class NoveltyScore(BaseModel):
    elbo: float = Field(
        description="The model's evidence for the input in nats: the ELBO at the posterior mean, "
        "log P(x | z = mu) - KL(Q(Z|x) || N(0, I)). Higher is more like the training data.",
        examples=[182.4],
    )
    percentile: float = Field(
        description="Share of the model's test images (in percent) with a lower novelty score: near 0 "
        "means unlike anything the model was tested on. The score is the ELBO, lowered by the model's "
        "outlier head when it has one (it tells printed letters from digits). README: the suggested "
        "threshold.",
        examples=[41.5],
    )


class ReconstructResponse(DecodeResponse):
    mu: list[float] = Field(description="Mean of Q(Z|x): the z decoded.", examples=[[0.41, -1.27]])
    sigma: list[float] = Field(description="Standard deviation of Q(Z|x).", examples=[[0.06, 0.09]])
    novelty: NoveltyScore
    model_input: ModelInput | None = Field(None, description="With ?model_input=true: what the model saw.")


class InterpolateResponse(DecodeResponse):
    path: str = Field(description="straight or spherical.", examples=["spherical"])


class SampleResponse(DecodeResponse):
    seed: int = Field(description="The seed drawn with; send it again for the same images.", examples=[42])
    temperature: float = Field(examples=[1.0])


def _referencing(model: type[BaseModel]) -> dict:
    """The model's schema with its nested models as references (service.docs defines them once)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def image_responses(json_model: type[BaseModel], errors: dict = ERRORS) -> dict:
    """A PNG by default, or JSON for Accept: application/json, and the documented errors."""
    return {
        200: {
            "description": "A PNG (a grid, row-major, for several images), or JSON for Accept: application/json.",
            "content": {
                PNG: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": json_model.model_json_schema(ref_template="#/components/schemas/{model}")
                },
            },
        },
        **errors,
    }


UPSCALE = Field(1, ge=1, description="Each output pixel becomes an upscale x upscale block.")


def check_upscale(upscale: int, limit: int) -> None:
    if upscale > limit:
        raise Problem(422, f"upscale {upscale} is over the limit of {limit}")


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def images_response(
    request: Request,
    z: np.ndarray,
    images: np.ndarray,
    upscale: int,
    body: dict,
    headers: dict[str, str] | None = None,
    columns: int | None = None,
) -> Response:
    """A PNG (one image, or a grid of several, as square as the count allows unless columns says)
    or, for Accept: application/json, every z with its pixel means and its PNG in base64."""
    if not wants_json(request):
        mosaic = images[0, 0] if len(images) == 1 else grid(images, columns)
        return Response(png_bytes(mosaic, upscale), media_type=PNG, headers=headers)
    items = [
        {"z": latent, "pixels": image[0], "png_base64": base64.b64encode(png_bytes(image[0], upscale)).decode()}
        for latent, image in zip(z, images, strict=True)
    ]
    return JSONResponse({**body, "images": items}, headers=headers)
