"""When to try again: a 503 (loading, or at capacity) or a failed connection, a bounded number of
times, after the service's Retry-After or an exponential backoff."""

import httpx

MAX_DELAY_S = 10.0
RETRIED_STATUSES = {503}
RETRIED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)


def delay(attempt: int, backoff: float, response: httpx.Response | None) -> float:
    """Seconds to wait before retry number attempt + 1."""
    retry_after = response.headers.get("retry-after", "") if response is not None else ""
    if retry_after.isdigit():
        return min(float(retry_after), MAX_DELAY_S)
    return min(backoff * 2**attempt, MAX_DELAY_S)
