"""The service beside the servers a user would pick instead, and beside two ceilings, in one run.

    python -m benchmarks.compare [--seconds 4] [--rounds 3] [--connections 1 8 64] [--smoke] [--only VARIANT ...]
        [--beside CHECKOUT]

Every variant serves the bundled encoder on one core (taskset, core 0; wrk on core 1), one worker,
and answers the same request: a 28x28 MNIST PNG as a multipart file (the Open Inference Protocol
variants take the same digit as an FP32 tensor in JSON). The peers run in their own environments
(benchmarks/peers) with the service's PNG decode (libspng) and the same ONNX file:
- LitServe, max batch 1 and max batch 8 (batch timeout 1 ms);
- BentoML 1.4, one worker;
- MLServer, adaptive batching (max batch 8, 1 ms), against the service's v2 route, over REST and
  over gRPC (the same digit as raw_input_contents; h2load drives one HTTP/2 connection, as a gRPC
  channel is, with 1, 8 or 64 streams in flight where wrk opens that many connections);
- NVIDIA Triton through PyTriton (its bundled tritonserver, CPU), the same REST and gRPC requests to
  the encoder in its Python backend, onnxruntime on one thread, dynamic batching to 64 (500 us);
and the service itself with model calls that never wait for more requests (VAE_BATCH_WAIT_MS=0),
with every request traced (sampled at 100%, exported over OTLP/gRPC to a receiver in this process),
and two ceilings under the same uvicorn: the bare ASGI no-op (reads the body, answers as many bytes
as the service) and the FastAPI no-op; and the naive path (multipart -> Pillow -> torch eager).
The service runs as deployed: request logs on, written to a file. Variants run in turn, round
after round, at 1, 8 and 64 connections; medians of the rounds are printed.
"""

import argparse
import base64
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import httpx
import numpy as np

from benchmarks.load import Load, Result, add_plan_options, grpc_call, plan_of, run_h2load, run_wrk
from benchmarks.peers.environments import bin_of, version_of
from benchmarks.serving import BASELINE_COMMAND, LOAD_CORE, ROOT, SERVER_CORE, batch_totals
from harness.bodies import MULTIPART_TYPE, multipart, png
from harness.otlp import otlp_receiver
from harness.server import free_port, launched
from service.grpc import inference_pb2 as pb
from training.data import load_dataset

PEERS = ROOT / "benchmarks" / "peers"


def _grpc_answers(target: str, load: Load) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary(load.path)(load.body[5:], timeout=5)  # the message, as grpcio frames it itself
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return False  # not listening yet
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False  # listening, the model still loading (Triton)
            raise RuntimeError(f"{load.path} refused the benchmark's call: {error.details()}") from None
    return True


@contextmanager
def running(command: list, load: Load, env: dict, log: Path | None):
    """The variant on SERVER_CORE and free ports, once a real request succeeds: yields (url, pid), the
    url of its gRPC port for a gRPC load."""
    ports = {"port": free_port(), "grpc": free_port()}
    env = {key: value.format(**ports) for key, value in env.items()}
    url = f"http://127.0.0.1:{ports['grpc' if load.grpc else 'port']}"

    def answers(_process) -> bool:
        if load.grpc:
            return _grpc_answers(url.removeprefix("http://"), load)
        return httpx.request(load.method, url + load.path, content=load.body, headers=dict(load.headers)).is_success

    with ExitStack() as stack:
        output = stack.enter_context(log.open("a+")) if log else subprocess.DEVNULL
        command = [str(part).format(**ports) for part in command]
        environment = {"PYTHONPATH": str(ROOT), **env}
        cwd = environment["PYTHONPATH"]  # python -m looks in the working directory first
        process = stack.enter_context(
            launched(command, answers, env=environment, cwd=cwd, output=output, core=SERVER_CORE, ready_within=120)
        )
        yield url, process.pid


def write_fixtures(path: Path, service_url: str, digit: bytes) -> None:
    """The bodies the no-op baselines answer with, and the model shape of the naive path."""
    with httpx.Client(base_url=service_url) as http:
        encoded = http.post("/encode", content=digit, headers={"Content-Type": "image/png"}).text
        decoded = http.post("/decode", json={"z": [0.25, -0.5]}).content
        vae = http.get("/model").json()["training"]["vae"]
    path.write_text(json.dumps({"encode": encoded, "png": base64.b64encode(decoded).decode(), "vae": vae}))


