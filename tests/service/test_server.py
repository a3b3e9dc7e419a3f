"""The real server over HTTP: encode -> decode -> sample, and a graceful stop."""

import io
import threading
import time

import httpx
import numpy as np
from PIL import Image

from tests.service.imaging import digit_on_paper, png
from tests.service.server import running_server


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


def test_sigterm_lets_the_request_in_flight_finish(model_dir):
    body = png(digit_on_paper())
    with running_server(model_dir) as server:
        result = {}

        def slow_upload():
            yield body[:100]
            time.sleep(1.0)  # the stop signal arrives while the request is half uploaded
            yield body[100:]

        def request():
            result["response"] = httpx.post(f"{server.url}/encode", content=slow_upload(),
                                            headers={"Content-Type": "image/png"}, timeout=30)

        thread = threading.Thread(target=request)
        thread.start()
        time.sleep(0.4)
        assert server.stop() == 0
        thread.join()
        assert result["response"].status_code == 200
        assert np.isfinite(result["response"].json()["mu"]).all()
