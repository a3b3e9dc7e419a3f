"""vae-encode-dataset: pictures encoded by the core on a Ray cluster, written as Parquet.

The cluster checks (marker `ray`) start a real two-node cluster on this machine: the 10,000 MNIST
test digits as PNG files plus refused ones, every row once, every figure against onnxruntime on the
ONNX files and against the core in one process; then the second node's raylet killed in the middle
of a run that still completes, every row once. The refusals of a whole run need no cluster."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pyarrow as pa
import pyarrow.dataset
import pyarrow.parquet
import pytest

from harness.bodies import png
from harness.pictures import combined
from harness.ray_cluster import RayCluster, alive_nodes
from service.core import Engine
from service.ray.dataset import main
from service.settings import Settings
from tests.conftest import BUNDLED_MODEL
from tests.service.conftest import served_by
from tests.service.test_upright import as_the_bundled_model_sees
from training.data import load_dataset

COMMAND = Path(sys.executable).parent / "vae-encode-dataset"
REFUSED = {"not-a-picture.png": b"GIF89a, or so it says", "empty.png": b"", "cut.png": None}  # None: cut short


def run(*arguments: str, cluster: RayCluster) -> subprocess.CompletedProcess:
    return subprocess.run(
        [COMMAND, *arguments, "--address", cluster.address],
        env=cluster.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def rows(out: Path) -> pa.Table:
    return pyarrow.dataset.dataset(out, format="parquet").to_table().sort_by("path")


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist_dir) -> tuple[Path, np.ndarray]:
    """A folder of the 10,000 MNIST test digits as PNG files, and a few files that are no picture."""
    folder = tmp_path_factory.mktemp("digits")
    images = load_dataset(mnist_dir).test.images
    for index, image in enumerate(images):
        (folder / f"{index:05d}.png").write_bytes(png(image))
    for name, data in REFUSED.items():
        (folder / name).write_bytes(png(images[0])[:60] if data is None else data)
    return folder, images


def encoder_figures(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mu and sigma straight from the ONNX encoder, as onnxruntime computes them from the pixels
    (sheared upright by scipy's oracle for a model trained so)."""
    session = onnxruntime.InferenceSession(BUNDLED_MODEL / "encoder.onnx", providers=["CPUExecutionProvider"])
    pixels = as_the_bundled_model_sees((images / np.float32(255)).reshape(-1, 1, 28, 28))
    mu, sigma = session.run(None, {"image": pixels})
    return mu, sigma


def assert_every_digit_once(table: pa.Table, folder: Path, images: np.ndarray) -> None:
    paths = table["path"].to_pylist()
    assert len(paths) == len(set(paths)) == len(images) + len(REFUSED)
    assert {Path(path) for path in paths} == set(folder.iterdir())
    digits = table.filter(pyarrow.dataset.field("error").is_null())
    assert [Path(path).name for path in digits["path"].to_pylist()] == [f"{i:05d}.png" for i in range(len(images))]
    mu, sigma = encoder_figures(images)
    np.testing.assert_allclose(np.array(digits["mu"].to_pylist()), mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(digits["sigma"].to_pylist()), sigma, rtol=1e-5, atol=1e-7)
    with Engine.started() as engine:
        assert set(table["model_id"].to_pylist()) == {engine.model().model.id}


@pytest.mark.ray
def test_a_folder_is_encoded_on_two_nodes_once_each_as_the_core_and_onnxruntime_do(cluster, digits, tmp_path):
    folder, images = digits
    result = run(str(folder), "--out", str(tmp_path / "out.parquet"), cluster=cluster)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"{len(images)} encoded, {len(REFUSED)} refused")
    table = rows(tmp_path / "out.parquet")
    assert_every_digit_once(table, folder, images)
    with Engine.started() as engine:  # the core in one process: the same novelty scores, the same refusals
        expected = engine.encode_files([Path(path).read_bytes() for path in table["path"].to_pylist()])
    assert table["elbo"].to_pylist() == [encoding.elbo for encoding in expected]
    assert table["percentile"].to_pylist() == [encoding.percentile for encoding in expected]
    assert table["error"].to_pylist() == [encoding.error for encoding in expected]
    assert table.filter(pyarrow.dataset.field("error").is_valid())["mu"].null_count == len(REFUSED)


