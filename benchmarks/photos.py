"""Photos against the service: the recipe's time per picture, and a burst of phone photos that must
not stall the rest.

    python -m benchmarks.photos [--burst 32] [--smoke]

1. The median time to prepare one upload (decode and recipe, in process, one thread) for a 28x28
   PNG, a 640x480 JPEG and a 12-megapixel phone JPEG, and the 12 MP photo's /encode latency over
   HTTP with nothing else running.
2. While BURST twelve-megapixel JPEGs are POSTed to /encode at once, GET /healthz and a 28x28
   /encode are sent one after another: their p50 and p99 latency, and the server's peak RSS.
"""

import argparse
import io
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

from harness.server import running_server
from service.core.pictures import Invert, prepare
from service.core.verified import VerifiedModel
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mnist"


def page_photo(digit: np.ndarray, width: int, height: int, seed: int = 0) -> bytes:
    """A digit photographed on paper, as a phone saves it: noisy, lit unevenly, JPEG quality 90."""
    rng = np.random.default_rng(seed)
    side = min(width, height) // 2
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.BICUBIC), np.float32) / 255
    page = np.full((height, width), 225, np.float32) - np.linspace(0, 60, width, dtype=np.float32)[None, :]
    top, left = height // 4, width // 3
    page[top : top + side, left : left + side] -= ink * 170
    page += rng.standard_normal(page.shape, np.float32) * 10
    out = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_bytes(digit: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(digit).save(out, format="PNG")
    return out.getvalue()


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def recipe_times(uploads: dict[str, bytes], repeats: int) -> None:
    recipe = VerifiedModel.load(MODEL, threads=1).recipe
    print("| upload | bytes | median ms to prepare (decode + recipe, one thread) |")
    print("|---|---|---|")
    for name, data in uploads.items():
        ms = median_ms(lambda data=data: prepare(data, Invert.auto, recipe, 10**8), repeats)
        print(f"| {name} | {len(data):,} | {ms:.2f} |")


def percentile(values: list[float], share: float) -> float:
    return float(np.quantile(values, share)) * 1000


def burst(url: str, pid: int, photo: bytes, small: bytes, count: int) -> None:
    process = psutil.Process(pid)
    peak, done = process.memory_info().rss, threading.Event()
    probes: dict[str, list[float]] = {"GET /healthz": [], "POST /encode 28x28": []}

    def watch_memory() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not done.is_set():
                for name, send in (
                    ("GET /healthz", lambda: client.get("/healthz")),
                    ("POST /encode 28x28", lambda: client.post("/encode", content=small, headers=PNG)),
                ):
                    started = time.perf_counter()
                    send().raise_for_status()
                    probes[name].append(time.perf_counter() - started)

    def upload(_: int) -> float:
        started = time.perf_counter()
        httpx.post(f"{url}/encode", content=photo, headers=JPEG, timeout=120).raise_for_status()
        return time.perf_counter() - started

    watchers = [threading.Thread(target=watch_memory), threading.Thread(target=probe)]
    for thread in watchers:
        thread.start()
    before = process.memory_info().rss
    with ThreadPoolExecutor(count) as pool:
        started = time.perf_counter()
        photo_times = list(pool.map(upload, range(count)))
        elapsed = time.perf_counter() - started
    done.set()
    for thread in watchers:
        thread.join()
    print(f"burst of {count} 12 MP JPEGs ({len(photo):,} bytes each): all answered in {elapsed:.2f} s")
    print(f"  photos:  p50 {percentile(photo_times, 0.5):.0f} ms, p99 {percentile(photo_times, 0.99):.0f} ms")
    for name, times in probes.items():
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        print(f"  {name} during it ({len(times)} requests): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  server RSS: {before / 2**20:.0f} MB before, {peak / 2**20:.0f} MB at the peak")


PNG = {"Content-Type": "image/png"}
JPEG = {"Content-Type": "image/jpeg"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="a few repeats and a burst of 4, to keep it working")
    args = parser.parse_args()
    digit = load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images[0]
    uploads = {
        "28x28 PNG": png_bytes(digit),
        "640x480 JPEG": page_photo(digit, 640, 480),
        "4000x3000 (12 MP) JPEG": page_photo(digit, 4000, 3000),
    }
    recipe_times(uploads, repeats=3 if args.smoke else 30)
    with running_server(MODEL) as server:
        single = [
            median_ms(
                lambda: httpx.post(
                    f"{server.url}/encode", content=uploads["4000x3000 (12 MP) JPEG"], headers=JPEG, timeout=60
                ),
                1,
            )
            for _ in range(3 if args.smoke else 15)
        ]
        print(f"12 MP JPEG alone over HTTP: median {statistics.median(single):.0f} ms per /encode")
        burst(
            server.url,
            server.process.pid,
            uploads["4000x3000 (12 MP) JPEG"],
            uploads["28x28 PNG"],
            4 if args.smoke else args.burst,
        )


if __name__ == "__main__":
    main()
