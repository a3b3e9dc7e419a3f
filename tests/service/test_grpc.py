"""The Open Inference Protocol over gRPC, checked with clients nobody here wrote (tritonclient's gRPC
client, the stub it generates from the protocol's .proto, and the kserve SDK's InferenceGRPCClient)
against the real server in a subprocess, on real MNIST test digits: results equal the ONNX graphs'
own outputs run with onnxruntime, and errors carry the same messages as over REST, as gRPC codes."""

import base64
import concurrent.futures
import shutil
import subprocess
import sys
import threading

import grpc
import httpx
import numpy as np
import pytest

from harness.bodies import png
from harness.server import metric, requests_in_flight, running_server, wait_until
from service.grpc import inference_pb2 as pb
from tests.conftest import REPO
from tests.service.grpc_clients import call
from tests.service.imaging import digit_on_paper
from tests.service.test_protocol_clients import TOLERANCE, as_model_input, onnx
from training.data import load_dataset

KEY = "grpc-test-key"
INFER_ROUTE = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture(scope="module")
def server():
    with running_server(None, "--grpc-port", "0") as server:  # the bundled repository: mnist and fashion-mnist
        yield server


@pytest.fixture(scope="module")
def digits(sample_data_dir) -> np.ndarray:
    return load_dataset(sample_data_dir).test.images[:16]  # (16, 28, 28) uint8


def fp32(name: str, array: np.ndarray) -> dict:
    return {"name": name, "datatype": "FP32", "shape": list(array.shape), "data": array.reshape(-1).tolist()}


def files(name: str, pictures: list[bytes], shape: list[int] | None = None) -> dict:
    encoded = [base64.b64encode(picture).decode() for picture in pictures]
    return {"name": name, "datatype": "BYTES", "shape": shape or [len(pictures)], "data": encoded}


def test_tritonclient_sees_a_live_ready_server_and_its_models(server):
    seen = call("triton_probes", server.grpc_target)
    assert seen["live"] and seen["ready"] and seen["models_ready"] == [True, True]
    assert seen["server"] == {"name": "vae-service", "version": "0.1.0", "extensions": ["model_repository"]}
    metadata = seen["metadata"]
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": ["-1", "1", "28", "28"]}]
    assert [output["shape"] for output in metadata["outputs"]] == [["-1", "2"], ["-1", "2"]]
    assert seen["versioned"] == metadata
    unknown = call("triton_repository", server.grpc_target, actions=[["ready", "mnist-classifier"]])
    assert unknown == [{"error": {"status": "StatusCode.NOT_FOUND", "message": unknown[0]["error"]["message"]}}]
    assert "unknown model: 'mnist-classifier'" in unknown[0]["error"]["message"]


def test_tritonclient_raw_fp32_inference_equals_onnxruntime(server, digits):
    images = as_model_input(digits)
    encoded = call("triton_infer", server.grpc_target, model="mnist-encoder", inputs=[fp32("image", images)])
    mu, sigma = onnx("encoder", {"image": images})
    np.testing.assert_allclose(encoded["outputs"]["mu"], mu, **TOLERANCE)
    np.testing.assert_allclose(encoded["outputs"]["sigma"], sigma, **TOLERANCE)
    assert encoded["model_version"] == httpx.get(f"{server.url}/v2/models/mnist-encoder").json()["versions"][0]

    decoded = call("triton_infer", server.grpc_target, model="mnist-decoder", inputs=[fp32("z", mu)], outputs=["image"])
    np.testing.assert_allclose(decoded["outputs"]["image"], onnx("decoder", {"z": mu})[0], **TOLERANCE)


def test_bytes_input_takes_image_files_through_the_picture_pipeline(server, digits):
    """An MNIST digit's own PNG reaches the model bit for bit, so the result is the graph's on it; a
    photo-like page gets the same mu over gRPC as from REST's /encode."""
    pngs = [png(digit) for digit in digits]
    result = call(
        "triton_infer", server.grpc_target, model="mnist-encoder", inputs=[files("image", pngs)], outputs=["mu"],
        request_id="r-1",
    )  # fmt: skip
    mu, _ = onnx("encoder", {"image": as_model_input(digits)})
    np.testing.assert_allclose(result["outputs"]["mu"], mu, **TOLERANCE)
    assert list(result["outputs"]) == ["mu"] and result["id"] == "r-1"

    page = png(digit_on_paper())
    over_grpc = call("triton_infer", server.grpc_target, model="mnist-encoder", inputs=[files("image", [page], [1, 1])])
    over_rest = httpx.post(f"{server.url}/encode", content=page, headers={"Content-Type": "image/png"}).json()["mu"]
    np.testing.assert_allclose(over_grpc["outputs"]["mu"][0], over_rest, **TOLERANCE)


