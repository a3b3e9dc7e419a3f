"""POST /encode and /encode/batch: images -> the parameters of Q(Z|x)."""

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service.deps import serving
from service.images import Invert, to_model_input
from service.model import VAEModel
from service.params import from_query, query_docs
from service.responses import IMAGE_ERRORS, JSONResponse
from service.uploads import Upload, image_request_body, read_images

router = APIRouter(tags=["encode"])


class EncodeParams(BaseModel):
    invert: Invert = Field(
        Invert.auto, description="Invert dark-on-light pictures: auto (by the border's brightness), yes or no."
    )


class Encoding(BaseModel):
    model_id: str = Field(examples=["mnist-k2-bernoulli-3f9a1c0b2d4e"])
    latent_size: int = Field(examples=[2])
    mu: list[float] = Field(description="Mean of Q(Z|x).", examples=[[0.41, -1.27]])
    sigma: list[float] = Field(
        description="Standard deviation of Q(Z|x) (not the variance or its log).", examples=[[0.06, 0.09]]
    )


class BatchItem(BaseModel):
    filename: str | None
    mu: list[float]
    sigma: list[float]


class BatchEncoding(BaseModel):
    model_id: str
    latent_size: int
    items: list[BatchItem] = Field(description="One per uploaded file, in upload order.")


async def _encode_uploads(request: Request, batch: bool) -> tuple[VAEModel, list[Upload], np.ndarray, np.ndarray]:
    """The request's images, and the mu and sigma of each from one model call."""
    settings, inference = serving(request)
    params = from_query(EncodeParams, request)
    uploads = await read_images(request, settings, max_files=settings.max_batch if batch else 1)
    model_input = np.stack([to_model_input(upload.data, params.invert, settings.max_pixels) for upload in uploads])
    mu, sigma = await inference.encode(model_input)
    return inference.model, uploads, mu, sigma


@router.post(
    "/encode",
    response_model=Encoding,
    responses=IMAGE_ERRORS,
    openapi_extra=image_request_body(False) | query_docs(EncodeParams),
    summary="Encode one image",
)
async def encode(request: Request) -> JSONResponse:
    """One image, as the raw body (`curl --data-binary @digit.png -H 'Content-Type: image/png'`) or
    as a multipart file: -> mu and sigma of Q(Z|x). PNG, JPEG, GIF, BMP or WebP, any size, colour or grey."""
    model, _, mu, sigma = await _encode_uploads(request, batch=False)
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, "mu": mu[0], "sigma": sigma[0]})


@router.post(
    "/encode/batch",
    response_model=BatchEncoding,
    responses=IMAGE_ERRORS,
    openapi_extra=image_request_body(True) | query_docs(EncodeParams),
    summary="Encode several images in one model call",
)
async def encode_batch(request: Request) -> JSONResponse:
    """Up to VAE_MAX_BATCH images as the files of one multipart form -> one (mu, sigma) each."""
    model, uploads, mu, sigma = await _encode_uploads(request, batch=True)
    items = [
        {"filename": upload.filename, "mu": m, "sigma": s} for upload, m, s in zip(uploads, mu, sigma, strict=True)
    ]
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, "items": items})
