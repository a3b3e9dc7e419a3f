"""One error shape for every failure, never a stack trace: RFC 9457 problem details, or under /v2
the Open Inference Protocol's `{"error": ...}`, which its clients read. The core's refusals get
their status here, by kind."""

import difflib
from http import HTTPStatus

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from service.core.admission import INTERNAL_ERROR
from service.core.errors import Conflict, InvalidInput, Refused, Unavailable, UnknownModel, UnsupportedImage

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROTOCOL_PREFIX = "/v2"
RETRY_SHORTLY = {"Retry-After": "1"}

# The status of each kind of refusal: on the REST routes, and under the Open Inference Protocol,
# which answers a request it cannot take with 400 whatever is wrong with it.
REST_STATUS: dict[type[Refused], int] = {
    InvalidInput: 422,
    UnsupportedImage: 415,
    UnknownModel: 404,
    Unavailable: 503,
    Conflict: 409,
}
PROTOCOL_STATUS = REST_STATUS | {InvalidInput: 400, UnsupportedImage: 400}


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=[HTTPStatus(422).phrase])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["z[0] has 3 values; this model's latent size is 2"])  # tested against the route
    request_id: str = Field(examples=["5f0c6a1e9b6d4d0e8c7c2f7f4a1b2c3d"])
    errors: list[dict] | None = Field(None, description="Per-field messages of a validation error.")


class Problem(HTTPException):
    """Raise anywhere in a request's edge code to answer with this status and detail."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status, detail, headers)


class InvalidParameters(Exception):
    """Parameters that fail their model: one entry per field, located in "query" or "body"."""

    def __init__(self, errors: list[dict]):
        super().__init__(errors)
        self.errors = [{"loc": list(error["loc"]), "msg": error["msg"]} for error in errors]

    def detail(self) -> str:
        return "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in self.errors)


def error_document(path: str, status: int, detail: str, state: dict, errors: list | None = None) -> tuple[bytes, str]:
    """The error body and its media type for a request's path; the detail is also kept in the
    request's state for its log line."""
    state["error"] = detail
    if path == PROTOCOL_PREFIX or path.startswith(PROTOCOL_PREFIX + "/"):
        return orjson.dumps({"error": detail}), "application/json"
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": state.get("request_id", ""),
    }
    if errors:
        body["errors"] = errors
    return orjson.dumps(body), PROBLEM_MEDIA_TYPE


def problem_response(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None, errors: list | None = None
) -> Response:
    body, media_type = error_document(request.url.path, status, detail, request.scope.setdefault("state", {}), errors)
    return Response(body, status_code=status, headers=headers, media_type=media_type)


def refusal_response(request: Request, error: Exception, statuses: dict[type[Refused], int]) -> Response:
    """The response to what a route raised: a core refusal (its status from statuses), a Problem,
    or parameters that failed their model."""
    if isinstance(error, Refused):
        status = next(statuses[kind] for kind in type(error).__mro__ if kind in statuses)
        return problem_response(request, status, error.detail, RETRY_SHORTLY if status == 503 else None)
    if isinstance(error, InvalidParameters):
        return problem_response(request, 422, error.detail(), errors=error.errors)
    return problem_response(request, error.status_code, str(error.detail), error.headers)


ANSWERED = (Refused, Problem, InvalidParameters)  # what refusal_response answers


def unknown_path(path: str, paths: list[str]) -> str:
    """What a 404 for a path no route serves says: the nearest routes' paths, and where all are."""
    near = difflib.get_close_matches(path, paths, n=2, cutoff=0.6)
    nearest = f"; did you mean {' or '.join(near)}?" if near else "."
    return f"no route serves {path}{nearest} Every route is listed at /docs and /openapi.json"


async def _on_internal_error(request: Request, exc: Exception) -> Response:
    return problem_response(request, 500, INTERNAL_ERROR)


def install(app: FastAPI, paths: list[str]) -> None:
    """The problem shape for what FastAPI itself answers: unknown paths (named with the nearest of
    paths), and what no handler takes, which reaches FastAPI's outermost layer and is raised on to
    the request's log line (service.http.middleware.Intake)."""

    async def on_http_exception(request: Request, exc: HTTPException) -> Response:
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == HTTPStatus(404).phrase:  # the router's: no route matched
            detail = unknown_path(request.url.path, paths)
        return problem_response(request, exc.status_code, detail, exc.headers)

    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(Exception, _on_internal_error)
