"""Routes declared once: the dispatch serves them, and the OpenAPI document is made from them.

A Route names its path, methods, query parameters (a pydantic model), body and responses. The
dispatch, the innermost of the service's ASGI layers, finds a request's route by its path's
segments in one lookup, validates the declared parameters and reads the declared body, and calls
the endpoint with them in a Call. FastAPI's own router, exception middleware, exit stacks and
dependency solver cost more CPU than the model call a request leads to, so declared routes do not
pass through them; FastAPI makes their OpenAPI document from the same declaration (schema_routes)
and serves what is not declared here: the documentation page, the explorer's files, unknown paths.

An endpoint takes the Call and nothing else: a FastAPI parameter (Depends, Query, Body, a typed
body) in its signature would be silently skipped here, so declared_routes refuses it at start-up.
"""

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, NamedTuple

from fastapi import Body, Path, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.engine import Engine
from service.core.errors import Refused
from service.core.pictures import Upload
from service.core.served import ServedModel
from service.http.params import NoParameters, from_query, from_query_and_json
from service.http.problems import ANSWERED, REST_STATUS, Problem, refusal_response
from service.http.uploads import image_request_body, is_form, read_images


class PathParameter(NamedTuple):
    """What a path parameter is, for the document; the dispatch passes it on as a string."""

    description: str
    example: str | None = None


MODEL_PREFIX = "/models/{model}"
MODEL_PARAMETER = PathParameter("A served model's name (GET /models lists them).", "mnist")


@dataclass(frozen=True)
class JSONBody:
    """Parameters in a JSON body, or those of the route's query model in the query string."""

    model: type[BaseModel]
    optional: bool = False  # an empty body is the model's defaults


@dataclass(frozen=True)
class Images:
    """Pictures: a multipart form of files, or (with one file at most) the raw image as the body."""

    max_files: int | None = None  # None: VAE_MAX_BATCH

    @property
    def multiple(self) -> bool:
        return self.max_files != 1


@dataclass(frozen=True)
class JSONOrImages:
    """A JSON body, or a multipart form of pictures with the parameters in the query string."""

    json: JSONBody
    images: Images


@dataclass(frozen=True)
class OpaqueBody:
    """A body the endpoint reads itself, in a format no pydantic model describes (the Open
    Inference Protocol's binary tensors); its OpenAPI requestBody, as given."""

    openapi: dict


BodySpec = JSONBody | Images | JSONOrImages | OpaqueBody | None


@dataclass
class Call:
    """One request, as its endpoint gets it: validated parameters, the body's pictures, and the
    model the path names (or the default model) for routes that serve one."""

    request: Request
    engine: Engine
    path: dict[str, str]
    params: Any
    served: ServedModel | None
    uploads: list[Upload] | None = None

    @property
    def model(self) -> ServedModel:
        assert self.served is not None, "a route that uses the model declares serves_model"
        return self.served


Endpoint = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    path: str
    endpoint: Endpoint
    summary: str
    tags: tuple[str, ...]
    query: type[BaseModel] = NoParameters
    body: BodySpec = None
    serves_model: bool = False  # resolve the path's {model}, or the default model, before anything else
    per_model: bool = False  # also served as /models/{model}{path}
    response_model: Any = None  # the type of its JSON answer, for the document
    responses: Mapping[int | str, dict] = field(default_factory=dict)  # a 200 here is the whole of it
    path_docs: Mapping[str, PathParameter] = field(default_factory=dict)
    statuses: Mapping[type[Refused], int] = field(default_factory=lambda: REST_STATUS)
    in_schema: bool = True

    async def call(self, request: Request, engine: Engine, path: dict[str, str]) -> Response:
        served = engine.model(path.get("model")) if self.serves_model else None
        body, uploads = self.body, None
        if isinstance(body, JSONOrImages):
            body = body.images if is_form(request) else body.json
        if isinstance(body, JSONBody):
            params = await from_query_and_json(
                body.model, request, frozenset(body.model.model_fields) - set(self.query.model_fields), body.optional
            )
        else:
            params = from_query(self.query, request)
        if isinstance(body, Images):
            uploads = await read_images(request, max_files=body.max_files or engine.settings.max_batch)
        return await self.endpoint(Call(request, engine, path, params, served, uploads))


class RouteError(Exception):
    """A route the dispatch cannot serve as declared."""


def _checked(route: Route) -> Route:
    parameters = list(inspect.signature(route.endpoint).parameters.values())
    plain = len(parameters) == 1 and parameters[0].default is inspect.Parameter.empty
    if not plain or parameters[0].annotation not in (Call, "Call", inspect.Parameter.empty):
        named = ", ".join(str(parameter) for parameter in parameters)
        raise RouteError(
            f"route {'/'.join(route.methods)} {route.path}: its endpoint {route.endpoint.__name__}({named}) must take "
            "one argument, the Call; declare query parameters as Route(query=Model), the body as Route(body=...), "
            "and read the rest from call.request"
        )
    return route


