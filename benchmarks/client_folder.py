"""`vae-encode-folder` on a folder of MNIST test digits (PNG files), against encoding them one
request at a time with the same command: pictures per second, medians of interleaved rounds.

    python -m benchmarks.client_folder [--count 10000] [--rounds 3] [--smoke]
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.digit_folder import count_and_rounds, write_digits
from harness.server import running_server

COMMAND = [sys.executable, "-c", "from vae_client.folder import main; main()"]
VARIANTS = {
    "defaults (4 requests in flight, 32 pictures each)": [],
    "one request at a time, one picture each": ["--concurrency", "1", "--batch-size", "1"],
}


def run(folder: Path, url: str, options: list[str], out: Path) -> float:
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run([*COMMAND, str(folder), "--out", str(out), "--url", url, "--quiet", *options], check=True)
    return time.perf_counter() - started


def main() -> None:
    count, rounds = count_and_rounds(__doc__.split("\n\n")[0])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "digits"
        images = write_digits(folder, count)
        seconds = {name: [] for name in VARIANTS}
        with running_server(None) as server:
            for _ in range(rounds):
                for name, options in VARIANTS.items():
                    seconds[name].append(run(folder, server.url, options, Path(scratch) / "coords.csv"))
    rates = {name: len(images) / statistics.median(times) for name, times in seconds.items()}
    print(f"vae-encode-folder on {len(images)} MNIST test PNGs, medians of {rounds} interleaved round(s):")
    for name, rate in rates.items():
        print(f"  {name}: {rate:,.0f} pictures/s")
    first, second = rates.values()
    print(f"  ratio: {first / second:.1f}x")


if __name__ == "__main__":
    main()
