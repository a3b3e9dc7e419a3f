"""Prometheus metrics of the service. With several workers, `vae-serve` sets PROMETHEUS_MULTIPROC_DIR
before they start: each worker then keeps its samples in files there (prometheus_client's
multiprocess mode), and a scrape adds them up over the workers, whichever worker answers it."""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def exposition() -> bytes:
    """The text a scrape gets: this process's metrics, or with several workers the sum of all of theirs."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def worker_stopped() -> None:
    """A stopping worker's gauges leave the sum (its counters and histograms stay counted)."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(os.getpid())


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
QUEUED = Gauge(
    "vae_batch_queue", "Inputs waiting to join a model call.", ["model", "graph"], multiprocess_mode="livesum"
)
CANCELLED = Counter(
    "vae_cancelled_total",
    "Requests whose caller went away (closed connection, gRPC cancel or deadline) while they waited for a model "
    "call: dropped from the batch, at no model call.",
    ["model", "graph"],
)
IN_FLIGHT = Gauge("vae_requests_in_flight", "Requests being handled.", multiprocess_mode="livesum")
REJECTED = Counter("vae_rejections_total", "Requests refused before reaching a route.", ["reason"])
# What the inputs are like, per model: a change in these is a change in the inputs (a new scanner, a
# new app, the wrong model) before users notice it (README, "Metrics").
PICTURES = Counter(
    "vae_pictures_total",
    "Uploaded pictures by what the picture pipeline did: taken as sent (training form), framed by the recipe, "
    "or rejected.",
    ["model", "outcome"],
)
INVERTED = Counter("vae_pictures_inverted_total", "Uploaded pictures inverted (dark ink on light paper).", ["model"])
NOVELTY = Histogram(
    "vae_novelty_percentile",
    "Novelty percentile of each encoded picture among the model's own test images (uniform on its own kind).",
    ["model"],
    buckets=(1, 5, 10, 25, 50, 75, 90, 100),
)
UNFAMILIAR_PERCENTILE = 1  # the README's threshold for "not a picture this model knows"
UNFAMILIAR = Counter(
    "vae_unfamiliar_encodings_total", "Encoded pictures below novelty percentile 1: unlike the model's own.", ["model"]
)
