"""ASGI middleware: request ids, logs, metrics and limits around every request; the API key."""

import asyncio
import logging
import time
from collections.abc import Callable
from functools import lru_cache

from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core import tracing
from service.core.admission import INTERNAL_ERROR, InFlight, bearer_token, only, request_id
from service.core.metrics import LATENCY, REJECTED, REQUESTS
from service.http.docs import is_public
from service.http.page import is_page
from service.http.problems import Problem, error_document
from service.logs import RequestLog
from service.settings import Settings

log = logging.getLogger("service")
request_log = RequestLog(log)

PROBE_PATHS = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"}
METRICS_PATH = "/metrics"
EXEMPT_PATHS = PROBE_PATHS | {METRICS_PATH}  # must answer even when the service is full
CLIENT_CLOSED = 499  # nginx's status for a request its client gave up on: logged and counted, never sent
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def send_problem(
    send: Send, scope: Scope, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    body, media_type = error_document(scope["path"], status, detail, scope.setdefault("state", {}))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Exchange:
    """One request's response as the intake sees it: its status, once started, and its request id
    added to its headers."""

    __slots__ = ("_send", "request_id", "status", "started")

    def __init__(self, send: Send, request_id: str):
        self._send = send
        self.request_id = request_id
        self.status = 500
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
            message["headers"] = [
                *message.get("headers", []),
                (b"x-request-id", self.request_id.encode()),
                *SECURITY_HEADERS,
            ]
        await self._send(message)


@lru_cache(maxsize=4096)  # bounded: the method is the client's to choose
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route)


class Intake:
    """Outermost: every request gets an id, one JSON log line and its metrics, and an unexpected
    exception becomes a 500 problem without a stack trace on the wire. Before any route it is held
    to the limits: a body over the size limit is refused before it is read (413), a request beyond
    the in-flight limit gets 503 with Retry-After, and one that runs past the time limit, slow
    uploads included, gets 408 while uploading and 504 after. A request whose client leaves once its
    body is in stops where it is (logged as 499): waiting for a model call, it is dropped from the
    batch. The probes and /metrics are exempt, so that they answer even when the service is full.

    One layer for both jobs, not one per job as Starlette writes its own: every message of every
    request passes through each layer's wrappers of send and receive, and on the data plane two
    layers' wrappers were a measurable share of a request's CPU."""

    def __init__(self, app: ASGIApp, settings: Settings, route_label: Callable[[Scope], str], in_flight: InFlight):
        self.app = app
        self.route_label = route_label  # the route's path template, for the metrics
        self.max_body = settings.max_body_bytes
        self.timeout = settings.request_timeout_s
        self.in_flight = in_flight  # shared with the other front ends

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not tracing.enabled:
            await self._handled(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        route = self.route_label(scope)
        with tracing.tracer.start_as_current_span(
            f"{scope['method']} {route}", tracing.caller_context(headers), SpanKind.SERVER
        ) as span:
            exchange = await self._handled(scope, receive, send)
            span.set_attributes(
                {
                    "http.request.method": scope["method"],
                    "http.route": route,
                    "http.response.status_code": exchange.status,
                    "vae.request_id": exchange.request_id,
                }
            )

    async def _handled(self, scope: Scope, receive: Receive, send: Send) -> Exchange:
        offered = _header(scope, b"x-request-id")
        exchange = Exchange(send, request_id(offered))
        scope.setdefault("state", {})["request_id"] = exchange.request_id
        began = time.perf_counter()
        try:
            if scope["path"] in EXEMPT_PATHS:
                await self.app(scope, receive, exchange.send)
            else:
                await self._limited(scope, receive, exchange)
        except ClientDisconnect:  # the client went away mid-upload: nobody is left to answer
            exchange.status = CLIENT_CLOSED
        except Exception:
            log.exception("unhandled error", extra={"request_id": exchange.request_id})
            if not exchange.started:
                await send_problem(exchange.send, scope, 500, INTERNAL_ERROR)
        finally:
            self._record(scope, exchange, time.perf_counter() - began)
        return exchange

    async def _limited(self, scope: Scope, receive: Receive, exchange: Exchange) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            REJECTED.labels("body_too_large").inc()
            return await send_problem(exchange.send, scope, 413, f"request body over {self.max_body} bytes")
        if self.in_flight.full:
            REJECTED.labels("overloaded").inc()
            return await send_problem(
                exchange.send, scope, 503, "service at capacity; retry shortly", [(b"retry-after", b"1")]
            )
        received = 0
        body_complete = declared == "0" or (declared is None and _header(scope, b"transfer-encoding") is None)
        task = asyncio.current_task()
        watcher: asyncio.Task | None = None
        gone = False

        async def cancel_when_gone() -> None:
            """Once the body is in, the next message says the client left, or that the response ended."""
            nonlocal gone
            if (await receive())["type"] == "http.disconnect" and not exchange.started:
                gone = True
                task.cancel()

        async def counted_receive() -> Message:
            nonlocal received, body_complete, watcher
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_body:
                    REJECTED.labels("body_too_large").inc()
                    raise Problem(413, f"request body over {self.max_body} bytes")
                if body_complete and watcher is None:
                    watcher = asyncio.get_running_loop().create_task(cancel_when_gone())
            return message

        self.in_flight.enter()
        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, counted_receive, exchange.send)
        except TimeoutError:
            REJECTED.labels("timeout").inc()
            if not exchange.started:
                status = 504 if body_complete else 408
                await send_problem(exchange.send, scope, status, f"request not completed within {self.timeout:g} s")
        except asyncio.CancelledError:
            if not gone:  # the server is stopping
                raise
            task.uncancel()  # the client left: its request stops, and with it any wait for a model call
            exchange.status = CLIENT_CLOSED
        finally:
            self.in_flight.leave()
            if watcher is not None:
                watcher.cancel()

    def _record(self, scope: Scope, exchange: Exchange, seconds: float) -> None:
        requests, latency = _request_series(self.route_label(scope), scope["method"], exchange.status)
        requests.inc()
        latency.observe(seconds)
        fields = {
            "request_id": exchange.request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": exchange.status,
            "ms": round(seconds * 1000, 3),
        }
        if "error" in scope["state"]:
            fields["error"] = scope["state"]["error"]
        request_log.write(fields)


