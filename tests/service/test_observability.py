"""Request ids in one structured log line per request, and Prometheus metrics."""

import asyncio
import json
import logging
import os

import numpy as np
import pytest
from prometheus_client import REGISTRY
from starlette.staticfiles import StaticFiles

from harness.bodies import png
from harness.server import metric
from service.core.served import ASSESSMENT, ServedModel
from service.logs import RequestLog
from service.settings import Settings
from tests.service.conftest import assert_problem, served_by
from tests.service.imaging import digit_on_paper
from training.data import load_dataset


def request_lines(capfd) -> list[dict]:
    """The request lines written to stderr, parsed."""
    return [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"message":"request"' in line]


def test_every_request_is_one_json_line_with_its_id_at_info_level(client, caplog, capfd):
    client.post("/decode", json={"z": [1.0]}, headers={"X-Request-ID": "quiet-1"})  # the logger is at WARNING
    with caplog.at_level(logging.INFO, logger="service"):
        response = client.post("/decode", json={"z": [1.0]}, headers={"X-Request-ID": "trace-42"})
    (line,) = request_lines(capfd)
    assert line["request_id"] == "trace-42" and line["level"] == "info" and line["logger"] == "service"
    assert line["method"] == "POST" and line["path"] == "/decode" and line["ms"] > 0
    assert line["status"] == 422 and "latent size is 2" in line["error"]
    assert response.json()["request_id"] == "trace-42"


def test_the_request_lines_of_one_loop_turn_are_written_together_and_whole(caplog, capfd, monkeypatch):
    log = RequestLog(logging.getLogger("service"))
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(bytes(data)) or real_write(fd, data))

    async def a_batch_finishing() -> None:
        for index in range(8):
            log.write({"request_id": f"batch-{index}", "status": 200})
        assert writes == []  # nothing yet: the turn is not over
        await asyncio.sleep(0)

    with caplog.at_level(logging.INFO, logger="service"):
        asyncio.run(a_batch_finishing())
    assert len(writes) == 1
    assert [line["request_id"] for line in request_lines(capfd)] == [f"batch-{index}" for index in range(8)]


def _fail(*_args, **_kwargs):
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize("stack", ["inference", "listing", "framework"])
def test_an_unexpected_error_is_a_500_problem_and_a_logged_traceback(client, caplog, capfd, monkeypatch, stack):
    """Declared routes are answered by the service's dispatch, the documentation and the explorer's
    files by FastAPI's stack: all answer an unexpected error with the same problem, and log the
    traceback with the request id."""
    if stack == "inference":
        monkeypatch.setattr(client.engine.model(), "assess", _fail)
        request = {"method": "POST", "url": "/encode", "content": png(digit_on_paper())}
    elif stack == "listing":
        monkeypatch.setattr(client.engine, "repository", _fail)
        request = {"method": "GET", "url": "/models"}
    else:
        monkeypatch.setattr(StaticFiles, "get_response", _fail)
        request = {"method": "GET", "url": "/explorer/"}
    with caplog.at_level(logging.INFO, logger="service"):
        response = client.request(**request, headers={"Content-Type": "image/png", "X-Request-ID": "oops-1"})
    body = assert_problem(response, 500, "quote the request id")
    assert "disk on fire" not in response.text and body["request_id"] == "oops-1"
    (failure,) = [record for record in caplog.records if record.exc_info]
    assert failure.request_id == "oops-1" and "disk on fire" in str(failure.exc_info[1])
    (line,) = request_lines(capfd)
    assert line["request_id"] == "oops-1" and line["status"] == 500


