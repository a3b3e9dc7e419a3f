"""Serving benchmark: the real service under wrk, endpoint by endpoint, against two ceilings and the
naive path.

    python -m benchmarks.serving [--seconds 4] [--rounds 3] [--smoke] [--endpoints encode_raw ...]

The service runs with its default settings, request logs on and written to a file as deployed, pinned
to core 0 beside the baselines' servers (the bare ASGI no-op, the bare app doing the unavoidable work,
the same behind the service's Intake middleware, and FastAPI's no-op and naive path); wrk runs on
core 1. Each endpoint's variants are run in turn, round after round, so that the machine's
drift hits them alike. Prints the medians of req/s, p50, p99 and server CPU per request at 1, 8 and 64
connections, the ratios to the baselines, the performance issue's CPU budgets (the bare no-op's cost
plus the unavoidable work plus 60 us, against what the service spends), the batch endpoint's CPU per
image against its unavoidable work, scaling to two workers (the service's and the bare app's),
start-up time and memory; writes benchmarks/results/serving.json.
"""

import argparse
import base64
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil

from benchmarks.essential import batch64_work_us, essential_work_us
from benchmarks.load import Load, Result, run_wrk
from harness.bodies import MULTIPART_TYPE, multipart, png
from harness.server import free_port, launched
from service.core.served import ASSESSMENT
from service.core.verified import VerifiedModel
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE, LOAD_CORE = "0", "1"
CORES = 2  # the two-worker runs share both with wrk


ENDPOINTS = ["encode_raw", "encode_multipart", "decode", "sample", "encode_batch64"]
# The performance issue's targets: server CPU per request at most the bare ASGI no-op's plus the
# unavoidable work plus this much, on these endpoints; a batch of 64 at most this multiple of its
# unavoidable work per image; two workers at least this multiple of one.
EXTRA_US_TARGET = 60
EXTRA_US_ENDPOINTS = ("encode_raw", "decode", "sample")
BATCH64_TARGET_RATIO = 1.5
TWO_WORKERS_TARGET = 1.8


def loads(digit: bytes) -> dict[str, dict[str, Load]]:
    """For each endpoint, the real request and the same request to its baselines."""
    form = (("Content-Type", MULTIPART_TYPE),)
    one, sixty_four = multipart([digit]), multipart([digit] * 64)
    z = json.dumps({"z": [0.25, -0.5]}).encode()
    json_header = (("Content-Type", "application/json"),)
    return {
        "encode_raw": {
            "service": Load("POST", "/encode", digit, (("Content-Type", "image/png"),)),
            "noop": Load("POST", "/noop/raw", digit, (("Content-Type", "image/png"),)),
            "bare": Load("POST", "/", digit, (("Content-Type", "image/png"),)),
            "bare+work": Load("POST", "/", digit, (("Content-Type", "image/png"),)),
            "bare+work+intake": Load("POST", "/", digit, (("Content-Type", "image/png"),)),
        },
        "encode_multipart": {
            "service": Load("POST", "/encode", one, form),
            "noop": Load("POST", "/noop/multipart", one, form),
            "bare": Load("POST", "/", one, form),
            "naive": Load("POST", "/naive/encode", one, form),
        },
        "decode": {
            "service": Load("POST", "/decode", z, json_header),
            "noop": Load("POST", "/noop/decode", z, json_header),
            "bare": Load("POST", "/png", z, json_header),
            "bare+work": Load("POST", "/decode", z, json_header),
            "bare+work+intake": Load("POST", "/decode", z, json_header),
        },
        "sample": {
            "service": Load("GET", "/sample?n=1&seed=1"),
            "noop": Load("GET", "/noop/sample"),
            "bare": Load("GET", "/png"),
            "bare+work": Load("GET", "/sample?n=1&seed=1"),
            "bare+work+intake": Load("GET", "/sample?n=1&seed=1"),
        },
        "encode_batch64": {
            "service": Load("POST", "/encode/batch", sixty_four, form),
            "noop": Load("POST", "/noop/multipart", sixty_four, form),
            "bare": Load("POST", "/", sixty_four, form),
            "bare+work": Load("POST", "/batch", sixty_four, form),
        },
    }


