"""POST /encode, /encode/batch and /reconstruct: images -> the parameters of Q(Z|x), and back."""

import base64

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from service.deps import serving as serving_of
from service.images import Invert, png_bytes
from service.inference import Assessment
from service.model import VAEModel
from service.params import from_query, query_docs
from service.responses import (
    IMAGE_ERRORS,
    UPSCALE,
    JSONResponse,
    ModelInput,
    NoveltyScore,
    ReconstructResponse,
    check_upscale,
    image_responses,
    images_response,
)
from service.uploads import Upload, image_request_body, model_inputs, read_images

router = APIRouter(tags=["encode"])


class EncodeParams(BaseModel):
    invert: Invert = Field(
        Invert.auto,
        description="Invert dark-on-light pictures: auto (when the ink is darker than the paper), yes or no.",
    )
    model_input: bool = Field(
        False,
        description="Also return the 28x28 the model saw (pixels and PNG), to see why a picture landed where it did.",
    )


class Encoding(BaseModel):
    mu: list[float] = Field(description="Mean of Q(Z|x).", examples=[[0.41, -1.27]])
    sigma: list[float] = Field(
        description="Standard deviation of Q(Z|x) (not the variance or its log).", examples=[[0.06, 0.09]]
    )
    novelty: NoveltyScore
    model_input: ModelInput | None = Field(None, description="With ?model_input=true: what the model saw.")


class EncodeResponse(Encoding):
    model_id: str = Field(examples=["mnist-k2-gaussian-3f9a1c0b2d4e"])
    latent_size: int = Field(examples=[2])


class BatchItem(Encoding):
    filename: str | None


class BatchEncoding(BaseModel):
    model_id: str
    latent_size: int
    items: list[BatchItem] = Field(description="One per uploaded file, in upload order.")


def _rounded(values: np.ndarray) -> list[float]:
    return [round(value, 2) for value in values.tolist()]


def _encodings(images: np.ndarray, assessed: Assessment, with_input: bool) -> list[dict]:
    novelty = zip(_rounded(assessed.novelty.elbo), _rounded(assessed.novelty.percentile), strict=True)
    items = []
    for index, (m, s, (elbo, percentile)) in enumerate(zip(assessed.mu, assessed.sigma, novelty, strict=True)):
        item = {"mu": m, "sigma": s, "novelty": {"elbo": elbo, "percentile": percentile}}
        if with_input:
            pixels = images[index, 0]
            item["model_input"] = {"pixels": pixels, "png_base64": base64.b64encode(png_bytes(pixels)).decode()}
        items.append(item)
    return items


async def _encode_uploads(request: Request, batch: bool) -> tuple[VAEModel, list[Upload], list[dict]]:
    """The request's images, and what one model call says of each."""
    serving = serving_of(request)
    params = from_query(EncodeParams, request)
    uploads = await read_images(request, max_files=serving.settings.max_batch if batch else 1)
    images = await model_inputs(serving, uploads, params.invert, batch)
    assessed = await serving.inference.assess(images)
    return serving.inference.model, uploads, _encodings(images, assessed, params.model_input)


@router.post(
    "/encode",
    response_model=EncodeResponse,
    responses=IMAGE_ERRORS,
    openapi_extra=image_request_body(False) | query_docs(EncodeParams),
    summary="Encode one image",
)
async def encode(request: Request) -> JSONResponse:
    """One image, as the raw body (`curl --data-binary @digit.png -H 'Content-Type: image/png'`) or
    as a multipart file: -> mu and sigma of Q(Z|x). PNG, JPEG, GIF, BMP or WebP, any size, colour or grey."""
    model, _, (encoding,) = await _encode_uploads(request, batch=False)
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, **encoding})


@router.post(
    "/encode/batch",
    response_model=BatchEncoding,
    responses=IMAGE_ERRORS,
    openapi_extra=image_request_body(True) | query_docs(EncodeParams),
    summary="Encode several images in one model call",
)
async def encode_batch(request: Request) -> JSONResponse:
    """Up to VAE_MAX_BATCH images as the files of one multipart form -> one (mu, sigma) each."""
    model, uploads, encodings = await _encode_uploads(request, batch=True)
    items = [{"filename": upload.filename, **item} for upload, item in zip(uploads, encodings, strict=True)]
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, "items": items})


class ReconstructParams(EncodeParams):
    upscale: int = UPSCALE


@router.post(
    "/reconstruct",
    responses=image_responses(ReconstructResponse, IMAGE_ERRORS),
    openapi_extra=image_request_body(False) | query_docs(ReconstructParams),
    summary="Send an image through the encoder and the decoder",
)
async def reconstruct(request: Request) -> Response:
    """One image, as for /encode -> f(mu), the decoder's pixel means at the posterior mean, as a PNG
    by default; with Accept: application/json, also mu, sigma, the novelty score and the 28x28 the
    model saw (with ?model_input=true)."""
    serving = serving_of(request)
    params = from_query(ReconstructParams, request)
    check_upscale(params.upscale, serving.settings.max_upscale)
    uploads = await read_images(request, max_files=1)
    images = await model_inputs(serving, uploads, params.invert, batch=False)
    assessed = await serving.inference.assess(images)
    (encoding,) = _encodings(images, assessed, params.model_input)
    body = {"model_id": serving.inference.model.id, **encoding}
    return images_response(request, assessed.mu, assessed.reconstruction, params.upscale, body)
