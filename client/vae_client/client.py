"""`Client` and `AsyncClient`: the same methods, blocking or awaitable."""

import asyncio
import time
from collections.abc import Sequence

import httpx
import numpy as np

from vae_client import calls, retries
from vae_client.calls import Call
from vae_client.errors import ConnectionFailed, error_from
from vae_client.pictures import Picture
from vae_client.results import Digits, Encoding, Samples

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_BATCH = 32  # pictures per request: well within the service's limit (VAE_MAX_BATCH), and enough to batch


class _Base:
    """What both clients hold; they differ in how they send. `model` picks a served model by name
    (None: the service's default); `retries` bounds the retries of a 503 or a failed connection."""

    _http_class: type[httpx.Client] | type[httpx.AsyncClient]

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        batch_size: int = DEFAULT_BATCH,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ):
        self.url = url.rstrip("/")
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = self._http_class(base_url=self.url, headers=headers, timeout=timeout, transport=transport)


class Client(_Base):
    """Blocking client; errors raise VAEError subclasses carrying the problem details."""

    _http_class = httpx.Client

    def _send(self, call: Call):
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(call.method, call.path, **call.options)
            except retries.RETRIED_ERRORS as error:
                if attempt == self.retries:
                    raise ConnectionFailed(self.url, error) from error
                time.sleep(retries.delay(attempt, self.backoff, None))
                continue
            if response.status_code in retries.RETRIED_STATUSES and attempt < self.retries:
                time.sleep(retries.delay(attempt, self.backoff, response))
                continue
            if response.is_error:
                raise error_from(response)
            return call.parse(response)

    def encode(self, pictures: Picture | Sequence[Picture]) -> Encoding:
        """One picture -> mu, sigma of shape (K,); a list -> (N, K), in batches of batch_size."""
        many, requests = calls.encode(self.model, pictures, self.batch_size)
        return calls.joined([self._send(call) for call in requests], many)

    def encode_digits(self, picture: Picture) -> Digits:
        """A picture of a number -> each digit's box and mu, sigma of shape (N, K), left to right."""
        return self._send(calls.encode_digits(self.model, picture))

    def decode(self, z: Sequence[float] | Sequence[Sequence[float]] | np.ndarray):
        """One latent vector -> a PIL image; several -> a list of them."""
        return self._send(calls.decode(self.model, z))

    def sample(self, n: int = 1, *, seed: int | None = None, temperature: float = 1.0) -> Samples:
        return self._send(calls.sample(self.model, n, seed, temperature))

    def models(self) -> dict:
        """The served models and the default one."""
        return self._send(calls.models())

    def interpolate(self, start, end, steps: int = 8, path: str = "spherical") -> list:
        """Images between two latent vectors, or two pictures, both ends included."""
        return self._send(calls.interpolate(self.model, start, end, steps, path))

    def reconstruct(self, picture: Picture):
        """The decoder's image at the picture's posterior mean."""
        return self._send(calls.reconstruct(self.model, picture))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class AsyncClient(_Base):
    """As Client, for asyncio: `await client.encode(...)`. The batches of a long list of pictures
    are sent concurrently."""

    _http_class = httpx.AsyncClient

    async def _send(self, call: Call):
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(call.method, call.path, **call.options)
            except retries.RETRIED_ERRORS as error:
                if attempt == self.retries:
                    raise ConnectionFailed(self.url, error) from error
                await asyncio.sleep(retries.delay(attempt, self.backoff, None))
                continue
            if response.status_code in retries.RETRIED_STATUSES and attempt < self.retries:
                await asyncio.sleep(retries.delay(attempt, self.backoff, response))
                continue
            if response.is_error:
                raise error_from(response)
            return call.parse(response)

    async def encode(self, pictures: Picture | Sequence[Picture]) -> Encoding:
        many, requests = calls.encode(self.model, pictures, self.batch_size)
        return calls.joined(list(await asyncio.gather(*(self._send(call) for call in requests))), many)

    async def encode_digits(self, picture: Picture) -> Digits:
        return await self._send(calls.encode_digits(self.model, picture))

    async def decode(self, z: Sequence[float] | Sequence[Sequence[float]] | np.ndarray):
        return await self._send(calls.decode(self.model, z))

    async def sample(self, n: int = 1, *, seed: int | None = None, temperature: float = 1.0) -> Samples:
        return await self._send(calls.sample(self.model, n, seed, temperature))

    async def models(self) -> dict:
        return await self._send(calls.models())

    async def interpolate(self, start, end, steps: int = 8, path: str = "spherical") -> list:
        return await self._send(calls.interpolate(self.model, start, end, steps, path))

    async def reconstruct(self, picture: Picture):
        return await self._send(calls.reconstruct(self.model, picture))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
