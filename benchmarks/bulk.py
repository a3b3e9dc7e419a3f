"""Bulk encoding, three ways, on the same two cores and the same folder of MNIST test digits (PNG
files): `vae-encode-dataset` on a two-node Ray cluster (one CPU each), the core in one process
(Engine.encode_files, no HTTP), and `vae-encode-folder` against one `vae-serve` worker. Pictures
per second, wall time of the whole command (start-up included), medians of interleaved rounds.

    python -m benchmarks.bulk [--count 10000] [--rounds 3] [--smoke]
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.digit_folder import count_and_rounds, write_digits
from harness.ray_cluster import two_node_cluster, wait_for_nodes
from harness.server import running_server

BIN = Path(sys.executable).parent
IN_ONE_PROCESS = """
import sys
from pathlib import Path
from service.core import Engine
with Engine.started() as engine:
    files = sorted(Path(sys.argv[1]).glob("*.png"))
    engine.encode_files([path.read_bytes() for path in files])
"""


def timed(command: list, env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    count, rounds = count_and_rounds(__doc__.split("\n\n")[0])
    with tempfile.TemporaryDirectory() as scratch, two_node_cluster() as cluster, running_server(None) as server:
        scratch = Path(scratch)
        folder = scratch / "digits"
        images = write_digits(folder, count)
        wait_for_nodes(cluster, 2)
        out = scratch / "out"
        variants = {
            "vae-encode-dataset, Ray cluster of two nodes": (
                [BIN / "vae-encode-dataset", folder, "--out", out, "--address", cluster.address],
                cluster.env,
            ),
            "the core in one process (Engine.encode_files)": ([sys.executable, "-c", IN_ONE_PROCESS, folder], None),
            "vae-encode-folder, one vae-serve worker": (
                [BIN / "vae-encode-folder", folder, "--out", scratch / "out.csv", "--url", server.url, "--quiet"],
                None,
            ),
        }
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, (command, env) in variants.items():
                shutil.rmtree(out, ignore_errors=True)
                (scratch / "out.csv").unlink(missing_ok=True)
                seconds[name].append(timed(command, env))
    print(f"{len(images)} MNIST test digits as PNG files, medians of {rounds} interleaved round(s), start-up included:")
    for name, times in seconds.items():
        print(f"  {name:<50}{len(images) / statistics.median(times):>8,.0f} pictures/s")


if __name__ == "__main__":
    main()
