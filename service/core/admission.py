"""What every front end holds a request to before it reaches the core, whatever carries it: the
in-flight limit, one count shared by REST and gRPC, and the API key's comparison."""

import hmac
import re
import secrets

from service.core.metrics import IN_FLIGHT

INTERNAL_ERROR = "internal error; quote the request id when reporting it"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def request_id(offered: str | None) -> str:
    """The caller's request id (X-Request-ID, or the gRPC metadata of that name) when it is a sane
    one, or a new one."""
    return offered if offered and _REQUEST_ID.match(offered) else secrets.token_hex(16)


class InFlight:
    """Requests in progress over every front end, against the one limit (VAE_MAX_IN_FLIGHT)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    def enter(self) -> None:
        self.count += 1
        IN_FLIGHT.inc()

    def leave(self) -> None:
        self.count -= 1
        IN_FLIGHT.dec()


def bearer_token(value: bytes) -> bytes:
    """The token of an `Authorization: Bearer TOKEN` value; empty for any other scheme."""
    scheme, _, token = value.partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


def only(secret: bytes, offered: list[bytes]) -> bool:
    """Some key is offered, and every key offered is the secret: one wrong key among right ones is
    refused, as an attacker's guess would be. Compared in constant time, every comparison run (a
    list, not a generator)."""
    return bool(offered) and all([hmac.compare_digest(key, secret) for key in offered])