@contextmanager
def server(command: list[str], core: str, env: dict[str, str] | None = None, log: Path | None = None):
    """The server on the given cores and a free port: yields (url, pid, seconds it took to be ready)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()

    def answers(_process) -> bool:  # the baselines have no /readyz: any answer from them means they are up
        return httpx.get(url + "/readyz", timeout=1).status_code in (200, 404)

    with ExitStack() as stack:
        output = stack.enter_context(log.open("a+")) if log else subprocess.DEVNULL
        process = stack.enter_context(
            launched([*command, "--port", str(port)], answers, env=env, output=output, core=core, ready_within=120)
        )
        yield url, process.pid, time.perf_counter() - started


def worker_rss_mb(pid: int) -> list[float]:
    process = psutil.Process(pid)
    workers = process.children(recursive=True) or [process]
    return [round(p.memory_info().rss / 2**20, 1) for p in workers if "python" in p.name()]


def batch_totals(url: str) -> tuple[float, float]:
    """The batch-size histograms of /encode's model calls so far: (sum of sizes, number of calls)."""
    text = httpx.get(url + "/metrics").text
    graph = re.escape(f'graph="{ASSESSMENT}"')
    total = sum(float(v) for v in re.findall(rf"vae_batch_size_sum\{{[^}}]*{graph}[^}}]*\}} (\S+)", text))
    count = sum(float(v) for v in re.findall(rf"vae_batch_size_count\{{[^}}]*{graph}[^}}]*\}} (\S+)", text))
    return total, count


def mean_batch_size(url: str) -> float:
    total, count = batch_totals(url)
    return total / count if count else 0.0


BASELINE_COMMAND = [
    sys.executable,
    "-m",
    "uvicorn",
    "benchmarks.baselines:create_app",
    "--factory",
    "--no-access-log",
    "--log-level",
    "warning",
]
BARE_COMMAND = [*BASELINE_COMMAND[:3], "benchmarks.baselines:create_bare_app", *BASELINE_COMMAND[4:]]
BARE_WORK_COMMAND = [*BASELINE_COMMAND[:3], "benchmarks.baselines:create_bare_work_app", *BASELINE_COMMAND[4:]]
BARE_WORK_INTAKE_COMMAND = [
    *BASELINE_COMMAND[:3],
    "benchmarks.baselines:create_bare_work_intake_app",
    *BASELINE_COMMAND[4:],
]


SPIN = """
import time
end, n = time.perf_counter() + {seconds}, 0
while time.perf_counter() < end:
    n += 1
print(n)
"""


def _spins(cores: list[str], seconds: float) -> list[int]:
    """The turns of a pure-Python loop, one process per core, all at once."""
    loops = [
        subprocess.Popen(
            ["taskset", "-c", core, sys.executable, "-c", SPIN.format(seconds=seconds)], stdout=subprocess.PIPE
        )
        for core in cores
    ]
    return [int(loop.communicate()[0]) for loop in loops]


def two_core_scaling(seconds: float, rounds: int) -> float:
    """What two busy cores of this machine do together against one alone (a shared host's cores slow
    each other down): with wrk's share, the ceiling of two workers against one."""
    ratios = []
    for _ in range(rounds):
        (alone,) = _spins([SERVER_CORE], seconds)
        ratios.append(sum(_spins([SERVER_CORE, LOAD_CORE], seconds)) / alone)
    return statistics.median(ratios)


@contextmanager
def pinned(core: str):
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(core)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, everywhere)


