"""Assembles the HTTP front end: the engine, the declared routes, the service's layers over them,
and FastAPI behind for the documentation page, the explorer's files and unknown paths."""

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Scope

from service.core.engine import Engine
from service.http import docs, page, problems
from service.http.middleware import Intake, RequireApiKey
from service.http.rest import encode, generate, models, ops
from service.http.routing import Dispatch, Route, declared_routes, schema_routes
from service.http.v2 import inference, repository
from service.settings import Settings

log = logging.getLogger("service")
Companion = Callable[[Engine], AbstractAsyncContextManager]  # a server that runs beside HTTP on the engine

DESCRIPTION = """
Variational autoencoders served with onnxruntime. `/encode` maps a picture to the mean and
standard deviation of Q(Z|x); `/decode` maps latent vectors to images; `/sample` draws from the
prior; `/interpolate` walks between two points; `/reconstruct` sends a picture through both halves.
The unprefixed routes serve the default model, `/models/{model}/...` any served model. The Open
Inference Protocol (v2) is under `/v2`. Every error is an RFC 9457 problem
(`application/problem+json`), except under `/v2`, where errors are `{"error": ...}` as the protocol
writes them.
"""


def routes() -> list[Route]:
    """Every declared route: the REST routes, then the Open Inference Protocol's."""
    return declared_routes(
        encode.ROUTES, generate.ROUTES, models.ROUTES, ops.ROUTES, inference.ROUTES, repository.ROUTES
    )


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, beside: Sequence[Companion] = ()
) -> ASGIApp:
    """The ASGI app: Intake (request id, log line, metrics, limits), the API key, CORS, then the
    dispatch of the declared routes, and FastAPI for the rest. The engine starts and stops with the
    app's lifespan, and so do the servers beside it on the same engine (gRPC), which stop first."""
    engine = engine or Engine(settings)
    settings = engine.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            engine.start()
            stack.callback(engine.stop)
            for companion in beside:
                await stack.enter_async_context(companion(engine))
            log.info("ready", extra={"models": engine.served(), "default_model": engine.repository().default_name})
            yield

    site = FastAPI(
        title="VAE service", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    declared = routes()
    problems.install(site, sorted({route.path for route in declared if route.in_schema}))
    docs.install(site, schema_routes(declared), requires_key=settings.api_key is not None)
    page.install(site)
    dispatch = Dispatch(site, declared, engine)

    def route_label(scope: Scope) -> str:
        """The path template of the route a request's path fits, for the metrics."""
        found = dispatch.find(scope["path"])
        if found is not None:
            return found[0]
        for candidate in site.router.routes:
            if candidate.matches(scope)[0] is not Match.NONE:
                return getattr(candidate, "path", "unmatched")
        return "unmatched"

    front: ASGIApp = dispatch
    if settings.cors_origins:
        front = CORSMiddleware(
            front,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
        )
    if settings.api_key is not None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        front = RequireApiKey(front, api_key=settings.api_key.get_secret_value(), metrics_token=token)
    return Intake(front, settings, route_label, engine.in_flight)
