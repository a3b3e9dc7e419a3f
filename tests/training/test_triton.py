"""`vae-train export --triton-dir`: a Triton model repository whose configurations parse with
Triton's own model-configuration protobuf (shipped in tritonclient) and match the ONNX graphs."""

import importlib.util
from pathlib import Path

import onnx
import tritonclient
from google.protobuf import text_format

from training.cli import main


def triton_model_config():
    """Triton's ModelConfig message, loaded from its own file: importing tritonclient.grpc registers
    Triton's service protos, which clash in protobuf's pool with the kserve SDK's copies of them."""
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model_config_pb2 = triton_model_config()


def test_export_writes_a_triton_repository_that_triton_can_read(trained_run, tmp_path, capfd):
    main(
        [
            "export",
            "--out-dir",
            str(trained_run),
            "--export-dir",
            str(tmp_path / "model"),
            "--triton-dir",
            str(tmp_path / "triton"),
        ]
    )
    assert "wrote the Triton model" in capfd.readouterr().out
    dataset = "mnist-sample"
    assert sorted(path.name for path in (tmp_path / "triton").iterdir()) == [f"{dataset}-decoder", f"{dataset}-encoder"]
    for role, source in (("encoder", "encoder.onnx"), ("decoder", "decoder.onnx")):
        folder = tmp_path / "triton" / f"{dataset}-{role}"
        config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert config.name == folder.name and config.platform == "onnxruntime_onnx"
        assert config.max_batch_size == 64 and config.HasField("dynamic_batching")
        assert (folder / "1" / "model.onnx").read_bytes() == (tmp_path / "model" / source).read_bytes()
        graph = onnx.load(folder / "1" / "model.onnx").graph
        for declared, actual in ((config.input, graph.input), (config.output, graph.output)):
            shapes = {t.name: [d.dim_value or d.dim_param for d in t.type.tensor_type.shape.dim] for t in actual}
            assert {t.name: [-1, *t.dims] for t in declared} == {
                name: [-1, *shape[1:]] for name, shape in shapes.items()
            }
            assert {t.data_type for t in declared} == {model_config_pb2.TYPE_FP32}
            assert all(isinstance(shape[0], str) for shape in shapes.values())  # a dynamic batch axis
