"""The real server in a subprocess, as users run it, on a port of 127.0.0.1 it picks itself."""

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
from prometheus_client.parser import text_string_to_metric_families

_GIVEN: set[int] = set()


def free_port() -> int:
    """A port free now, for a peer that cannot be asked to pick its own (another process may take
    it before the peer binds it), and never one given before: the kernel hands a just-released port
    out again, and a peer given the same port twice (Ray's many ports) refuses to start."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


@contextmanager
def refusing_url() -> Iterator[str]:
    """The URL of a port held bound but not listening: every connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def listening_ports(process: subprocess.Popen) -> list[int]:
    """The TCP ports a server process and its workers listen on, in order; none until they do."""
    ports = set()
    try:
        owner = psutil.Process(process.pid)
        for member in (owner, *owner.children(recursive=True)):
            for connection in member.connections(kind="tcp"):  # kserve holds psutil below 6, which renames it
                if connection.status == psutil.CONN_LISTEN:
                    ports.add(connection.laddr.port)
    except psutil.NoSuchProcess:
        return []
    return sorted(ports)


def _written(output: IO | int) -> str:
    """What a server wrote to its log file so far, to explain why it did not start."""
    if isinstance(output, int):
        return ""
    output.flush()
    output.seek(0)
    return ": " + output.read()


def _answers(ready: Callable[[subprocess.Popen], bool], process: subprocess.Popen) -> bool:
    try:
        return ready(process)
    except httpx.TransportError:
        return False


@contextmanager
def launched(
    command: list,
    ready: Callable[[subprocess.Popen], bool],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    output: IO | int = subprocess.DEVNULL,
    core: str | None = None,
    ready_within: float = 30,
) -> Iterator[subprocess.Popen]:
    """A server's command (on the given cores, through taskset), once ready(process) is true; stopped
    at the end with the children it started (uvicorn's workers, a peer's processes)."""
    pinned = ["taskset", "-c", core] if core else []
    process = subprocess.Popen(
        [*pinned, *map(str, command)], cwd=cwd, env={**os.environ, **(env or {})}, stdout=output, stderr=output
    )
    try:
        deadline = time.monotonic() + ready_within
        while not _answers(ready, process):
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
    grpc_target: str | None  # host:port of the gRPC server, when --grpc-port was given

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log_lines(self) -> list[dict]:
        """The JSON lines the server wrote to stderr so far."""
        self.log.seek(0)
        return [json.loads(line) for line in self.log.read().splitlines()]


def _http_port(process: subprocess.Popen) -> int | None:
    """The port of the server's ports that answers /readyz with 200 (the other one is gRPC's)."""
    for port in listening_ports(process):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return port
        except httpx.TransportError:  # gRPC's port, or not answering yet
            continue
    return None


@contextmanager
def running_server(
    model_dir: Path | None, *args: str, ready_within: float = 30, cwd: Path | None = None, **env: str
) -> Iterator[Server]:
    """vae-serve on a port it picks (--port 0), ready; model_dir None serves the bundled models (or
    VAE_MODEL_REPOSITORY)."""
    where = ["--model-dir", str(model_dir)] if model_dir is not None else []
    command = [sys.executable, "-m", "service", *where, "--port", "0", *args]
    # a file, not a pipe: an unread pipe fills and stalls the server
    grpc = "--grpc-port" in args or "VAE_GRPC_PORT" in env

    def ready(process: subprocess.Popen) -> bool:
        return _http_port(process) is not None and len(listening_ports(process)) == 1 + grpc

    with (
        tempfile.TemporaryDirectory() as folder,
        # opened for appending: the server's writes land at the end even while log_lines has moved
        # the offset it shares with the server back to the start
        (Path(folder) / "server.log").open("a+") as log,
        launched(command, ready, env=env, cwd=cwd, output=log, ready_within=ready_within) as process,
    ):
        http_port = _http_port(process)
        grpc_ports = [port for port in listening_ports(process) if port != http_port]
        grpc_target = f"127.0.0.1:{grpc_ports[0]}" if grpc else None
        yield Server(f"http://127.0.0.1:{http_port}", process, log, grpc_target)


def wait_until(condition: Callable[[], bool], what: str, within: float = 10) -> None:
    """Polls condition() until it is true; fails naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.01)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` that carry these labels, as Prometheus' own parser reads the page."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def requests_in_flight(url: str) -> float:
    """What the server's /metrics says is in progress now."""
    return metric(httpx.get(f"{url}/metrics", timeout=5).text, "vae_requests_in_flight")


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
