"""The engine every front end holds: the settings, the model repository, the picture pool and the
service's readiness. REST, the Open Inference Protocol and a plain script call the same methods."""

import asyncio
import gc
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from service.core import tracing
from service.core.admission import InFlight
from service.core.errors import Refused, Unavailable
from service.core.metrics import INVERTED, PICTURES, worker_stopped
from service.core.pictures import DigitInputs, Invert, Upload, digit_inputs, model_inputs
from service.core.repository import ModelRepository
from service.core.served import Assessment, ServedModel
from service.settings import Settings

GIL_SWITCH_INTERVAL_S = 0.001  # Python's default is 0.005
NOT_READY = "not ready: the models are loading, or the service is shutting down"


@dataclass(frozen=True)
class Encoding:
    """What /encode says of one picture, or why it was refused."""

    mu: list[float] | None
    sigma: list[float] | None
    elbo: float | None
    percentile: float | None
    error: str | None = None


class Engine:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.models: ModelRepository | None = None
        self.pictures: ThreadPoolExecutor | None = None  # decodes and frames large pictures
        self.in_flight = InFlight(self.settings.max_in_flight)
        self.ready = False

    def start(self) -> None:
        """Loads, verifies and warms every model folder; then the engine is ready."""
        tracing.configure()
        models = ModelRepository(self.settings)
        models.load_all()
        # Everything built so far lives as long as the process: keep the collector from rescanning
        # it, as full collections over these objects were the longest pauses under load.
        gc.collect()
        gc.freeze()
        # The picture threads hold the GIL between their C calls; a shorter switch interval lets the
        # event loop take it back sooner, so probes and small requests answer during a burst of photos.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.models = models
        self.pictures = ThreadPoolExecutor(self.settings.picture_threads, thread_name_prefix="pictures")
        self.ready = True

    def stop(self) -> None:
        self.ready = False  # draining: probes see it at once
        if self.pictures is not None:
            self.pictures.shutdown()
        worker_stopped()

    @classmethod
    @contextmanager
    def started(cls, settings: Settings | None = None) -> Iterator["Engine"]:
        engine = cls(settings)
        engine.start()
        try:
            yield engine
        finally:
            engine.stop()

    def repository(self) -> ModelRepository:
        if self.models is None:
            raise Unavailable("models not loaded yet")
        return self.models

    def model(self, name: str | None = None) -> ServedModel:
        """The served model of that name, or the default model."""
        return self.repository().get(name)

    def served(self) -> dict[str, str]:
        """Each served model's name and id."""
        return {name: served.model.id for name, served in self.repository().served().items()}

    @contextmanager
    def _picture_pipeline(self, served: ServedModel, pictures: int) -> Iterator[None]:
        try:
            with tracing.span("picture pipeline", **{"vae.model": served.name, "vae.pictures": pictures}):
                yield
        except Refused:
            PICTURES.labels(served.name, "rejected").inc()
            raise

    async def model_inputs(
        self, served: ServedModel, uploads: list[Upload], invert: Invert = Invert.auto, named: bool = False
    ) -> np.ndarray:
        """The pictures as the model sees them, (N, 1, 28, 28), through the one picture pipeline; counted
        by what the pipeline did with them."""
        with self._picture_pipeline(served, len(uploads)):
            recipe = served.model.recipe
            prepared = await model_inputs(uploads, invert, recipe, self.settings.max_pixels, self.pictures, named)
        PICTURES.labels(served.name, "as_sent").inc(len(uploads) - prepared.framed)
        if prepared.framed:
            PICTURES.labels(served.name, "framed").inc(prepared.framed)
        if prepared.inverted:
            INVERTED.labels(served.name).inc(prepared.inverted)
        return prepared.images

    async def encode(
        self, served: ServedModel, uploads: list[Upload], invert: Invert = Invert.auto, named: bool = False
    ) -> Assessment:
        """mu, sigma, reconstruction and novelty of each picture, from one model call."""
        return await served.assess(await self.model_inputs(served, uploads, invert, named))

    async def encode_digits(
        self, served: ServedModel, upload: Upload, invert: Invert = Invert.auto
    ) -> tuple[DigitInputs, Assessment]:
        """Each digit of a picture of a number, left to right: its box, its model input, and mu,
        sigma, reconstruction and novelty from one model call."""
        with self._picture_pipeline(served, 1):
            digits = await digit_inputs(
                upload, invert, served.model.recipe, self.settings.max_pixels, served.max_batch, self.pictures
            )
        PICTURES.labels(served.name, "framed").inc()
        if digits.inverted:
            INVERTED.labels(served.name).inc()
        return digits, await served.assess(digits.images)

    def encode_files(self, files: Iterable[bytes], model: str | None = None) -> list[Encoding]:
        """Picture files' bytes -> one Encoding each, in order, batched by the model's batch size; a
        picture the pipeline refuses gets its message instead. For scripts: runs its own event loop."""
        return asyncio.run(self._encode_files(list(files), model))

    async def _encode_files(self, files: list[bytes], model: str | None) -> list[Encoding]:
        served = self.model(model)
        encodings: list[Encoding] = []
        for start in range(0, len(files), served.max_batch):
            accepted, images = [], []
            for data in files[start : start + served.max_batch]:
                try:
                    images.append(await self.model_inputs(served, [Upload(None, data)]))
                    accepted.append(True)
                except Refused as error:
                    accepted.append(error.detail)
            assessed = await served.assess(np.concatenate(images)) if images else None
            row = 0
            for outcome in accepted:
                if outcome is not True:
                    encodings.append(Encoding(None, None, None, None, outcome))
                    continue
                encodings.append(
                    Encoding(
                        assessed.mu[row].tolist(),
                        assessed.sigma[row].tolist(),
                        float(assessed.novelty.elbo[row]),
                        float(assessed.novelty.percentile[row]),
                    )
                )
                row += 1
        return encodings
