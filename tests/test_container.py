"""The Docker image and the compose stack, built from a clean checkout and run for real.

Needs a container engine behind the Docker API (`docker`, `docker-compose`, and `podman` for the
HEALTHCHECK): on these machines `bash ../shared/container/setup.sh; source ../shared/container/env.sh`.
Run with `pytest -m container -s` to see the figures it prints (image size, build and start times).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from harness.bodies import png
from harness.server import post_slowly, requests_in_flight, wait_until
from tests.conftest import REPO, SAMPLE_DATA
from tests.service.grpc_clients import call
from training.data import load_dataset

pytestmark = pytest.mark.container
IMAGE = "vae-service:check"
CONTAINER = "vae-check"
MAX_MB_OVER_BASE = 175  # 158 MB measured with grpcio and protobuf (gRPC, 8001), about 30 of them
PROJECT = "vaecheck"


def sh(
    *command: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 1800, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def published_url(container: str) -> str:
    """The address the engine gave the container's port 8000 (published as 0: a free one)."""
    return "http://" + sh("docker", "port", container, "8000/tcp").stdout.split()[0]


def wait_ready(url: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout} s")


def digit_png() -> bytes:
    return png(load_dataset(SAMPLE_DATA).test.images[0])


def exercise(url: str) -> str:
    """encode a real digit, decode its mu, sample, and send one invalid request; returns the model id."""
    with httpx.Client(base_url=url, timeout=30) as http:
        encoded = http.post("/encode", content=digit_png(), headers={"Content-Type": "image/png"})
        assert encoded.status_code == 200, encoded.text
        decoded = http.post("/decode", json={"z": encoded.json()["mu"]})
        assert decoded.status_code == 200 and decoded.headers["content-type"] == "image/png"
        sampled = http.get("/sample", params={"n": 4, "seed": 0})
        assert sampled.status_code == 200 and sampled.content.startswith(b"\x89PNG")
        invalid = http.post("/decode", json={"z": [1.0]})
        assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"
        print(
            f"  {url}: encode {encoded.json()['mu']}, decode {len(decoded.content)} B PNG, sample ok, "
            f"invalid -> {invalid.status_code}"
        )
        return http.get("/model").json()["id"]


@pytest.fixture(scope="module")
def checkout() -> Iterator[Path]:
    """A clean clone of the committed tree, with the torch wheel pip is configured to find, in a
    folder the containers' unprivileged user can read (pytest's own temporary folders are private)."""
    if shutil.which("docker") is None or sh("docker", "info", check=False).returncode != 0:
        pytest.fail("no container engine answers `docker info` (see ../shared/container/README.md)")
    with tempfile.TemporaryDirectory(prefix="vae-checkout-") as folder:
        os.chmod(folder, 0o755)
        clone = Path(folder) / "vae"
        sh("git", "clone", "--quiet", str(REPO), str(clone))
        wheel_dirs = sh("pip", "config", "get", "global.find-links", check=False).stdout.split()
        for wheel in (w for d in wheel_dirs for w in Path(d).glob("torch-2.13.0*.whl")):
            shutil.copy(wheel, clone / "wheels")
        yield clone


@pytest.fixture(scope="module")
def image(checkout) -> str:
    started = time.monotonic()
    sh("docker", "build", "-t", IMAGE, "--target", "runtime", ".", cwd=checkout)
    print(f"\n  build: {time.monotonic() - started:.0f} s")
    return IMAGE


def test_image_holds_only_the_service_and_stays_small(image):
    missing = "print(*(importlib.util.find_spec(m) is None for m in ('torch', 'training')), os.getuid())"
    probe = f"import importlib.util, os; {missing}"
    no_torch, no_training, uid = sh("docker", "run", "--rm", image, "python", "-c", probe).stdout.split()
    assert no_torch == "True", "torch is in the runtime image"
    assert no_training == "True", "the training package is in the runtime image"
    assert uid != "0", "the image runs as root"
    assert sh("docker", "run", "--rm", image, "sh", "-c", "command -v gcc cc vae-train || true").stdout.strip() == ""
    size = int(sh("podman", "image", "inspect", "--format", "{{.Size}}", image).stdout)
    base = int(sh("podman", "image", "inspect", "--format", "{{.Size}}", "python:3.11-slim").stdout)
    print(f"  image size: {size / 1e6:.0f} MB in all, {(size - base) / 1e6:.0f} MB over the base image")
    assert size - base <= MAX_MB_OVER_BASE * 1e6, f"{(size - base) / 1e6:.0f} MB over the base image"