def test_typed_contents_come_back_typed(server, digits):
    images = as_model_input(digits[:2])
    request = {
        "model_name": "mnist-encoder",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 1, 28, 28],
                    "contents": {"fp32_contents": images.reshape(-1).tolist()}}],
    }  # fmt: skip
    response = call("stub_infer", server.grpc_target, request=request)
    assert "raw_output_contents" not in response
    outputs = {output["name"]: np.array(output["contents"]["fp32_contents"]) for output in response["outputs"]}
    mu, sigma = onnx("encoder", {"image": images})
    np.testing.assert_allclose(outputs["mu"], mu.reshape(-1), **TOLERANCE)
    np.testing.assert_allclose(outputs["sigma"], sigma.reshape(-1), **TOLERANCE)


def test_raw_contents_that_do_not_fit_their_shape_are_refused(server):
    request = {
        "model_name": "mnist-decoder",
        "inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 2]}],
        "raw_input_contents": [base64.b64encode(np.zeros(3, np.float32).tobytes()).decode()],
    }
    refused = call("stub_infer", server.grpc_target, request=request)
    assert refused["error"] == {
        "status": "INVALID_ARGUMENT",
        "message": "input 'z': shape [1, 2] of FP32 is 8 bytes, but its raw data is 12 bytes",
    }
    request["raw_input_contents"] *= 2
    assert (
        "raw_input_contents has 2 entries for 1 input"
        in call("stub_infer", server.grpc_target, request=request)["error"]["message"]
    )


def rest_v2_error(server, model: str, inputs: list[dict]) -> str:
    response = httpx.post(f"{server.url}/v2/models/{model}/infer", json={"inputs": inputs})
    assert response.status_code == 400
    return response.json()["error"]


Z = np.zeros((1, 2), np.float32)
BLANK = png(np.full((40, 40), 255, np.uint8))


@pytest.mark.parametrize(
    "model, inputs, outputs, status, fragment",
    [
        ("mnist-decoder", [fp32("z", np.zeros((1, 3)))], None, "INVALID_ARGUMENT", "Expected [-1, 2], got [1, 3]"),
        ("mnist-decoder", [fp32("z", np.zeros((65, 2)))], None, "INVALID_ARGUMENT", "of 65; send between 1 and 64"),
        ("mnist-encoder", [fp32("image", np.full((1, 1, 28, 28), 2))], None, "INVALID_ARGUMENT", "outside [0, 1]"),
        ("mnist-encoder", [files("image", [BLANK])], None, "INVALID_ARGUMENT", "element 0"),
        ("mnist-decoder", [fp32("z", Z)], ["logits"], "INVALID_ARGUMENT", "output 'logits'"),
        ("mnist-classifier", [fp32("z", Z)], None, "NOT_FOUND", "unknown model"),
    ],
    ids=["shape", "batch", "range", "blank-picture", "output", "model"],
)  # fmt: skip
def test_errors_are_status_codes_with_the_messages_rest_gives(server, model, inputs, outputs, status, fragment):
    refused = call("triton_infer", server.grpc_target, model=model, inputs=inputs, outputs=outputs)["error"]
    assert refused["status"] == f"StatusCode.{status}" and fragment in refused["message"]
    rest = httpx.post(
        f"{server.url}/v2/models/{model}/infer",
        json={"inputs": inputs, **({"outputs": [{"name": name} for name in outputs]} if outputs else {})},
    )
    assert rest.json()["error"] == refused["message"]


