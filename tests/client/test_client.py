"""The Python client against the real server: every method, sync and async, typed errors, bounded
retries, and the folder command."""

import asyncio
import json
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image
from vae_client import AsyncClient, BadRequest, Client, ConnectionFailed, NotFound, Unauthorized, Unavailable
from vae_client.folder import main as encode_folder

from harness.bodies import png
from harness.server import refusing_url, running_server
from tests.conftest import REPO
from training.data import load_dataset


@pytest.fixture(scope="module")
def server():
    with running_server(None) as server:
        yield server


@pytest.fixture(scope="module")
def digits(sample_data_dir) -> np.ndarray:
    return load_dataset(sample_data_dir).test.images[:7]


@pytest.fixture
def client(server):
    with Client(server.url) as client:
        yield client


def test_every_picture_form_encodes_alike(client, digits, tmp_path):
    path = tmp_path / "digit.png"
    path.write_bytes(png(digits[0]))
    forms = [path, str(path), png(digits[0]), Image.fromarray(digits[0]), digits[0], digits[0] / 255]
    encodings = [client.encode(form) for form in forms]
    for encoding in encodings:
        assert encoding.mu.shape == (2,) and encoding.sigma.shape == (2,)
        np.testing.assert_array_equal(encoding.mu, encodings[0].mu)
    assert encodings[0].model_id.startswith("mnist-k2")


def test_a_stack_of_arrays_is_many_pictures(client, digits):
    stacked = client.encode(digits)  # (7, 28, 28) uint8, as MNIST's arrays come
    listed = client.encode(list(digits))
    assert stacked.mu.shape == (len(digits), 2)
    np.testing.assert_array_equal(stacked.mu, listed.mu)
    with pytest.raises(ValueError, match=r"shape \(1, 7, 28, 28, 1\) is not one picture"):
        client.encode(digits[None, ..., None])


def test_a_picture_of_a_number_comes_back_digit_by_digit(client, digits):
    """Three digits side by side on a page, dark on light, each 5 pixels per MNIST pixel."""
    page = np.full((28 * 5 + 100, 28 * 15 + 100), 235, np.uint8)
    for index, digit in enumerate(digits[:3]):
        written = np.asarray(Image.fromarray(255 - digit).resize((140, 140), Image.BICUBIC))
        page[50:190, 50 + 140 * index : 190 + 140 * index] = np.minimum(235, written)
    found = client.encode_digits(page)
    assert found.encoding.mu.shape == (3, 2) and found.boxes.shape == (3, 4)
    lefts = found.boxes[:, 0]
    assert all(50 + 140 * index <= left < 190 + 140 * index for index, left in enumerate(lefts))
    with pytest.raises(BadRequest, match="found 3 digits"):
        client.encode(page)


def test_many_pictures_come_back_in_order_across_batches(server, digits):
    with Client(server.url, batch_size=3) as client:
        many = client.encode(list(digits))
        assert many.mu.shape == (7, 2) and many.percentile.shape == (7,)
        np.testing.assert_array_equal(many.mu[5], client.encode(digits[5]).mu)


def test_the_async_client_gives_the_same_answers(server, digits):
    async def run():
        async with AsyncClient(server.url, batch_size=2, model="fashion-mnist") as client:
            return await client.encode(list(digits)), await client.sample(2, seed=5), await client.models()

    encoding, samples, models = asyncio.run(run())
    with Client(server.url, model="fashion-mnist") as client:
        np.testing.assert_array_equal(encoding.mu, client.encode(list(digits)).mu)
        np.testing.assert_array_equal(samples.z, client.sample(2, seed=5).z)
    assert encoding.model_id.startswith("fashion-mnist") and models["default"] == "mnist"


def test_generation_returns_images(client, digits):
    assert client.decode([0.0, 0.0]).size == (28, 28)
    assert len(client.decode(np.zeros((3, 2)))) == 3
    samples = client.sample(4, seed=11, temperature=0.5)
    assert samples.seed == 11 and samples.z.shape == (4, 2) and len(samples.images) == 4
    assert len(client.interpolate([-1, 0], [1, 0], steps=5)) == 5
    assert len(client.interpolate(digits[0], digits[1], steps=3)) == 3
    assert client.reconstruct(digits[0]).size == (28, 28)


def test_errors_are_typed_and_carry_the_problem(server, client):
    with pytest.raises(BadRequest) as refused:
        client.encode(b"not a picture")
    assert refused.value.status == 415 and refused.value.request_id and "not an image" in refused.value.detail
    with Client(server.url, model="cifar") as wrong:
        with pytest.raises(NotFound, match="loaded: fashion-mnist, mnist, mnist-k16"):
            wrong.decode([0, 0])
    with refusing_url() as url, pytest.raises(ConnectionFailed, match="cannot reach"):
        with Client(url, retries=1, backoff=0) as nowhere:
            nowhere.models()


def test_the_api_key_is_sent():
    with running_server(None, VAE_API_KEY="s3cret") as server:
        with Client(server.url) as anonymous, pytest.raises(Unauthorized):
            anonymous.models()
        with Client(server.url, api_key="s3cret") as keyed:
            assert keyed.models()["default"] == "mnist"


