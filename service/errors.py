"""One error shape for every failure, never a stack trace: RFC 9457 problem details, or under /v2
the Open Inference Protocol's `{"error": ...}`, which its clients read."""

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.images import ImageRejected
from service.protocol.tensors import ProtocolError
from service.repository import UnknownModel

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROTOCOL_PREFIX = "/v2"
INTERNAL_ERROR = "internal error; quote the request id when reporting it"


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=[HTTPStatus(422).phrase])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["z[0] has 3 values; this model's latent size is 2"])  # tested against the route
    request_id: str = Field(examples=["5f0c6a1e9b6d4d0e8c7c2f7f4a1b2c3d"])
    errors: list[dict] | None = Field(None, description="Per-field messages of a validation error.")


class Problem(HTTPException):
    """Raise anywhere in a request to answer with a problem-details response.

    An HTTPException, so that FastAPI passes it through unchanged even from body parsing."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status, detail, headers)


def error_document(path: str, status: int, detail: str, state: dict, errors: list | None = None) -> tuple[bytes, str]:
    """The error body and its media type for a request's path; the detail is also kept in the
    request's state for its log line."""
    state["error"] = detail
    if path == PROTOCOL_PREFIX or path.startswith(PROTOCOL_PREFIX + "/"):
        return orjson.dumps({"error": detail}), "application/json"
    request_id = state.get("request_id", "")
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return orjson.dumps(body), PROBLEM_MEDIA_TYPE


def problem_response(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None, errors: list | None = None
) -> Response:
    body, media_type = error_document(request.url.path, status, detail, request.scope.setdefault("state", {}), errors)
    return Response(body, status_code=status, headers=headers, media_type=media_type)


def _validation_errors(exc: RequestValidationError) -> list[dict]:
    return [{"loc": list(error["loc"]), "msg": error["msg"]} for error in exc.errors()]


async def _on_image_rejected(request: Request, exc: ImageRejected) -> Response:
    return problem_response(request, exc.status, exc.detail)


async def _on_protocol_error(request: Request, exc: ProtocolError) -> Response:
    return problem_response(request, exc.status, exc.message)


async def _on_unknown_model(request: Request, exc: UnknownModel) -> Response:
    return problem_response(request, 404, exc.message)


async def _on_http_exception(request: Request, exc: HTTPException) -> Response:
    detail = str(exc.detail)
    if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
        detail = f"{request.method} {request.url.path} is not allowed; use {exc.headers['Allow']}"
    return problem_response(request, exc.status_code, detail, getattr(exc, "headers", None))


async def _on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
    errors = _validation_errors(exc)
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem_response(request, 422, detail, errors=errors)


# Each error a request may raise, and the response it gets: installed on the app, and used by the
# data plane, which calls its endpoints without the app's exception middleware.
HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    ImageRejected: _on_image_rejected,
    ProtocolError: _on_protocol_error,
    UnknownModel: _on_unknown_model,
    HTTPException: _on_http_exception,
    RequestValidationError: _on_invalid_request,
}
HANDLED = tuple(HANDLERS)


async def handled(request: Request, exc: Exception) -> Response:
    """The response to one of the HANDLED errors, found by its class as the app finds it."""
    kind = next(kind for kind in type(exc).__mro__ if kind in HANDLERS)
    return await HANDLERS[kind](request, exc)


async def _on_internal_error(request: Request, exc: Exception) -> Response:
    return problem_response(request, 500, INTERNAL_ERROR)


def install(app: FastAPI) -> None:
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
    # What no handler takes reaches FastAPI's outermost layer, which answers with this and raises it
    # on to the request's log line (service.middleware.Intake).
    app.add_exception_handler(Exception, _on_internal_error)
