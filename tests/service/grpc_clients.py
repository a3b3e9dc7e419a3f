"""Third-party gRPC clients of the Open Inference Protocol, each call run in a fresh interpreter:
tritonclient's and the kserve SDK's generated modules both register the protocol's messages as
`inference.*` in protobuf's process-wide pool, so neither imports into a process holding the other,
and the test session holds kserve's. `call(name, target, **arguments)` runs one of the functions
below in a subprocess and returns what it returned; tensors travel as lists, files as base64."""

import asyncio
import base64
import json
import subprocess
import sys

import numpy as np


def call(name: str, target: str, **arguments) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.service.grpc_clients", name, target],
        input=json.dumps(arguments),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if completed.returncode != 0:
        raise AssertionError(f"{name} failed:\n{completed.stderr}")
    return json.loads(completed.stdout)


def _triton_error(error) -> dict:
    return {"error": {"status": error.status(), "message": error.message()}}


def triton_probes(target: str) -> dict:
    import tritonclient.grpc as triton

    with triton.InferenceServerClient(target) as client:
        metadata = client.get_model_metadata("mnist-encoder", as_json=True)
        return {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "server": client.get_server_metadata(as_json=True),
            "models_ready": [client.is_model_ready(name) for name in ("mnist-encoder", "fashion-mnist-decoder")],
            "metadata": metadata,
            "versioned": client.get_model_metadata("mnist-encoder", metadata["versions"][0], as_json=True),
        }


def triton_infer(
    target: str,
    model: str,
    inputs: list[dict],
    outputs: list[str] | None = None,
    request_id: str = "",
    headers: dict | None = None,
) -> dict:
    """inputs: name, datatype, shape and data (numbers, or base64 files for BYTES)."""
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    tensors = []
    for spec in inputs:
        tensor = triton.InferInput(spec["name"], spec["shape"], spec["datatype"])
        if spec["datatype"] == "BYTES":
            data = np.array([base64.b64decode(item) for item in spec["data"]], dtype=np.object_)
        else:
            data = np.array(spec["data"], dtype=np.float32)
        tensor.set_data_from_numpy(data.reshape(spec["shape"]))
        tensors.append(tensor)
    requested = [triton.InferRequestedOutput(name) for name in outputs] if outputs else None
    with triton.InferenceServerClient(target) as client:
        try:
            result = client.infer(
                model, tensors, outputs=requested, request_id=request_id, headers=headers, client_timeout=60
            )
        except InferenceServerException as error:
            return _triton_error(error)
        response = result.get_response()
        return {
            "id": response.id,
            "model_version": response.model_version,
            "outputs": {output.name: result.as_numpy(output.name).tolist() for output in response.outputs},
        }


def triton_repository(target: str, actions: list[list[str]]) -> list:
    """Each action in order: ["index"], ["load", name], ["unload", name] or ["ready", name]."""
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    results = []
    with triton.InferenceServerClient(target) as client:
        for action, *name in actions:
            try:
                if action == "index":
                    results.append(client.get_model_repository_index(as_json=True)["models"])
                elif action == "ready":
                    results.append(client.is_model_ready(*name))
                else:
                    getattr(client, f"{action}_model")(*name)
                    results.append(None)
            except InferenceServerException as error:
                results.append(_triton_error(error))
    return results


def stub_infer(target: str, request: dict) -> dict:
    """A ModelInferRequest written as JSON (raw contents in base64), through the stub tritonclient
    generates from the protocol's .proto."""
    import grpc
    from google.protobuf.json_format import MessageToDict, ParseDict
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    message = ParseDict(request, service_pb2.ModelInferRequest())
    with grpc.insecure_channel(target) as channel:
        try:
            response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(message, timeout=30)
        except grpc.RpcError as error:
            return {"error": {"status": error.code().name, "message": error.details()}}
    return MessageToDict(response, preserving_proto_field_name=True)


def kserve_infer(target: str, images: list, shape: list[int]) -> dict:
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    async def infer() -> dict:
        client = InferenceGRPCClient(target, timeout=30)
        try:
            image = InferInput("image", shape, "FP32")
            image.set_data_from_numpy(np.array(images, dtype=np.float32).reshape(shape))
            response = await client.infer(InferRequest(model_name="mnist-encoder", infer_inputs=[image]))
            return {
                "live": await client.is_server_live(),
                "ready": await client.is_model_ready("mnist-encoder"),
                "outputs": {output.name: output.as_numpy().tolist() for output in response.outputs},
            }
        finally:
            await client.close()

    return asyncio.run(infer())


if __name__ == "__main__":
    name, target = sys.argv[1:]
    print(json.dumps(globals()[name](target, **json.load(sys.stdin))))
