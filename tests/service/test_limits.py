"""The intake's limits at their edges: exactly the limit passes, one more is refused, with the
status, message, header and rejection count each names. The intake is driven as an ASGI app over
a stand-in route that reads the body as the real ones do, so that each edge is reached exactly
and at once; the real server's own runs are in test_server.py and test_security.py."""

import asyncio

import orjson
import pytest
from prometheus_client import REGISTRY

from service.core.admission import InFlight
from service.http.middleware import Intake
from service.http.problems import Problem
from service.settings import Settings

LIMIT = 10  # bytes, and 2 requests in flight, and 0.2 s per request: small, so that each edge is cheap
STALLED = object()


class Exchange:
    """One request through the intake: the body in the given chunks, then (if STALLED ends the
    chunks) a client that sends nothing more."""

    def __init__(self, chunks: list, headers: list[tuple[bytes, bytes]], path: str, leaves: bool = False):
        self.leaves = leaves  # the client goes away once its body is sent
        self.chunks = list(chunks)
        self.headers = headers
        self.path = path
        self.reads = 0
        self.sent: list[dict] = []
        self.answered = asyncio.Event()

    async def receive(self) -> dict:
        await asyncio.sleep(0)  # a server's receive waits on the network: other tasks run first
        if not self.chunks:  # as uvicorn: once the body is in, the next message comes when the client leaves
            if not self.leaves:
                await self.answered.wait()  # (here, never before the response has ended)
            return {"type": "http.disconnect"}
        self.reads += 1
        chunk = self.chunks.pop(0)
        if chunk is STALLED:
            await asyncio.Event().wait()
        if isinstance(chunk, dict):  # a message as given, with the keys ASGI lets a server leave out
            return chunk
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.answered.set()

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def response_headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def detail(self) -> str:
        return orjson.loads(self.sent[1]["body"])["detail"]

    @property
    def body(self) -> bytes:
        return self.sent[1]["body"]


async def route(scope, receive, send) -> None:
    """Reads the whole body, as the image routes do, and answers with it; a Problem raised while
    reading becomes its status, as the service's dispatch makes it; /slow then takes its time.
    /unread takes its time without reading the body, as the routes without one do."""
    if scope["path"] == "/unread":
        await asyncio.sleep(10)
    body = b""
    try:
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
    except Problem as problem:
        await send({"type": "http.response.start", "status": problem.status_code, "headers": []})
        await send({"type": "http.response.body", "body": orjson.dumps({"detail": problem.detail})})
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(10)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def intake(**settings) -> Intake:
    limits = {"max_body_bytes": LIMIT, "max_in_flight": 2, "request_timeout_s": 0.2} | settings
    return Intake(route, Settings(**limits), lambda scope: scope["path"], InFlight(limits["max_in_flight"]))


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}


async def through(gate: Intake, chunks: list, headers=(), path: str = "/encode") -> Exchange:
    exchange = Exchange(chunks, list(headers), path)
    await gate(scope(path, exchange.headers), exchange.receive, exchange.send)
    return exchange


def call(gate: Intake, chunks: list, headers=(), path: str = "/encode") -> Exchange:
    return asyncio.run(through(gate, chunks, headers, path))


def rejections(reason: str) -> float:
    return REGISTRY.get_sample_value("vae_rejections_total", {"reason": reason}) or 0.0


def length(size: int | str) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(size).encode())]


CHUNKED = [(b"transfer-encoding", b"chunked")]


def test_a_declared_length_of_exactly_the_limit_is_read_and_one_more_is_refused_unread():
    assert call(intake(), [b"x" * LIMIT], length(LIMIT)).body == b"x" * LIMIT
    before = rejections("body_too_large")
    refused = call(intake(), [b"x" * (LIMIT + 1)], length(LIMIT + 1))
    assert refused.status == 413 and refused.detail == f"request body over {LIMIT} bytes"
    assert refused.reads == 0  # refused on the header, before a byte of the body is read
    assert rejections("body_too_large") - before == 1


