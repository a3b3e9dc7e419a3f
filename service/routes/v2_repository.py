"""The Open Inference Protocol's model repository extension: list the repository's folders, load
(or reload) one, unload one, without a restart. Behind the API key, like every route but the probes."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, ValidationError

from service.deps import repository
from service.model import ModelError
from service.params import no_query
from service.protocol.tensors import ProtocolError
from service.routes.v2 import V2_ERRORS

router = APIRouter(prefix="/v2/repository", tags=["open inference protocol (v2)"])


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready: bool = False


class LoadRequest(BaseModel):
    """The protocol allows parameters (Triton's override a model's configuration or files); this
    service takes none: a model is its folder."""

    model_config = ConfigDict(extra="forbid")
    parameters: dict[str, object] = {}


class UnloadParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unload_dependents: bool = False  # tritonclient sends it; a VAE's halves unload together anyway


class UnloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parameters: UnloadParameters = UnloadParameters()


async def _body(request: Request, model: type[BaseModel]) -> BaseModel:
    no_query(request)
    body = await request.body()
    try:
        parsed = model.model_validate_json(body or b"{}")
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise ProtocolError(f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None
    if isinstance(parsed, LoadRequest) and parsed.parameters:
        raise ProtocolError(f"load parameters are not supported (got {', '.join(parsed.parameters)}); send none")
    return parsed


@router.post("/index", summary="The repository's models and their state", responses=V2_ERRORS)
async def index(request: Request) -> list[dict]:
    """Each model folder: READY with its version, or UNAVAILABLE with the reason. {"ready": true}
    lists only the ready ones."""
    only_ready = (await _body(request, IndexRequest)).ready
    entries = repository(request).index()
    return [
        {"name": entry.name, "state": entry.state, "reason": entry.reason}
        | ({"version": entry.version} if entry.version else {})
        for entry in entries
        if entry.state == "READY" or not only_ready
    ]


@router.post("/models/{model_name}/load", summary="Load or reload a model folder", responses=V2_ERRORS)
async def load(request: Request, model_name: str) -> Response:
    """Verifies and warms the folder off the event loop, then swaps it in: requests in flight finish
    on the version they started with. A folder that fails verification leaves the loaded version
    serving; the error says why."""
    await _body(request, LoadRequest)
    try:
        await repository(request).load(model_name)
    except ModelError as error:
        raise ProtocolError(f"failed to load '{model_name}': {error}") from None
    return Response(status_code=200)


@router.post("/models/{model_name}/unload", summary="Unload a model", responses=V2_ERRORS)
async def unload(request: Request, model_name: str) -> Response:
    await _body(request, UnloadRequest)
    await repository(request).unload(model_name)
    return Response(status_code=200)
