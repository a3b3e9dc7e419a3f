"""ONNX export of the encoder and decoder, checked against torch, described by model.json."""

import json
import logging
import platform
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn

from contract.description import (
    DECODER_FILE,
    DESCRIPTION_FILE,
    ENCODER_FILE,
    FORMAT_VERSION,
    Graph,
    Likelihood,
    ModelDescription,
    NoveltyReference,
    Preprocessing,
    ReferenceSet,
    model_id,
    sha256_of,
)
from contract.geometry import SIDE
from contract.novelty import elbo_at_mean, reference_quantiles
from contract.recipes import RECIPES, Recipe
from contract.reference import REFERENCE_FILE, write_reference
from training.config import TrainConfig
from training.errors import ExportError
from training.model import VAE

PARITY_TOLERANCE = 1e-5
PARITY_IMAGES = 1000


class EncoderGraph(nn.Module):
    """image (N, 1, 28, 28) -> mu, sigma (N, K): sigma the standard deviation, exp(logvar / 2)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.vae.encode(image.flatten(1))
        return mu, torch.exp(0.5 * logvar)


class DecoderGraph(nn.Module):
    """z (N, K) -> image (N, 1, 28, 28): the pixel means f(z) in [0, 1]."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.vae.decode(z)).unflatten(1, (1, SIDE, SIDE))


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's progress lines, its note that torchvision is absent (it is not needed) and
    its libraries' deprecation warnings say nothing about this model: keep them off the console."""
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        exporter_log.setLevel(level)


def _export_graph(
    graph: nn.Module,
    example: torch.Tensor,
    input_name: str,
    output_names: list[str],
    path: Path,
    metadata: dict[str, str],
) -> None:
    batch = torch.export.Dim("N", min=1)
    with _quiet_exporter():
        program = torch.onnx.export(
            graph.eval(),
            (example,),
            input_names=[input_name],
            output_names=output_names,
            dynamic_shapes={graph.forward.__code__.co_varnames[1]: {0: batch}},
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)


def _max_difference(session: onnxruntime.InferenceSession, feed: np.ndarray, expected: list[torch.Tensor]) -> float:
    outputs = session.run(None, {session.get_inputs()[0].name: feed})
    return max(float(np.abs(got - want.numpy()).max()) for got, want in zip(outputs, expected, strict=True))


@torch.inference_mode()
def check_parity(export_dir: Path, vae: VAE, test_pixels: torch.Tensor) -> dict[str, float]:
    """Max absolute difference between onnxruntime and torch on the first 1,000 test images."""
    images = test_pixels[:PARITY_IMAGES].reshape(-1, 1, SIDE, SIDE)
    mu, sigma = EncoderGraph(vae)(images)
    decoded = DecoderGraph(vae)(mu)
    encoder = onnxruntime.InferenceSession(export_dir / ENCODER_FILE, providers=["CPUExecutionProvider"])
    decoder = onnxruntime.InferenceSession(export_dir / DECODER_FILE, providers=["CPUExecutionProvider"])
    differences = {
        "encoder": _max_difference(encoder, images.numpy(), [mu, sigma]),
        "decoder": _max_difference(decoder, mu.numpy(), [decoded]),
    }
    for name, difference in differences.items():
        if not difference <= PARITY_TOLERANCE:
            raise ExportError(f"{name}.onnx differs from torch by {difference:.2e} > {PARITY_TOLERANCE:.0e}")
    return differences


@dataclass(frozen=True)
class Published:
    """What the model folder says about its data, beside the weights."""

    dataset: str
    data_sha256: dict[str, str]
    classes: list[str]
    recipe: Recipe
    metrics: dict


def novelty_reference(export_dir: Path, test_pixels: torch.Tensor, likelihood: Likelihood) -> NoveltyReference:
    """The test images' novelty scores, as the service computes them (through the ONNX files)."""
    images = test_pixels.reshape(-1, 1, SIDE, SIDE).numpy()
    encoder = onnxruntime.InferenceSession(export_dir / ENCODER_FILE, providers=["CPUExecutionProvider"])
    decoder = onnxruntime.InferenceSession(export_dir / DECODER_FILE, providers=["CPUExecutionProvider"])
    mu, sigma = encoder.run(None, {"image": images})
    means = decoder.run(None, {"z": mu})[0]
    scores = elbo_at_mean(images, means, mu, sigma, likelihood.kind, likelihood.variance)
    return NoveltyReference(test_images=len(images), test_quantiles=reference_quantiles(scores))


