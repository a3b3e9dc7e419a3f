"""An OTLP trace receiver, built on OpenTelemetry's own protobuf messages, over either protocol the
service exports with: what a collector would be to the service, for tests and benchmarks."""

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Received:
    """The span names an OTLP receiver got."""

    def __init__(self):
        self.names: list[str] = []

    def add(self, message: trace_service_pb2.ExportTraceServiceRequest) -> None:
        self.names += [
            span.name for spans in message.resource_spans for scope in spans.scope_spans for span in scope.spans
        ]


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received):
        self.received = received

    def Export(self, request, context):  # noqa: N802 (the proto's name)
        self.received.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def _http_handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

        def log_message(self, *_):
            pass

    return Handler


@contextmanager
def otlp_receiver(protocol: str) -> Iterator[tuple[str, Received]]:
    """A receiver on a free port of 127.0.0.1 for OTEL_EXPORTER_OTLP_PROTOCOL `grpc` or
    `http/protobuf`: yields (the OTEL_EXPORTER_OTLP_ENDPOINT to give the service, what it received)."""
    received = Received()
    if protocol == "grpc":
        server = grpc.server(futures.ThreadPoolExecutor(2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(received), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            yield f"http://127.0.0.1:{port}", received
        finally:
            server.stop(0)
    elif protocol == "http/protobuf":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(received))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", received
        finally:
            server.shutdown()
            server.server_close()
    else:
        raise ValueError(f"no OTLP receiver for protocol {protocol!r}; use 'grpc' or 'http/protobuf'")
