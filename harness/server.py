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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _written(output: IO | int) -> str:
    """What a server wrote to its log file so far, to explain why it did not start."""
    if isinstance(output, int):
        return ""
    output.flush()
    output.seek(0)
    return ": " + output.read()


def _answers(ready: Callable[[], bool]) -> bool:
    try:
        return ready()
    except httpx.TransportError:
        return False


@contextmanager
def launched(
    command: list,
    ready: Callable[[], bool],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    output: IO | int = subprocess.DEVNULL,
    core: str | None = None,
    ready_within: float = 30,
) -> Iterator[subprocess.Popen]:
    """A server's command (on the given cores, through taskset), once ready() is true; stopped at the
    end with the children it started (uvicorn's workers, a peer's processes)."""
    pinned = ["taskset", "-c", core] if core else []
    process = subprocess.Popen(
        [*pinned, *map(str, command)], cwd=cwd, env={**os.environ, **(env or {})}, stdout=output, stderr=output
    )
    try:
        deadline = time.monotonic() + ready_within
        while not _answers(ready):
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}{_written(output)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not ready within {ready_within} s{_written(output)}")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            children = psutil.Process(process.pid).children(recursive=True)
            process.terminate()
            for child in children:
                child.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for straggler in psutil.wait_procs(children, timeout=10)[1]:  # a worker left spinning on its core
                straggler.kill()


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
    url = f"http://127.0.0.1:{port}"
    where = ["--model-dir", str(model_dir)] if model_dir is not None else []
    command = [sys.executable, "-m", "service", *where, "--port", str(port), *args]
    # a file, not a pipe: an unread pipe fills and stalls the server
    with (
        tempfile.TemporaryFile("w+") as log,
        launched(
            command,
            lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200,
            env=env,
            cwd=cwd,
            output=log,
            ready_within=ready_within,
        ) as process,
    ):
        yield Server(url, process, log)


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
