"""Uploaded images: read from a raw image body or the files of a multipart form, then prepared as
the model's input."""

from __future__ import annotations  # the nested helpers' annotations are not built on every call

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import TypeVar

import numpy as np
from fastapi import Request
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header
from PIL import Image

from contract.geometry import SIDE
from service.deps import Serving
from service.errors import Problem
from service.images import (
    ACCEPTED_MEDIA_TYPES,
    GreyPNG,
    ImageRejected,
    Invert,
    framed_input,
    grey_pixels,
    grey_png_codes,
    in_training_form,
    intensities,
    open_image,
    white_on_black,
)

RAW_MEDIA_TYPES = ACCEPTED_MEDIA_TYPES | {"application/octet-stream"}
IMAGE_SCHEMA = {"type": "string", "format": "binary"}
INLINE_PIXELS = 64 * 64
Result = TypeVar("Result")


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


def image_request_body(multiple: bool) -> dict:
    """The OpenAPI requestBody of an endpoint that takes images (the route reads the body itself)."""
    files = {"type": "array", "items": IMAGE_SCHEMA} if multiple else IMAGE_SCHEMA
    content = {
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": files}, "required": ["file"]}}
    }
    if not multiple:
        content = {media_type: {"schema": IMAGE_SCHEMA} for media_type in sorted(RAW_MEDIA_TYPES)} | content
    return {"requestBody": {"required": True, "content": content}}


def form_files(body: bytes, content_type: str, max_files: int) -> list[Upload]:
    """The files of a multipart form. Parsed by `multipart`'s push parser, whose one pass over the
    bytes costs a fraction of Starlette's form machinery (spooled files, callbacks per part)."""
    boundary = parse_options_header(content_type)[1].get("boundary")
    if not boundary:
        raise Problem(422, "the multipart Content-Type has no boundary; let the client library build the form")
    uploads: list[Upload] = []
    try:
        with PushMultipartParser(boundary, content_length=len(body)) as parser:
            for event in chain(parser.parse(body), parser.parse(b"")):
                if isinstance(event, MultipartSegment):
                    segment, chunks = event, []
                elif event:
                    chunks.append(event)
                elif segment.filename is None:
                    raise Problem(
                        422,
                        f"form field {segment.name!r} is not read: send only image files, "
                        "and parameters in the query string",
                    )
                elif len(uploads) == max_files:
                    raise Problem(422, f"too many files; the limit is {max_files}: send at most {max_files} images")
                else:
                    uploads.append(Upload(segment.filename, b"".join(chunks)))
    except MultipartError as error:
        raise Problem(422, f"unreadable multipart form ({error}); send the images as the files of one form") from error
    if not uploads:
        raise Problem(422, "the multipart form has no file; send the image as a file field named 'file'")
    return uploads


async def read_images(request: Request, max_files: int) -> list[Upload]:
    """The uploaded images' bytes; 415 for a body that cannot hold an accepted image."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "multipart/form-data" and media_type not in RAW_MEDIA_TYPES:
        raise Problem(
            415,
            f"content type {media_type or '(none)'!r} not accepted; send the image bytes as "
            "image/png, image/jpeg, image/gif, image/bmp or image/webp, or as multipart/form-data",
        )
    data = await request.body()
    if media_type == "multipart/form-data":
        return form_files(data, content_type, max_files)
    if not data:
        raise Problem(422, "empty body: send the image's bytes")
    return [Upload(None, data)]


async def model_inputs(serving: Serving, uploads: list[Upload], invert: Invert, batch: bool) -> np.ndarray:
    """The model input of each upload. Pictures in training form are decoded on the event loop and
    take their polarity together; other small pictures are framed on the event loop too, where the
    hop to a thread would cost more than the work; larger ones in the bounded picture pool, so that
    decoding a photo never holds up other requests or the probes. In a batch, an error names the file."""
    recipe = serving.inference.model.recipe

    def on_file(index: int, step: Callable[..., Result], *arguments: object) -> Result:
        try:
            return step(*arguments)
        except ImageRejected as error:
            if not batch:
                raise
            raise ImageRejected(error.status, f"file {index} ({uploads[index].filename!r}): {error.detail}") from None

    def framed(image: Image.Image | GreyPNG) -> np.ndarray:
        return framed_input(grey_pixels(image), invert, recipe)

    max_pixels = serving.settings.max_pixels
    images = [on_file(index, open_image, upload.data, max_pixels) for index, upload in enumerate(uploads)]
    in_form = [in_training_form(image) for image in images]
    pictures = np.empty((len(images), SIDE, SIDE), np.float32)
    # The 8-bit codes of grey PNGs in training form become intensities together, in one operation.
    coded = [form and isinstance(image, GreyPNG) for form, image in zip(in_form, images, strict=True)]
    for index, image in enumerate(images):
        if coded[index]:
            pictures[index] = on_file(index, grey_png_codes, image)
        elif in_form[index]:
            pictures[index] = on_file(index, grey_pixels, image)
    if all(coded):
        intensities(pictures, out=pictures)
    elif any(coded):
        pictures[coded] = intensities(pictures[coded])
    others = [index for index, form in enumerate(in_form) if not form]
    if all(images[index].width * images[index].height <= INLINE_PIXELS for index in others):
        for index in others:
            pictures[index] = on_file(index, framed, images[index])
    else:
        loop = asyncio.get_running_loop()
        framings = (loop.run_in_executor(serving.pictures, on_file, index, framed, images[index]) for index in others)
        pictures[others] = await asyncio.gather(*framings)
    return white_on_black(pictures, np.array(in_form), invert)
