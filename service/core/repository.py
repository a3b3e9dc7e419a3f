"""The model repository: named model folders, all served at once, loaded and unloaded without a restart.

A folder is loaded (verified, opened and warmed) off the event loop, then swapped in with one
assignment: a request that already holds the old model finishes on it, the next one gets the new
one, and a folder that fails verification leaves the loaded version serving.
"""

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from contract.description import DESCRIPTION_FILE
from service.core.errors import Conflict, ModelError, UnknownModel
from service.core.served import ServedModel
from service.core.verified import VerifiedModel
from service.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str | None
    state: str  # READY or UNAVAILABLE, as the protocol's repository extension spells them
    reason: str


class ModelRepository:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._served: dict[str, ServedModel] = {}
        self._reasons: dict[str, str] = {}  # why a folder is not served
        self._lock = asyncio.Lock()  # one load or unload at a time
        self.default_name = ""

    def folders(self) -> dict[str, Path]:
        """The model folders by name: the repository's sub-folders, or VAE_MODEL_DIR alone."""
        if self._settings.model_dir is not None:
            return {self._settings.model_dir.name: self._settings.model_dir}
        root = self._settings.model_repository
        return {path.name: path for path in sorted(root.iterdir()) if path.is_dir() and NAME.match(path.name)}

    def load_all(self) -> None:
        """At start-up: every folder, or a ModelError naming the first that fails; then the default."""
        root = self._settings.model_dir or self._settings.model_repository
        try:
            folders = self.folders()
        except OSError as error:
            raise ModelError(f"{root}: cannot list the model repository ({error.strerror})") from error
        if not folders:
            raise ModelError(f"{root}: no model folders (each needs a {DESCRIPTION_FILE})")
        for name, folder in folders.items():
            self._served[name] = self._opened(folder)
        default = self._settings.default_model
        if default is None:
            default = next(iter(folders)) if len(folders) == 1 else "mnist"
        if default not in self._served:
            raise ModelError(
                f"the default model {default!r} is not in {root} (it has {', '.join(folders)}); set VAE_DEFAULT_MODEL"
            )
        self.default_name = default

    def _opened(self, folder: Path) -> ServedModel:
        model = VerifiedModel.load(folder, self._settings.ort_threads)
        model.warm_up()
        return ServedModel(folder.name, model, self._settings.max_batch, self._settings.batch_wait_ms / 1000)

    def _folder(self, name: str) -> Path:
        folder = self.folders().get(name)  # looked up, never joined to a path: no name leaves the root
        if folder is None:
            raise UnknownModel(f"no model folder {name!r} in the repository; it has {', '.join(self.folders())}")
        return folder

    async def load(self, name: str) -> ServedModel:
        """Loads (or reloads) a folder and swaps it in; a ModelError leaves what was served serving."""
        async with self._lock:
            folder = self._folder(name)
            try:
                inference = await asyncio.to_thread(self._opened, folder)
            except ModelError as error:
                self._reasons[name] = str(error)
                raise
            self._served[name] = inference  # an old reason stays unread: unload writes its own
            return inference

    async def unload(self, name: str) -> None:
        """Unloads a model; the default one stays, as the unprefixed routes and readiness stand on it."""
        async with self._lock:
            self._folder(name)
            if name == self.default_name:
                raise Conflict(
                    f"model {name!r} is the default model, which the unprefixed routes serve; it cannot be unloaded. "
                    "Load a new version over it, or restart with another VAE_DEFAULT_MODEL"
                )
            if self._served.pop(name, None) is None:
                raise UnknownModel(f"model {name!r} is not loaded; loaded: {', '.join(self._served)}")
            self._reasons[name] = "unloaded"

    def find(self, name: str) -> ServedModel | None:
        return self._served.get(name)

    def get(self, name: str | None = None) -> ServedModel:
        """The served model by name, or the default model (which cannot be unloaded: some model is served)."""
        name = self.default_name if name is None else name
        inference = self.find(name)
        if inference is None:
            raise UnknownModel(f"no model {name!r} is loaded; loaded: {', '.join(self._served)}")
        return inference

    def served(self) -> dict[str, ServedModel]:
        return dict(sorted(self._served.items()))

    def index(self) -> list[IndexEntry]:
        entries = []
        for name in sorted(self.folders().keys() | self._served.keys()):
            inference = self._served.get(name)
            if inference is not None:
                entries.append(IndexEntry(name, inference.model.version, "READY", ""))
            else:
                entries.append(IndexEntry(name, None, "UNAVAILABLE", self._reasons.get(name, "not loaded")))
        return entries
