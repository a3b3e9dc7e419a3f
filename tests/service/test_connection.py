"""What reaches the socket: a response sent at once leaves in one write, a later body after its head."""

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from harness.server import free_port
from service.connection import HttpProtocol

BODY = b"0123456789" * 20


async def at_once(request):
    return Response(BODY, media_type="application/octet-stream")


async def later(request):
    async def chunks():
        await asyncio.sleep(0.05)  # the body comes turns after the head
        yield BODY

    return StreamingResponse(chunks(), media_type="application/octet-stream")


APP = Starlette(routes=[Route("/at-once", at_once), Route("/later", later)])


class Recorder:
    """The transport under test's writes, as they reach the real one."""

    def __init__(self, transport: asyncio.Transport, sent: list[bytes]):
        self._transport = transport
        self._sent = sent

    def write(self, data: bytes) -> None:
        self._sent.append(bytes(data))
        self._transport.write(data)

    def writelines(self, pieces) -> None:
        pieces = list(pieces)
        self._sent.append(b"".join(pieces))
        self._transport.writelines(pieces)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


@contextmanager
def serving(protocol: type) -> Iterator[tuple[str, list[bytes]]]:
    """uvicorn with the given HTTP protocol in a thread; yields its URL and the writes to its sockets."""
    sent: list[bytes] = []

    class Recorded(protocol):
        def connection_made(self, transport):
            super().connection_made(Recorder(transport, sent))

    port = free_port()
    config = uvicorn.Config(APP, host="127.0.0.1", port=port, http=Recorded, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
            assert thread.is_alive(), "uvicorn did not start"
        yield f"http://127.0.0.1:{port}", sent
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_response_sent_at_once_leaves_in_one_write():
    with serving(HttpProtocol) as (url, sent), httpx.Client(base_url=url) as http:
        for _ in range(3):
            response = http.get("/at-once")
            assert response.content == BODY
    assert len(sent) == 3  # one per response, on one kept-alive connection
    assert all(write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b"\r\n\r\n" + BODY) for write in sent)


def test_uvicorns_own_protocol_writes_a_head_and_its_body_apart():
    """What HttpProtocol is for: should uvicorn come to write them together, it can go."""
    with serving(HttpToolsProtocol) as (url, sent):
        assert httpx.get(f"{url}/at-once").content == BODY
    assert len(sent) == 2


def test_a_head_whose_body_comes_later_leaves_at_the_end_of_its_turn():
    with serving(HttpProtocol) as (url, sent), httpx.Client(base_url=url) as http:
        with http.stream("GET", "/later") as response:
            assert response.status_code == 200  # the head arrived while the body was still to come
            assert response.read() == BODY
    head, *body = sent
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert BODY in b"".join(body)


def test_an_answer_written_just_before_the_connection_closes_is_not_lost():
    """uvicorn answers a malformed request with a 400 and closes at once: the held answer goes first."""
    with serving(HttpProtocol) as (url, sent):
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as client:
            client.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            received = b""
            while chunk := client.recv(4096):
                received += chunk
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert received == b"".join(sent)