@pytest.mark.ray
def test_the_run_completes_once_each_when_the_second_node_dies_in_the_middle(cluster, digits, tmp_path):
    folder, images = digits
    out = tmp_path / "out.parquet"
    command = [COMMAND, str(folder), "--out", str(out), "--address", cluster.address]
    log = (tmp_path / "job.log").open("w+")
    job = subprocess.Popen(command, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, text=True)
    raylet = cluster.second_raylet()
    deadline = time.monotonic() + 120
    while not any(  # an encoder on the second node, started (its title no longer names __init__)
        process.ppid() == raylet.pid and "(Encoder))" in process.cmdline()[0] and "__init__" not in process.cmdline()[0]
        for process in cluster.processes()
    ):
        assert job.poll() is None and time.monotonic() < deadline, "no encoder started on the second node"
        time.sleep(0.05)
    raylet.kill()
    job.wait(timeout=600)
    log.seek(0)
    stderr = log.read()
    assert job.returncode == 0, stderr
    assert "Raylet is terminated" in stderr  # Ray saw the node go
    assert alive_nodes(cluster) == 1
    assert_every_digit_once(rows(out), folder, images)


@pytest.mark.ray
def test_a_parquet_table_of_photographs_is_encoded_as_rest_encode_answers(cluster, tmp_path):
    """A table as Hugging Face writes one (the picture a struct of bytes and path) with its own key
    column, on the cluster RAY_ADDRESS names; equal to /encode's answers for the same photographs."""
    rng = np.random.default_rng(7)
    photos = [combined(image, rng) for image in load_dataset(Path("tests/data/mnist-sample")).test.images[:40]]
    image = pa.array([{"bytes": photo, "path": None} for photo in photos])
    table = pa.table({"id": [f"photo-{i}" for i in range(len(photos))], "image": image})
    pyarrow.parquet.write_table(table, tmp_path / "photos.parquet")
    out = tmp_path / "out.parquet"
    result = subprocess.run(
        [COMMAND, str(tmp_path / "photos.parquet"), "--out", str(out), "--key", "id"],
        capture_output=True, text=True, timeout=600, env={**cluster.env, "RAY_ADDRESS": cluster.address},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = pyarrow.dataset.dataset(out, format="parquet").to_table().sort_by("id")
    assert written.column_names == ["id", "model_id", "mu", "sigma", "elbo", "percentile", "error"]
    with served_by(Settings()) as client:
        for key, mu, sigma in zip(*(written[c].to_pylist() for c in ("id", "mu", "sigma")), strict=True):
            answer = client.post(
                "/encode", content=photos[int(key.split("-")[1])], headers={"Content-Type": "image/jpeg"}
            )
            assert answer.status_code == 200
            np.testing.assert_allclose(mu, answer.json()["mu"], rtol=1e-6)
            np.testing.assert_allclose(sigma, answer.json()["sigma"], rtol=1e-6)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{tmp}/nowhere", "--out", "{tmp}/out"], "{tmp}/nowhere does not exist"),
        (["{tmp}/*.png", "--out", "{tmp}/out"], "no file matches {tmp}/*.png"),
        (["{tmp}/digits", "--out", "{tmp}/digits"], "{tmp}/digits exists; choose another --out, or remove it"),
        (
            ["{tmp}/digits", "--out", "{tmp}/out", "--model", "nope"],
            "no model 'nope' is loaded; loaded: fashion-mnist, mnist, mnist-k16",
        ),
        (
            ["{tmp}/table.parquet", "--out", "{tmp}/out"],
            "{tmp}/table.parquet has no column 'path' or 'image' (it has id, picture); name its key and picture "
            "columns with --key and --image-column",
        ),
        (
            ["{tmp}/empty", "--out", "{tmp}/out"],
            "{tmp}/empty holds no picture (png, jpg, jpeg, gif, bmp, webp) and no Parquet file",
        ),
    ],
    ids=["missing", "no-match", "out-exists", "unknown-model", "no-columns", "no-pictures"],
)
def test_what_stops_a_whole_run_is_one_line_before_any_cluster(tmp_path, capsys, arguments, message):
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "0.png").write_bytes(png(np.zeros((28, 28), np.uint8)))
    (tmp_path / "empty").mkdir()
    pyarrow.parquet.write_table(pa.table({"id": ["a"], "picture": [b""]}), tmp_path / "table.parquet")
    with pytest.raises(SystemExit) as stopped:
        main([argument.format(tmp=tmp_path) for argument in arguments])
    assert stopped.value.code == f"vae-encode-dataset: {message.format(tmp=tmp_path)}"


def test_a_file_named_parquet_that_is_not_is_one_line(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "part-0.parquet").write_bytes(b"not Parquet at all")
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "tables"), "--out", str(tmp_path / "out")])
    assert stopped.value.code.startswith(
        f"vae-encode-dataset: cannot read {tmp_path}/tables/part-0.parquet as Parquet:"
    )
    assert "\n" not in stopped.value.code
