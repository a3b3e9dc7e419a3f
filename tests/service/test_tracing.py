"""OpenTelemetry tracing: spans of REST and gRPC requests joined to the caller's traceparent, with
their children, read from the SDK's in-memory exporter; and the real server exporting over OTLP,
both protocols, to receivers built on OpenTelemetry's own protobuf messages."""

import asyncio
import os
import subprocess
import sys

import grpc
import httpx
import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contract.geometry import IMAGE_SHAPE
from harness.bodies import png
from harness.otlp import otlp_receiver
from harness.server import running_server, wait_until
from service.core import tracing
from service.core.batcher import Batcher
from service.core.engine import Engine
from service.core.served import ServedModel
from service.core.verified import VerifiedModel
from service.grpc import inference_pb2 as pb
from service.grpc.server import serving
from service.settings import Settings
from tests.service.conftest import served_by
from training.data import load_dataset

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)  # once per process: the global provider cannot be replaced


@pytest.fixture
def spans(monkeypatch):
    monkeypatch.setattr(tracing, "enabled", True)
    EXPORTER.clear()
    return EXPORTER


def by_name(finished) -> dict:
    return {span.name: span for span in finished}


def test_a_rest_request_is_a_span_of_the_callers_trace_with_its_steps(spans, model_dir, sample_data_dir):
    picture = png(load_dataset(sample_data_dir).test.images[0])
    with served_by(Settings(model_dir=model_dir)) as client:
        response = client.post(
            "/encode", content=picture, headers={"Content-Type": "image/png", "traceparent": TRACEPARENT}
        )
    assert response.status_code == 200
    found = by_name(spans.get_finished_spans())
    request = found["POST /encode"]
    assert f"{request.context.trace_id:032x}" == TRACE_ID and f"{request.parent.span_id:016x}" == PARENT_ID
    assert request.kind == trace.SpanKind.SERVER
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["vae.request_id"] == response.headers["x-request-id"]
    for step in ("read upload", "picture pipeline", "model call"):
        assert found[step].parent.span_id == request.context.span_id, step
        assert request.start_time <= found[step].start_time <= found[step].end_time <= request.end_time
    call = found["model call"].attributes
    assert call["vae.batch_size"] == 1 and call["vae.model_id"] == client.get("/model").json()["id"]


def test_callers_batched_together_each_get_the_wait_and_the_shared_call(spans):
    batcher = Batcher("traced", "encoder", lambda inputs: (inputs * 2,), 8, 0, model_id="traced-1")

    async def caller(name: str) -> None:
        with tracing.tracer.start_as_current_span(name):
            await batcher(np.zeros((1, 2), np.float32))

    async def both():
        await asyncio.gather(caller("first"), caller("second"))

    asyncio.run(both())
    finished = spans.get_finished_spans()
    for name in ("first", "second"):
        (request,) = [span for span in finished if span.name == name]
        children = {
            span.name: span for span in finished if span.parent and span.parent.span_id == request.context.span_id
        }
        assert set(children) == {"wait for the batch", "model call"}
        assert children["wait for the batch"].end_time == children["model call"].start_time
        assert children["model call"].attributes["vae.batch_size"] == 2
        assert children["model call"].attributes["vae.model_id"] == "traced-1"
    calls = [span for span in finished if span.name == "model call"]
    assert len({(span.start_time, span.end_time) for span in calls}) == 1, "one call, timed once for all"


def test_a_lone_call_and_a_batch_each_say_which_model_and_graph_ran(spans):
    """The "model call" span names the model, its half and the batch's size on both of the batcher's
    paths (a lone caller runs at once, callers together share a call); a model without an id
    (a plain script's) names none."""
    batcher = Batcher("named", "decoder", lambda inputs: (inputs * 2,), 8, 0)

    async def calls() -> None:
        await asyncio.gather(*(batcher(np.zeros((1, 2), np.float32)) for _ in range(3)))
        await batcher(np.zeros((1, 2), np.float32))  # after a batch, a call still looks for company
        await batcher(np.zeros((1, 2), np.float32))  # having found none, the next one runs at once

    asyncio.run(calls())
    attributes = [dict(span.attributes) for span in spans.get_finished_spans() if span.name == "model call"]
    sizes = [attribute.pop("vae.batch_size") for attribute in attributes]
    assert sizes == [3, 3, 3, 1, 1]  # each caller of a shared call has its own span of it
    assert attributes == [{"vae.model": "named", "vae.graph": "decoder"}] * 5


