"""OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
is set. Then each request is a span joined to its caller's W3C `traceparent`, with children for
reading the upload, the picture pipeline, the wait for the batch and the model call; the SDK reads
the rest of its settings from the standard variables (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...),
and exports with OTLP over OTEL_EXPORTER_OTLP_PROTOCOL, `http/protobuf` (the default) or `grpc`.

Off, the code that would trace is skipped behind `enabled`, rather than run against the API's no-op
tracer: that one still costs a context switch per span on every request."""

import os
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
enabled = any(os.environ.get(name) for name in ENDPOINTS)
tracer = trace.get_tracer("vae-service")
_propagator = TraceContextTextMapPropagator()


_configured = False


def exporter() -> type:
    """The OTLP span exporter of the chosen protocol; a clear error for another protocol, or when
    the optional extra is not installed."""
    protocol = next((os.environ[name] for name in PROTOCOLS if os.environ.get(name)), "http/protobuf")
    if protocol not in ("grpc", "http/protobuf"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}; use 'grpc' or 'http/protobuf'")
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as error:  # the SDK and the exporters are the optional extra
        raise ValueError(f"tracing is on but {error.name} is missing: pip install 'vae-service[tracing]'") from None
    return OTLPSpanExporter


def configure() -> None:
    """Installs the SDK's tracer provider with the OTLP exporter, once per process; does nothing
    while tracing is off."""
    global _configured
    if not enabled or _configured:
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()  # its resource, sampler and limits from the OTEL_* variables
    provider.add_span_processor(BatchSpanProcessor(exporter()()))  # endpoint and headers from them too
    trace.set_tracer_provider(provider)
    _configured = True


def span(name: str, **attributes: str | int) -> AbstractContextManager:
    """A child of the current span while tracing is on; nothing otherwise."""
    return tracer.start_as_current_span(name, attributes=attributes) if enabled else nullcontext()


class Queued:
    """A caller waiting for the batch: its trace context and when it began to wait. Once its batch
    has run, its trace gets the wait and its share of the model call as spans of their own, timed as
    they happened (the call runs once for the whole batch, outside any one request's context)."""

    __slots__ = ("context", "since")

    def __init__(self):
        self.context = context.get_current()
        self.since = time.time_ns()

    def record(self, started: int, ended: int, attributes: dict) -> None:
        tracer.start_span("wait for the batch", self.context, start_time=self.since).end(end_time=started)
        call = tracer.start_span("model call", self.context, attributes=attributes, start_time=started)
        call.end(end_time=ended)


def caller_context(carrier: Mapping[str, str]) -> context.Context:
    """The caller's trace context from its `traceparent` (and `tracestate`), if it sent one."""
    return _propagator.extract(carrier)