@pytest.mark.parametrize("declared", ["-1", "1e3", "ten", " 5", "5 "])
def test_a_length_that_is_not_a_whole_number_is_refused_unread(declared):
    refused = call(intake(), [b"x" * 5], length(declared))
    assert refused.status == 413 and refused.reads == 0


@pytest.mark.parametrize(
    "chunks",
    [[b"x" * LIMIT], [b"x" * 4, b"x" * 6], [b"x"] * LIMIT, [b"x" * 3, b"", b"x" * 7]],
    ids=["one chunk", "two chunks", "a byte at a time", "with an empty chunk"],
)
def test_a_streamed_body_of_exactly_the_limit_is_served_however_it_is_cut(chunks):
    served = call(intake(), chunks, CHUNKED)
    assert served.status == 200 and served.body == b"x" * LIMIT


@pytest.mark.parametrize(
    "chunks",
    [[b"x" * (LIMIT + 1)], [b"x" * 6, b"x" * 5], [b"x"] * (LIMIT + 1)],
    ids=["one chunk", "two chunks, each under the limit", "a byte at a time"],
)
def test_a_streamed_body_one_byte_over_the_limit_is_refused_whole(chunks):
    before = rejections("body_too_large")
    refused = call(intake(), chunks, CHUNKED)
    assert refused.status == 413 and refused.detail == f"request body over {LIMIT} bytes"
    assert rejections("body_too_large") - before == 1


def test_a_body_that_passes_the_limit_with_its_declared_length_left_out_is_counted_too():
    assert call(intake(), [b"x" * 6, b"x" * 5]).status == 413


async def held_requests(gate: Intake, held: int) -> list[asyncio.Task]:
    """`held` requests in progress, each waiting for the rest of its body."""
    tasks = [asyncio.create_task(through(gate, [b"x", STALLED], CHUNKED)) for _ in range(held)]
    await asyncio.sleep(0)  # each reads its first chunk and waits
    return tasks


def test_exactly_the_in_flight_limit_is_served_and_one_more_gets_503_with_retry_after():
    async def scenario() -> tuple[Exchange, Exchange]:
        gate = intake(max_in_flight=2, request_timeout_s=5)
        tasks = await held_requests(gate, 1)
        second = await through(gate, [b"x" * 3], length(3))  # the second of two: within the limit
        tasks += await held_requests(gate, 1)
        third = await through(gate, [b"x" * 3], length(3))  # two in progress: the third is one too many
        for task in tasks:
            task.cancel()
        return second, third

    before = rejections("overloaded")
    second, third = asyncio.run(scenario())
    assert second.status == 200 and second.body == b"xxx"
    assert third.status == 503 and third.detail == "service at capacity; retry shortly"
    assert third.response_headers[b"retry-after"] == b"1"
    assert rejections("overloaded") - before == 1


def test_requests_that_end_leave_room_for_the_next():
    gate = intake(max_in_flight=1)
    for _ in range(3):  # each one's slot is given back, refused or served, and the count never drifts
        assert call(gate, [b"x" * 3], length(3)).status == 200
        assert call(gate, [b"x" * (LIMIT + 1)], CHUNKED).status == 413
    assert gate.in_flight.count == 0


def test_probes_and_metrics_answer_beyond_the_in_flight_limit():
    async def scenario() -> list[int]:
        gate = intake(max_in_flight=1, request_timeout_s=5)
        tasks = await held_requests(gate, 1)
        exempt = ("/healthz", "/readyz", "/metrics")
        answered = [(await through(gate, [b""], length(0), path)).status for path in exempt]
        for task in tasks:
            task.cancel()
        return answered

    assert asyncio.run(scenario()) == [200, 200, 200]


