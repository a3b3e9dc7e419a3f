"""A client for the VAE service: `Client` (blocking) and `AsyncClient` (asyncio), one method per route."""

from vae_client.client import AsyncClient, Client
from vae_client.errors import (
    BadRequest,
    ConnectionFailed,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
    VAEError,
)
from vae_client.results import Digits, Encoding, Samples

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "ConnectionFailed",
    "Digits",
    "Encoding",
    "NotFound",
    "Samples",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "VAEError",
]