def test_metrics_count_requests_inference_batches_and_rejections(client):
    before = client.get("/metrics").text
    client.post("/encode", content=png(digit_on_paper()), headers={"Content-Type": "image/png"})
    client.post("/encode", content=b"x" * 1_000_001, headers={"Content-Type": "image/png"})
    after = client.get("/metrics").text

    def grown(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grown("vae_requests_total", route="/encode", method="POST", status="200") == 1
    assert grown("vae_requests_total", route="/encode", status="413") == 1
    assert grown("vae_rejections_total", reason="body_too_large") == 1
    assert grown("vae_inference_seconds_count", graph=ASSESSMENT) == 1
    assert grown("vae_batch_size_bucket", graph=ASSESSMENT, le="1.0") == 1
    assert grown("vae_batch_size_bucket", graph=ASSESSMENT, le="+Inf") == 1
    assert grown("vae_request_duration_seconds_count", route="/encode") == 2
    assert metric(after, "vae_requests_in_flight") == 0  # the scrape itself is exempt from the count


def test_refused_and_documentation_requests_are_counted_by_route(client):
    before = client.get("/metrics").text
    client.post("/encode", content=b"x" * 1_000_001, headers={"Content-Type": "image/png"})
    client.get("/docs")
    after = client.get("/metrics").text

    def grown(**labels: str) -> float:
        return metric(after, "vae_requests_total", **labels) - metric(before, "vae_requests_total", **labels)

    assert grown(route="/encode", status="413") == 1
    assert grown(route="/docs", status="200") == 1
    assert grown(route="unmatched") == 0


def test_data_plane_requests_are_counted_by_their_route_template(client):
    name = client.get("/models").json()["default"]
    before = client.get("/metrics").text
    client.post(f"/models/{name}/decode", json={"z": [0, 0]})
    client.post("/models/cifar/decode", json={"z": [0, 0]})
    z = {"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [0, 0]}
    client.post(f"/v2/models/{name}-decoder/infer", json={"inputs": [z]})
    after = client.get("/metrics").text

    def grown(**labels: str) -> float:
        return metric(after, "vae_requests_total", **labels) - metric(before, "vae_requests_total", **labels)

    assert grown(route="/models/{model}/decode", status="200") == 1
    assert grown(route="/models/{model}/decode", status="404") == 1
    assert grown(route="/v2/models/{model_name}/infer", status="200") == 1
    assert grown(route=f"/models/{name}/decode") == 0  # a template, not each path: the series stay few


def test_log_lines_carry_no_terminal_colours():
    from service.logs import JSONFormatter

    record = logging.makeLogRecord({"msg": "Started", "color_message": "\x1b[32mStarted\x1b[0m"})
    assert "\x1b" not in JSONFormatter().format(record) and "color_message" not in JSONFormatter().format(record)


def test_drift_metrics_count_what_the_pipeline_did_and_how_familiar_the_encodings_were(sample_data_dir):
    """Real MNIST digits as sent, a square of noise in training form (no digit the model knows), a
    dark digit on light paper (framed and inverted) and a blank page (rejected), on the bundled mnist
    model."""
    digits = load_dataset(sample_data_dir).test.images[:8]
    noise = np.zeros((28, 28), np.uint8)
    noise[4:24, 4:24] = np.random.default_rng(0).integers(0, 256, (20, 20))
    as_png = {"Content-Type": "image/png"}
    with served_by(Settings()) as client:
        before = client.get("/metrics").text
        answers = [client.post("/models/mnist/encode", content=png(digit), headers=as_png) for digit in digits]
        answers += [client.post("/models/mnist/encode", content=png(picture), headers=as_png)
                    for picture in (noise, digit_on_paper())]  # fmt: skip
        blank = client.post("/models/mnist/encode", content=png(np.full((40, 40), 255, np.uint8)), headers=as_png)
        after = client.get("/metrics").text
    assert blank.status_code == 422 and all(answer.status_code == 200 for answer in answers)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, model="mnist", **labels) - metric(before, name, model="mnist", **labels)

    assert delta("vae_pictures_total", outcome="as_sent") == 9
    assert delta("vae_pictures_total", outcome="framed") == 1
    assert delta("vae_pictures_total", outcome="rejected") == 1
    assert delta("vae_pictures_inverted_total") == 1
    percentiles = [answer.json()["novelty"]["percentile"] for answer in answers]
    assert percentiles[8] < 1 and sorted(percentiles[:8])[1] > 1  # noise unlike any digit; digits like theirs
    assert delta("vae_novelty_percentile_count") == 10
    assert delta("vae_novelty_percentile_sum") == pytest.approx(sum(percentiles), abs=0.01)
    assert delta("vae_novelty_percentile_bucket", le="1.0") == sum(value <= 1 for value in percentiles)
    assert delta("vae_unfamiliar_encodings_total") == sum(value < 1 for value in percentiles)


class GivenPercentiles:
    """A stand-in for a verified model whose encodings score the given novelty percentiles."""

    id = "given-1"
    encode = decode = None  # not called here

    def __init__(self, percentiles: list[float]):
        self.percentiles = np.asarray(percentiles)

    def assess(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        count = len(images)
        return (
            images,
            np.zeros((count, 2)),
            np.ones((count, 2)),
            np.zeros_like(images),
            np.zeros(count),
            self.percentiles,
        )


def test_an_encoding_is_unfamiliar_strictly_below_percentile_1():
    served = ServedModel("edge", GivenPercentiles([0.5, 1.0, 1.5]), max_batch=8, max_wait_s=0)
    counters = ("vae_unfamiliar_encodings_total", "vae_novelty_percentile_count")
    before = [REGISTRY.get_sample_value(name, {"model": "edge"}) for name in counters]
    asyncio.run(served.assess(np.zeros((3, 1, 28, 28), np.float32)))
    after = [REGISTRY.get_sample_value(name, {"model": "edge"}) for name in counters]
    assert [now - then for now, then in zip(after, before, strict=True)] == [1, 3]
