"""A Triton model repository from an exported model folder, for teams that already run Triton: the
encoder and the decoder as two ONNX models with dynamic batching. Tensors only: the picture recipe
(decoding uploads, finding the ink, framing it, and for a model trained upright the deskew of
contract.deskew) stays with this service."""

import shutil
from pathlib import Path

from contract.description import DESCRIPTION_FILE, Graph, ModelDescription
from contract.limits import MAX_BATCH

QUEUE_DELAY_US = 100  # how long Triton may hold a request for others to join its batch

CONFIG = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
input [
{inputs}
]
output [
{outputs}
]
dynamic_batching {{
  max_queue_delay_microseconds: {delay}
}}
instance_group [
  {{
    count: 1
    kind: KIND_CPU
  }}
]
"""
TENSOR = """  {{
    name: "{name}"
    data_type: TYPE_FP32
    dims: [ {dims} ]
  }}"""


def _tensors(shapes: dict[str, list[int | str]]) -> str:
    """Triton's dims leave out the batch axis (the description's "N")."""
    return ",\n".join(
        TENSOR.format(name=name, dims=", ".join(str(size) for size in shape[1:])) for name, shape in shapes.items()
    )


def config_text(name: str, graph: Graph) -> str:
    return CONFIG.format(
        name=name,
        max_batch=MAX_BATCH,
        inputs=_tensors(graph.inputs),
        outputs=_tensors(graph.outputs),
        delay=QUEUE_DELAY_US,
    )


def write_triton_repository(model_dir: Path, triton_dir: Path) -> list[Path]:
    """{dataset}-encoder/ and {dataset}-decoder/, each with config.pbtxt and 1/model.onnx; returns them."""
    description = ModelDescription.model_validate_json((model_dir / DESCRIPTION_FILE).read_text())
    written = []
    for role, graph in (("encoder", description.encoder), ("decoder", description.decoder)):
        name = f"{description.dataset}-{role}"
        folder = triton_dir / name
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_dir / graph.file, folder / "1" / "model.onnx")
        (folder / "config.pbtxt").write_text(config_text(name, graph))
        written.append(folder)
    return written