def test_container_serves_checks_health_and_stops_gracefully(image):
    sh("docker", "rm", "-f", CONTAINER, check=False)
    try:
        started = time.monotonic()
        sh("docker", "run", "-d", "--name", CONTAINER, "-p", "127.0.0.1:0:8000", "-p", "127.0.0.1:0:8001", image)
        url = published_url(CONTAINER)
        wait_ready(url)
        print(f"  container start to ready: {time.monotonic() - started:.1f} s")
        assert sh("podman", "healthcheck", "run", CONTAINER, check=False).returncode == 0
        exercise(url)
        grpc_target = sh("docker", "port", CONTAINER, "8001/tcp").stdout.split()[0]
        seen = call("triton_probes", grpc_target)  # the image serves gRPC on Triton's port
        assert seen["ready"] and seen["models_ready"] == [True, True]

        result = {}
        thread = post_slowly(url, digit_png(), 2, result)
        wait_until(lambda: requests_in_flight(url) == 1, "the slow upload under way")
        sh("docker", "stop", "-t", "30", CONTAINER)  # SIGTERM while the upload is half done
        thread.join()
        assert result["response"].status_code == 200
        state = json.loads(sh("docker", "inspect", CONTAINER).stdout)[0]["State"]
        print(
            f"  SIGTERM with a request in flight: request {result['response'].status_code}, "
            f"exit code {state['ExitCode']}"
        )
        assert state["ExitCode"] == 0
    finally:
        sh("docker", "rm", "-f", CONTAINER, check=False)


def deployment_pod() -> tuple[dict, dict]:
    """The pod spec and container of deploy/base, as written."""
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_runs_the_way_a_cluster_runs_it(image, checkout):
    """As Kubernetes and OpenShift run it: an arbitrary user id in group 0, a read-only root file
    system, no capabilities, the manifests' memory limit, the model repository mounted read-only."""
    pod, container = deployment_pod()
    memory = container["resources"]["limits"]["memory"].removesuffix("Mi") + "m"
    grace = pod["terminationGracePeriodSeconds"]
    name = f"{CONTAINER}-cluster"
    sh("docker", "rm", "-f", name, check=False)
    try:
        sh(
            "docker", "run", "-d", "--name", name, "-p", "127.0.0.1:0:8000",
            "--user", "4242:0", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--memory", memory,
            "-v", f"{checkout / 'models'}:/models:ro", "-e", "VAE_MODEL_REPOSITORY=/models",
            image,
        )  # fmt: skip
        url = published_url(name)
        print(f"  --user 4242:0 --read-only --cap-drop ALL --memory {memory}, models from a read-only volume")
        print(f"  start to ready: {wait_ready(url):.1f} s")
        exercise(url)
        served = httpx.get(f"{url}/models").json()["models"]
        assert {model["name"] for model in served} == {"mnist", "fashion-mnist", "mnist-k16"}
        result = {}
        thread = post_slowly(url, digit_png(), 2, result)
        wait_until(lambda: requests_in_flight(url) == 1, "the slow upload under way")
        started = time.monotonic()
        sh("docker", "stop", "-t", str(grace), name)
        stopped = time.monotonic() - started
        thread.join()
        state = json.loads(sh("docker", "inspect", name).stdout)[0]["State"]
        print(
            f"  SIGTERM mid-upload: request {result['response'].status_code}, "
            f"exit {state['ExitCode']} in {stopped:.1f} s"
        )
        assert result["response"].status_code == 200
        assert state["ExitCode"] == 0 and not state["OOMKilled"] and stopped < grace
    finally:
        sh("docker", "rm", "-f", name, check=False)


