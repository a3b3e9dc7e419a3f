"""Several models in one service: per-model routes, the default model, and loading, reloading and
unloading without a restart (the protocol's repository extension)."""

import asyncio
import json
import shutil
import threading

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY

from contract.geometry import IMAGE_SHAPE
from harness.bodies import png
from harness.server import running_server, wait_until
from service.core.errors import ModelError
from service.core.served import ASSESSMENT
from tests.conftest import BUNDLED_MODEL
from tests.service.conftest import assert_problem, make_client, make_repository_client
from training.data import load_dataset

MODELS = BUNDLED_MODEL.parent


@pytest.fixture
def repository(tmp_path):
    """A copy of the bundled repository, to change under the service."""
    root = tmp_path / "models"
    for name in ("mnist", "fashion-mnist", "mnist-k16"):
        shutil.copytree(MODELS / name, root / name, ignore=shutil.ignore_patterns("figures"))
    return root


@pytest.fixture(scope="module")
def digit(sample_data_dir) -> bytes:
    return png(load_dataset(sample_data_dir).test.images[0])


def encode(client, digit: bytes, prefix: str = "") -> dict:
    response = client.post(f"{prefix}/encode", content=digit, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()


def test_every_model_is_served_under_its_name_and_the_default_unprefixed(repository, digit):
    with make_repository_client(repository) as client:
        listing = client.get("/models").json()
        assert listing["default"] == "mnist"
        ids = {model["name"]: model["id"] for model in listing["models"]}
        assert set(ids) == {"mnist", "fashion-mnist", "mnist-k16"}
        assert {model["recipe"] for model in listing["models"]} == {"digit", "object"}
        assert client.get("/models/fashion-mnist").json()["classes"][0] == "T-shirt/top"
        assert encode(client, digit)["model_id"] == ids["mnist"]
        assert encode(client, digit, "/models/fashion-mnist")["model_id"] == ids["fashion-mnist"]
        sample = client.post(
            "/models/fashion-mnist/sample", json={"n": 2, "seed": 3}, headers={"Accept": "application/json"}
        )
        assert sample.json()["model_id"] == ids["fashion-mnist"]
        assert client.get("/readyz").json()["models"] == ids


def test_each_model_serves_its_reference_set(repository):
    with make_repository_client(repository) as client:
        for name in ("mnist", "fashion-mnist", "mnist-k16"):
            description = client.get(f"/models/{name}").json()
            response = client.get(f"/models/{name}/reference")
            assert response.headers["content-type"] == "application/octet-stream"
            count = description["reference"]["count"]
            assert len(response.content) == count * (8 * description["latent_size"] + 1)
            labels = np.frombuffer(response.content[-count:], np.uint8)
            assert set(labels) == set(range(len(description["classes"])))


def test_a_model_without_a_reference_set_says_so(repository):
    description = json.loads((repository / "mnist" / "model.json").read_text())
    del description["reference"]
    (repository / "mnist" / "model.json").write_text(json.dumps(description))
    with make_repository_client(repository) as client:
        assert_problem(client.get("/models/mnist/reference"), 404, "has no reference set")


def test_an_unknown_model_is_a_404_that_lists_the_names(repository):
    with make_repository_client(repository) as client:
        body = assert_problem(client.post("/models/mnist2/decode", json={"z": [0, 0]}), 404, "no model 'mnist2'")
        assert "fashion-mnist, mnist, mnist-k16" in body["detail"]
        assert_problem(client.get("/models/mnist2"), 404, "loaded: fashion-mnist, mnist, mnist-k16")


def test_the_default_model_is_a_setting_and_a_missing_one_stops_start_up(repository, digit):
    with make_repository_client(repository, default_model="fashion-mnist") as client:
        assert encode(client, digit)["model_id"].startswith("fashion-mnist")
    with pytest.raises(ModelError, match=r"'digits' is not in .+ \(it has fashion-mnist, mnist, mnist-k16\); set"):
        with make_repository_client(repository, default_model="digits"):
            pass


def test_only_folders_with_a_plain_name_are_models(repository):
    (repository / "README.md").write_text("the models")
    shutil.copytree(repository / "mnist", repository / ".mnist-backup")
    with make_repository_client(repository) as client:
        names = [entry["name"] for entry in client.post("/v2/repository/index").json()]
    assert sorted({name.rsplit("-", 1)[0] for name in names}) == ["fashion-mnist", "mnist", "mnist-k16"]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", r"/models: cannot list the model repository \(No such file or directory\)$"),
        ("empty", r"/models: no model folders \(each needs a model.json\)$"),
    ],
)
def test_a_repository_with_nothing_to_serve_stops_start_up_naming_it(tmp_path, layout, message):
    if layout == "empty":
        (tmp_path / "models").mkdir()
    with pytest.raises(ModelError, match=message):
        with make_repository_client(tmp_path / "models"):
            pass