def declared_routes(*groups: list[Route]) -> list[Route]:
    """The routes of each group, the per-model ones also under /models/{model}, checked."""
    routes = []
    for route in (route for group in groups for route in group):
        routes.append(_checked(route))
        if route.per_model:
            docs = {"model": MODEL_PARAMETER, **route.path_docs}
            routes.append(replace(route, path=MODEL_PREFIX + route.path, path_docs=docs, serves_model=True))
    return routes


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


class Dispatch:
    """Innermost of the service's layers: the declared routes are served here, everything else by
    the app behind (FastAPI)."""

    def __init__(self, app: ASGIApp, routes: list[Route], engine: Engine):
        self.app = app
        self.engine = engine
        self.static: dict[str, dict[str, Route]] = {}
        self.templated: dict[int, list[tuple[Template, dict[str, Route]]]] = {}
        templates: dict[str, dict[str, Route]] = {}
        for route in routes:
            methods = templates.setdefault(route.path, {})
            for method in route.methods:
                if method in methods:
                    raise RouteError(f"route {method} {route.path} is declared twice")
                methods[method] = route
        for path, methods in templates.items():
            if "{" in path:
                template = _segments(path)
                self.templated.setdefault(len(template), []).append((template, methods))
            else:
                self.static[path] = methods

    def find(self, path: str) -> tuple[str, dict[str, Route], dict[str, str]] | None:
        """The declared path template a path fits, its routes by method, and the path's parameters."""
        methods = self.static.get(path)
        if methods is not None:
            return path, methods, {}
        segments = _segments(path)
        for template, methods in self.templated.get(len(segments), ()):
            parameters = _parameters(template, segments)
            if parameters is not None:
                return "/" + "/".join(template), methods, parameters
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.find(scope["path"]) if scope["type"] == "http" else None
        if found is None:
            return await self.app(scope, receive, send)
        template, methods, parameters = found
        route = methods.get(scope["method"])
        scope["path_params"] = parameters
        request = Request(scope, receive, send)
        try:
            if route is None:
                allowed = ", ".join(sorted(methods))
                message = f"{scope['method']} {scope['path']} is not allowed; use {allowed}"
                raise Problem(405, message, {"Allow": allowed})
            response = await route.call(request, self.engine, parameters)
        except ANSWERED as error:
            response = refusal_response(request, error, route.statuses if route else REST_STATUS)
        await response(scope, receive, send)


def _schema_endpoint(route: Route) -> Callable:
    """A function whose signature tells FastAPI the route's parameters and JSON body, for the
    OpenAPI document only: schema_routes are never mounted, so it is never called."""
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, _path(doc)])
        for name, doc in route.path_docs.items()
    ]
    if route.query.model_fields:
        query = Annotated[route.query, Query()]
        parameters.append(inspect.Parameter("query", inspect.Parameter.KEYWORD_ONLY, annotation=query))
    if isinstance(route.body, JSONBody):
        body = Annotated[route.body.model, Body()]
        default = None if route.body.optional else inspect.Parameter.empty
        parameters.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body, default=default))

    def endpoint(**_: object) -> None:
        pass

    # FastAPI names the operation after the function and describes it by its docstring.
    endpoint.__name__ = route.endpoint.__name__
    endpoint.__doc__ = route.endpoint.__doc__
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return endpoint


def _path(parameter: PathParameter) -> Any:
    examples = [parameter.example] if parameter.example else None
    return Path(description=parameter.description, examples=examples)


def _request_body(body: BodySpec) -> dict:
    """The requestBody of a body that FastAPI cannot read from a signature: pictures, either."""
    if isinstance(body, Images):
        return image_request_body(body.multiple)
    if isinstance(body, OpaqueBody):
        return {"requestBody": body.openapi}
    if isinstance(body, JSONOrImages):
        content = image_request_body(body.images.multiple)["requestBody"]["content"]
        schema = {"application/json": {"schema": body.json.model.model_json_schema()}}
        return {"requestBody": {"required": True, "content": schema | content}}
    return {}


def schema_routes(routes: list[Route]) -> list[APIRoute]:
    """The declared routes as FastAPI describes routes, for its OpenAPI document."""
    return [
        APIRoute(
            route.path,
            _schema_endpoint(route),
            methods=[method for method in route.methods if method != "HEAD"],
            summary=route.summary,
            description=inspect.getdoc(route.endpoint) or "",
            tags=list(route.tags),
            response_model=route.response_model,
            response_class=Response if 200 in route.responses else JSONResponse,
            responses=dict(route.responses),
            openapi_extra=_request_body(route.body) or None,
        )
        for route in routes
        if route.in_schema
    ]
