"""Uploaded images, read from a raw image body or the files of a multipart form."""

from itertools import chain

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header
from starlette.requests import Request

from service.core import tracing
from service.core.errors import counted
from service.core.pictures import ACCEPTED_MEDIA_TYPES, Upload
from service.http.problems import Problem

RAW_MEDIA_TYPES = ACCEPTED_MEDIA_TYPES | {"application/octet-stream"}
IMAGE_SCHEMA = {"type": "string", "format": "binary"}
FORM = "multipart/form-data"


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
                    most = counted(max_files, "image")
                    raise Problem(422, f"too many files; the limit is {max_files}: send at most {most}")
                else:
                    uploads.append(Upload(segment.filename, b"".join(chunks)))
    except MultipartError as error:
        raise Problem(422, f"unreadable multipart form ({error}); send the images as the files of one form") from error
    if not uploads:
        raise Problem(422, "the multipart form has no file; send the image as a file field named 'file'")
    return uploads


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(FORM)


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
    with tracing.span("read upload"):
        data = await request.body()
    if media_type == "multipart/form-data":
        return form_files(data, content_type, max_files)
    if not data:
        raise Problem(422, "empty body: send the image's bytes")
    return [Upload(None, data)]