def test_the_batch_wait_reaches_every_batcher_of_a_served_model(model_dir):
    """VAE_BATCH_WAIT_MS reaches each batcher (encoder, decoder, and both for /encode): two calls
    together wait for a third that comes 50 ms later, and the three share one model call."""
    with make_client(model_dir, batch_wait_ms=100) as client:
        served = client.engine.repository().get()

        async def three(half, inputs) -> None:
            together = asyncio.gather(half(inputs), half(inputs))
            await asyncio.sleep(0.05)
            await asyncio.wait_for(asyncio.gather(together, half(inputs)), 5)

        def calls() -> list[float]:
            labels = [{"model": served.name, "graph": graph} for graph in ("encoder", "decoder", ASSESSMENT)]
            return [REGISTRY.get_sample_value("vae_batch_size_count", each) or 0 for each in labels]

        before = calls()
        image = np.zeros((1, *IMAGE_SHAPE), np.float32)
        client.portal.call(three, served.encode, image)
        client.portal.call(three, served.decode, np.zeros((1, served.model.latent_size), np.float32))
        client.portal.call(three, served.assess, image)
        assert [now - then for now, then in zip(calls(), before, strict=True)] == [1, 1, 1]


def test_a_broken_folder_stops_start_up_naming_it(repository):
    (repository / "fashion-mnist" / "decoder.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match=r"fashion-mnist/decoder.onnx: sha256 .* does not match"):
        with make_repository_client(repository):
            pass


def test_unload_and_load_without_a_restart(repository, digit):
    with make_repository_client(repository) as client:
        unloaded = client.post("/v2/repository/models/fashion-mnist-decoder/unload")  # a half acts on its folder
        assert unloaded.status_code == 200
        halves = ["fashion-mnist-encoder", "fashion-mnist-decoder"]
        assert unloaded.json() == {"folder": "fashion-mnist", "unloaded": halves}
        assert_problem(
            client.post("/models/fashion-mnist/encode", content=digit, headers={"Content-Type": "image/png"}),
            404,
            "no model 'fashion-mnist' is loaded; loaded: mnist, mnist-k16",
        )
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
        for half in ("fashion-mnist-encoder", "fashion-mnist-decoder"):
            assert index[half] == {"name": half, "state": "UNAVAILABLE", "reason": "unloaded"}
        assert [entry["name"] for entry in client.post("/v2/repository/index", json={"ready": True}).json()] == [
            "mnist-encoder",
            "mnist-decoder",
            "mnist-k16-encoder",
            "mnist-k16-decoder",
        ]
        assert client.post("/v2/repository/models/fashion-mnist/load").status_code == 200  # a folder's name too
        assert encode(client, digit, "/models/fashion-mnist")["model_id"].startswith("fashion-mnist")
        missing = client.post("/v2/repository/models/cifar/load")
        assert missing.status_code == 404
        folders = "fashion-mnist, mnist, mnist-k16"
        assert missing.json()["error"] == f"no model folder 'cifar' in the repository; it has {folders}"
        refused = client.post("/v2/repository/models/mnist/load", json={"parameters": {"config": "{}"}})
        assert refused.status_code == 400 and "not supported" in refused.json()["error"]


@pytest.mark.parametrize("name", ["mnist", "mnist-encoder"])
def test_the_default_model_cannot_be_unloaded_so_readiness_stays_true(repository, name):
    with make_repository_client(repository) as client:
        refused = client.post(f"/v2/repository/models/{name}/unload")
        assert refused.status_code == 409
        assert refused.json()["error"] == (
            "model 'mnist' is the default model, which the unprefixed routes serve; it cannot be unloaded. "
            "Load a new version over it, or restart with another VAE_DEFAULT_MODEL"
        )
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_id"].startswith("mnist-k2")
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post("/decode", json={"z": [0, 0]}).status_code == 200  # what readiness promises


def test_a_folder_that_fails_verification_leaves_the_loaded_version_serving(repository, digit):
    with make_repository_client(repository) as client:
        before = encode(client, digit, "/models/mnist")
        (repository / "mnist" / "encoder.onnx").write_bytes(b"tampered")
        failed = client.post("/v2/repository/models/mnist/load")
        assert failed.status_code == 400
        assert "encoder.onnx: sha256" in failed.json()["error"]
        assert encode(client, digit, "/models/mnist") == before
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
        assert index["mnist-encoder"]["state"] == index["mnist-decoder"]["state"] == "READY"


def test_the_index_lists_each_half_with_its_version_and_a_new_folder_as_not_loaded(repository):
    with make_repository_client(repository) as client:
        shutil.copytree(repository / "mnist", repository / "mnist-copy")  # added after start-up
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
    version = json.loads((repository / "mnist" / "model.json").read_text())["id"].rsplit("-", 1)[-1]
    assert index["mnist-encoder"] == {"name": "mnist-encoder", "version": version, "state": "READY", "reason": ""}
    assert index["mnist-copy-decoder"] == {"name": "mnist-copy-decoder", "state": "UNAVAILABLE", "reason": "not loaded"}


def test_a_folder_that_fails_to_load_is_listed_with_why_until_it_loads(repository, digit):
    with make_repository_client(repository) as client:
        assert client.post("/v2/repository/models/fashion-mnist/unload").status_code == 200
        again = client.post("/v2/repository/models/fashion-mnist/unload")
        assert again.status_code == 404
        assert again.json()["error"] == "model 'fashion-mnist' is not loaded; loaded: mnist, mnist-k16"
        encoder = repository / "fashion-mnist" / "encoder.onnx"
        intact = encoder.read_bytes()
        encoder.write_bytes(b"tampered")
        failed = client.post("/v2/repository/models/fashion-mnist/load").json()["error"]
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
        assert failed.startswith("failed to load 'fashion-mnist': ") and "encoder.onnx: sha256" in failed
        assert index["fashion-mnist-encoder"] == {
            "name": "fashion-mnist-encoder",
            "state": "UNAVAILABLE",
            "reason": failed.removeprefix("failed to load 'fashion-mnist': "),
        }
        encoder.write_bytes(intact)
        assert client.post("/v2/repository/models/fashion-mnist/load").status_code == 200
        assert client.post("/v2/repository/models/mnist-k16/load").status_code == 200  # a served model reloads
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
        assert index["fashion-mnist-encoder"]["state"] == index["mnist-k16-encoder"]["state"] == "READY"


def test_the_repository_routes_need_the_key_when_one_is_set(repository):
    with make_repository_client(repository, api_key="s3cret") as client:
        assert client.post("/v2/repository/models/mnist/unload").status_code == 401
        assert client.get("/v2/health/ready").status_code == 200  # a probe
        keyed = client.post("/v2/repository/index", headers={"Authorization": "Bearer s3cret"})
        assert keyed.status_code == 200


def test_swapping_a_model_under_load_fails_no_request(repository, digit):
    """Clients encode without pause while the folder is replaced by another model and reloaded, twice."""
    failures, answers, stop = [], [], threading.Event()
    with running_server(None, VAE_MODEL_REPOSITORY=str(repository)) as server:

        def hammer():
            with httpx.Client(base_url=server.url, timeout=10) as http:
                while not stop.is_set():
                    response = http.post("/models/mnist/encode", content=digit, headers={"Content-Type": "image/png"})
                    (answers if response.status_code == 200 else failures).append(response)

        clients = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in clients:
            thread.start()
        for source in ("fashion-mnist", "mnist"):
            for name in ("encoder.onnx", "decoder.onnx", "reference.bin", "model.json"):
                shutil.copyfile(MODELS / source / name, repository / "mnist" / name)
            assert httpx.post(f"{server.url}/v2/repository/models/mnist/load", timeout=30).status_code == 200
            answered_before = len(answers)
            wait_until(lambda wanted=answered_before + 20: len(answers) >= wanted, "20 answers after the swap")
        stop.set()
        for thread in clients:
            thread.join()
    assert not failures, [response.text for response in failures[:3]]
    served = [response.json()["model_id"].split("-k2")[0] for response in answers]
    assert served[0] == "mnist" and "fashion-mnist" in served and served[-1] == "mnist"


ESCAPES = [
    "..",
    ".",
    "...",
    "../mnist",
    "..%2Fmnist",
    "%2E%2E",
    "%2e%2e%2fmnist",
    "%252e%252e%252fmnist",
    "..%5Cmnist",
    "..\\mnist",
    "mnist%00",
    "%C0%AE%C0%AE",
    "..%c0%afmnist",
    "~",
    "%7E",
    ".mnist",
    "mnist%2F..%2Fmnist",
]


@pytest.mark.parametrize("name", ESCAPES)
@pytest.mark.parametrize("action", ["load", "unload"])
def test_load_and_unload_refuse_names_that_leave_the_repository(tmp_path, name, action):
    repository = tmp_path / "repository"
    shutil.copytree(MODELS / "mnist", repository / "mnist")
    shutil.copytree(MODELS / "fashion-mnist", tmp_path / "outside")  # beside the repository: never served
    with make_repository_client(repository) as client:
        answer = client.post(f"/v2/repository/models/{name}/{action}")
        assert answer.status_code in (400, 404), (name, answer.status_code, answer.text)
        served = [entry["name"] for entry in client.post("/v2/repository/index").json()]
        assert served == ["mnist-encoder", "mnist-decoder"]
