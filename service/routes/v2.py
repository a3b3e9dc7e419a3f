"""The Open Inference Protocol's REST routes (kserve/open-inference-protocol): server and model
health, metadata, and inference on each VAE's encoder and decoder."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from service.deps import Serving, repository
from service.errors import Problem
from service.params import no_query
from service.protocol.models import Half, resolve, served_names
from service.protocol.tensors import HEADER_LENGTH, ProtocolError, encode_response, parse_request

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

SERVER = {"name": "vae-service", "version": "0.1.0", "extensions": ["binary_tensor_data", "model_repository"]}
ModelName = Annotated[str, Path(description="`{vae}-encoder` or `{vae}-decoder`.", examples=["mnist-encoder"])]
Version = Annotated[str, Path(description="The content digest GET /v2/models/{model_name} lists.")]
V2_ERROR = {"description": 'Error: {"error": "..."}', "content": {"application/json": {}}}
V2_ERRORS = {400: V2_ERROR, 404: V2_ERROR, 503: V2_ERROR}


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> dict:
    no_query(request)
    return SERVER


@router.get("/health/live", summary="Server live")
async def server_live(request: Request) -> dict:
    no_query(request)
    return {"live": True}


@router.get("/health/ready", summary="Server ready: every model loaded and warmed", responses=V2_ERRORS)
async def server_ready(request: Request) -> dict:
    no_query(request)
    if not request.app.state.ready:
        raise Problem(503, "not ready: the models are loading, or the service is shutting down", {"Retry-After": "1"})
    return {"ready": True}


@router.get("/models", summary="The protocol models served (not in the protocol; Triton and MLServer have one)")
async def model_list(request: Request) -> dict:
    no_query(request)
    return {"models": served_names(repository(request))}


def _half(request: Request, model_name: str, version: str | None) -> Half:
    no_query(request)
    return resolve(repository(request), model_name, version)


@router.get("/models/{model_name}", summary="Model metadata", responses=V2_ERRORS)
async def model_metadata(request: Request, model_name: ModelName) -> dict:
    return _half(request, model_name, None).metadata()


@router.get("/models/{model_name}/versions/{model_version}", summary="Model metadata, one version", responses=V2_ERRORS)
async def model_version_metadata(request: Request, model_name: ModelName, model_version: Version) -> dict:
    return _half(request, model_name, model_version).metadata()


@router.get("/models/{model_name}/ready", summary="Model ready", responses=V2_ERRORS)
async def model_ready(request: Request, model_name: ModelName) -> dict:
    return {"name": _half(request, model_name, None).name, "ready": True}


@router.get(
    "/models/{model_name}/versions/{model_version}/ready", summary="Model ready, one version", responses=V2_ERRORS
)
async def model_version_ready(request: Request, model_name: ModelName, model_version: Version) -> dict:
    return {"name": _half(request, model_name, model_version).name, "ready": True}


INFER_DOCS = {
    "requestBody": {
        "required": True,
        "description": "An inference request (JSON), or with the binary tensor data extension the JSON "
        "header followed by the raw tensors, its size in Inference-Header-Content-Length.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _infer(request: Request, model_name: str, version: str | None) -> Response:
    half = _half(request, model_name, version)
    parsed = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
    for field, given, served in (
        ("model_name", parsed.model_name, half.name),
        ("model_version", parsed.model_version, half.version),
    ):
        if given is not None and given != served:
            raise ProtocolError(f"the request's {field} is {given!r}, but it was sent to {served!r}")
    known = half.signature()[1]
    requested = parsed.outputs or []
    for output in requested:
        if output.name not in known:
            raise ProtocolError(
                f"unexpected inference output '{output.name}' for model '{half.name}'; it has {', '.join(known)}"
            )
    state = request.app.state
    outputs = await half.infer(parsed.inputs, Serving(state.settings, half.inference, state.pictures))
    if requested:
        chosen = [(output.name, outputs[output.name]) for output in requested]
        binary = {output.name for output in requested if output.parameters.binary_data or parsed.binary_output}
    else:
        chosen = list(outputs.items())
        binary = set(outputs) if parsed.binary_output else set()
    header = {"model_name": half.name, "model_version": half.version}
    if parsed.id is not None:
        header["id"] = parsed.id
    body, headers = encode_response(header, chosen, binary)
    return Response(body, headers=headers)


@router.post("/models/{model_name}/infer", summary="Inference", responses=V2_ERRORS, openapi_extra=INFER_DOCS)
async def infer(request: Request, model_name: ModelName) -> Response:
    return await _infer(request, model_name, None)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    summary="Inference, one version",
    responses=V2_ERRORS,
    openapi_extra=INFER_DOCS,
)
async def infer_version(request: Request, model_name: ModelName, model_version: Version) -> Response:
    return await _infer(request, model_name, model_version)


# The data plane's routes here, served without FastAPI's router (service.dataplane).
inference = [route for route in router.routes if route.endpoint in (infer, infer_version)]