def test_tritonclient_drives_the_repository(server):
    index, unloaded, ready, after, loaded, back, default, escape = call(
        "triton_repository",
        server.grpc_target,
        actions=[["index"], ["unload", "fashion-mnist-encoder"], ["ready", "fashion-mnist-decoder"], ["index"],
                 ["load", "fashion-mnist-decoder"], ["ready", "fashion-mnist-encoder"], ["unload", "mnist"],
                 ["load", "../mnist"]],
    )  # fmt: skip
    halves = [f"{vae}-{role}" for vae in ("fashion-mnist", "mnist", "mnist-k16") for role in ("encoder", "decoder")]
    assert {entry["name"]: entry["state"] for entry in index} == dict.fromkeys(halves, "READY")
    assert unloaded is None and loaded is None and back is True
    assert ready["error"]["status"] == "StatusCode.NOT_FOUND"  # unloaded: no longer served
    states = {entry["name"]: entry["state"] for entry in after}
    assert states["fashion-mnist-encoder"] == "UNAVAILABLE" and states["mnist-encoder"] == "READY"
    assert default["error"]["status"] == "StatusCode.FAILED_PRECONDITION" and "default" in default["error"]["message"]
    assert escape["error"]["status"] == "StatusCode.NOT_FOUND" and "'../mnist'" in escape["error"]["message"]


def test_kserve_sdk_grpc_inference_equals_onnxruntime(server, digits):
    images = as_model_input(digits)
    seen = call("kserve_infer", server.grpc_target, images=images.reshape(-1).tolist(), shape=list(images.shape))
    assert seen["live"] and seen["ready"]
    mu, sigma = onnx("encoder", {"image": images})
    np.testing.assert_allclose(seen["outputs"]["mu"], mu, **TOLERANCE)
    np.testing.assert_allclose(seen["outputs"]["sigma"], sigma, **TOLERANCE)


def test_a_message_over_the_body_limit_is_resource_exhausted(model_dir):
    with running_server(model_dir, "--grpc-port", "0", VAE_MAX_BODY_BYTES="10000") as server:
        small = call("triton_infer", server.grpc_target, model="model-decoder", inputs=[fp32("z", np.zeros((1, 2)))])
        assert np.array(small["outputs"]["image"]).shape == (1, 1, 28, 28)
        large = [fp32("image", np.zeros((4, 1, 28, 28)))]  # 12,544 bytes of floats
        refused = call("triton_infer", server.grpc_target, model="model-encoder", inputs=large)
        assert refused["error"]["status"] == "StatusCode.RESOURCE_EXHAUSTED"


def test_the_api_key_as_metadata(model_dir):
    z = [fp32("z", np.zeros((1, 2)))]
    with running_server(model_dir, "--grpc-port", "0", VAE_API_KEY=KEY) as server:
        wrong = [None, {"authorization": f"Bearer {KEY}x"}, {"x-api-key": KEY[:-1]}, {"x-api-key": KEY.upper()},
                 {"authorization": KEY}, {"authorization": f"Bearer {KEY}", "x-api-key": "guess"}]  # fmt: skip
        for headers in wrong:
            refused = call("triton_infer", server.grpc_target, model="model-decoder", inputs=z, headers=headers)
            assert refused["error"] == {"status": "StatusCode.UNAUTHENTICATED", "message": "missing or invalid API key"}
        for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
            served = call("triton_infer", server.grpc_target, model="model-decoder", inputs=z, headers=headers)
            assert np.array(served["outputs"]["image"]).shape == (1, 1, 28, 28)
        assert call("triton_repository", server.grpc_target, actions=[["index"]])[0]["error"]["status"] == (
            "StatusCode.UNAUTHENTICATED"
        )
        page = httpx.get(f"{server.url}/metrics", headers={"x-api-key": KEY}).text
    assert metric(page, "vae_requests_total", route=INFER_ROUTE, method="gRPC", status="UNAUTHENTICATED") == len(wrong)
    assert metric(page, "vae_requests_total", route=INFER_ROUTE, method="gRPC", status="OK") == 2


def large_page() -> bytes:
    """A PNG of a 4800x4800 page with one stroke: 64 of them keep the picture threads busy for seconds."""
    page = np.full((4800, 4800), 230, np.uint8)
    page[1000:3800, 2000:2600] = 20
    return png(page)


