"""The Open Inference Protocol over gRPC, on the REST app's event loop and engine, so the same
models, limits, API key (as call metadata) and model batches serve both; the core's refusals become
gRPC status codes with the same messages. Outputs come back in the form the inputs came in:
raw_output_contents for raw_input_contents, typed contents for typed ones.

grpcio's threaded server takes the calls and hands each to the event loop, where the methods run.
Its asyncio server would run them there directly, but it accepts one call per turn of its poller,
so concurrent calls reached the model one by one and never shared a batch.
"""

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import numpy as np
from google.protobuf.message_factory import GetMessageClass
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from service.core import tracing
from service.core.admission import INTERNAL_ERROR, bearer_token, only, request_id
from service.core.engine import Engine
from service.core.errors import Conflict, InvalidInput, Refused, Unavailable, UnknownModel, UnsupportedImage, counted
from service.core.metrics import LATENCY, REJECTED, REQUESTS
from service.core.protocol import (
    BYTES,
    NUMPY_TYPES,
    SERVER_NAME,
    SERVER_VERSION,
    Half,
    ProtocolError,
    Tensor,
    element_count,
    load_folder,
    raw_tensor,
    repository_index,
    resolve,
    unload_folder,
)
from service.grpc import inference_pb2 as pb
from service.logs import RequestLog

log = logging.getLogger("service")
request_log = RequestLog(log)

SERVICE = "inference.GRPCInferenceService"  # the protocol's name for it, on the wire
EXTENSIONS = ["model_repository"]

CODES: dict[type[Refused], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    UnsupportedImage: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownModel: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
}
# The typed field of InferTensorContents that holds each datatype (FP16 has none: raw only).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}
UNLOAD_PARAMETERS = {"unload_dependents"}  # tritonclient sends it; a VAE's halves unload together anyway


