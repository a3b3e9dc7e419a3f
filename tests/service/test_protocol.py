"""The Open Inference Protocol routes' own checks, one class of error each: every error is
{"error": ...} with the status the protocol names, and says which tensor, what was expected and
what came."""

import base64
import json
import struct

import numpy as np
import pytest

from harness.bodies import png
from tests.conftest import BUNDLED_MODEL
from tests.service.conftest import make_repository_client
from training.data import load_dataset

DECODER = "/v2/models/mnist-decoder/infer"
ENCODER = "/v2/models/mnist-encoder/infer"


@pytest.fixture(scope="module")
def client():
    with make_repository_client(BUNDLED_MODEL.parent, max_batch=8, max_body_bytes=200_000) as client:
        yield client


def z_input(shape=(1, 2), data=None, datatype="FP32", **extra) -> dict:
    return {
        "name": "z",
        "shape": list(shape),
        "datatype": datatype,
        "data": data or [0.0] * int(np.prod(shape)),
        **extra,
    }


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


def binary_request(header: dict, *chunks: bytes) -> tuple[bytes, dict]:
    document = json.dumps(header).encode()
    return document + b"".join(chunks), {
        "Inference-Header-Content-Length": str(len(document)),
        "Content-Type": "application/octet-stream",
    }


def test_nested_and_flat_json_tensors_give_the_same_answer(client):
    flat = client.post(DECODER, json={"inputs": [z_input((2, 2), [0.5, -1.0, 1.0, 0.0])]}).json()
    nested = client.post(DECODER, json={"inputs": [z_input((2, 2), [[0.5, -1.0], [1.0, 0.0]])]}).json()
    assert flat["outputs"] == nested["outputs"]
    assert flat["outputs"][0]["shape"] == [2, 1, 28, 28]


def test_binary_outputs_on_request_and_by_default(client):
    body, headers = binary_request(
        {
            "inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}],
            "parameters": {"binary_data_output": True},
        },
        np.array([0.5, -1.0], "<f4").tobytes(),
    )
    response = client.post(DECODER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    (output,) = header["outputs"]
    assert output["parameters"] == {"binary_data_size": 28 * 28 * 4}
    image = np.frombuffer(response.content[length:], "<f4").reshape(1, 1, 28, 28)
    as_json = client.post(DECODER, json={"inputs": [z_input(data=[0.5, -1.0])]}).json()["outputs"][0]["data"]
    np.testing.assert_array_equal(image.reshape(-1), np.float32(as_json))


def test_requested_outputs_only_and_the_request_id_comes_back(client):
    images = np.zeros((1, 1, 28, 28), np.float32).reshape(-1).tolist()
    request = {
        "id": "r-1",
        "inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": images}],
        "outputs": [{"name": "sigma"}],
    }
    response = client.post(ENCODER, json=request).json()
    assert response["id"] == "r-1" and [output["name"] for output in response["outputs"]] == ["sigma"]
    assert response["model_name"] == "mnist-encoder" and response["model_version"]
    wrong = client.post(ENCODER, json={**request, "outputs": [{"name": "logvar"}]})
    assert "unexpected inference output 'logvar' for model 'mnist-encoder'; it has mu, sigma" in error_of(wrong, 400)


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [
        (
            {"inputs": [z_input((1, 3))]},
            "unexpected shape for input 'z' for model 'mnist-decoder'. Expected [-1, 2], got [1, 3]",
        ),
        (
            {"inputs": [z_input(datatype="INT64", data=[0, 0])]},
            "data-type is 'INT64', but model 'mnist-decoder' expects 'FP32'",
        ),
        ({"inputs": [z_input(datatype="FLOAT")]}, "unknown datatype 'FLOAT'"),
        (
            {"inputs": [{**z_input(), "name": "latent"}]},
            "unexpected inference input 'latent' for model 'mnist-decoder'; its input is 'z'",
        ),
        ({"inputs": [z_input(), z_input()]}, "expected 1 input but got 2 inputs"),
        ({"inputs": [z_input((1, 2), [0.0])]}, "shape [1, 2] holds 2 values, but data has 1"),
        ({"inputs": [z_input((9, 2))]}, "batch of 9; send between 1 and 8"),
        ({"inputs": [z_input(data=[0.0, "a"])]}, "data is not all FP32"),
        (
            {"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32"}]},
            "has neither data nor parameters.binary_data_size",
        ),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"inputs": [z_input()], "model_name": "mnist-encoder"}, "the request's model_name is 'mnist-encoder'"),
        ({"inputs": [z_input()], "priority": 1}, "priority: Extra inputs are not permitted"),
        ({"inputs": [z_input()], "parameters": {"sequence_id": 3}}, "parameters.sequence_id: Extra inputs"),
    ],
)
def test_each_malformed_request_says_what_to_fix(client, request_body, fragment):
    assert fragment in error_of(client.post(DECODER, json=request_body), 400)


