"""The real server in a subprocess, as users run it, on a free port of 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: IO[str]

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log_lines(self) -> list[dict]:
        """The JSON lines the server wrote to stderr; read once it has stopped, as the file's offset
        is shared with the server."""
        self.log.seek(0)
        return [json.loads(line) for line in self.log.read().splitlines()]


@contextmanager
def running_server(
    model_dir: Path | None, *args: str, ready_within: float = 30, cwd: Path | None = None, **env: str
) -> Iterator[Server]:
    """vae-serve on a free port, ready; model_dir None serves the bundled models (or VAE_MODEL_REPOSITORY)."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: an unread pipe fills and stalls the server
    where = ["--model-dir", str(model_dir)] if model_dir is not None else []
    process = subprocess.Popen(
        [sys.executable, "-m", "service", *where, "--port", str(port), *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + ready_within
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited with {process.returncode}: {log.read()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready in time")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def post_slowly(url: str, body: bytes, pause: float, result: dict) -> threading.Thread:
    """POST an image in two parts with a pause between, in a thread; the response lands in result."""

    def chunks():
        yield body[:50]
        time.sleep(pause)
        yield body[50:]

    def request():
        result["response"] = httpx.post(
            f"{url}/encode", content=chunks(), headers={"Content-Type": "image/png"}, timeout=60
        )

    thread = threading.Thread(target=request)
    thread.start()
    return thread
