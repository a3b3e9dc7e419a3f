"""Probes and metrics: GET /healthz, /readyz, /metrics."""

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from service.core.engine import NOT_READY
from service.core.errors import Unavailable
from service.core.metrics import exposition
from service.http.responses import ERRORS, JSONResponse
from service.http.routing import Call, Route

TAGS = ("operations",)
PROMETHEUS_TEXT = {
    "description": "The Prometheus text exposition format.",
    "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
}
# Uptime probes often send HEAD: the probes answer it as GET, without the body.
PROBE_METHODS = ("GET", "HEAD")


async def healthz(call: Call) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(call: Call) -> Response:
    engine = call.engine
    if not engine.ready:
        raise Unavailable(NOT_READY)
    served = engine.served()
    return JSONResponse({"status": "ready", "model_id": served.get(engine.repository().default_name), "models": served})


async def metrics(call: Call) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route(PROBE_METHODS, "/healthz", healthz, "Liveness: the process answers (HEAD too)", TAGS, response_model=dict),
    Route(
        PROBE_METHODS,
        "/readyz",
        readyz,
        "Readiness: every model is loaded and answered a warm-up call (HEAD too)",
        TAGS,
        response_model=dict,
        responses={503: ERRORS[503]},
    ),
    Route(
        ("GET",),
        "/metrics",
        metrics,
        "Prometheus metrics, summed over the workers",
        TAGS,
        responses={200: PROMETHEUS_TEXT},
    ),
]
