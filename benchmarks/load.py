"""Driving a server with wrk (HTTP/1.1) or h2load (HTTP/2, for gRPC): real load generators, in their
own process and core."""

import argparse
import re
import resource
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
LUA = """
local f = io.open("{body}", "rb")
wrk.method = "{method}"
wrk.body = f:read("*all")
f:close()
{headers}
"""


@dataclass(frozen=True)
class Load:
    """One kind of request: method, path, body and headers; over gRPC, the path is the method's and
    the body the framed message (grpc_call makes one)."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    grpc: bool = False


GRPC_HEADERS = (("content-type", "application/grpc"), ("te", "trailers"))


def grpc_call(method: str, message: bytes) -> Load:
    """A unary gRPC call as HTTP/2 carries it: the message after a 5-byte prefix (not compressed, its
    length), POSTed to /{service}/{method} with gRPC's headers."""
    return Load("POST", method, b"\0" + len(message).to_bytes(4, "big") + message, GRPC_HEADERS, grpc=True)


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    errors: int
    load_cores: float  # the cores wrk itself kept busy, which the server could not use


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNITS[unit]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """The CPU time the processes have used, those that ended since counting as nothing."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _cpu_seconds(pid: int) -> float:
    process = psutil.Process(pid)
    return cpu_seconds([process, *process.children(recursive=True)])


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """How long (--seconds), how often (--rounds) and at how many connections a load benchmark drives."""
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64], metavar="N")
    parser.add_argument("--smoke", action="store_true", help="one short round at 8 connections")


def plan_of(args: argparse.Namespace) -> tuple[int, int, list[int]]:
    """(seconds, rounds, connections); --smoke is one short round at 8 connections."""
    return (1, 1, [8]) if args.smoke else (args.seconds, args.rounds, args.connections)


def run_wrk(url: str, load: Load, connections: int, seconds: float, server_pid: int, core: str) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder) / "body"
        body.write_bytes(load.body)
        headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in load.headers)
        script = Path(folder) / "request.lua"
        script.write_text(LUA.format(body=body, method=load.method, headers=headers))
        before = _cpu_seconds(server_pid)
        load_before = _children_cpu_seconds()
        output = subprocess.run(
            [
                "taskset",
                "-c",
                core,
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url + load.path,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = _cpu_seconds(server_pid) - before
        load_cpu = _children_cpu_seconds() - load_before
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return Result(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        p99_ms=_milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
        cpu_us_per_request=cpu / max(total, 1) * 1e6,
        errors=errors,
        load_cores=load_cpu / seconds,
    )


def run_h2load(url: str, load: Load, streams: int, seconds: float, server_pid: int, core: str) -> Result:
    """h2load over one HTTP/2 connection (as a gRPC channel is) with `streams` calls in flight. It
    counts HTTP statuses only: a gRPC error is a 200 with a grpc-status trailer, so check the call
    answers before measuring."""
    with tempfile.TemporaryDirectory() as folder:
        body, log = Path(folder) / "body", Path(folder) / "log"
        body.write_bytes(load.body)
        headers = [option for name, value in load.headers for option in ("-H", f"{name}: {value}")]
        before = _cpu_seconds(server_pid)
        load_before = _children_cpu_seconds()
        output = subprocess.run(
            ["taskset", "-c", core, "h2load", "-c1", f"-m{streams}", f"-D{seconds}", "-d", str(body), *headers,
             "--log-file", str(log), url + load.path],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = _cpu_seconds(server_pid) - before
        load_cpu = _children_cpu_seconds() - load_before
        durations = sorted(int(line.split()[2]) / 1000 for line in log.read_text().splitlines())
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, "
                     r"(\d+) timeout", output)  # fmt: skip
    total = int(done.group(1))
    return Result(
        requests_per_second=float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output).group(1)),
        p50_ms=durations[len(durations) // 2],
        p99_ms=durations[min(len(durations) - 1, len(durations) * 99 // 100)],
        cpu_us_per_request=cpu / max(total, 1) * 1e6,
        errors=sum(int(done.group(group)) for group in (2, 3, 4)),
        load_cores=load_cpu / seconds,
    )
