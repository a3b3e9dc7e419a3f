"""The real server over HTTP: encode -> decode -> sample, a graceful stop, clients that go away."""

import io
import socket
import struct

import httpx
import numpy as np
import psutil
from PIL import Image

from harness.bodies import png
from harness.server import metric, post_slowly, requests_in_flight, running_server, wait_until
from service.core.served import ASSESSMENT
from tests.service.imaging import digit_on_paper
from training.data import load_dataset


def test_encode_decode_sample_over_http(model_dir):
    with running_server(model_dir) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        encoded = http.post("/encode", content=png(digit_on_paper()), headers={"Content-Type": "image/png"})
        assert encoded.status_code == 200
        decoded = http.post("/decode", json={"z": encoded.json()["mu"]}, params={"upscale": 4})
        assert decoded.status_code == 200
        assert Image.open(io.BytesIO(decoded.content)).size == (112, 112)
        sampled = http.get("/sample", params={"n": 9, "seed": 1})
        assert Image.open(io.BytesIO(sampled.content)).size == (84, 84)
        assert "server" not in sampled.headers
        assert server.stop() == 0
        lines = server.log_lines()
    assert any(line["message"] == "ready" for line in lines)
    requests = [(line["method"], line["path"], line["status"]) for line in lines if line["message"] == "request"]
    served = [request for request in requests if request[1] != "/readyz"]  # the harness's polls before these
    assert served == [("POST", "/encode", 200), ("POST", "/decode", 200), ("GET", "/sample", 200)]


def test_sigterm_lets_the_request_in_flight_finish(model_dir):
    with running_server(model_dir) as server:
        result = {}
        thread = post_slowly(server.url, png(digit_on_paper()), 1.0, result)  # SIGTERM comes mid-upload
        wait_until(lambda: requests_in_flight(server.url) == 1, "the upload under way")
        assert server.stop() == 0
        thread.join()
        assert result["response"].status_code == 200
        assert np.isfinite(result["response"].json()["mu"]).all()


def test_clients_that_reset_mid_upload_cost_nothing_and_the_next_is_served(model_dir):
    picture = png(digit_on_paper())
    head = f"POST /encode HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {len(picture)}\r\n\r\n"
    with running_server(model_dir) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        clean = http.post("/encode", content=picture, headers={"Content-Type": "image/png"}).json()["mu"]
        port = int(server.url.rsplit(":", 1)[1])
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                raw.sendall(head.encode() + picture[:100])
                wait_until(lambda: requests_in_flight(server.url) == 1, "the half-sent upload under way")
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close: a reset
        wait_until(lambda: requests_in_flight(server.url) == 0, "the reset uploads given up")
        after = http.post("/encode", content=picture, headers={"Content-Type": "image/png"})
        assert after.status_code == 200 and after.json()["mu"] == clean
        assert server.stop() == 0
        lines = server.log_lines()
        assert [line for line in lines if line["level"] not in ("info", "debug")] == []  # no traceback
        assert [line["status"] for line in lines if line.get("path") == "/encode"] == [200, *[499] * 5, 200]


def test_two_workers_serve_add_up_their_metrics_and_stop_cleanly(model_dir):
    """Each scrape reaches one worker or the other, and every one of them counts all 8 requests."""
    with running_server(model_dir, "--workers", "2") as server:
        workers = {child.pid for child in psutil.Process(server.process.pid).children()}
        assert len(workers) >= 2
        for _ in range(8):
            response = httpx.post(  # a new connection each time: the kernel spreads them over the workers
                f"{server.url}/encode", content=png(digit_on_paper()), headers={"Content-Type": "image/png"}
            )
            assert response.status_code == 200
        for _ in range(6):
            page = httpx.get(f"{server.url}/metrics").text
            assert metric(page, "vae_requests_total", route="/encode", status="200") == 8
            assert metric(page, "vae_pictures_total", model="model", outcome="framed") == 8
            assert metric(page, "vae_batch_size_count", model="model") == 8
            assert metric(page, "vae_requests_in_flight") == 0  # /metrics is exempt: it counts in neither worker
        assert server.stop() == 0


def test_serves_the_bundled_model_from_any_directory(tmp_path):
    with running_server(None, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/readyz").json()["model_id"].startswith("mnist-")


def test_a_busy_port_fails_at_once_in_one_line_without_claiming_ready():
    import socket
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "service", "--port", str(port)], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr and '"ready"' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


