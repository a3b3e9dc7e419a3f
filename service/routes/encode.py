"""POST /encode and /encode/batch: images -> the parameters of Q(Z|x)."""

import asyncio
import base64

import numpy as np
from fastapi import APIRouter, Request
from PIL import Image
from pydantic import BaseModel, Field

from service.deps import Serving
from service.deps import serving as serving_of
from service.images import ImageRejected, Invert, open_image, png_bytes, to_model_input
from service.model import Novelty, VAEModel
from service.params import from_query, query_docs
from service.responses import IMAGE_ERRORS, JSONResponse
from service.uploads import Upload, image_request_body, read_images

router = APIRouter(tags=["encode"])

INLINE_PIXELS = 64 * 64


class EncodeParams(BaseModel):
    invert: Invert = Field(
        Invert.auto,
        description="Invert dark-on-light pictures: auto (when the ink is darker than the paper), yes or no.",
    )
    model_input: bool = Field(
        False,
        description="Also return the 28x28 the model saw (pixels and PNG), to see why a picture landed where it did.",
    )


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
        description="Share of the model's test images (in percent) with a lower score: near 0 means "
        "unlike anything the model was tested on. README: the suggested threshold.",
        examples=[41.5],
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


async def _prepared(serving: Serving, uploads: list[Upload], params: EncodeParams, batch: bool) -> np.ndarray:
    """The model input of each upload. Small pictures are prepared on the event loop, where the
    hop to a thread would cost more than the work; larger ones in the bounded picture pool, so
    that decoding a photo never holds up other requests or the probes. In a batch, an error names
    the file."""
    recipe = serving.inference.model.recipe

    def located(index: int, error: ImageRejected) -> ImageRejected:
        if not batch:
            return error
        return ImageRejected(error.status, f"file {index} ({uploads[index].filename!r}): {error.detail}")

    def prepared(index: int, image: Image.Image) -> np.ndarray:
        try:
            return to_model_input(image, params.invert, recipe)
        except ImageRejected as error:
            raise located(index, error) from None

    opened = []
    for index, upload in enumerate(uploads):
        try:
            opened.append(open_image(upload.data, serving.settings.max_pixels))
        except ImageRejected as error:
            raise located(index, error) from None
    if all(image.width * image.height <= INLINE_PIXELS for image in opened):
        return np.stack([prepared(index, image) for index, image in enumerate(opened)])
    loop = asyncio.get_running_loop()
    return np.stack(
        await asyncio.gather(*(loop.run_in_executor(serving.pictures, prepared, *item) for item in enumerate(opened)))
    )


def _encodings(images: np.ndarray, mu: np.ndarray, sigma: np.ndarray, novelty: Novelty, with_input: bool) -> list[dict]:
    items = []
    for index, (m, s) in enumerate(zip(mu, sigma, strict=True)):
        item = {
            "mu": m,
            "sigma": s,
            "novelty": {
                "elbo": round(float(novelty.elbo[index]), 2),
                "percentile": round(float(novelty.percentile[index]), 2),
            },
        }
        if with_input:
            pixels = images[index, 0]
            item["model_input"] = {"pixels": pixels, "png_base64": base64.b64encode(png_bytes(pixels)).decode()}
        items.append(item)
    return items


async def _encode_uploads(request: Request, batch: bool) -> tuple[VAEModel, list[Upload], list[dict]]:
    """The request's images, and what one model call says of each."""
    serving = serving_of(request)
    params = from_query(EncodeParams, request)
    settings = serving.settings
    uploads = await read_images(request, settings, max_files=settings.max_batch if batch else 1)
    images = await _prepared(serving, uploads, params, batch)
    mu, sigma, novelty = await serving.inference.assess(images)
    return serving.inference.model, uploads, _encodings(images, mu, sigma, novelty, params.model_input)


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
