"""One served model behind its batchers, and what every front end asks of it: encodings, decoded
images, draws from the prior and walks between two points."""

import secrets
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.core.batcher import Batcher
from service.core.errors import InvalidInput, counted
from service.core.metrics import NOVELTY, UNFAMILIAR, UNFAMILIAR_PERCENTILE
from service.core.verified import Novelty, VerifiedModel

ASSESSMENT = "encoder+decoder"  # the graphs label of /encode's calls: both graphs, one batch
# Seeds stay integers that JavaScript's numbers hold exactly, so that a browser can replay them.
MAX_SEED = 2**53 - 1
Path = Literal["straight", "spherical"]


@dataclass(frozen=True)
class Assessment:
    inputs: np.ndarray  # (N, 1, 28, 28): the images as the graphs saw them
    mu: np.ndarray  # (N, K)
    sigma: np.ndarray  # (N, K)
    reconstruction: np.ndarray  # (N, 1, 28, 28): the decoder's pixel means at mu
    novelty: Novelty


@dataclass(frozen=True)
class Draw:
    seed: int
    z: np.ndarray  # (n, K)
    images: np.ndarray  # (n, 1, 28, 28)


def walk(start: np.ndarray, end: np.ndarray, steps: int, path: Path) -> np.ndarray:
    """(K,), (K,) -> (steps, K) points from start to end: evenly spaced on the segment, or along
    the great circle (slerp), which keeps the points as far from the origin as a prior draw would be."""
    t = np.linspace(0, 1, steps)[:, None]
    norms = np.linalg.norm(start) * np.linalg.norm(end)
    angle = np.arccos(np.clip(start @ end / norms, -1, 1)) if norms > 0 else 0.0
    if path == "straight" or np.sin(angle) < 1e-6:  # parallel or zero ends: no great circle to follow
        return (1 - t) * start + t * end
    return (np.sin((1 - t) * angle) * start + np.sin(t * angle) * end) / np.sin(angle)


class ServedModel:
    """A verified model behind its batchers: concurrent callers share model calls."""

    def __init__(self, name: str, model: VerifiedModel, max_batch: int, max_wait_s: float):
        self.name = name
        self.model = model
        self.max_batch = max_batch
        self.encode = Batcher(name, "encoder", model.encode, max_batch, max_wait_s, model_id=model.id)
        self.decode = Batcher(name, "decoder", lambda z: (model.decode(z),), max_batch, max_wait_s, model_id=model.id)
        # Encoder, decoder and novelty score in one batch: one wait per request, not two.
        self._assess = Batcher(name, ASSESSMENT, model.assess, max_batch, max_wait_s, model_id=model.id)
        # the series exist from the start, so that "none unfamiliar yet" reads 0, not "no data"
        self._novelty = NOVELTY.labels(name)
        self._unfamiliar = UNFAMILIAR.labels(name)

    async def assess(self, images: np.ndarray) -> Assessment:
        """mu and sigma of Q(Z|x) for each image, its reconstruction and its novelty score."""
        inputs, mu, sigma, means, elbo, percentile = await self._assess(images)
        for value in percentile.tolist():
            self._novelty.observe(value)
        if unfamiliar := int(np.count_nonzero(percentile < UNFAMILIAR_PERCENTILE)):
            self._unfamiliar.inc(unfamiliar)
        return Assessment(inputs, mu, sigma, means, Novelty(elbo, percentile))

    def _vector(self, name: str, values: list[float]) -> np.ndarray:
        latent = self.model.latent_size
        if len(values) != latent:
            raise InvalidInput(f"{name} has {counted(len(values), 'value')}; this model's latent size is {latent}")
        return np.asarray(values, np.float32)

    async def decoded(self, rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
        """Latent vectors -> z (N, K) and the decoder's pixel means f(z) (N, 1, 28, 28)."""
        if not rows:
            raise InvalidInput("z is empty; send one latent vector or a list of them")
        if len(rows) > self.max_batch:
            raise InvalidInput(f"{counted(len(rows), 'latent vector')} in one request; the limit is {self.max_batch}")
        z = np.stack([self._vector(f"z[{index}]", row) for index, row in enumerate(rows)])
        (images,) = await self.decode(z)
        return z, images

    async def sampled(self, n: int, seed: int | None, temperature: float, max_samples: int) -> Draw:
        """n draws z ~ N(0, temperature^2 I), decoded; a random seed when none is given."""
        if n > max_samples:
            raise InvalidInput(f"n={n} is over the limit of {max_samples}")
        seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
        z = np.random.default_rng(seed).standard_normal((n, self.model.latent_size), dtype=np.float32)
        z *= np.float32(temperature)
        (images,) = await self.decode(z)
        return Draw(seed, z, images)

    def check_steps(self, steps: int) -> None:
        if steps > self.max_batch:
            raise InvalidInput(f"steps={steps} is over the limit of {self.max_batch}")

    async def walked(
        self, start: np.ndarray | list[float], end: np.ndarray | list[float], steps: int, path: Path
    ) -> tuple[np.ndarray, np.ndarray]:
        """steps points from start to end, decoded: z (steps, K) and f(z)."""
        self.check_steps(steps)
        if isinstance(start, list):
            start, end = self._vector("start", start), self._vector("end", end)
        z = walk(start, end, steps, path).astype(np.float32)
        (images,) = await self.decode(z)
        return z, images