def test_503_is_retried_a_bounded_number_of_times_after_retry_after():
    answers = iter([httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})] * 2)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return next(answers, httpx.Response(200, json={"default": "mnist", "models": []}))

    with Client("http://vae.test", transport=httpx.MockTransport(handler), retries=3) as client:
        assert client.models()["default"] == "mnist"
    assert len(calls) == 3
    always_busy = httpx.MockTransport(
        lambda request: httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})
    )
    with (
        Client("http://vae.test", transport=always_busy, retries=2) as client,
        pytest.raises(Unavailable, match="busy"),
    ):
        client.models()


def test_the_folder_command_writes_every_picture_once_and_resumes(server, digits, tmp_path, capsys):
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    for index, digit in enumerate(digits):
        (folder / ("sub" if index % 2 else "") / f"{index}.png").write_bytes(png(digit))
    (folder / "notes.png").write_bytes(b"not a picture")
    out = tmp_path / "coords.csv"
    command = [str(folder), "--out", str(out), "--url", server.url, "--batch-size", "2", "--quiet"]
    with pytest.raises(SystemExit, match="1 picture"):
        encode_folder(command)
    refusals = [line for line in capsys.readouterr().err.splitlines() if line]
    assert refusals == ["notes.png: not an image in an accepted format (PNG, JPEG, GIF, BMP, WebP)"]  # named once
    lines = out.read_text().splitlines()
    assert lines[0] == "file,mu_0,mu_1,sigma_0,sigma_1,elbo,percentile" and len(lines) == 1 + len(digits)
    with Client(server.url) as client:
        expected = client.encode(digits[3]).mu
    row = next(line for line in lines if line.startswith("sub/3.png,"))
    np.testing.assert_allclose([float(value) for value in row.split(",")[1:3]], expected, rtol=1e-6)

    (folder / "notes.png").unlink()
    with out.open("a") as file:
        file.write("sub/5.p")  # an interrupted run's last line
    encode_folder([*command[:-1]])  # not quiet: it says what is done already
    assert f"{len(digits)} already in {out}, 0 to encode" in capsys.readouterr().err
    assert out.read_text().splitlines() == lines  # nothing encoded twice; the partial line is gone


def _folder(tmp_path, digits, count: int):
    folder = tmp_path / "scans"
    folder.mkdir()
    for index, digit in enumerate(digits[:count]):
        (folder / f"{index}.png").write_bytes(png(digit))
    return folder


def _stops_once(capsys, command: list[str]) -> str:
    """The folder command's one line on stderr and its exit status 2, whatever the number of files."""
    with pytest.raises(SystemExit) as stopped:
        encode_folder(command)
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_folder_command_stops_at_the_first_refusal_of_the_key(tmp_path, digits, capsys):
    folder, out = _folder(tmp_path, digits, 7), tmp_path / "coords.csv"
    with running_server(None, VAE_API_KEY="s3cret") as server:
        base = [str(folder), "--out", str(out), "--url", server.url, "--batch-size", "1", "--quiet"]
        line = _stops_once(capsys, base)
        assert "pass --api-key or set VAE_API_KEY" in line and server.url in line
        assert "pass --api-key" in _stops_once(capsys, [*base, "--api-key", "wrong"])
        assert not out.exists()
        encode_folder([*base, "--api-key", "s3cret"])
    assert len(out.read_text().splitlines()) == 1 + 7


def test_the_folder_command_stops_at_an_unknown_model_naming_those_there_are(server, tmp_path, digits, capsys):
    folder, out = _folder(tmp_path, digits, 5), tmp_path / "coords.csv"
    line = _stops_once(capsys, [str(folder), "--out", str(out), "--url", server.url, "--model", "mnsit", "--quiet"])
    assert "'mnsit'" in line and "mnist" in line.split("mnsit")[1] and "fashion-mnist" in line
    assert not out.exists()


def test_the_folder_command_without_a_service_names_the_url_and_leaves_no_file(tmp_path, digits, capsys):
    folder, out = _folder(tmp_path, digits, 3), tmp_path / "coords.csv"
    with refusing_url() as url:
        line = _stops_once(capsys, [str(folder), "--out", str(out), "--url", url, "--quiet"])
    assert f"cannot reach {url}" in line and "--url" in line
    assert not out.exists()


def test_the_folder_command_writes_json_lines(server, digits, tmp_path):
    for index, digit in enumerate(digits[:3]):
        (tmp_path / f"{index}.jpg").write_bytes(png(digit))  # a misnamed file is still a picture
    out = tmp_path / "coords.jsonl"
    encode_folder([str(tmp_path / "*.jpg"), "--out", str(out), "--url", server.url, "--quiet"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["file"] for row in rows) == [str(tmp_path / f"{index}.jpg") for index in range(3)]
    assert {len(row["mu"]) for row in rows} == {2}


@pytest.mark.slow
def test_the_client_installs_without_torch_or_onnxruntime(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(REPO / "client")], check=True)
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "vae-client" in installed and not installed & {"torch", "onnxruntime", "fastapi"}
    subprocess.run([python, "-c", "import vae_client; vae_client.Client"], check=True)
