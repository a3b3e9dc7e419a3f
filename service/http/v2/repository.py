"""The Open Inference Protocol's model repository extension: list the protocol's models (each
folder's encoder and decoder), load (or reload) a folder, unload one, without a restart. A half's
name acts on its folder, and the answer names both halves. Behind the API key, like every route but
the probes."""

from functools import partial

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from contract.validation import dotted, first_error
from service.core.protocol import ProtocolError, halves_of, load_folder, repository_index, unload_folder
from service.http.problems import PROTOCOL_STATUS
from service.http.responses import JSONResponse
from service.http.routing import Call, OpaqueBody, PathParameter, Route
from service.http.v2.inference import TAGS, V2_ERRORS


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
    """The body in the protocol's words: an empty one is {}, an error names the field."""
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as error:
        raise ProtocolError(first_error(error, lambda location: dotted(location) or "body")) from None


async def index(call: Call) -> Response:
    """Each protocol model (a folder's encoder and decoder): READY with its version, or UNAVAILABLE
    with the reason. {"ready": true} lists only the ready ones."""
    only_ready = (await _body(call.request, IndexRequest)).ready
    entries = repository_index(call.engine.repository())
    return JSONResponse(
        [
            {"name": entry.name, "state": entry.state, "reason": entry.reason}
            | ({"version": entry.version} if entry.version else {})
            for entry in entries
            if entry.state == "READY" or not only_ready
        ]
    )


async def load(call: Call) -> Response:
    """Verifies and warms the folder off the event loop, then swaps it in: requests in flight finish
    on the version they started with. A folder that fails verification leaves the loaded version
    serving; the error says why."""
    parsed = await _body(call.request, LoadRequest)
    if parsed.parameters:
        raise ProtocolError(f"load parameters are not supported (got {', '.join(parsed.parameters)}); send none")
    folder = await load_folder(call.engine.repository(), call.path["model_name"])
    return JSONResponse({"folder": folder, "loaded": halves_of(folder)})


async def unload(call: Call) -> Response:
    """Unloads a folder's two halves; the default model's is refused (409), as the unprefixed routes
    and readiness stand on it."""
    await _body(call.request, UnloadRequest)
    folder = await unload_folder(call.engine.repository(), call.path["model_name"])
    return JSONResponse({"folder": folder, "unloaded": halves_of(folder)})


def _json(model: type[BaseModel]) -> OpaqueBody:
    """Read by _body, which words its errors as the protocol does; described by the model."""
    return OpaqueBody({"required": False, "content": {"application/json": {"schema": model.model_json_schema()}}})


PATH_DOCS = {
    "model_name": PathParameter("A model's name as the index lists it (mnist-encoder), or its folder's (mnist).")
}
repository_route = partial(Route, tags=TAGS, responses=V2_ERRORS, statuses=PROTOCOL_STATUS)
ROUTES = [
    repository_route(
        ("POST",), "/v2/repository/index", index, "The repository's models and their state", body=_json(IndexRequest)
    ),
    repository_route(
        ("POST",), "/v2/repository/models/{model_name}/load", load, "Load or reload a model folder",
        body=_json(LoadRequest), path_docs=PATH_DOCS,
    ),
    repository_route(
        ("POST",), "/v2/repository/models/{model_name}/unload", unload, "Unload a model",
        body=_json(UnloadRequest), path_docs=PATH_DOCS,
    ),
]  # fmt: skip