def variants(digit: bytes, pixels: np.ndarray, fixtures: Path, otlp: str) -> dict[str, tuple[list, Load, dict]]:
    """name -> (command, request, environment), "{port}" and "{grpc}" filled in at launch; `otlp` is
    the endpoint of the OTLP receiver the traced variant exports to."""
    form = multipart([digit])
    upload = (("Content-Type", MULTIPART_TYPE),)
    tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": pixels.reshape(-1).tolist()}
    infer = json.dumps({"inputs": [tensor]}).encode()

    def grpc_infer(model: str) -> Load:
        request = pb.ModelInferRequest(model_name=model, raw_input_contents=[pixels.astype("<f4").tobytes()])
        request.inputs.add(name="image", datatype="FP32", shape=pixels.shape)
        return grpc_call("/inference.GRPCInferenceService/ModelInfer", request.SerializeToString())

    as_json = (("Content-Type", "application/json"),)
    service = [sys.executable, "-m", "service", "--port", "{port}"]
    baseline = [*BASELINE_COMMAND, "--port", "{port}"]
    bare = [*BASELINE_COMMAND[:3], "benchmarks.baselines:create_bare_app", *BASELINE_COMMAND[4:], "--port", "{port}"]
    litserve = [bin_of("litserve") / "python", "-m", "benchmarks.peers.litserve_server", "--port", "{port}"]
    bentoml = [bin_of("bentoml") / "bentoml", "serve", "benchmarks.peers.bentoml_service:Encoder", "--port", "{port}"]
    mlserver = [bin_of("mlserver") / "mlserver", "start", PEERS / "mlserver"]
    triton = [
        bin_of("triton") / "python",
        "-m",
        "benchmarks.peers.pytriton_server",
        "--port",
        "{port}",
        "--grpc-port",
        "{grpc}",
    ]
    # Triton's Python backend stub links libpython, which a pyenv or venv interpreter keeps in its own folder
    libpython = {"LD_LIBRARY_PATH": sysconfig.get_config_var("LIBDIR")}
    fixed = {"VAE_BENCH_FIXTURES": str(fixtures)}
    traced = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    return {
        "service": (service, Load("POST", "/encode", form, upload), {}),
        "service, raw PNG": (service, Load("POST", "/encode", digit, (("Content-Type", "image/png"),)), {}),
        "service, no wait": (service, Load("POST", "/encode", form, upload), {"VAE_BATCH_WAIT_MS": "0"}),
        "service, traced": (service, Load("POST", "/encode", form, upload), traced),
        "bare ASGI no-op": (bare, Load("POST", "/", form, upload), fixed),
        "FastAPI no-op": (baseline, Load("POST", "/noop/multipart", form, upload), fixed),
        "naive": (baseline, Load("POST", "/naive/encode", form, upload), fixed),
        "LitServe, batch 1": (litserve, Load("POST", "/predict", form, upload), {}),
        "LitServe, batch 8": ([*litserve, "--max-batch", "8"], Load("POST", "/predict", form, upload), {}),
        "BentoML": (bentoml, Load("POST", "/encode", form, upload), {}),
        "service, decode": (service, Load("POST", "/decode", b'{"z": [0.25, -0.5]}', as_json), {}),
        "service, v2": (service, Load("POST", "/v2/models/mnist-encoder/infer", infer, as_json), {}),
        "service, v2 gRPC": ([*service, "--grpc-port", "{grpc}"], grpc_infer("mnist-encoder"), {}),
        "MLServer, v2": (
            mlserver,
            Load("POST", "/v2/models/encoder/infer", infer, as_json),
            {"MLSERVER_HTTP_PORT": "{port}", "MLSERVER_GRPC_PORT": "{grpc}"},
        ),
        "MLServer, v2 gRPC": (
            mlserver,
            grpc_infer("encoder"),
            {"MLSERVER_HTTP_PORT": "{port}", "MLSERVER_GRPC_PORT": "{grpc}"},
        ),
        "Triton, v2": (triton, Load("POST", "/v2/models/encoder/infer", infer, as_json), libpython),
        "Triton, v2 gRPC": (triton, grpc_infer("encoder"), libpython),
    }


