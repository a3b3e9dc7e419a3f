"""Errors as typed exceptions carrying the service's problem details (RFC 9457)."""

import httpx


class VAEError(Exception):
    """The service answered with an error; `problem` is its problem document."""

    def __init__(self, status: int, detail: str, problem: dict):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.problem = problem
        self.request_id: str | None = problem.get("request_id")


class BadRequest(VAEError):
    """4xx: the request cannot be served as sent; `detail` says what to fix."""


class Unauthorized(BadRequest):
    """401: the API key is missing or wrong."""


class NotFound(BadRequest):
    """404: no such model (the detail lists the names there are) or route."""


class Unavailable(VAEError):
    """503 after the retries: the service is loading or at capacity."""


class ServerError(VAEError):
    """5xx: the service failed; quote the request id when reporting it."""


class ConnectionFailed(VAEError):
    """The service could not be reached after the retries."""

    def __init__(self, url: str, error: Exception):
        super().__init__(0, f"cannot reach {url}: {error}", {})


def error_from(response: httpx.Response) -> VAEError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    detail = problem.get("detail") or problem.get("error") or response.text[:200] or response.reason_phrase
    status = response.status_code
    kind = {401: Unauthorized, 404: NotFound, 503: Unavailable}.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else BadRequest
    return kind(status, detail, problem)
