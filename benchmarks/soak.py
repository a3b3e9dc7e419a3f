"""Soak: mixed traffic with a share of bad requests at 64 connections for minutes, watching for
5xx, dropped connections and memory growth.

    python -m benchmarks.soak [--seconds 300] [--connections 64]

Each wrk connection cycles through: a PNG upload, a multipart upload, a decode, a sample, and
three bad requests (wrong z length, a text body, a truncated PNG). RSS is read after a warm-up of
a tenth of the run and at the end.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks.serving import ROOT, server
from harness.bodies import BOUNDARY, multipart, png
from training.data import load_dataset

LUA = r"""
local function read(path) local f = io.open(path, "rb"); local data = f:read("*all"); f:close(); return data end
local requests = {{
  {{"POST", "/encode", {{["Content-Type"] = "image/png"}}, read("{digit}")}},
  {{"POST", "/encode", {{["Content-Type"] = "multipart/form-data; boundary={boundary}"}}, read("{form}")}},
  {{"POST", "/decode", {{["Content-Type"] = "application/json"}}, '{{"z": [0.5, -0.25]}}'}},
  {{"GET", "/sample?n=4&seed=3", {{}}, nil}},
  {{"POST", "/decode", {{["Content-Type"] = "application/json"}}, '{{"z": [1, 2, 3]}}'}},
  {{"POST", "/encode", {{["Content-Type"] = "text/plain"}}, "hello"}},
  {{"POST", "/encode", {{["Content-Type"] = "image/png"}}, string.sub(read("{digit}"), 1, 100)}},
}}
local index = 0
fives, fours = 0, 0  -- globals: done() reads them from each thread with thread:get
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function request()
  index = index % #requests + 1
  local r = requests[index]
  return wrk.format(r[1], r[2], r[3], r[4])
end
function response(status, headers, body)
  if status >= 500 then fives = fives + 1 elseif status >= 400 then fours = fours + 1 end
end
function done(summary, latency, requests)
  local f5, f4 = 0, 0
  for _, t in ipairs(threads) do f5 = f5 + t:get("fives"); f4 = f4 + t:get("fours") end
  io.write(string.format("STATUS 5xx=%d 4xx=%d\n", f5, f4))
end
"""


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "mnist")
    args = parser.parse_args()
    digit = png(load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images[0])
    with tempfile.TemporaryDirectory() as folder:
        paths = {"digit": Path(folder) / "digit.png", "form": Path(folder) / "form.bin"}
        paths["digit"].write_bytes(digit)
        paths["form"].write_bytes(multipart([digit]))
        script = Path(folder) / "soak.lua"
        script.write_text(LUA.format(digit=paths["digit"], form=paths["form"], boundary=BOUNDARY))
        command = [sys.executable, "-m", "service", "--model-dir", str(args.model_dir)]
        with server(command, "0", {"VAE_LOG_LEVEL": "warning"}) as (url, pid, _):
            samples = {}
            warm_up = args.seconds / 10
            timer = threading.Timer(warm_up, lambda: samples.setdefault("after_warm_up", rss_mb(pid)))
            timer.start()
            started = time.monotonic()
            output = subprocess.run(
                [
                    "taskset",
                    "-c",
                    "1",
                    "wrk",
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{args.seconds}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    url,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            samples["end"] = rss_mb(pid)
            elapsed = time.monotonic() - started
    total = int(re.search(r"(\d+) requests in", output).group(1))
    fives, fours = map(int, re.search(r"STATUS 5xx=(\d+) 4xx=(\d+)", output).groups())
    socket_errors = re.search(r"Socket errors: (.*)", output)
    growth = (samples["end"] / samples["after_warm_up"] - 1) * 100
    result = {
        "seconds": round(elapsed),
        "connections": args.connections,
        "requests": total,
        "requests_per_second": round(total / elapsed),
        "status_5xx": fives,
        "status_4xx": fours,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "rss_mb_after_warm_up": round(samples["after_warm_up"], 1),
        "rss_mb_end": round(samples["end"], 1),
        "rss_growth_percent": round(growth, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