def beside(every: dict[str, tuple[list, Load, dict]], checkout: Path) -> dict[str, tuple[list, Load, dict]]:
    """The service's variants again, served by another checkout (with its own .venv) as well."""
    python = checkout / ".venv" / "bin" / "python"
    if not python.is_file():
        setup = f"python3 -m venv {checkout}/.venv && {python} -m pip install -e {checkout}"
        raise SystemExit(f"{checkout} has no .venv; make one: {setup}")
    both = {}
    for name, (command, load, env) in every.items():
        both[name] = (command, load, env)
        if name.startswith("service"):
            other = [python, *command[1:]]
            both[f"{name} @ {checkout.name}"] = (other, load, {**env, "PYTHONPATH": str(checkout)})
    return both


def median(runs: list[Result]) -> dict:
    figures = {
        name: statistics.median(getattr(run, name) for run in runs)
        for name in ("requests_per_second", "p50_ms", "p99_ms", "cpu_us_per_request")
    }
    return {**figures, "p99_over_p50": figures["p99_ms"] / figures["p50_ms"], "errors": sum(run.errors for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_plan_options(parser)
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="these variants alone (default: all)")
    parser.add_argument(
        "--beside", type=Path, metavar="CHECKOUT", help="also serve the service's variants from this checkout of it"
    )
    args = parser.parse_args()
    seconds, rounds, connections = plan_of(args)
    images = load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images
    digit, pixels = png(images[0]), (images[0] / np.float32(255)).reshape(1, 1, 28, 28)
    runs: dict[tuple[str, int], list[Result]] = {}
    batches: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch, otlp_receiver("grpc") as (otlp, _):
        scratch = Path(scratch)
        fixtures = scratch / "fixtures.json"
        every = variants(digit, pixels, fixtures, otlp)
        if args.beside:
            every = beside(every, args.beside.resolve())
        command, load, _ = every["service"]
        # a variant chosen by --only is also served by the --beside checkout
        every = {name: variant for name, variant in every.items() if not args.only or name.split(" @ ")[0] in args.only}
        with running(command, load, {}, None) as (url, _):
            write_fixtures(fixtures, url, digit)  # the no-ops answer as many bytes as the service does
        # One variant at a time on the core, round after round, so that drift hits all alike and no
        # idle peer's background work (queues, schedulers) runs beside the one measured.
        for round_ in range(rounds):
            # every other round in the opposite order, so that no variant always follows the same one
            for name, (command, load, env) in list(every.items())[:: -1 if round_ % 2 else 1]:
                log = scratch / "service.log" if name.startswith("service") else None  # as deployed: logs to a file
                with running(command, load, env, log) as (url, pid):
                    drive = run_h2load if load.grpc else run_wrk
                    drive(
                        url, load, 8, 1, pid, LOAD_CORE
                    )  # warm-up, not counted: first requests are slow in some peers
                    metrics_url = url if not load.grpc else None  # the gRPC port has no /metrics
                    for conns in connections:
                        before = batch_totals(metrics_url) if metrics_url and name.startswith("service") else None
                        runs.setdefault((name, conns), []).append(drive(url, load, conns, seconds, pid, LOAD_CORE))
                        if before:
                            after = batch_totals(metrics_url)
                            if after[1] > before[1]:  # the v2 route's calls are the encoder's alone
                                batches.setdefault((name, conns), []).append(
                                    (after[0] - before[0]) / (after[1] - before[1])
                                )
    table = {key: median(key_runs) for key, key_runs in runs.items()}
    versions = {"LitServe": "litserve", "BentoML": "bentoml", "MLServer": "mlserver", "PyTriton": "triton"}
    print("peers: " + ", ".join(f"{name} {version_of(peer)}" for name, peer in versions.items()))
    print(
        f"{'variant':<28}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99/p50':>9}"
        f"{'CPU us/req':>12}{'errors':>8}"
    )
    for (name, conns), row in table.items():
        print(
            f"{name:<28}{conns:>6}{row['requests_per_second']:>9.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['p99_over_p50']:>9.1f}{row['cpu_us_per_request']:>12.0f}{row['errors']:>8}"
        )
    for (name, conns), row in table.items():
        other = table.get((f"{name} @ {args.beside.resolve().name}", conns)) if args.beside else None
        if other:
            print(
                f"{name} at {conns} connections, this checkout over {args.beside}: "
                f"req/s {row['requests_per_second'] / other['requests_per_second']:.3f}, "
                f"p99/p50 {row['p99_over_p50']:.2f} against {other['p99_over_p50']:.2f}"
            )
    for (name, conns), sizes in batches.items():
        print(f"{name}: mean batch of /encode's model calls at {conns} connections: {statistics.median(sizes):.1f}")


if __name__ == "__main__":
    main()
