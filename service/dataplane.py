"""The data plane's requests go from the middleware straight to their endpoint.

Behind FastAPI's router, a request to /encode first matches the path's regular expression of each
route in turn, then passes the exception middleware, two exit stacks and the dependency solver, and
together they cost more CPU than the model call they lead to. The data-plane endpoints need none of
it: they take the Request (and their path's parameters as strings) and raise the service's own
errors. This layer finds such a route by its path's segments in one lookup, calls its endpoint, and
answers its errors with the handlers the app installs (service.errors.HANDLERS). The routes stay
declared on FastAPI, so the OpenAPI document is as before, and any other request, or a data-plane
path with another method, goes on to FastAPI's router.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import HANDLED, handled

Template = tuple[str, ...]  # a path's segments; "{name}" stands for any one non-empty segment


def _segments(path: str) -> Template:
    return tuple(path.split("/")[1:])


def _parameters(template: Template, segments: Template) -> dict[str, str] | None:
    """The path's parameters if the segments fit the template, else None."""
    found = {}
    for pattern, segment in zip(template, segments, strict=True):
        if pattern[0] == "{":
            if not segment:
                return None
            found[pattern[1:-1]] = segment
        elif pattern != segment:
            return None
    return found


class Target(NamedTuple):
    path: str  # the route's path template, as FastAPI's routes name it in the scope
    endpoint: Callable[..., Awaitable[Response]]
    arguments: tuple[str, ...]  # the path parameters the endpoint takes as arguments


class DataPlane:
    """Innermost middleware: the routes given, as (path template, declared route), are served here;
    everything else by the router."""

    def __init__(self, app: ASGIApp, routes: list[tuple[str, APIRoute]]):
        self.app = app
        self.static: dict[tuple[str, str], Target] = {}
        self.templated: dict[tuple[str, int], list[tuple[Template, Target]]] = {}
        for path, route in routes:
            signature = inspect.signature(route.endpoint).parameters
            target = Target(path, route.endpoint, tuple(name for name in signature if name != "request"))
            template = _segments(path)
            for method in route.methods:
                if "{" in path:
                    self.templated.setdefault((method, len(template)), []).append((template, target))
                else:
                    self.static[method, path] = target

    def _find(self, method: str, path: str) -> tuple[Target, dict[str, str]] | None:
        target = self.static.get((method, path))
        if target is not None:
            return target, {}
        segments = _segments(path)
        for template, target in self.templated.get((method, len(segments)), ()):
            parameters = _parameters(template, segments)
            if parameters is not None:
                return target, parameters
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._find(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            return await self.app(scope, receive, send)
        target, parameters = found
        scope["route"] = target  # named by its path in the metrics, as the router's routes are
        scope["path_params"] = parameters
        request = Request(scope, receive, send)
        try:
            response = await target.endpoint(request, **{name: parameters[name] for name in target.arguments})
        except HANDLED as error:
            response = await handled(request, error)
        await response(scope, receive, send)
