"""What each `vae-serve` worker runs: the HTTP app, and beside it on the same engine, when
VAE_GRPC_PORT is set, the Open Inference Protocol over gRPC."""

from functools import partial

from starlette.types import ASGIApp

from service.core.engine import Engine
from service.grpc.server import serving
from service.http.app import create_app as create_http_app

SHUTDOWN_GRACE_SECONDS = 20  # for requests in flight at SIGTERM, HTTP and gRPC alike


def create_app() -> ASGIApp:
    engine = Engine()
    grpc = [partial(serving, grace_s=SHUTDOWN_GRACE_SECONDS)] if engine.settings.grpc_port is not None else []
    return create_http_app(engine=engine, beside=grpc)