def test_sigterm_lets_a_grpc_call_in_flight_finish(model_dir):
    """64 large pages keep the picture threads busy for a while; SIGTERM comes while they work."""
    pages = [files("image", [large_page()] * 64)]
    with running_server(model_dir, "--grpc-port", "0") as server:
        result = {}
        thread = threading.Thread(
            target=lambda: result.update(call("triton_infer", server.grpc_target, model="model-encoder", inputs=pages))
        )
        thread.start()
        wait_until(lambda: requests_in_flight(server.url) == 1, "the gRPC call under way", within=30)
        assert server.stop() == 0
        thread.join()
        lines = server.log_lines()
    mu = np.array(result["outputs"]["mu"])
    assert mu.shape == (64, 2) and np.isfinite(mu).all()
    assert [line["status"] for line in lines if line.get("path") == INFER_ROUTE] == ["OK"]


def decode_calls(target: str, points: np.ndarray) -> list[np.ndarray]:
    """One ModelInfer call to model-decoder per point, all at once, each from its own thread; each
    call's image."""
    start = threading.Barrier(len(points))

    def decode(point: np.ndarray) -> np.ndarray:
        request = pb.ModelInferRequest(model_name="model-decoder", raw_input_contents=[point.astype("<f4").tobytes()])
        request.inputs.add(name="z", datatype="FP32", shape=[1, 2])
        start.wait()
        answer = infer(request, timeout=10)
        return np.frombuffer(answer.raw_output_contents[0], "<f4")

    with grpc.insecure_channel(target) as channel, concurrent.futures.ThreadPoolExecutor(len(points)) as threads:
        infer = channel.unary_unary(
            INFER_ROUTE,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        return list(threads.map(decode, points))


def decoder_calls(url: str) -> float:
    """How many decoder calls the server has made."""
    return metric(httpx.get(f"{url}/metrics").text, "vae_batch_size_count", model="model", graph="decoder")


def test_concurrent_calls_share_model_calls(model_dir):
    """Calls in flight together meet in the model's batch, as concurrent REST requests do, and each
    still gets its own answer: the one its point gets alone."""
    points = np.random.default_rng(7).normal(size=(64, 2))
    with running_server(model_dir, "--grpc-port", "0", VAE_BATCH_WAIT_MS="50") as server:
        # Whether calls meet depends on when each thread's call reaches the loop: a burst that
        # trickles in runs call by call (the asyncio server this replaced did so every time), so
        # the burst is sent up to 3 times, and calls come alone only after.
        model_calls = []
        for _ in range(3):
            calls_before = decoder_calls(server.url)
            together = decode_calls(server.grpc_target, points)
            model_calls.append(decoder_calls(server.url) - calls_before)
            if model_calls[-1] < len(points):
                break
        alone = [decode_calls(server.grpc_target, point[None])[0] for point in points]
    np.testing.assert_allclose(np.stack(together), np.stack(alone), atol=1e-6)
    assert min(model_calls) < len(points), model_calls  # fewer model calls than calls: some ran together


def test_a_call_whose_deadline_passes_is_cancelled_on_the_server(model_dir):
    """A call of 64 large pages with a 1 s deadline: the pages take longer than that, so the client
    gets DEADLINE_EXCEEDED, and the server stops the call then (logged as CANCELLED) rather than
    finishing work nobody waits for."""
    request = pb.ModelInferRequest(model_name="model-encoder")
    request.inputs.add(name="image", datatype="BYTES", shape=[64]).contents.bytes_contents.extend([large_page()] * 64)
    with running_server(model_dir, "--grpc-port", "0") as server, grpc.insecure_channel(server.grpc_target) as channel:
        infer = channel.unary_unary(INFER_ROUTE, request_serializer=pb.ModelInferRequest.SerializeToString)
        with pytest.raises(grpc.RpcError) as failed:
            infer(request, timeout=1)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def logged() -> list[str]:
            return [line["status"] for line in server.log_lines() if line.get("path") == INFER_ROUTE]

        wait_until(lambda: logged() == ["CANCELLED"], "the call logged as cancelled")


def test_the_generated_module_is_the_protos(tmp_path):
    """`make proto` was run after the last change to inference.proto."""
    source = REPO / "service" / "grpc"
    (tmp_path / "service" / "grpc").mkdir(parents=True)
    shutil.copy(source / "inference.proto", tmp_path / "service" / "grpc")
    protoc = [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--pyi_out=."]
    subprocess.run([*protoc, "service/grpc/inference.proto"], cwd=tmp_path, check=True)
    for generated in ("inference_pb2.py", "inference_pb2.pyi"):
        assert (tmp_path / "service" / "grpc" / generated).read_text() == (source / generated).read_text()