LIMIT = 60_000


def _png_of_size(size: int) -> bytes:
    """A valid PNG of a digit on paper, padded to exactly size bytes by a text chunk before IEND."""
    import struct
    import zlib

    picture = png(digit_on_paper())
    data_size = size - len(picture) - 12  # a chunk is its length, type, data and CRC
    assert data_size > 8
    data = b"Comment\0" + b"x" * (data_size - 8)
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return picture[:-12] + chunk + picture[-12:]


def _chunked(body: bytes, chunk: int):
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


def test_the_body_limit_holds_for_streamed_and_chunked_uploads_on_the_real_server(model_dir):
    """As clients send them: a length given up front, or chunked transfer in the chunk sizes httpx,
    curl and browsers use; exactly the limit is served, one byte more is a 413, however it comes."""
    with running_server(model_dir, VAE_MAX_BODY_BYTES=str(LIMIT)) as server, httpx.Client(timeout=30) as http:
        for size, status in ((LIMIT, 200), (LIMIT + 1, 413)):
            body = _png_of_size(size)
            assert len(body) == size
            headers = {"Content-Type": "image/png"}
            sized = http.post(f"{server.url}/encode", content=body, headers=headers)
            assert sized.status_code == status, (size, sized.text)
            for chunk in (1024, 16_384, 65_536):
                streamed = http.post(f"{server.url}/encode", content=_chunked(body, chunk), headers=headers)
                assert streamed.status_code == status, (size, chunk, streamed.text)
                if status == 413:
                    assert streamed.json()["detail"] == f"request body over {LIMIT} bytes"
                else:
                    assert streamed.json()["mu"] == sized.json()["mu"]


TRIES = 5  # on a busy machine, the metrics read between the 64's arrival and the flush can miss it


def test_64_requests_whose_clients_leave_before_their_batch_cost_no_model_call(model_dir, sample_data_dir):
    """64 requests of MNIST digits queued together for one model call, which waits up to 100 ms for
    more to join; their clients all leave in that time, and the call never runs."""
    picture = png(load_dataset(sample_data_dir).test.images[0])
    head = f"POST /encode HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {len(picture)}\r\n\r\n"

    def queued_then_left() -> tuple[str, str, list[dict]] | None:
        """The metrics before and after and the request lines, or None when the 64 did not all reach
        the queue inside one wait of 100 ms (a busy machine): the setting's ceiling, so try again."""
        with running_server(model_dir, VAE_BATCH_WAIT_MS="100") as server:
            before = httpx.get(f"{server.url}/metrics").text
            port = int(server.url.rsplit(":", 1)[1])
            clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
            for client in clients:
                client.sendall(head.encode() + picture[:-1])
            wait_until(lambda: requests_in_flight(server.url) == 64, "all 64 requests waiting for their last byte")
            for client in clients:
                client.sendall(picture[-1:])

            def queued() -> float:
                return metric(httpx.get(f"{server.url}/metrics").text, "vae_batch_queue", model="model")

            try:
                wait_until(lambda: queued() == 64, "all 64 queued for the model, waiting up to 100 ms for more")
            except AssertionError:
                return None
            for client in clients:
                client.close()
            # the requests end at once; the batch they left is flushed, and counted, when its wait is over
            wait_until(lambda: requests_in_flight(server.url) == 0 and queued() == 0, "the batch the clients left")
            after = httpx.get(f"{server.url}/metrics").text
            assert server.stop() == 0
            return before, after, [line for line in server.log_lines() if line.get("path") == "/encode"]

    for _ in range(TRIES):
        if (outcome := queued_then_left()) is not None:
            break
    assert outcome is not None, f"the 64 requests never reached the queue together in {TRIES} tries"
    before, after, lines = outcome

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    modelled = delta("vae_batch_size_sum", model="model", graph=ASSESSMENT)
    cancelled = delta("vae_cancelled_total", model="model", graph=ASSESSMENT)
    statuses = [line["status"] for line in lines]
    assert len(statuses) == 64 and set(statuses) <= {200, 499}
    assert statuses == [499] * 64 and cancelled == 64 and modelled == 0
