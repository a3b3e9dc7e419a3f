"""`vae-serve`: check the model folders, then run uvicorn with the settings."""

import argparse
import os
import signal
import socket
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from service import logs
from service.core import tracing
from service.core.errors import ModelError
from service.core.metrics import MULTIPROCESS_DIR
from service.core.repository import ModelRepository
from service.serve import SHUTDOWN_GRACE_SECONDS
from service.settings import Settings

OPTIONS = {
    "host": str,
    "port": int,
    "grpc_port": int,
    "workers": int,
    "model_repository": Path,
    "model_dir": Path,
    "default_model": str,
}


def _parse(argv: list[str] | None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        prog="vae-serve",
        description="Serve the VAE. Options override VAE_* environment variables; the rest of the settings come "
        "from there (README, Configuration).",
    )
    for name, kind in OPTIONS.items():
        field = Settings.model_fields[name]
        default = "none" if field.default is None else field.default
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            help=f"{field.description} (default: {default}; VAE_{name.upper()})",
        )
    return {key: value for key, value in vars(parser.parse_args(argv)).items() if value is not None}


def _check_port_is_free(host: str, port: int, option: str) -> None:
    """The servers bind only after the app has started (and logged "ready"): say it at once instead."""
    try:
        socket.create_server((host, port)).close()
    except OSError as error:
        sys.exit(f"vae-serve: cannot listen on {host}:{port} ({error.strerror}); choose another with {option}")


def main(argv: list[str] | None = None) -> None:
    overrides = _parse(argv)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        sys.exit(f"vae-serve: invalid setting: {error}")
    try:
        ModelRepository(settings).load_all()  # fail fast, with one line, before any worker starts
    except ModelError as error:
        sys.exit(f"vae-serve: {error}")
    if tracing.enabled:
        try:
            tracing.exporter()
        except ValueError as error:
            sys.exit(f"vae-serve: {error}")
    _check_port_is_free(settings.host, settings.port, "--port")
    if settings.grpc_port is not None:
        _check_port_is_free(settings.host, settings.grpc_port, "--grpc-port")
    # Workers build their own app from the environment: hand the command-line overrides down.
    os.environ.update({f"VAE_{key.upper()}": str(value) for key, value in overrides.items()})
    # uvicorn drains on SIGTERM, then re-raises it under the handler it found: make that a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with ExitStack() as stack:
        if settings.workers > 1 and not os.environ.get(MULTIPROCESS_DIR):
            # The workers keep their metrics in files there, and a scrape sums them (core/metrics.py).
            os.environ[MULTIPROCESS_DIR] = stack.enter_context(tempfile.TemporaryDirectory(prefix="vae-metrics-"))
        uvicorn.run(
            "service.serve:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=logs.configure(settings.log_level),
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
