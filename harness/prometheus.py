"""A real run as an operator sees it: `vae-serve` under a mix of traffic (digits, photographs, refused
pictures, unknown routes, a body over the limit), scraped every second by a real Prometheus
(Debian's `prometheus`), and the dashboard's own queries evaluated by it."""

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from harness.bodies import png
from harness.pictures import combined
from harness.server import launched, listening_ports, running_server

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = json.loads((REPO / "deploy" / "grafana" / "vae-service.json").read_text())
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval at a 1 s scrape: enough samples for rate()


def panel_queries(panel: dict) -> list[tuple[str, str]]:
    """(legend, PromQL) of each of a panel's queries, with Grafana's variables as a run here sets them."""
    return [
        (
            target.get("legendFormat", ""),
            target["expr"].replace("$__rate_interval", RATE_INTERVAL).replace("$model", ".*"),
        )
        for target in panel["targets"]
    ]


def traffic(url: str, stop: threading.Event, digits: np.ndarray) -> None:
    """What users send, round after round, until stopped."""
    rng = np.random.default_rng(3)
    photos = [combined(digit, rng) for digit in digits[:8]]
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            for digit in digits[:16]:
                client.post("/encode", content=png(digit), headers={"Content-Type": "image/png"})
            for photo in photos:
                client.post("/encode", content=photo, headers={"Content-Type": "image/jpeg"})
            client.post("/models/fashion-mnist/encode", content=png(digits[0]), headers={"Content-Type": "image/png"})
            client.post("/encode", content=b"GIF89a, or so it says", headers={"Content-Type": "image/png"})
            client.post("/decode", json={"z": [[0.1, 0.2], [0.3, -0.4]]})
            client.post("/sample", json={"n": 4})
            client.get("/nowhere")
            client.post("/encode", content=b"x" * 2_000_000, headers={"Content-Type": "image/png"})


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr} | ({"time": at} if at else {})
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def query_range(self, expr: str, start: float, end: float) -> list[dict]:
        params = {"query": expr, "start": start, "end": end, "step": 1}
        answer = httpx.get(f"{self.url}/api/v1/query_range", params=params, timeout=30).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]


@contextmanager
def scraped_run(digits: np.ndarray, seconds: float) -> Iterator[tuple[Prometheus, float, float]]:
    """vae-serve (max body 1 MB) under traffic for `seconds`, scraped by Prometheus every second;
    yields Prometheus once the traffic has stopped and its last samples are in, and the run's span."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is missing: apt-get install prometheus (.ci/run does)")
    with (
        tempfile.TemporaryDirectory() as folder,
        running_server(None, VAE_MAX_BODY_BYTES="1000000") as server,
    ):
        target = server.url.removeprefix("http://")
        config = Path(folder) / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [{"job_name": "vae-service", "static_configs": [{"targets": [target]}]}],
                }
            )
        )
        command = [
            binary, f"--config.file={config}", f"--storage.tsdb.path={folder}/data",
            "--web.listen-address=127.0.0.1:0", "--log.level=warn",
        ]  # fmt: skip

        def ready(process: subprocess.Popen) -> bool:
            ports = listening_ports(process)
            return bool(ports) and httpx.get(f"http://127.0.0.1:{ports[0]}/-/ready").status_code == 200

        with launched(command, ready, ready_within=60) as process:
            url = f"http://127.0.0.1:{listening_ports(process)[0]}"
            stop = threading.Event()
            sender = threading.Thread(target=traffic, args=(server.url, stop, digits))
            start = time.time()
            sender.start()
            time.sleep(seconds)
            end = time.time()
            time.sleep(2)  # the scrapes that see the last requests
            stop.set()
            sender.join()
            yield Prometheus(url), start, end