class RequireApiKey:
    """With an API key set, every request but the probes must carry it, as `Authorization: Bearer
    KEY` or `X-API-Key: KEY`; compared in constant time, refused with one message whatever was wrong.
    /metrics also takes the metrics token, if one is set: a scraper then holds no data-plane key."""

    def __init__(self, app: ASGIApp, api_key: str, metrics_token: str | None = None):
        self.app = app
        self.key = api_key.encode()
        self.metrics_token = metrics_token.encode() if metrics_token else None

    @staticmethod
    def _exempt(scope: Scope) -> bool:
        path = scope["path"]
        return path in PROBE_PATHS or is_public(path) or is_page(path) or scope["method"] == "OPTIONS"

    @staticmethod
    def _offered(scope: Scope) -> list[bytes]:
        """Every key the request offers, in either header, each as many times as it is sent."""
        offered = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                offered.append(bearer_token(value))
            elif name == b"x-api-key":
                offered.append(value)
        return offered

    def _accepted(self, scope: Scope) -> bool:
        """Only the API key is offered, or (for /metrics alone) only the metrics token."""
        offered = self._offered(scope)
        scraping = self.metrics_token is not None and scope["path"] == METRICS_PATH
        return only(self.key, offered) or (scraping and only(self.metrics_token, offered))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope):
            return await self.app(scope, receive, send)
        if not self._accepted(scope):
            REJECTED.labels("unauthorized").inc()
            return await send_problem(
                send, scope, 401, "missing or invalid API key", [(b"www-authenticate", b'Bearer realm="vae"')]
            )
        await self.app(scope, receive, send)
