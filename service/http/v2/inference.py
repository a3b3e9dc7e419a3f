"""The Open Inference Protocol's REST routes (kserve/open-inference-protocol): server and model
health, metadata, and inference on each VAE's encoder and decoder."""

from starlette.responses import Response

from service.core.engine import NOT_READY
from service.core.errors import Unavailable
from service.core.protocol import SERVER_NAME, SERVER_VERSION, Half, ProtocolError, resolve, served_names
from service.http.problems import PROTOCOL_STATUS
from service.http.responses import JSONResponse
from service.http.routing import Call, OpaqueBody, PathParameter, Route
from service.http.v2.wire import HEADER_LENGTH, encode_response, parse_request

TAGS = ("open inference protocol (v2)",)
SERVER = {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["binary_tensor_data", "model_repository"]}
PATH_DOCS = {
    "model_name": PathParameter("`{vae}-encoder` or `{vae}-decoder`.", "mnist-encoder"),
    "model_version": PathParameter("The content digest GET /v2/models/{model_name} lists."),
}
V2_ERROR = {"description": 'Error: {"error": "..."}', "content": {"application/json": {}}}
V2_ERRORS = {400: V2_ERROR, 404: V2_ERROR, 503: V2_ERROR}
VERSIONED = "/versions/{model_version}"


async def server_metadata(call: Call) -> Response:
    return JSONResponse(SERVER)


async def server_live(call: Call) -> Response:
    return JSONResponse({"live": True})


async def server_ready(call: Call) -> Response:
    if not call.engine.ready:
        raise Unavailable(NOT_READY)
    return JSONResponse({"ready": True})


async def model_list(call: Call) -> Response:
    return JSONResponse({"models": served_names(call.engine.repository())})


def _half(call: Call) -> Half:
    return resolve(call.engine.repository(), call.path["model_name"], call.path.get("model_version"))


async def model_metadata(call: Call) -> Response:
    return JSONResponse(_half(call).metadata())


async def model_ready(call: Call) -> Response:
    return JSONResponse({"name": _half(call).name, "ready": True})


INFER_BODY = OpaqueBody(
    {
        "required": True,
        "description": "An inference request (JSON), or with the binary tensor data extension the JSON "
        "header followed by the raw tensors, its size in Inference-Header-Content-Length.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
)


async def infer(call: Call) -> Response:
    half = _half(call)
    request = call.request
    parsed = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
    for field, given, served in (
        ("model_name", parsed.model_name, half.name),
        ("model_version", parsed.model_version, half.version),
    ):
        if given is not None and given != served:
            raise ProtocolError(f"the request's {field} is {given!r}, but it was sent to {served!r}")
    requested = parsed.outputs or []
    half.check_outputs([output.name for output in requested])
    outputs = await half.infer(parsed.inputs, call.engine)
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


def _route(methods: tuple[str, ...], path: str, endpoint, summary: str, **declared) -> Route:
    """A route of the protocol: its errors as the protocol's statuses, its path parameters described."""
    names = {name: doc for name, doc in PATH_DOCS.items() if "{" + name + "}" in path}
    return Route(methods, "/v2" + path, endpoint, summary, TAGS, statuses=PROTOCOL_STATUS, path_docs=names, **declared)


MODEL = "/models/{model_name}"
MODEL_LIST = "The protocol models served (not in the protocol; Triton and MLServer have one)"
INFER = {"responses": V2_ERRORS, "body": INFER_BODY}
ROUTES = [
    _route(("GET",), "", server_metadata, "Server metadata"),
    _route(("GET",), "/health/live", server_live, "Server live"),
    _route(("GET",), "/health/ready", server_ready, "Server ready: every model loaded and warmed", responses=V2_ERRORS),
    _route(("GET",), "/models", model_list, MODEL_LIST),
    _route(("GET",), MODEL, model_metadata, "Model metadata", responses=V2_ERRORS),
    _route(("GET",), MODEL + VERSIONED, model_metadata, "Model metadata, one version", responses=V2_ERRORS),
    _route(("GET",), MODEL + "/ready", model_ready, "Model ready", responses=V2_ERRORS),
    _route(("GET",), MODEL + VERSIONED + "/ready", model_ready, "Model ready, one version", responses=V2_ERRORS),
    _route(("POST",), MODEL + "/infer", infer, "Inference", **INFER),
    _route(("POST",), MODEL + VERSIONED + "/infer", infer, "Inference, one version", **INFER),
]