def test_a_served_models_halves_share_calls_up_to_its_batch_and_name_themselves(spans, model_dir):
    """ServedModel wires each half's batcher with its model's name, id, batch limit and wait: two
    decodes wait for company, three more fill the batch of 4 at once, the fifth runs alone."""
    model = VerifiedModel.load(model_dir, 1)
    served = ServedModel("halves", model, max_batch=4, max_wait_s=0.5)
    z = np.zeros((1, model.latent_size), np.float32)

    async def calls() -> None:
        waiting = asyncio.gather(served.decode(z), served.decode(z))
        await asyncio.sleep(0.05)  # well inside the wait
        await asyncio.gather(waiting, *(served.decode(z) for _ in range(3)))
        await served.encode(np.zeros((1, *IMAGE_SHAPE), np.float32))

    asyncio.run(calls())
    attributes = [dict(span.attributes) for span in spans.get_finished_spans() if span.name == "model call"]
    assert sorted(attribute.pop("vae.batch_size") for attribute in attributes) == [1, 1, 4, 4, 4, 4]
    halves = sorted(attribute.pop("vae.graph") for attribute in attributes)
    assert halves == ["decoder"] * 5 + ["encoder"]
    assert attributes == [{"vae.model": "halves", "vae.model_id": model.id}] * 6


def test_a_grpc_call_is_a_span_of_the_callers_trace(spans, model_dir):
    request = pb.ModelInferRequest(model_name="model-decoder", raw_input_contents=[np.zeros(2, np.float32).tobytes()])
    request.inputs.add(name="z", datatype="FP32", shape=[1, 2])

    async def call() -> None:
        with Engine.started(Settings(model_dir=model_dir, grpc_port=0)) as engine:
            async with serving(engine, grace_s=1) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
                await infer(request.SerializeToString(), metadata=(("traceparent", TRACEPARENT),), timeout=10)

    asyncio.run(call())
    found = by_name(spans.get_finished_spans())
    span = found["/inference.GRPCInferenceService/ModelInfer"]
    assert f"{span.context.trace_id:032x}" == TRACE_ID and f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.attributes["rpc.system"] == "grpc" and span.attributes["rpc.grpc.status_code"] == 0
    assert found["model call"].parent.span_id == span.context.span_id


def test_with_tracing_off_no_span_is_made(model_dir):
    EXPORTER.clear()
    with served_by(Settings(model_dir=model_dir)) as client:
        assert client.post("/decode", json={"z": [0, 0]}, headers={"traceparent": TRACEPARENT}).status_code == 200
    assert EXPORTER.get_finished_spans() == ()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_server_exports_its_spans_over_otlp(model_dir, protocol):
    with otlp_receiver(protocol) as (endpoint, received):
        environment = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": "vae-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 100 ms rather than every 5 s
        }
        with running_server(model_dir, **environment) as server:
            httpx.post(f"{server.url}/decode", json={"z": [0, 0]}, headers={"traceparent": TRACEPARENT})
            wait_until(lambda: "POST /decode" in received.names, f"the spans over OTLP {protocol}")
    assert "model call" in received.names


def test_an_unknown_protocol_stops_the_server_with_one_line(model_dir):
    unknown = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}
    result = subprocess.run(
        [sys.executable, "-m", "service", "--model-dir", str(model_dir), "--port", "0"],
        env={**os.environ, **unknown}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "vae-serve: OTEL_EXPORTER_OTLP_PROTOCOL is 'thrift'; use 'grpc' or 'http/protobuf'"
    ]