class Denied(Exception):
    """A call refused before it reaches the core: its status code and message."""

    def __init__(self, code: grpc.StatusCode, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _metadata(context: grpc.ServicerContext, key: str) -> list[str]:
    return [value for name, value in context.invocation_metadata() or () if name == key]


def _offered_keys(context: grpc.ServicerContext) -> list[bytes]:
    """Every key the call offers, as `authorization: Bearer KEY` or `x-api-key: KEY` metadata."""
    bearer = [bearer_token(value.encode()) for value in _metadata(context, "authorization")]
    return bearer + [value.encode() for value in _metadata(context, "x-api-key")]


def rpc(*, guarded: bool = True):
    """A method of the protocol, held to the API key, the in-flight limit and the time limit unless it
    is a probe (guarded=False); every call leaves its log line and metrics, and a refusal becomes its
    status code."""

    def wrap(method: Callable[["Servicer", object], Awaitable[object]]):
        route = f"/{SERVICE}/{method.__name__}"

        @functools.wraps(method)
        async def handler(self: "Servicer", request: object, context: grpc.ServicerContext) -> object:
            return await self.call(route, guarded, method, request, context)

        return handler

    return wrap


class Servicer:
    """The protocol's methods, each named as the .proto names it."""

    def __init__(self, engine: Engine):
        settings = engine.settings
        self.engine = engine
        self.key = settings.api_key.get_secret_value().encode() if settings.api_key else None
        self.timeout = settings.request_timeout_s

    async def call(self, route: str, guarded: bool, method, request: object, context: grpc.ServicerContext):
        if not tracing.enabled:
            return await self._handled(route, guarded, method, request, context)
        metadata = {name: value for name, value in context.invocation_metadata() or () if isinstance(value, str)}
        with tracing.tracer.start_as_current_span(
            route, tracing.caller_context(metadata), SpanKind.SERVER, attributes={"rpc.system": "grpc"}
        ):
            return await self._handled(route, guarded, method, request, context)

    async def _handled(self, route: str, guarded: bool, method, request: object, context: grpc.ServicerContext):
        offered = _metadata(context, "x-request-id")
        call_id = request_id(offered[0] if offered else None)
        context.set_trailing_metadata((("x-request-id", call_id),))
        began = time.perf_counter()
        code, detail = grpc.StatusCode.OK, None
        try:
            return await (self._guarded(method, request, context) if guarded else method(self, request))
        except Refused as error:
            kind = next(kind for kind in type(error).__mro__ if kind in CODES)
            code, detail = CODES[kind], error.detail
        except Denied as error:
            code, detail = error.code, error.detail
        except asyncio.CancelledError:  # the client cancelled, or its deadline passed
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            log.exception("unhandled error", extra={"request_id": call_id})
            code, detail = grpc.StatusCode.INTERNAL, INTERNAL_ERROR
        finally:
            self._record(route, call_id, code, detail, time.perf_counter() - began)
        raise Denied(code, detail)

    async def _guarded(self, method, request: object, context: grpc.ServicerContext) -> object:
        if self.key is not None and not only(self.key, _offered_keys(context)):
            REJECTED.labels("unauthorized").inc()
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API key")
        in_flight = self.engine.in_flight
        if in_flight.full:
            REJECTED.labels("overloaded").inc()
            raise Denied(grpc.StatusCode.RESOURCE_EXHAUSTED, "service at capacity; retry shortly")
        in_flight.enter()
        try:
            async with asyncio.timeout(self.timeout):
                return await method(self, request)
        except TimeoutError:
            REJECTED.labels("timeout").inc()
            raise Denied(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"request not completed within {self.timeout:g} s"
            ) from None
        finally:
            in_flight.leave()

    @staticmethod
    def _record(route: str, request_id: str, code: grpc.StatusCode, detail: str | None, seconds: float) -> None:
        REQUESTS.labels(route, "gRPC", code.name).inc()
        if tracing.enabled:
            trace.get_current_span().set_attribute("rpc.grpc.status_code", code.value[0])
        LATENCY.labels(route).observe(seconds)
        fields = {"request_id": request_id, "method": "gRPC", "path": route, "status": code.name}
        fields["ms"] = round(seconds * 1000, 3)
        if detail is not None:
            fields["error"] = detail
        request_log.write(fields)

    @rpc(guarded=False)
    async def ServerLive(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @rpc(guarded=False)
    async def ServerReady(self, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.engine.ready)

    def _half(self, name: str, version: str) -> Half:
        return resolve(self.engine.repository(), name, version or None)

    @rpc()
    async def ModelReady(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        self._half(request.name, request.version)
        return pb.ModelReadyResponse(ready=True)

    @rpc()
    async def ServerMetadata(self, request: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    @rpc()
    async def ModelMetadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        return pb.ModelMetadataResponse(**self._half(request.name, request.version).metadata())

    @rpc()
    async def ModelInfer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        half = self._half(request.model_name, request.model_version)
        raw = bool(request.raw_input_contents)
        inputs = _inputs(request)
        requested = [output.name for output in request.outputs]
        half.check_outputs(requested)
        outputs = await half.infer(inputs, self.engine)
        response = pb.ModelInferResponse(model_name=half.name, model_version=half.version, id=request.id)
        for name in requested or outputs:
            array = outputs[name]
            tensor = response.outputs.add(name=name, datatype="FP32", shape=array.shape)
            if raw:
                response.raw_output_contents.append(np.ascontiguousarray(array, np.dtype("<f4")).tobytes())
            else:
                tensor.contents.fp32_contents.extend(array.reshape(-1).tolist())
        return response

    @rpc()
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest) -> pb.RepositoryIndexResponse:
        entries = repository_index(self.engine.repository())
        return pb.RepositoryIndexResponse(
            models=[
                pb.RepositoryIndexResponse.ModelIndex(
                    name=entry.name, version=entry.version or "", state=entry.state, reason=entry.reason
                )
                for entry in entries
                if entry.state == "READY" or not request.ready
            ]
        )

    @rpc()
    async def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest) -> pb.RepositoryModelLoadResponse:
        if request.parameters:
            raise ProtocolError(f"load parameters are not supported (got {', '.join(request.parameters)}); send none")
        await load_folder(self.engine.repository(), request.model_name)
        return pb.RepositoryModelLoadResponse()

    @rpc()
    async def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest) -> pb.RepositoryModelUnloadResponse:
        unknown = set(request.parameters) - UNLOAD_PARAMETERS
        if unknown:
            raise ProtocolError(f"unload parameters {', '.join(sorted(unknown))} are not supported; send none")
        await unload_folder(self.engine.repository(), request.model_name)
        return pb.RepositoryModelUnloadResponse()


def _inputs(request: pb.ModelInferRequest) -> list[Tensor]:
    """The request's tensors, from raw_input_contents (one entry per input, in order) or from each
    input's typed contents."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(
            f"raw_input_contents has {len(raw)} entries for {counted(len(request.inputs), 'input')}; "
            "send one per input, in order"
        )
    tensors = []
    for index, spec in enumerate(request.inputs):
        shape = tuple(spec.shape)
        if raw:
            if spec.HasField("contents"):
                raise ProtocolError(f"input '{spec.name}' has both contents and raw_input_contents; send one")
            tensors.append(raw_tensor(spec.name, spec.datatype, shape, raw[index]))
            continue
        count = element_count(spec.name, spec.datatype, shape)
        field = CONTENTS.get(spec.datatype)
        if field is None:
            raise ProtocolError(f"input '{spec.name}': {spec.datatype} has no typed contents; send raw_input_contents")
        values = getattr(spec.contents, field)
        if len(values) != count:
            holds = counted(count, "value")
            raise ProtocolError(
                f"input '{spec.name}': shape {list(shape)} holds {holds}, but contents.{field} has {len(values)}"
            )
        if spec.datatype == BYTES:
            tensors.append(Tensor(spec.name, BYTES, shape, list(values)))
        else:
            array = np.asarray(values, NUMPY_TYPES[spec.datatype]).reshape(shape)
            tensors.append(Tensor(spec.name, spec.datatype, shape, array))
    return tensors


def on_loop(method: Callable[[object, grpc.ServicerContext], Awaitable[object]], loop: asyncio.AbstractEventLoop):
    """A method of the servicer as grpcio's threads call it: run on the event loop, its thread waiting
    for the answer; a call that ends early (the client cancelled, or its deadline passed) cancels it."""

    def handle(request: object, context: grpc.ServicerContext) -> object:
        answer = asyncio.run_coroutine_threadsafe(method(request, context), loop)
        context.add_callback(answer.cancel)  # runs when the call ends, and does nothing once answered
        try:
            return answer.result()
        except Denied as denied:
            context.abort(denied.code, denied.detail)
        except concurrent.futures.CancelledError:
            context.abort(grpc.StatusCode.CANCELLED, "the call ended before its answer")

    return handle


def handlers(servicer: Servicer, loop: asyncio.AbstractEventLoop) -> grpc.GenericRpcHandler:
    """Each method of the .proto's service, served by the servicer's method of its name on the event
    loop, under the protocol's service name."""
    methods = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            method.name: grpc.unary_unary_rpc_method_handler(
                on_loop(getattr(servicer, method.name), loop),
                request_deserializer=GetMessageClass(method.input_type).FromString,
                response_serializer=GetMessageClass(method.output_type).SerializeToString,
            )
            for method in methods
        },
    )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@asynccontextmanager