def reference_set(export_dir: Path, test_pixels: torch.Tensor, test_labels: np.ndarray) -> ReferenceSet:
    """The test images' mu and sigma through the ONNX encoder, as the service computes them."""
    encoder = onnxruntime.InferenceSession(export_dir / ENCODER_FILE, providers=["CPUExecutionProvider"])
    mu, sigma = encoder.run(None, {"image": test_pixels.reshape(-1, 1, SIDE, SIDE).numpy()})
    path = export_dir / REFERENCE_FILE
    write_reference(path, mu, sigma, test_labels)
    return ReferenceSet(sha256=sha256_of(path), count=len(mu))


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
    }


def check_folder(folder: Path) -> None:
    """The folder's files, read back from the disk, are those its model.json describes."""
    description = ModelDescription.model_validate_json((folder / DESCRIPTION_FILE).read_text())
    listed = [description.encoder, description.decoder, *([description.reference] if description.reference else [])]
    for item in listed:
        if sha256_of(folder / item.file) != item.sha256:
            raise ExportError(f"{folder / item.file}: its sha256 differs from model.json's after writing")


def export_model(
    vae: VAE,
    config: TrainConfig,
    export_dir: Path,
    published: Published,
    test_pixels: torch.Tensor,
    test_labels: np.ndarray,
) -> ModelDescription:
    """Write encoder.onnx, decoder.onnx and model.json into export_dir; return the description."""
    vae = vae.eval()
    latent = config.vae.latent_size
    image = ["N", 1, SIDE, SIDE]
    likelihood = Likelihood(
        kind=config.vae.likelihood,
        variance=config.vae.gaussian_variance if config.vae.likelihood == "gaussian" else None,
    )
    preprocessing = Preprocessing(recipe=published.recipe, framing=RECIPES[published.recipe].description)
    # The ONNX files carry what defines the model's behaviour, and nothing that changes from one
    # export to the next (times, measured seconds, their own hashes): the same weights give the
    # same bytes, and so the same id.
    defining = {
        "format_version": FORMAT_VERSION,
        "dataset": published.dataset,
        "classes": published.classes,
        "latent_size": latent,
        "preprocessing": preprocessing.model_dump(mode="json"),
        "likelihood": likelihood.model_dump(mode="json"),
        "training": config.model_dump(mode="json"),
        "data_sha256": published.data_sha256,
    }
    metadata = {"model_json": json.dumps(defining)}
    example_image = test_pixels[:2].reshape(-1, 1, SIDE, SIDE)
    _export_graph(EncoderGraph(vae), example_image, "image", ["mu", "sigma"], export_dir / ENCODER_FILE, metadata)
    _export_graph(DecoderGraph(vae), torch.zeros(2, latent), "z", ["image"], export_dir / DECODER_FILE, metadata)
    encoder = Graph(
        file=ENCODER_FILE,
        inputs={"image": image},
        outputs={"mu": ["N", latent], "sigma": ["N", latent]},
        sha256=sha256_of(export_dir / ENCODER_FILE),
    )
    decoder = Graph(
        file=DECODER_FILE,
        inputs={"z": ["N", latent]},
        outputs={"image": image},
        sha256=sha256_of(export_dir / DECODER_FILE),
    )
    description = ModelDescription(
        **defining,
        id=model_id(published.dataset, latent, likelihood.kind, encoder.sha256, decoder.sha256),
        encoder=encoder,
        decoder=decoder,
        novelty=novelty_reference(export_dir, test_pixels, likelihood),
        reference=reference_set(export_dir, test_pixels, test_labels),
        metrics=published.metrics,
        parity_max_abs_difference=check_parity(export_dir, vae, test_pixels),
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    (export_dir / DESCRIPTION_FILE).write_text(description.model_dump_json(indent=2) + "\n")
    return description
