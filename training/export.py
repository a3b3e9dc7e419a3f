"""ONNX export of the encoder, the decoder and the outlier head if any, checked against torch,
described by model.json."""

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
    ELBO_SCORE,
    ENCODER_FILE,
    FORMAT_VERSION,
    OUTLIERS_FILE,
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
from contract.novelty import OUTLIER_WEIGHT, elbo_at_mean, reference_quantiles, with_outlier_head
from contract.recipes import RECIPES, Recipe
from contract.reference import REFERENCE_FILE, write_reference
from training.config import TrainConfig
from training.errors import ExportError
from training.model import VAE
from training.outliers import OutlierHead

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


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


@torch.inference_mode()
def check_parity(export_dir: Path, vae: VAE, head: OutlierHead | None, test_pixels: torch.Tensor) -> dict[str, float]:
    """Max absolute difference between onnxruntime and torch on the first 1,000 test images: of the
    outlier head, in its probability, as its log-odds grow without bound where it is sure (at 30,
    float32's own spacing is 2e-6)."""
    images = test_pixels[:PARITY_IMAGES].reshape(-1, 1, SIDE, SIDE)
    mu, sigma = EncoderGraph(vae)(images)
    decoded = DecoderGraph(vae)(mu)
    differences = {
        "encoder": _max_difference(_session(export_dir / ENCODER_FILE), images.numpy(), [mu, sigma]),
        "decoder": _max_difference(_session(export_dir / DECODER_FILE), mu.numpy(), [decoded]),
    }
    if head is not None:
        (log_odds,) = _session(export_dir / OUTLIERS_FILE).run(None, {"image": images.numpy()})
        onnx_probability = torch.sigmoid(torch.from_numpy(log_odds))
        differences["outliers"] = float((onnx_probability - torch.sigmoid(head(images))).abs().max())
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


def novelty_reference(
    export_dir: Path, test_pixels: torch.Tensor, likelihood: Likelihood, with_head: bool
) -> NoveltyReference:
    """The test images' novelty scores, as the service computes them (through the ONNX files)."""
    images = test_pixels.reshape(-1, 1, SIDE, SIDE).numpy()
    mu, sigma = _session(export_dir / ENCODER_FILE).run(None, {"image": images})
    means = _session(export_dir / DECODER_FILE).run(None, {"z": mu})[0]
    scores = elbo_at_mean(images, means, mu, sigma, likelihood.kind, likelihood.variance)
    score = ELBO_SCORE
    if with_head:
        log_odds = _session(export_dir / OUTLIERS_FILE).run(None, {"image": images})[0]
        scores = with_outlier_head(scores, log_odds)
        score += f", less {OUTLIER_WEIGHT:g} x -log P(familiar | x) from the outlier head"
    return NoveltyReference(score=score, test_images=len(images), test_quantiles=reference_quantiles(scores))


def reference_set(export_dir: Path, test_pixels: torch.Tensor, test_labels: np.ndarray) -> ReferenceSet:
    """The test images' mu and sigma through the ONNX encoder, as the service computes them."""
    mu, sigma = _session(export_dir / ENCODER_FILE).run(None, {"image": test_pixels.reshape(-1, 1, SIDE, SIDE).numpy()})
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
    optional = [item for item in (description.outliers, description.reference) if item is not None]
    listed = [description.encoder, description.decoder, *optional]
    for item in listed:
        if sha256_of(folder / item.file) != item.sha256:
            raise ExportError(f"{folder / item.file}: its sha256 differs from model.json's after writing")


def export_model(
    vae: VAE,
    config: TrainConfig,
    export_dir: Path,
    head: OutlierHead | None,
    published: Published,
    test_pixels: torch.Tensor,
    test_labels: np.ndarray,
) -> ModelDescription:
    """Write encoder.onnx, decoder.onnx, outliers.onnx (with a head) and model.json into
    export_dir; return the description."""
    vae = vae.eval()
    latent = config.vae.latent_size
    image = ["N", 1, SIDE, SIDE]
    likelihood = Likelihood(
        kind=config.vae.likelihood,
        variance=config.vae.gaussian_variance if config.vae.likelihood == "gaussian" else None,
    )
    preprocessing = Preprocessing(
        recipe=published.recipe, framing=RECIPES[published.recipe].description, deskew=config.deskew
    )
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
    outliers = None
    if head is not None:
        _export_graph(head, example_image, "image", ["outlier_log_odds"], export_dir / OUTLIERS_FILE, metadata)
        outliers = Graph(
            file=OUTLIERS_FILE,
            inputs={"image": image},
            outputs={"outlier_log_odds": ["N"]},
            sha256=sha256_of(export_dir / OUTLIERS_FILE),
        )
    graphs = [graph.sha256 for graph in (encoder, decoder, outliers) if graph is not None]
    description = ModelDescription(
        **defining,
        id=model_id(published.dataset, latent, likelihood.kind, *graphs),
        encoder=encoder,
        decoder=decoder,
        outliers=outliers,
        novelty=novelty_reference(export_dir, test_pixels, likelihood, with_head=head is not None),
        reference=reference_set(export_dir, test_pixels, test_labels),
        metrics=published.metrics,
        parity_max_abs_difference=check_parity(export_dir, vae, head, test_pixels),
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    (export_dir / DESCRIPTION_FILE).write_text(description.model_dump_json(indent=2) + "\n")
    return description