async def serving(engine: Engine, grace_s: float) -> AsyncIterator[int]:
    """The gRPC server on VAE_GRPC_PORT for as long as the context lasts; yields the port it bound (0
    picks a free one). At the end, calls in flight get grace_s to finish; new ones are refused."""
    settings = engine.settings
    # A thread per call in progress, each waiting on the loop; past the in-flight limit, grpcio
    # refuses calls itself with RESOURCE_EXHAUSTED, as the service does over that limit.
    threads = concurrent.futures.ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="grpc")
    server = grpc.server(
        threads,
        # Messages over the body limit get RESOURCE_EXHAUSTED from grpcio before they are read into Python.
        options=[("grpc.max_receive_message_length", settings.max_body_bytes)],
        maximum_concurrent_rpcs=settings.max_in_flight,
    )
    server.add_generic_rpc_handlers([handlers(Servicer(engine), asyncio.get_running_loop())])
    port = server.add_insecure_port(_address(settings.host, settings.grpc_port))
    server.start()
    log.info("grpc listening", extra={"host": settings.host, "grpc_port": port})
    try:
        yield port
    finally:
        # The calls finishing in the grace period run on this loop: wait for the stop off it.
        await asyncio.to_thread(server.stop(grace_s).wait)
        threads.shutdown()
