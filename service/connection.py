"""uvicorn's HTTP protocol, with a response's head and body sent in one write.

uvicorn writes a response's status line and headers when the app starts the response, and its body
when the app sends it: two system calls, two TCP segments for every small answer, and on the
client's side two wake-ups. Here each connection's writes wait for the next write of the same turn
of the event loop and leave with it, so that a response the app sends at once (as every endpoint
here does) goes out as one segment; a write with no other after it leaves at the end of its turn.
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeldWrites:
    """A transport whose writes wait for the next write of the same event-loop turn and leave with it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = data
            self._loop.call_soon(self._release)
        else:
            self._transport.writelines((self._held, data))
            self._held = None

    def _release(self) -> None:
        if self._held is not None and not self._transport.is_closing():
            self._transport.write(self._held)
        self._held = None

    def close(self) -> None:
        self._release()
        self._transport.close()

    def __getattr__(self, name: str) -> object:  # the rest is the transport's own
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through HeldWrites."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeldWrites(transport, self.loop))