def test_compose_trains_beside_the_bundled_models_resumes_and_switches(checkout):
    env = {"VAE_PORT": "0", "VAE_GRPC_PORT": "0", "VAE_DATA_DIR": str(checkout / "tests" / "data" / "mnist-sample")}
    # With a torch wheel in wheels/ (the checkout fixture copies pip's), the build asks no torch index:
    # the default TORCH_INDEX_URL, unreachable here, costs nothing.
    compose = ("docker-compose", "-p", PROJECT)

    def api_url() -> str:  # published as 0: each container of the api gets a free port
        return "http://" + sh(*compose, "port", "api", "8000", cwd=checkout, env=env).stdout.split()[0]

    try:
        started = time.monotonic()
        sh(*compose, "up", "-d", "--build", "api", cwd=checkout, env=env)
        url = api_url()
        wait_ready(url)
        print(f"  compose up (build included) to ready: {time.monotonic() - started:.0f} s")
        bundled = exercise(url)

        started = time.monotonic()
        sh(*compose, "--profile", "train", "build", "train", cwd=checkout, env=env)
        quick = ["--iw-samples", "20", "--iw-images", "20", "--validation-size", "100"]
        train = (*compose, "--profile", "train", "run", "--rm", "train")
        sh(*train, "--epochs", "1", *quick, cwd=checkout, env=env)
        print(f"  train profile (build and one epoch on 600 digits): {time.monotonic() - started:.0f} s")
        # the run is kept in its volume: a second container continues it
        sh(*train, "--epochs", "2", "--resume", "--overwrite", *quick, cwd=checkout, env=env)

        with httpx.Client(base_url=url, timeout=60) as http:  # served beside the bundled ones, no restart
            assert http.post("/v2/repository/models/current/load").status_code == 200
            served = {model["name"] for model in http.get("/models").json()["models"]}
            assert served == {"mnist", "fashion-mnist", "mnist-k16", "current"}
            beside = http.post("/models/current/encode", content=digit_png(), headers={"Content-Type": "image/png"})
            assert beside.status_code == 200, beside.text

        sh(*compose, "up", "-d", "api", cwd=checkout, env={**env, "VAE_MODEL_DIR": "/app/models/current"})
        url = api_url()
        wait_ready(url)
        trained = exercise(url)
        print(f"  model id: {bundled} -> {trained}")
        assert trained != bundled and trained == beside.json()["model_id"]
    finally:
        sh(*compose, "--profile", "train", "down", "-v", "--remove-orphans", cwd=checkout, env=env, check=False)


def test_the_ray_image_encodes_a_folder_with_vae_encode_dataset(checkout, tmp_path):
    """The image deploy/ray's RayService and RayJob run: a local Ray inside it encodes the pictures
    of a mounted folder, as its non-root user: a row for each picture, the refused one with its message."""
    sh("docker", "build", "-t", "vae-service-ray:check", "--target", "ray", ".", cwd=checkout)
    pictures = Path(tempfile.mkdtemp(prefix="vae-ray-", dir=tmp_path))
    os.chmod(pictures, 0o777)
    digits = load_dataset(SAMPLE_DATA).test.images[:50]
    for index, digit in enumerate(digits):
        (pictures / f"{index:02d}.png").write_bytes(png(digit))
    (pictures / "broken.png").write_bytes(b"not a picture")
    command = (
        'vae-encode-dataset /data --out /tmp/out.parquet && python -c "import pyarrow.dataset as d; '
        "t = d.dataset('/tmp/out.parquet').to_table().sort_by('path'); print(t.num_rows, t['error'].null_count)\""
    )
    result = sh("docker", "run", "--rm", "--shm-size=512m", "-v", f"{pictures}:/data:ro", "vae-service-ray:check",
                "sh", "-c", command, timeout=600)  # fmt: skip
    assert result.stdout.split()[-2:] == ["51", "50"], result.stdout + result.stderr
    assert "50 encoded, 1 refused" in result.stderr
