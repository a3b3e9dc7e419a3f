"""The Open Inference Protocol, checked with clients nobody here wrote (tritonclient's HTTP client
and the kserve SDK's REST client) over real HTTP against the real server, on real MNIST test
digits: their results equal the ONNX graphs' own outputs, run directly with onnxruntime."""

import asyncio
import base64

import numpy as np
import onnxruntime
import pytest
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from tritonclient.utils import InferenceServerException

from harness.bodies import png
from harness.server import running_server
from tests.conftest import BUNDLED_MODEL
from tests.service.test_upright import as_the_bundled_model_sees
from training.data import load_dataset

TOLERANCE = dict(atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def server():
    with running_server(None) as server:  # the bundled repository: mnist and fashion-mnist
        yield server


@pytest.fixture(scope="module")
def client(server):
    with triton.InferenceServerClient(server.url.removeprefix("http://")) as client:
        yield client


@pytest.fixture(scope="module")
def digits(sample_data_dir) -> np.ndarray:
    return load_dataset(sample_data_dir).test.images[:16]  # (16, 28, 28) uint8


def onnx(graph: str, inputs: dict) -> list[np.ndarray]:
    """The bundled graph run directly; its encoder on the images sheared upright by scipy's oracle,
    as the model was trained (model.json's preprocessing.deskew)."""
    if graph == "encoder":
        inputs = {"image": as_the_bundled_model_sees(inputs["image"])}
    return onnxruntime.InferenceSession(BUNDLED_MODEL / f"{graph}.onnx").run(None, inputs)


def as_model_input(digits: np.ndarray) -> np.ndarray:
    return (digits[:, None] / np.float32(255)).astype(np.float32)


def test_tritonclient_sees_a_live_ready_server_and_its_models(client):
    assert client.is_server_live() and client.is_server_ready()
    assert {"binary_tensor_data", "model_repository"} <= set(client.get_server_metadata()["extensions"])
    assert client.is_model_ready("mnist-encoder") and client.is_model_ready("fashion-mnist-decoder")
    metadata = client.get_model_metadata("mnist-encoder")
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert [output["shape"] for output in metadata["outputs"]] == [[-1, 2], [-1, 2]]
    assert client.get_model_metadata("mnist-encoder", model_version=metadata["versions"][0]) == metadata
    assert not client.is_model_ready("mnist-classifier")


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_fp32_inference_equals_onnxruntime(client, digits, binary):
    images = as_model_input(digits)
    image = triton.InferInput("image", list(images.shape), "FP32")
    image.set_data_from_numpy(images, binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("mu", "sigma")]
    result = client.infer("mnist-encoder", [image], outputs=outputs)
    mu, sigma = onnx("encoder", {"image": images})
    np.testing.assert_allclose(result.as_numpy("mu"), mu, **TOLERANCE)
    np.testing.assert_allclose(result.as_numpy("sigma"), sigma, **TOLERANCE)

    z = triton.InferInput("z", list(mu.shape), "FP32")
    z.set_data_from_numpy(mu, binary_data=binary)
    decoded = client.infer("mnist-decoder", [z], outputs=[triton.InferRequestedOutput("image", binary_data=binary)])
    np.testing.assert_allclose(decoded.as_numpy("image"), onnx("decoder", {"z": mu})[0], **TOLERANCE)


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_bytes_input_takes_image_files_through_the_recipe(client, digits, binary):
    """An MNIST digit's own PNG reaches the model bit for bit, so the result is the graph's on it."""
    files = [png(digit) for digit in digits]
    elements = files if binary else [base64.b64encode(file) for file in files]  # JSON carries base64 text
    image = triton.InferInput("image", [len(files)], "BYTES")
    image.set_data_from_numpy(np.array(elements, dtype=np.object_), binary_data=binary)
    result = client.infer("mnist-encoder", [image], outputs=[triton.InferRequestedOutput("mu", binary_data=binary)])
    mu, _ = onnx("encoder", {"image": as_model_input(digits)})
    np.testing.assert_allclose(result.as_numpy("mu"), mu, **TOLERANCE)


def test_tritonclient_errors_name_the_tensor_and_what_was_expected(client):
    wrong = triton.InferInput("z", [1, 3], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(InferenceServerException, match=r"input 'z'.*Expected \[-1, 2\], got \[1, 3\]") as error:
        client.infer("mnist-decoder", [wrong])
    assert error.value.status() == "400"
    doubles = triton.InferInput("z", [1, 2], "FP64")
    doubles.set_data_from_numpy(np.zeros((1, 2)))
    with pytest.raises(InferenceServerException, match="data-type is 'FP64', but model 'mnist-decoder' expects 'FP32'"):
        client.infer("mnist-decoder", [doubles])
    with pytest.raises(InferenceServerException, match="unknown model: 'mnist-classifier'"):
        client.infer("mnist-classifier", [doubles])


def test_tritonclient_drives_the_repository(client):
    index = client.get_model_repository_index()
    states = {entry["name"]: entry["state"] for entry in index}
    halves = [f"{vae}-{role}" for vae in ("fashion-mnist", "mnist", "mnist-k16") for role in ("encoder", "decoder")]
    assert states == dict.fromkeys(halves, "READY")
    for entry in index:  # each name the index gives is one that infers
        assert client.get_model_metadata(entry["name"])["versions"] == [entry["version"]]
    client.unload_model("fashion-mnist-encoder")
    assert not client.is_model_ready("fashion-mnist-encoder") and not client.is_model_ready("fashion-mnist-decoder")
    client.load_model("fashion-mnist-decoder")
    assert client.is_model_ready("fashion-mnist-encoder")


@pytest.mark.parametrize("binary", [True, False])
def test_kserve_sdk_inference_equals_onnxruntime(server, digits, binary):
    images = as_model_input(digits)

    async def infer() -> tuple[bool, bool, np.ndarray, np.ndarray]:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=10))
        try:
            image = InferInput("image", list(images.shape), "FP32")
            image.set_data_from_numpy(images, binary_data=binary)
            request = InferRequest(model_name="mnist-encoder", infer_inputs=[image])
            response = await client.infer(server.url, request, model_name="mnist-encoder")
            live = await client.is_server_live(server.url)
            ready = await client.is_model_ready(server.url, "mnist-encoder")
            return live, ready, *(output.as_numpy() for output in response.outputs)
        finally:
            await client.close()

    live, ready, mu, sigma = asyncio.run(infer())
    assert live and ready
    expected_mu, expected_sigma = onnx("encoder", {"image": images})
    np.testing.assert_allclose(mu, expected_mu, **TOLERANCE)
    np.testing.assert_allclose(sigma, expected_sigma, **TOLERANCE)
