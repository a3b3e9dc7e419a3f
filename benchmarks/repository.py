"""The model repository: the memory each extra model costs, and reloading a model under load.

    python -m benchmarks.repository [--seconds 10] [--swaps 10] [--smoke]

1. Memory: the server's RSS after start-up and 200 encodes per model, serving 1, 2 and 4 models
   (the bundled two, then each again under a second name); the cost of an extra model is the
   slope. Medians of --rounds interleaved rounds.
2. Reload under load: wrk sends /models/mnist/encode at 8 connections while the folder is replaced
   by another model's files and loaded, --swaps times, alternating; wrk's count of failed requests
   (non-2xx and socket errors) is the figure, beside the same run without swaps.
"""

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.load import Load, run_wrk
from harness.bodies import png
from harness.server import running_server
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
MODEL_FILES = ("encoder.onnx", "decoder.onnx", "reference.bin", "model.json")


def repository(folder: Path, count: int) -> Path:
    """count model folders: mnist, fashion-mnist, then copies under other names."""
    root = folder / f"repository-{count}"
    sources = ["mnist", "fashion-mnist"]
    for index in range(count):
        source = sources[index % 2]
        name = source if index < 2 else f"{source}-{index}"
        shutil.copytree(MODELS / source, root / name, ignore=shutil.ignore_patterns("figures"))
    return root


def rss_mb(root: Path, digit: bytes) -> float:
    with running_server(None, VAE_MODEL_REPOSITORY=str(root)) as server, httpx.Client(base_url=server.url) as http:
        for name in http.get("/models").json()["models"]:
            for _ in range(200):
                http.post(f"/models/{name['name']}/encode", content=digit, headers={"Content-Type": "image/png"})
        return psutil.Process(server.process.pid).memory_info().rss / 2**20


def memory(digit: bytes, rounds: int) -> None:
    counts = (1, 2, 4)
    with tempfile.TemporaryDirectory() as folder:
        roots = {count: repository(Path(folder), count) for count in counts}
        samples = {count: [] for count in counts}
        for _ in range(rounds):
            for count in counts:
                samples[count].append(rss_mb(roots[count], digit))
    medians = {count: statistics.median(values) for count, values in samples.items()}
    print("1. memory (RSS after 200 encodes per model; medians of interleaved rounds)")
    for count in counts:
        print(f"   {count} model(s): {medians[count]:.1f} MB")
    print(f"   each extra model: {(medians[4] - medians[1]) / 3:.1f} MB (slope from 1 to 4 models)")


def swap_under_load(digit: bytes, seconds: int, swaps: int) -> None:
    load = Load("POST", "/models/mnist/encode", digit, (("Content-Type", "image/png"),))
    with tempfile.TemporaryDirectory() as folder:
        root = repository(Path(folder), 2)
        with running_server(None, VAE_MODEL_REPOSITORY=str(root)) as server:
            quiet = run_wrk(server.url, load, 8, seconds, server.process.pid, "1")
            loads, refused = [], []

            def swap() -> None:
                time.sleep(seconds / (swaps + 2))
                for index in range(swaps):
                    source = MODELS / ("fashion-mnist" if index % 2 == 0 else "mnist")
                    for name in MODEL_FILES:
                        shutil.copyfile(source / name, root / "mnist" / name)
                    started = time.perf_counter()
                    response = httpx.post(f"{server.url}/v2/repository/models/mnist/load", timeout=30)
                    (loads if response.status_code == 200 else refused).append(time.perf_counter() - started)
                    time.sleep(seconds / (swaps + 2))

            swapper = threading.Thread(target=swap)
            swapper.start()
            busy = run_wrk(server.url, load, 8, seconds, server.process.pid, "1")
            swapper.join()
    print(f"2. reload under load (wrk, 8 connections, {seconds} s per run)")
    print(f"   without swaps: {quiet.requests_per_second:.0f} req/s, p99 {quiet.p99_ms:.1f} ms, failed {quiet.errors}")
    print(
        f"   with {len(loads)} swaps ({len(refused)} loads refused): {busy.requests_per_second:.0f} req/s, "
        f"p99 {busy.p99_ms:.1f} ms, failed {busy.errors}; a load took {statistics.median(loads) * 1000:.0f} ms (median)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one round, two swaps in two seconds")
    args = parser.parse_args()
    digit = png(load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images[0])
    memory(digit, 1 if args.smoke else args.rounds)
    swap_under_load(digit, 2 if args.smoke else args.seconds, 2 if args.smoke else args.swaps)


if __name__ == "__main__":
    main()
