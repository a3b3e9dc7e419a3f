"""Probes and metrics: GET /healthz, /readyz, /metrics."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.errors import Problem
from service.params import no_query
from service.responses import ERRORS

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers (HEAD too)")
async def healthz(request: Request) -> dict:
    no_query(request)
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="Readiness: every model is loaded and answered a warm-up call (HEAD too)",
    responses={503: ERRORS[503]},
)
async def readyz(request: Request) -> dict:
    no_query(request)
    if not request.app.state.ready:
        raise Problem(503, "not ready: the models are loading, or the service is shutting down", {"Retry-After": "1"})
    models = request.app.state.models
    served = {name: inference.model.id for name, inference in models.served().items()}
    return {"status": "ready", "model_id": served.get(models.default_name), "models": served}


# Uptime probes often send HEAD: the probes answer it as GET, without the body.
for probe in (healthz, readyz):
    router.add_api_route(f"/{probe.__name__}", probe, methods=["HEAD"], include_in_schema=False)


@router.get("/metrics", summary="Prometheus metrics of this worker", response_class=Response)
async def metrics(request: Request) -> Response:
    no_query(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
