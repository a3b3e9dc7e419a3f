"""What Ray Serve's proxy costs: raw-PNG /encode through deploy/ray/serve.yaml on a two-node Ray
cluster (one CPU each, a replica on each node) against `vae-serve` with one worker, on the same
machine, wrk on core 1 in both cases. Prints req/s, p50, p99 and the CPU every server-side process
spent per request (Ray's proxy, replicas, raylets and GCS; the worker), medians of interleaved rounds.

    python -m benchmarks.ray_serve [--seconds 4] [--rounds 3] [--connections 1 8 64] [--smoke]
"""

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import psutil

from benchmarks.load import Load, add_plan_options, cpu_seconds, plan_of, run_wrk
from benchmarks.serving import LOAD_CORE
from harness.bodies import png
from harness.ray_cluster import serving, two_node_cluster, wait_for_nodes
from harness.server import running_server
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


def measure(url: str, load: Load, connections: int, seconds: float, servers: Callable[[], list]) -> dict:
    processes = servers()
    before = cpu_seconds(processes)
    result = run_wrk(url, load, connections, seconds, processes[0].pid, LOAD_CORE)
    spent = cpu_seconds(processes) - before
    requests = result.requests_per_second * seconds
    return {
        "req/s": result.requests_per_second,
        "p50 ms": result.p50_ms,
        "p99 ms": result.p99_ms,
        "CPU us/req": spent / max(requests, 1) * 1e6,
        "errors": result.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_plan_options(parser)
    args = parser.parse_args()
    seconds, rounds, connections = plan_of(args)
    digit = png(load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images[0])
    load = Load("POST", "/encode", digit, (("Content-Type", "image/png"),))
    runs: dict[tuple[str, int], list[dict]] = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        two_node_cluster() as cluster,
        running_server(None) as alone,
    ):
        wait_for_nodes(cluster, 2)
        with serving(cluster, Path(scratch), model_repository=str(ROOT / "models")) as through_ray:
            worker = psutil.Process(alone.process.pid)
            variants = {
                "vae-serve, one worker": (alone.url, lambda: [worker, *worker.children(recursive=True)]),
                "Ray Serve, two replicas on two nodes": (through_ray, cluster.processes),
            }
            for url, _ in variants.values():
                run_wrk(url, load, 8, 1, psutil.Process().pid, LOAD_CORE)  # warm-up
            for _ in range(rounds):
                for name, (url, servers) in variants.items():
                    for conns in connections:
                        runs.setdefault((name, conns), []).append(measure(url, load, conns, seconds, servers))
    print(f"raw-PNG /encode, medians of {rounds} interleaved round(s) of {seconds} s:")
    print(f"{'variant':<40}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'errors':>8}")
    for (name, conns), results in runs.items():
        row = {key: statistics.median(result[key] for result in results) for key in results[0]}
        print(
            f"{name:<40}{conns:>6}{row['req/s']:>9.0f}{row['p50 ms']:>9.2f}{row['p99 ms']:>9.2f}"
            f"{row['CPU us/req']:>12.0f}{row['errors']:>8.0f}"
        )


if __name__ == "__main__":
    main()