def test_an_upload_that_stops_arriving_is_a_408_and_a_slow_answer_a_504():
    before = rejections("timeout")
    upload = call(intake(), [b"x", STALLED], CHUNKED)
    assert upload.status == 408 and upload.detail == "request not completed within 0.2 s"
    answer = call(intake(), [b"x" * 3], length(3), path="/slow")
    assert answer.status == 504 and answer.detail == "request not completed within 0.2 s"
    assert rejections("timeout") - before == 2


def test_a_request_within_its_time_is_not_cut():
    answer = call(intake(request_timeout_s=5), [b"x" * 3], length(3))
    assert answer.status == 200 and answer.body == b"x" * 3


def test_a_declared_empty_body_that_takes_too_long_is_a_504():
    # Content-Length 0: the body is complete from the start, so the time went on the answer.
    assert call(intake(), [b""], length(0), path="/slow").status == 504


def test_a_route_that_never_reads_its_body_times_out_as_504_only_if_there_was_none_to_read():
    # With no body to wait for, the time went on the answer; with one declared, the intake
    # cannot tell that it arrived, and the request is taken to have stalled on it.
    assert call(intake(), [b""], length(0), path="/unread").status == 504
    assert call(intake(), [b""], path="/unread").status == 504
    assert call(intake(), [b"x" * 3], length(3), path="/unread").status == 408
    assert call(intake(), [b"x" * 3], CHUNKED, path="/unread").status == 408


def test_a_last_message_without_body_or_more_body_ends_an_upload_of_exactly_the_limit():
    # ASGI lets a server leave both keys out: no body is b"", no more_body is False.
    bare = {"type": "http.request"}
    assert call(intake(), [b"x" * LIMIT, bare], CHUNKED).body == b"x" * LIMIT
    assert call(intake(), [b"x" * LIMIT, bare], CHUNKED, path="/slow").status == 504


def test_a_request_cancelled_by_the_server_stopping_is_not_taken_for_a_client_that_left():
    """The server cancels what is in flight when it stops: that cancellation goes on up, where a
    client's leaving ends its request quietly as 499."""

    async def scenario() -> None:
        gate = intake(request_timeout_s=30)
        exchange = Exchange([b"abc"], length(3), "/slow")
        task = asyncio.create_task(gate(scope("/slow", exchange.headers), exchange.receive, exchange.send))
        await asyncio.sleep(0.05)  # the body is in; /slow takes its time
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())


def test_every_answer_carries_its_request_id_and_the_security_headers():
    served = call(intake(), [b"x"], [*length(1), (b"x-request-id", b"abc-1")])
    headers = served.response_headers
    assert headers[b"x-request-id"] == b"abc-1"
    assert headers[b"x-content-type-options"] == b"nosniff" and headers[b"cache-control"] == b"no-store"
    made_up = call(intake(), [b"x"], [*length(1), (b"x-request-id", b"not an id!")]).response_headers
    assert len(made_up[b"x-request-id"]) == 32  # an id the service made, not the offered one


def test_a_client_that_leaves_after_its_body_stops_its_request_and_is_logged_as_499():
    """/slow would take 10 s; the client leaves once its body is in, and the request stops at once."""
    gate = intake(request_timeout_s=30)
    closed = REGISTRY.get_sample_value("vae_requests_total", {"route": "/slow", "method": "POST", "status": "499"})

    async def scenario() -> tuple[Exchange, float]:
        exchange = Exchange([b"abc"], length(3), "/slow", leaves=True)
        started = asyncio.get_running_loop().time()
        await gate(scope("/slow", exchange.headers), exchange.receive, exchange.send)
        return exchange, asyncio.get_running_loop().time() - started

    exchange, seconds = asyncio.run(scenario())
    assert exchange.sent == [] and seconds < 5 and gate.in_flight.count == 0
    after = REGISTRY.get_sample_value("vae_requests_total", {"route": "/slow", "method": "POST", "status": "499"})
    assert after - (closed or 0) == 1
    served = call(gate, [b"abc"], length(3))  # a client that stays gets its answer
    assert served.status == 200 and served.body == b"abc"
