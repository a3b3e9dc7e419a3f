"""A Ray cluster of two nodes on this one machine, as `ray start` makes one on two: a head and a
second node, one CPU each, every port picked by Ray itself (port 0) but the Ray Client server's,
which Ray will not let pick, the node addresses on the loopback
(Ray replaces 127.0.0.1 itself by the machine's address, but not the rest of 127.0.0.0/8), and
token authentication with a token of its own. Ray's processes ignore SIGTERM for several seconds,
so tear-down kills every process of the cluster by PID, found by a mark in their environment."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

from harness.server import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
HEAD_IP, SECOND_IP = "127.0.0.2", "127.0.0.3"
MARK = "VAE_TEST_RAY_CLUSTER"


# Left out, these are picked by each node, but the agent's HTTP port defaults to a fixed 52365.
NODE_PORTS = ["--dashboard-agent-listen-port", "0"]


@dataclass
class RayCluster:
    address: str
    env: dict[str, str]  # what a driver (or `serve run`) needs to join the cluster
    mark: str
    logs: Path = field(repr=False)

    def processes(self) -> list[psutil.Process]:
        """Every process the cluster started, its workers and actors included."""
        # read raw: a process that sets its title (ray::...) can leave its environment unparseable to psutil
        marked = f"{MARK}={self.mark}".encode()
        found = []
        for process in psutil.process_iter():
            try:
                if marked in Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0"):
                    found.append(process)
            except OSError:
                continue
        return found

    def second_raylet(self) -> psutil.Process:
        option = f"--node_ip_address={SECOND_IP}"
        return next(p for p in self.processes() if p.name() == "raylet" and option in p.cmdline())

    def kill(self, processes: list[psutil.Process]) -> None:
        for process in processes:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(processes, timeout=10)


def _start(arguments: list[str], env: dict[str, str]) -> None:
    result = subprocess.run([str(RAY), "start", *arguments], env=env, capture_output=True, text=True, timeout=120)
    if result.returncode:
        raise RuntimeError(f"ray start {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")


@contextmanager
def two_node_cluster() -> Iterator[RayCluster]:
    """The head and a second node, one CPU each; yields once both are in the cluster."""
    mark = secrets.token_hex(8)
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a limit
    env = {
        **os.environ,
        MARK: mark,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "AUTOSCALER_METRIC_PORT": "0",
        "DASHBOARD_METRIC_PORT": "0",
    }
    cluster = RayCluster("", env, mark, temp_dir / "session_latest" / "logs")
    try:
        _start(
            [
                "--head", "--num-cpus", "1", "--node-ip-address", HEAD_IP, "--port", "0",
                "--temp-dir", str(temp_dir), "--disable-usage-stats", "--include-dashboard", "false",
                "--dashboard-host", HEAD_IP, "--dashboard-port", "0",
                "--ray-client-server-port", str(free_port()), *NODE_PORTS,
            ],
            env,
        )  # fmt: skip
        cluster.address = (temp_dir / "ray_current_cluster").read_text().strip()  # the GCS port it picked
        _start(["--address", cluster.address, "--num-cpus", "1", "--node-ip-address", SECOND_IP, *NODE_PORTS], env)
        yield cluster
    finally:
        cluster.kill(cluster.processes())
        shutil.rmtree(temp_dir, ignore_errors=True)


def alive_nodes(cluster: RayCluster) -> int:
    """How many nodes the cluster counts as alive, asked from a driver of its own."""
    script = f"import ray; ray.init(address={cluster.address!r}); print(sum(n['Alive'] for n in ray.nodes()))"
    result = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True, timeout=60)
    return int(result.stdout.strip().splitlines()[-1])


def wait_for_nodes(cluster: RayCluster, count: int) -> None:
    wait_until(lambda: alive_nodes(cluster) == count, f"{count} alive nodes in the Ray cluster", within=60)


def proxy_port(cluster: RayCluster) -> int | None:
    """The port Serve's HTTP proxy took on 127.0.0.1 when given port 0; None until it listens.
    The proxy's actor also serves Ray's own gRPC, on the node's address, not on 127.0.0.1."""
    for process in cluster.processes():
        try:
            if process.cmdline()[0].startswith("ray::ProxyActor"):
                ports = [c.laddr for c in process.connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
                return next((port for ip, port in ports if ip == "127.0.0.1"), None)
        except (psutil.NoSuchProcess, IndexError):
            continue
    return None


@contextmanager
def serving(cluster: RayCluster, folder: Path, **args: object) -> Iterator[str]:
    """deploy/ray/serve.yaml run on the cluster by `serve run`, on a port of 127.0.0.1 its proxy
    picks, with `args` for the application's settings; yields its URL once its two replicas answer
    /readyz."""
    config = yaml.safe_load((REPO / "deploy" / "ray" / "serve.yaml").read_text())
    config["http_options"] |= {"host": "127.0.0.1", "port": 0}
    # On one machine, a proxy per node would mean two proxies on one port, the kernel handing each
    # connection to either, one of them perhaps still without its routes: the head's alone here.
    config["proxy_location"] = "HeadOnly"
    config["applications"][0]["args"] = args
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    with (folder / "serve.log").open("w+") as log:
        command = [RAY.parent / "serve", "run", path]
        process = subprocess.Popen(command, env={**cluster.env, "RAY_ADDRESS": cluster.address}, stdout=log, stderr=log)

        def ready() -> bool:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"serve run stopped: {log.read()}")
            port = proxy_port(cluster)
            try:
                answered = port and httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
                return bool(answered) and len(replicas(cluster)) == 2
            except httpx.TransportError:
                return False

        try:
            wait_until(ready, "the Serve application's two replicas", within=180)
            yield f"http://127.0.0.1:{proxy_port(cluster)}"
        finally:
            process.terminate()
            process.wait(timeout=60)


def replicas(cluster: RayCluster) -> list[tuple[int, int]]:
    """The node (its raylet's pid) and the process of each live replica of the Serve application."""
    found = []
    for process in cluster.processes():
        try:
            if process.cmdline()[0].startswith("ray::ServeReplica:vae:VAEService") and process.status() != "zombie":
                found.append((process.ppid(), process.pid))
        except (psutil.NoSuchProcess, IndexError):
            continue
    return found
