"""A model folder, verified: its description checked against its files, and its onnxruntime sessions."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from pydantic import ValidationError

from contract.description import DESCRIPTION_FILE, Graph, ModelDescription, ReferenceSet, sha256_of
from contract.deskew import deskewed
from contract.geometry import IMAGE_SHAPE
from contract.novelty import Percentiles, elbo_at_mean, with_outlier_head
from contract.recipes import Recipe
from contract.validation import dotted, first_error
from service.core.errors import ModelError


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # onnxruntime sizes its pools from the host's cores, not the container's share: set them.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for bad graphs
        raise ModelError(f"{path}: onnxruntime cannot load it ({error})") from error


def _load_description(model_dir: Path) -> ModelDescription:
    path = model_dir / DESCRIPTION_FILE
    try:
        text = path.read_text()
    except FileNotFoundError as error:
        raise ModelError(f"{path}: missing (is VAE_MODEL_DIR a model folder?)") from error
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror})") from error
    try:
        return ModelDescription.model_validate_json(text)
    except ValidationError as error:
        problem = first_error(error, lambda location: f"field {dotted(location)!r}")
        raise ModelError(f"{path}: not a valid model description: {problem}") from error


def _verified_file(model_dir: Path, listed: Graph | ReferenceSet) -> Path:
    path = model_dir / listed.file
    try:
        digest = sha256_of(path)
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror})") from error
    if digest != listed.sha256:
        raise ModelError(f"{path}: sha256 {digest[:12]}... does not match model.json; the file was changed")
    return path


@dataclass(frozen=True)
class Novelty:
    elbo: np.ndarray  # (N,) nats
    # (N,) share of the model's test images that scored lower, in percent; the score is the ELBO, lowered
    # by the outlier head's verdict when the model has one (contract.novelty)
    percentile: np.ndarray


@dataclass(frozen=True)
class VerifiedModel:
    description: ModelDescription
    encoder: onnxruntime.InferenceSession
    decoder: onnxruntime.InferenceSession
    outliers: onnxruntime.InferenceSession | None  # the outlier head, for models trained with one
    percentiles: Percentiles
    reference: bytes | None  # contract.reference's layout, served to the explorer page as it is

    @property
    def id(self) -> str:
        return self.description.id

    @property
    def version(self) -> str:
        """The content digest at the end of the id: a re-export of other weights is a new version."""
        return self.id.rsplit("-", 1)[-1]

    @property
    def latent_size(self) -> int:
        return self.description.latent_size

    @property
    def recipe(self) -> Recipe:
        return self.description.preprocessing.recipe

    def novelty(self, images: np.ndarray, means: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> Novelty:
        """The novelty score of each image, given the encoder's and the decoder's outputs for it."""
        elbo = self.elbo(images, means, mu, sigma)
        return Novelty(elbo, self.percentiles(self.novelty_score(images, elbo)))

    def elbo(self, images: np.ndarray, means: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """The ELBO at the posterior mean of each image (N,), in nats, under the model's likelihood."""
        likelihood = self.description.likelihood
        return elbo_at_mean(images, means, mu, sigma, likelihood.kind, likelihood.variance)

    def novelty_score(self, images: np.ndarray, elbo: np.ndarray) -> np.ndarray:
        """What the percentile places: the ELBO, lowered by the outlier head's verdict if there is one."""
        if self.outliers is None:
            return elbo
        return with_outlier_head(elbo, self.outliers.run(None, {"image": images})[0])

    @classmethod
    def load(cls, model_dir: Path, threads: int) -> "VerifiedModel":
        description = _load_description(model_dir)
        encoder = _session(_verified_file(model_dir, description.encoder), threads)
        decoder = _session(_verified_file(model_dir, description.decoder), threads)
        sizes = {
            "model.json latent_size": description.latent_size,
            "encoder mu": encoder.get_outputs()[0].shape[-1],
            "encoder sigma": encoder.get_outputs()[1].shape[-1],
            "decoder z": decoder.get_inputs()[0].shape[-1],
        }
        if len(set(sizes.values())) != 1:
            raise ModelError(f"{model_dir}: latent sizes disagree: {sizes}")
        outliers = None
        if description.outliers is not None:
            outliers = _session(_verified_file(model_dir, description.outliers), threads)
        for name, graph in (("encoder", encoder), ("outlier head", outliers)):
            if graph is not None and list(graph.get_inputs()[0].shape[1:]) != list(IMAGE_SHAPE):
                raise ModelError(f"{model_dir}: {name} input {graph.get_inputs()[0].shape} is not [N, 1, 28, 28]")
        if outliers is not None and len(outliers.get_outputs()[0].shape) != 1:
            raise ModelError(
                f"{model_dir}: outlier head output {outliers.get_outputs()[0].shape} is not [N], one log-odds per image"
            )
        reference = None
        if description.reference is not None:
            reference = _verified_file(model_dir, description.reference).read_bytes()
            expected = description.reference.count * (8 * description.latent_size + 1)
            if len(reference) != expected:
                raise ModelError(f"{model_dir / description.reference.file}: {len(reference)} bytes, not {expected}")
        percentiles = Percentiles(description.novelty.test_quantiles)
        return cls(description, encoder, decoder, outliers, percentiles, reference)

    def upright(self, images: np.ndarray) -> np.ndarray:
        """What the graphs see of images (N, 1, 28, 28): sheared upright if the model was trained so."""
        return deskewed(images) if self.description.preprocessing.deskew else images

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images (N, 1, 28, 28) float32 in [0, 1] -> mu, sigma (N, K)."""
        mu, sigma = self.encoder.run(None, {"image": self.upright(images)})
        return mu, sigma

    def decode(self, z: np.ndarray) -> np.ndarray:
        """z (N, K) float32 -> pixel means (N, 1, 28, 28) in [0, 1]."""
        return self.decoder.run(None, {"z": z})[0]

    def assess(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        """images (N, 1, 28, 28) -> the images as the graphs saw them, mu, sigma, the decoder's means
        at mu, the novelty scores and their percentiles: what /encode says of each image, from one
        call for the whole batch."""
        seen = self.upright(images)
        mu, sigma = self.encoder.run(None, {"image": seen})
        means = self.decode(mu)
        novelty = self.novelty(seen, means, mu, sigma)
        return seen, mu, sigma, means, novelty.elbo, novelty.percentile

    def warm_up(self) -> None:
        """One call through both graphs, so that readiness means the model answers."""
        mu, _ = self.encode(np.zeros((1, *IMAGE_SHAPE), np.float32))
        if not np.isfinite(self.decode(mu)).all():
            raise ModelError("warm-up produced non-finite output")
