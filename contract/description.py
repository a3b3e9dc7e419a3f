"""The model folder's description (model.json): one typed class, written by the exporter, read by
the service. The training configuration and the metrics are kept as the trainer wrote them: they
explain the model, and the service reads none of them."""

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from contract.geometry import SIDE
from contract.recipes import Recipe
from contract.reference import LAYOUT, REFERENCE_FILE

DESCRIPTION_FILE = "model.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
OUTLIERS_FILE = "outliers.onnx"
FORMAT_VERSION = 2


class Graph(BaseModel):
    """One ONNX file and its tensors (name -> shape, "N" for the batch axis)."""

    file: str
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Preprocessing(BaseModel):
    input: str = f"float32 [N, 1, {SIDE}, {SIDE}], pixel / 255, in [0, 1]"
    polarity: str = "white subject on black"
    recipe: Recipe
    framing: str = Field(description="The recipe in words.")
    deskew: bool = Field(
        False, description="Every input is sheared upright (contract.deskew) before the graphs see it, as in training."
    )


class Likelihood(BaseModel):
    kind: Literal["gaussian", "bernoulli"]
    variance: float | None = Field(description="sigma^2 of the gaussian likelihood; None for bernoulli.")


ELBO_SCORE = "ELBO at the posterior mean, nats: log P(x | z = mu) - KL(Q(Z|x) || N(0, I))"


class NoveltyReference(BaseModel):
    score: str = ELBO_SCORE
    test_images: PositiveInt
    test_quantiles: list[float] = Field(min_length=2, description="The test images' scores at evenly spaced quantiles.")


class ReferenceSet(BaseModel):
    """The test images' posterior and labels, for the explorer page (contract.reference)."""

    file: str = REFERENCE_FILE
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    count: PositiveInt
    layout: str = LAYOUT


class ModelDescription(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[2] = FORMAT_VERSION
    id: str = Field(description="dataset-k{K}-likelihood-{first 12 hex digits of the files' sha256}")
    dataset: str
    classes: list[str] = Field(description="Class names, by label.")
    latent_size: PositiveInt
    encoder: Graph
    decoder: Graph
    preprocessing: Preprocessing
    likelihood: Likelihood
    outliers: Graph | None = Field(
        None, description="The outlier head (training.outliers), whose log-odds lower the novelty score; optional."
    )
    novelty: NoveltyReference
    reference: ReferenceSet | None = Field(None, description="The test set on the latent plane; older folders lack it.")
    training: dict = Field(description="The full training configuration (vae-train's options).")
    data_sha256: dict[str, str] = Field(description="SHA-256 of each decompressed data file trained and tested on.")
    metrics: dict = Field(description="Test-set figures and how they were computed.")
    parity_max_abs_difference: dict[str, float] = Field(description="onnxruntime against torch, per graph.")
    versions: dict[str, str] = Field(description="Library versions at export.")
    created: str = Field(description="Export time, UTC (not part of the ONNX files, so ids stay content-addressed).")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_id(dataset: str, latent_size: int, likelihood: str, *graph_sha256: str) -> str:
    """The graphs' digests in the order the description lists them: encoder, decoder, outliers."""
    digest = hashlib.sha256("".join(graph_sha256).encode()).hexdigest()
    return f"{dataset}-k{latent_size}-{likelihood}-{digest[:12]}"