def test_encoder_refuses_pixels_outside_the_unit_interval_and_non_finite_values(client):
    images = np.full(784, 255.0).tolist()
    request = {"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": images}]}
    assert "values outside [0, 1]; send pixel / 255" in error_of(client.post(ENCODER, json=request), 400)
    body, headers = binary_request(
        {"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]},
        np.array([np.nan, 0], "<f4").tobytes(),
    )
    assert "NaN or infinite" in error_of(client.post(DECODER, content=body, headers=headers), 400)


@pytest.mark.parametrize(
    ("declared", "chunk", "header_length", "fragment"),
    [
        (8, b"\0" * 8, "99999", "Inference-Header-Content-Length is '99999'"),
        (8, b"\0" * 12, None, "4 bytes after the JSON header belong to no input"),
        (12, b"\0" * 12, None, "is 8 bytes, but its raw data is 12 bytes"),
        (16, b"\0" * 8, None, "binary_data_size 16 runs past the body's end"),
    ],
)
def test_binary_framing_errors_are_caught(client, declared, chunk, header_length, fragment):
    body, headers = binary_request(
        {"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": declared}}]},
        chunk,
    )
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = header_length
    assert fragment in error_of(client.post(DECODER, content=body, headers=headers), 400)


def test_bytes_elements_must_be_image_files(client, sample_data_dir):
    digit = png(load_dataset(sample_data_dir).test.images[0])
    good = base64.b64encode(digit).decode()
    request = {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": [good, "not base64!"]}]}
    assert "element 1: in JSON, a BYTES element must be the image file in base64" in error_of(
        client.post(ENCODER, json=request), 400
    )
    text = base64.b64encode(b"hello").decode()
    request = {"inputs": [{"name": "image", "shape": [2, 1], "datatype": "BYTES", "data": [good, text]}]}
    assert "'element 1'" in error_of(client.post(ENCODER, json=request), 400)
    raw = struct.pack("<I", len(digit)) + digit + struct.pack("<I", 1000) + b"\0"
    body, headers = binary_request(
        {
            "inputs": [
                {"name": "image", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}
            ]
        },
        raw,
    )
    assert "runs past the data's end" in error_of(client.post(ENCODER, content=body, headers=headers), 400)


def test_unknown_models_versions_and_routes_answer_in_the_protocol_shape(client):
    assert "served: fashion-mnist-encoder" in error_of(client.get("/v2/models/mnist"), 404)
    assert "version 0 is not found; loaded version" in error_of(client.get("/v2/models/mnist-encoder/versions/0"), 404)
    version = client.get("/v2/models/mnist-encoder").json()["versions"][0]
    assert client.get(f"/v2/models/mnist-encoder/versions/{version}/ready").json() == {
        "name": "mnist-encoder",
        "ready": True,
    }
    assert error_of(client.get("/v2/nothing"), 404).startswith("no route serves /v2/nothing")
    assert "GET /v2/models/mnist-decoder/infer is not allowed; use POST" in error_of(client.get(DECODER), 405)
    assert "request body over 200000 bytes" in error_of(client.post(DECODER, content=b"\0" * 200_001), 413)
    assert "not an inference request" in error_of(client.post(DECODER, content=b"{"), 400)