def median_run(runs: list[Result]) -> dict:
    """The median of each figure over the rounds; errors summed."""
    figures = ("requests_per_second", "p50_ms", "p99_ms", "cpu_us_per_request", "load_cores")
    medians = {name: statistics.median(getattr(run, name) for run in runs) for name in figures}
    return {**medians, "errors": sum(run.errors for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=4, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant, alternated; medians reported")
    parser.add_argument("--smoke", action="store_true", help="one 1 s run at 8 connections: keeps the harness working")
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=ENDPOINTS, help="default: all")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "mnist")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving.json")
    args = parser.parse_args()
    seconds, rounds, connections = (1, 1, [8]) if args.smoke else (args.seconds, args.rounds, [1, 8, 64])

    digit = png(load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images[0])
    every_load = loads(digit)
    service_command = [sys.executable, "-m", "service", "--model-dir", str(args.model_dir)]
    results: dict = {"runs": [], "seconds": seconds, "rounds": rounds}

    def alternate(
        variants: dict[str, tuple[str, int, Load]], conns: int, each_round: Callable[[], None] = lambda: None
    ) -> dict[str, dict]:
        """Each variant's median over the rounds, the variants' runs interleaved so drift hits all alike;
        each_round runs after each round's."""
        runs: dict[str, list[Result]] = {variant: [] for variant in variants}
        for _ in range(rounds):
            for variant, (url, pid, load) in variants.items():
                runs[variant].append(run_wrk(url, load, conns, seconds, pid, LOAD_CORE))
            each_round()
        return {variant: median_run(variant_runs) for variant, variant_runs in runs.items()}

    batch64_works: list[float] = []

    @functools.cache
    def batch64_model() -> VerifiedModel:  # loaded only if the batch endpoint is run
        return VerifiedModel.load(args.model_dir, threads=1)

    def time_batch64_work() -> None:
        """The batch's unavoidable work, timed beside its runs: its ratio is then free of the drift."""
        with pinned(SERVER_CORE):
            batch64_works.append(batch64_work_us(batch64_model(), digit))

    with ExitStack() as servers:
        scratch = Path(servers.enter_context(tempfile.TemporaryDirectory()))
        url, pid, _ = servers.enter_context(server(service_command, SERVER_CORE, log=scratch / "service.log"))
        with httpx.Client(base_url=url) as http:
            encode_body = http.post("/encode", content=digit, headers={"Content-Type": "image/png"}).text
            png_body = http.post("/decode", json={"z": [0.25, -0.5]}).content
            vae = http.get("/model").json()["training"]["vae"]
        fixtures = servers.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json"))
        json.dump({"encode": encode_body, "png": base64.b64encode(png_body).decode(), "vae": vae}, fixtures)
        fixtures.flush()
        fixed = {"VAE_BENCH_FIXTURES": fixtures.name}
        model_dir = {"VAE_MODEL_DIR": str(args.model_dir)}
        baselines = {
            "service": (url, pid),
            "bare": servers.enter_context(server(BARE_COMMAND, SERVER_CORE, fixed))[:2],
            "noop": servers.enter_context(server(BASELINE_COMMAND, SERVER_CORE, fixed))[:2],
            "bare+work": servers.enter_context(server(BARE_WORK_COMMAND, SERVER_CORE, model_dir))[:2],
            "bare+work+intake": servers.enter_context(
                server(BARE_WORK_INTAKE_COMMAND, SERVER_CORE, model_dir, log=scratch / "intake.log")
            )[:2],
        }
        baselines["naive"] = baselines["noop"]  # the naive path is a route of the no-op's app
        for name in args.endpoints:
            variants = {variant: (*baselines[variant], load) for variant, load in every_load[name].items()}
            for conns in connections:
                each_round = time_batch64_work if (name, conns) == ("encode_batch64", 1) else lambda: None
                for variant, figures in alternate(variants, conns, each_round).items():
                    results["runs"].append({"endpoint": name, "variant": variant, "connections": conns, **figures})
                    print(
                        f"{name:17} {variant:16} c={conns:<3} {figures['requests_per_second']:9.0f} req/s  "
                        f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
                        f"cpu {figures['cpu_us_per_request']:6.0f} us/req  errors {figures['errors']}",
                        flush=True,
                    )
        results["mean_encode_batch"] = round(mean_batch_size(url), 2)
        if batch64_works:
            results["batch64_work_us_beside_runs"] = round(statistics.median(batch64_works), 1)
        results["rss_mb_per_worker"] = worker_rss_mb(pid)

    if not args.smoke:
        with ExitStack() as servers:
            scratch = Path(servers.enter_context(tempfile.TemporaryDirectory()))
            pools = {}
            for workers in (1, 2):
                pool_url, pool_pid, _ = servers.enter_context(
                    server([*service_command, "--workers", str(workers)], "0,1", log=scratch / f"{workers}.log")
                )
                pools[f"workers_{workers}"] = (pool_url, pool_pid, every_load["encode_raw"]["service"])
                # The framework-free app under the same uvicorn workers: how far they scale with less to do.
                bare_url, bare_pid, _ = servers.enter_context(
                    server([*BARE_WORK_COMMAND, "--workers", str(workers)], "0,1", model_dir)
                )
                pools[f"bare_work_workers_{workers}"] = (bare_url, bare_pid, every_load["encode_raw"]["bare+work"])
            results["two_core_scaling"] = round(two_core_scaling(seconds, rounds), 3)
            for pool, figures in alternate(pools, 64).items():
                results[f"{pool}_req_s"] = figures["requests_per_second"]
                results[f"{pool}_load_cores"] = figures["load_cores"]
                results[f"{pool}_cpu_us"] = figures["cpu_us_per_request"]
                print(
                    f"encode_raw, {pool.replace('_', ' ')}, c=64: {figures['requests_per_second']:.0f} req/s, "
                    f"wrk busy on {figures['load_cores']:.2f} of the 2 cores"
                )
    startups = []
    for _ in range(1 if args.smoke else 5):
        with server(service_command, SERVER_CORE) as (_, _, seconds_to_ready):
            startups.append(seconds_to_ready)
    results["startup_seconds_median"] = round(statistics.median(startups), 3)
    with pinned(SERVER_CORE):  # timed where the servers ran, with the machine otherwise idle
        results["essential_work_us"] = essential_work_us(args.model_dir, digit)
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    failed = sorted({f"{r['endpoint']} {r['variant']}" for r in results["runs"] if r["errors"]})
    if args.smoke and failed:  # the smoke run keeps every variant answering, not only running
        sys.exit(f"errors from: {', '.join(failed)}")


