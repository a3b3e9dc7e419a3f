"""Prometheus metrics of the service (per worker process)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("vae_requests_total", "Requests answered.", ["route", "method", "status"])
LATENCY = Histogram(
    "vae_request_duration_seconds",
    "Time from request to response.",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFERENCE = Histogram(
    "vae_inference_seconds",
    "Time of one model call (graph: encoder, decoder, or both for /encode's batches).",
    ["model", "graph"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
BATCH_SIZE = Histogram(
    "vae_batch_size", "Images per model call.", ["model", "graph"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
IN_FLIGHT = Gauge("vae_requests_in_flight", "Requests being handled.")
REJECTED = Counter("vae_rejections_total", "Requests refused before reaching a route.", ["reason"])
