"""Probes and the model's description: GET /healthz, /readyz, /model, /metrics."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import serving
from service.errors import Problem
from service.params import no_query
from service.responses import ERRORS, JSONResponse

router = APIRouter(tags=["operations"])


# Uptime probes often send HEAD: the probes answer it as GET, without the body.
PROBE_METHODS = ["GET", "HEAD"]


@router.api_route("/healthz", methods=PROBE_METHODS, summary="Liveness: the process answers")
async def healthz(request: Request) -> dict:
    no_query(request)
    return {"status": "alive"}


@router.api_route(
    "/readyz",
    methods=PROBE_METHODS,
    summary="Readiness: the model is loaded and answered a warm-up call",
    responses={503: ERRORS[503]},
)
async def readyz(request: Request) -> dict:
    no_query(request)
    if not request.app.state.ready:
        raise Problem(503, "not ready: the model is loading, or the service is shutting down", {"Retry-After": "1"})
    return {"status": "ready", "model_id": request.app.state.inference.model.id}


@router.get("/model", summary="The served model's description (model.json)", responses={503: ERRORS[503]})
async def model(request: Request) -> JSONResponse:
    """Latent size, input/output contract, preprocessing, likelihood, training configuration,
    test metrics, library versions and file checksums, as written by the exporter."""
    no_query(request)
    return JSONResponse(serving(request).inference.model.description)


@router.get("/metrics", summary="Prometheus metrics of this worker", response_class=Response)
async def metrics(request: Request) -> Response:
    no_query(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
