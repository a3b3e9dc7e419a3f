"""POST /encode, /encode/batch and /reconstruct: images -> the parameters of Q(Z|x), and back."""

import base64

import numpy as np
from pydantic import BaseModel, Field
from starlette.responses import Response

from service.core.pictures import Invert, png_bytes
from service.core.served import Assessment
from service.http.responses import (
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
from service.http.routing import Call, Images, Route

TAGS = ("encode",)


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


def _encodings(assessed: Assessment, with_input: bool) -> list[dict]:
    novelty = zip(_rounded(assessed.novelty.elbo), _rounded(assessed.novelty.percentile), strict=True)
    items = []
    for index, (m, s, (elbo, percentile)) in enumerate(zip(assessed.mu, assessed.sigma, novelty, strict=True)):
        item = {"mu": m, "sigma": s, "novelty": {"elbo": elbo, "percentile": percentile}}
        if with_input:
            pixels = assessed.inputs[index, 0]
            item["model_input"] = {"pixels": pixels, "png_base64": base64.b64encode(png_bytes(pixels)).decode()}
        items.append(item)
    return items


async def _encoded(call: Call, batch: bool = False) -> tuple[Assessment, list[dict]]:
    """What one model call says of each of the request's pictures; in a batch, a refusal names the file."""
    assessed = await call.engine.encode(call.model, call.uploads, call.params.invert, named=batch)
    return assessed, _encodings(assessed, call.params.model_input)


async def encode(call: Call) -> Response:
    """One image, as the raw body (`curl --data-binary @digit.png -H 'Content-Type: image/png'`) or
    as a multipart file: -> mu and sigma of Q(Z|x). PNG, JPEG, GIF, BMP or WebP, any size, colour or grey."""
    _, (encoding,) = await _encoded(call)
    model = call.model.model
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, **encoding})


async def encode_batch(call: Call) -> Response:
    """Up to VAE_MAX_BATCH images as the files of one multipart form -> one (mu, sigma) each."""
    _, encodings = await _encoded(call, batch=True)
    items = [{"filename": upload.filename, **item} for upload, item in zip(call.uploads, encodings, strict=True)]
    model = call.model.model
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, "items": items})


class DigitBox(BaseModel):
    left: int = Field(description="Column of the box's left edge, in the picture's pixels.", examples=[130])
    top: int = Field(description="Row of the box's top edge.", examples=[94])
    width: int = Field(examples=[79])
    height: int = Field(examples=[101])


class DigitItem(Encoding):
    box: DigitBox = Field(description="Where the digit is in the picture, as a viewer shows it.")


class DigitsEncoding(BaseModel):
    model_id: str
    latent_size: int
    items: list[DigitItem] = Field(description="One per digit found, left to right.")


async def encode_digits(call: Call) -> Response:
    """One picture of a number (`2026` written or printed on a page), as for /encode -> each digit
    found, left to right: its box in the picture and its mu, sigma and novelty score. A digit model's route."""
    (upload,) = call.uploads
    digits, assessed = await call.engine.encode_digits(call.model, upload, call.params.invert)
    encodings = _encodings(assessed, call.params.model_input)
    items = [{"box": box._asdict(), **item} for box, item in zip(digits.boxes, encodings, strict=True)]
    model = call.model.model
    return JSONResponse({"model_id": model.id, "latent_size": model.latent_size, "items": items})


class ReconstructParams(EncodeParams):
    upscale: int = UPSCALE


async def reconstruct(call: Call) -> Response:
    """One image, as for /encode -> f(mu), the decoder's pixel means at the posterior mean, as a PNG
    by default; with Accept: application/json, also mu, sigma, the novelty score and the 28x28 the
    model saw (with ?model_input=true)."""
    check_upscale(call.params.upscale, call.engine.settings.max_upscale)
    assessed, (encoding,) = await _encoded(call)
    body = {"model_id": call.model.model.id, **encoding}
    return images_response(call.request, assessed.mu, assessed.reconstruction, call.params.upscale, body)


ROUTES = [
    Route(
        ("POST",),
        "/encode",
        encode,
        "Encode one image",
        TAGS,
        query=EncodeParams,
        body=Images(max_files=1),
        response_model=EncodeResponse,
        responses=IMAGE_ERRORS,
        serves_model=True,
        per_model=True,
    ),
    Route(
        ("POST",),
        "/encode/batch",
        encode_batch,
        "Encode several images in one model call",
        TAGS,
        query=EncodeParams,
        body=Images(),
        response_model=BatchEncoding,
        responses=IMAGE_ERRORS,
        serves_model=True,
        per_model=True,
    ),
    Route(
        ("POST",),
        "/encode/digits",
        encode_digits,
        "Encode each digit of a picture of a number",
        TAGS,
        query=EncodeParams,
        body=Images(max_files=1),
        response_model=DigitsEncoding,
        responses=IMAGE_ERRORS,
        serves_model=True,
        per_model=True,
    ),
    Route(
        ("POST",),
        "/reconstruct",
        reconstruct,
        "Send an image through the encoder and the decoder",
        TAGS,
        query=ReconstructParams,
        body=Images(max_files=1),
        responses=image_responses(ReconstructResponse, IMAGE_ERRORS),
        serves_model=True,
        per_model=True,
    ),
]
