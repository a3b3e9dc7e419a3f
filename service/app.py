"""Assembles the FastAPI application: settings, model, middleware, error handlers, routes."""

import gc
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service import docs, errors, page
from service.config import Settings
from service.dataplane import DataPlane
from service.middleware import Intake, RequireApiKey
from service.repository import ModelRepository
from service.routes import encode, generate, health, models, v2, v2_repository
from service.routes.models import MODEL_PREFIX, model_in_path

log = logging.getLogger("service")
GIL_SWITCH_INTERVAL_S = 0.001  # Python's default is 0.005

DESCRIPTION = """
Variational autoencoders served with onnxruntime. `/encode` maps a picture to the mean and
standard deviation of Q(Z|x); `/decode` maps latent vectors to images; `/sample` draws from the
prior; `/interpolate` walks between two points; `/reconstruct` sends a picture through both halves.
The unprefixed routes serve the default model, `/models/{model}/...` any served model. The Open
Inference Protocol (v2) is under `/v2`. Every error is an RFC 9457 problem
(`application/problem+json`), except under `/v2`, where errors are `{"error": ...}` as the protocol
writes them.
"""


class Service(FastAPI):
    """FastAPI behind the service's own middleware.

    Starlette puts its error, telemetry and body-limit layers outside any middleware added to the
    app, so every request paid for them before it reached the service's. Here the service's
    middleware comes first (request id, log line and limits, API key, CORS), the data plane is
    answered inside it (service.dataplane), and the rest goes on to FastAPI's whole stack."""

    front: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        await self.front(scope, receive, send)

    async def routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> Service:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        models = ModelRepository(settings)
        models.load_all()
        # Everything built so far lives as long as the process: keep the collector from rescanning
        # it, as full collections over these objects were the longest pauses under load.
        gc.collect()
        gc.freeze()
        # The picture threads hold the GIL between their C calls; a shorter switch interval lets the
        # event loop take it back sooner, so probes and small requests answer during a burst of photos.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        app.state.models = models
        with ThreadPoolExecutor(settings.picture_threads, thread_name_prefix="pictures") as pictures:
            app.state.pictures = pictures
            app.state.ready = True
            served = {name: inference.model.id for name, inference in models.served().items()}
            log.info("ready", extra={"models": served, "default_model": models.default_name})
            yield
            app.state.ready = False  # draining: probes see it at once

    app = Service(
        title="VAE service", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.models = None
    app.state.ready = False
    errors.install(app)
    docs.install(app, requires_key=settings.api_key is not None)
    page.install(app)
    # Not include_router: FastAPI 0.165 resolves an included router's routes on every request;
    # taking the routes over resolves them once.
    per_model = APIRouter(prefix=MODEL_PREFIX, dependencies=[Depends(model_in_path)])
    for module in (encode, generate):
        app.router.routes.extend(module.router.routes)
        per_model.include_router(module.router)
    app.router.routes.extend(per_model.routes)
    for module in (models, health, v2, v2_repository):
        app.router.routes.extend(module.router.routes)
    # The data plane, called straight from the middleware: each model route unprefixed and per model,
    # and v2 inference.
    model_routes = [route for module in (encode, generate) for route in module.router.routes]
    data_plane = [(route.path, route) for route in (*model_routes, *v2.inference)]
    data_plane += [(MODEL_PREFIX + route.path, route) for route in model_routes]
    front: ASGIApp = DataPlane(app.routed, routes=data_plane)
    if settings.cors_origins:
        front = CORSMiddleware(
            front,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
        )
    if settings.api_key is not None:
        front = RequireApiKey(front, api_key=settings.api_key.get_secret_value())
    app.front = Intake(front, settings=settings)
    return app