def report(results: dict) -> None:
    def run(endpoint: str, variant: str, conns: int) -> dict | None:
        return next(
            (
                r
                for r in results["runs"]
                if (r["endpoint"], r["variant"], r["connections"]) == (endpoint, variant, conns)
            ),
            None,
        )

    print("\nratios (service / baseline, medians of runs interleaved in one session):")
    conns_seen = sorted({r["connections"] for r in results["runs"]})
    for endpoint in sorted({r["endpoint"] for r in results["runs"]}, key=ENDPOINTS.index):
        for conns in conns_seen:
            service = run(endpoint, "service", conns)
            speed = service["requests_per_second"]
            line = f"  {endpoint:17} c={conns:<3}"
            for baseline in ("bare", "noop"):
                line += f" vs {baseline} {speed / run(endpoint, baseline, conns)['requests_per_second']:.2f}x,"
            naive = run("encode_multipart", "naive", conns)
            if naive and endpoint in ("encode_raw", "encode_multipart"):
                line += f" vs naive {speed / naive['requests_per_second']:.2f}x (target 2x at c=8),"
            print(f"{line} p99/p50 {service['p99_ms'] / service['p50_ms']:.1f} (target 2.5 at c=64)")
    work = results["essential_work_us"]
    print(
        "\nbudgets (server CPU us per request, which sets throughput once the core is busy): the bare ASGI "
        "no-op's cost,\nthe unavoidable work (PNG decode or encode, the model calls at the batch these "
        f"connections allow, prior draw),\nthe target (both plus {EXTRA_US_TARGET} us), and what the service spends:"
    )
    for endpoint in EXTRA_US_ENDPOINTS:
        for conns in conns_seen:
            service, bare = run(endpoint, "service", conns), run(endpoint, "bare", conns)
            if service and bare:
                floor, needed = bare["cpu_us_per_request"], work[endpoint][conns]
                spent = service["cpu_us_per_request"]
                worked, guarded = run(endpoint, "bare+work", conns), run(endpoint, "bare+work+intake", conns)
                in_request = f"; the bare app doing it, {worked['cpu_us_per_request']:4.0f}" if worked else ""
                if guarded:
                    in_request += f", and behind the service's Intake, {guarded['cpu_us_per_request']:4.0f}"
                print(
                    f"  {endpoint:17} c={conns:<3} bare {floor:4.0f} + work {needed:3.0f} + {EXTRA_US_TARGET} = "
                    f"{floor + needed + EXTRA_US_TARGET:4.0f}; the service spends {spent:4.0f} "
                    f"({spent - floor - needed:+.0f} beyond bare and work){in_request}"
                )
    print(
        "  of /encode's work, the novelty score (a decoder call and the score) is "
        + ", ".join(f"{us} us at c={conns}" for conns, us in work["novelty_score"].items())
    )
    batch = run("encode_batch64", "service", 1)
    if batch:
        per_image = batch["cpu_us_per_request"] / 64
        needed = results.get("batch64_work_us_beside_runs", work["encode_batch64"][1]) / 64
        print(
            f"  /encode/batch of 64: {per_image:.1f} us of CPU per image, {per_image / needed:.2f}x the unavoidable "
            f"{needed:.1f}, timed beside its runs (target {BATCH64_TARGET_RATIO}x; "
            f"{work['encode_batch64'][1] / 64:.1f} at the end of the run)"
        )
        worked = run("encode_batch64", "bare+work", 1)
        if worked:
            bare_per_image = worked["cpu_us_per_request"] / 64
            print(
                f"  the bare app parsing the form and doing that work: {bare_per_image:.1f} us per image, "
                f"{bare_per_image / needed:.2f}x"
            )
    if "workers_2_req_s" in results:
        scaling = results["workers_2_req_s"] / results["workers_1_req_s"]
        left = CORES - results["workers_2_load_cores"]  # what wrk leaves to the two workers
        machine = results["two_core_scaling"]
        print(
            f"  2 workers / 1 worker at c=64: {scaling:.2f}x (target {TWO_WORKERS_TARGET}x); wrk leaves the workers "
            f"{left:.2f} cores: per core they had, {scaling / left:.2f} of one worker's throughput\n"
            f"  this machine's two cores, both busy with a Python loop, do {machine:.2f}x one alone: with wrk's share, "
            f"two workers could reach {left * machine / CORES:.2f}x one"
        )
        alone = results["workers_1_req_s"] * results["workers_1_cpu_us"] / 1e6  # the cores the lone worker used
        print(
            f"  the lone worker kept {alone:.2f} cores busy: {TWO_WORKERS_TARGET}x at its CPU per request needs "
            f"{TWO_WORKERS_TARGET * alone:.2f} cores, of the {left:.2f} wrk leaves; the two workers spent "
            f"{results['workers_2_cpu_us'] / results['workers_1_cpu_us']:.2f}x its CPU per request"
        )
        bare_scaling = results["bare_work_workers_2_req_s"] / results["bare_work_workers_1_req_s"]
        print(f"  the bare app doing the same work, in the same rounds: 2 workers / 1 worker {bare_scaling:.2f}x")
    print(f"  mean batch of /encode's model calls under load: {results['mean_encode_batch']}")
    print(
        f"  start to ready (median): {results['startup_seconds_median']} s; "
        f"RSS per worker: {results['rss_mb_per_worker']} MB"
    )


if __name__ == "__main__":
    main()
