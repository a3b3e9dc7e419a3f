"""The Open Inference Protocol's view of the core, whatever carries it: each served VAE as two
protocol models, `{name}-encoder` and `{name}-decoder`, their metadata, and inference on the
tensors the protocol carries."""

import base64
import binascii
import math
import struct
from dataclasses import dataclass, replace

import numpy as np

from contract.geometry import IMAGE_SHAPE
from service.core.engine import Engine
from service.core.errors import InvalidInput, ModelError, Refused, UnknownModel, counted
from service.core.pictures import Upload
from service.core.repository import IndexEntry, ModelRepository
from service.core.served import ServedModel

BYTES = "BYTES"
NUMPY_TYPES = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
DATATYPES = (*NUMPY_TYPES, BYTES)


class ProtocolError(InvalidInput):
    """A request the protocol cannot take, in the protocol's own words."""


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    values: np.ndarray | list[bytes] | list[str]  # an array of the shape, or the BYTES elements in order:
    # bytes from binary data, strings from JSON


def element_count(name: str, datatype: str, shape: tuple[int, ...]) -> int:
    """The number of elements a declared input holds; refuses an unknown datatype or a negative axis."""
    if datatype not in DATATYPES:
        raise ProtocolError(f"input '{name}': unknown datatype {datatype!r}; one of {', '.join(DATATYPES)}")
    if any(size < 0 for size in shape):
        raise ProtocolError(f"input '{name}': shape {list(shape)} has a negative dimension")
    return math.prod(shape)


def _bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """BYTES in raw form: each element is its length (4 bytes, little-endian) then its bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ProtocolError(f"input '{name}': BYTES data ends inside an element's 4-byte length")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise ProtocolError(f"input '{name}': a BYTES element of {size} bytes runs past the data's end")
        elements.append(raw[offset : offset + size])
        offset += size
    return elements


def raw_tensor(name: str, datatype: str, shape: tuple[int, ...], raw: bytes) -> Tensor:
    """A tensor from its raw bytes, as the binary tensor data extension (REST) and raw_input_contents
    (gRPC) carry it: row-major little-endian values, or BYTES elements each after its length."""
    count = element_count(name, datatype, shape)
    if datatype == BYTES:
        elements = _bytes_elements(raw, name)
        if len(elements) != count:
            raise ProtocolError(
                f"input '{name}': shape {list(shape)} holds {count} elements, but the data has {len(elements)}"
            )
        return Tensor(name, datatype, shape, elements)
    dtype = NUMPY_TYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise ProtocolError(
            f"input '{name}': shape {list(shape)} of {datatype} is {count * dtype.itemsize} bytes, "
            f"but its raw data is {len(raw)} bytes"
        )
    return Tensor(name, datatype, shape, np.frombuffer(raw, dtype.newbyteorder("<")).reshape(shape))


SERVER_NAME = "vae-service"
SERVER_VERSION = "0.1.0"
PLATFORM = "onnxruntime_onnx"
BATCH = -1  # the metadata's mark for the batch axis


@dataclass(frozen=True)
class Half:
    vae: str
    role: str  # "encoder" or "decoder"
    served: ServedModel

    @property
    def name(self) -> str:
        return f"{self.vae}-{self.role}"

    @property
    def version(self) -> str:
        return self.served.model.version

    @property
    def input_name(self) -> str:
        return "image" if self.role == "encoder" else "z"

    def signature(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Inputs and outputs: name -> shape, with BATCH for the batch axis."""
        latent = [BATCH, self.served.model.latent_size]
        image = [BATCH, *IMAGE_SHAPE]
        if self.role == "encoder":
            return {"image": image}, {"mu": latent, "sigma": latent}
        return {"z": latent}, {"image": image}

    def metadata(self) -> dict:
        inputs, outputs = self.signature()
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [{"name": name, "datatype": "FP32", "shape": shape} for name, shape in inputs.items()],
            "outputs": [{"name": name, "datatype": "FP32", "shape": shape} for name, shape in outputs.items()],
        }

    def _checked_input(self, inputs: list[Tensor], max_batch: int) -> Tensor:
        if len(inputs) != 1:
            raise ProtocolError(f"expected 1 input but got {counted(len(inputs), 'input')} for model '{self.name}'")
        (tensor,) = inputs
        if tensor.name != self.input_name:
            raise ProtocolError(
                f"unexpected inference input '{tensor.name}' for model '{self.name}'; its input is '{self.input_name}'"
            )
        encoded_images = self.role == "encoder" and tensor.datatype == BYTES
        if tensor.datatype != "FP32" and not encoded_images:
            also = " (or BYTES holding encoded image files)" if self.role == "encoder" else ""
            raise ProtocolError(
                f"inference input '{tensor.name}' data-type is '{tensor.datatype}', "
                f"but model '{self.name}' expects 'FP32'{also}"
            )
        expected = self.signature()[0][self.input_name]
        if encoded_images:
            if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
                raise ProtocolError(
                    f"unexpected shape for BYTES input '{tensor.name}' for model '{self.name}'. "
                    f"Expected [-1] or [-1, 1], one encoded image file per element, got {list(tensor.shape)}"
                )
        elif len(tensor.shape) != len(expected) or list(tensor.shape[1:]) != expected[1:]:
            raise ProtocolError(
                f"unexpected shape for input '{tensor.name}' for model '{self.name}'. "
                f"Expected {expected}, got {list(tensor.shape)}"
            )
        if not 1 <= tensor.shape[0] <= max_batch:
            raise ProtocolError(
                f"input '{tensor.name}' for model '{self.name}' has a batch of {tensor.shape[0]}; "
                f"send between 1 and {max_batch}"
            )
        if not encoded_images:
            if not np.isfinite(tensor.values).all():
                raise ProtocolError(f"input '{tensor.name}' for model '{self.name}' holds NaN or infinite values")
            if self.role == "encoder" and (tensor.values.min() < 0 or tensor.values.max() > 1):
                raise ProtocolError(
                    f"input 'image' for model '{self.name}' holds values outside [0, 1]; "
                    "send pixel / 255, white subject on black"
                )
        return tensor

    async def _images(self, tensor: Tensor, engine: Engine) -> np.ndarray:
        if tensor.datatype != BYTES:
            return np.ascontiguousarray(tensor.values, np.float32)
        files = []
        for index, element in enumerate(tensor.values):
            if isinstance(element, str):  # JSON carries a file's bytes as base64 text
                try:
                    element = base64.b64decode(element, validate=True)
                except binascii.Error:
                    raise ProtocolError(
                        f"input 'image' element {index}: in JSON, a BYTES element must be the image file in base64"
                    ) from None
            files.append(Upload(f"element {index}", element))
        try:
            return await engine.model_inputs(self.served, files, named=True)
        except Refused as error:
            raise ProtocolError(f"input 'image' for model '{self.name}': {error.detail}") from None

    def check_outputs(self, requested: list[str]) -> None:
        """Refuses a requested output the model does not have, before any work is done."""
        known = self.signature()[1]
        for name in requested:
            if name not in known:
                raise ProtocolError(
                    f"unexpected inference output '{name}' for model '{self.name}'; it has {', '.join(known)}"
                )

    async def infer(self, inputs: list[Tensor], engine: Engine) -> dict[str, np.ndarray]:
        tensor = self._checked_input(inputs, engine.settings.max_batch)
        if self.role == "decoder":
            (images,) = await self.served.decode(np.ascontiguousarray(tensor.values, np.float32))
            return {"image": images}
        mu, sigma = await self.served.encode(await self._images(tensor, engine))
        return {"mu": mu, "sigma": sigma}


ROLES = ("encoder", "decoder")


def served_names(models: ModelRepository) -> list[str]:
    return [f"{vae}-{role}" for vae in models.served() for role in ROLES]


def repository_index(models: ModelRepository) -> list[IndexEntry]:
    """The repository as the protocol names its models: each folder's two halves, with its state."""
    return [replace(entry, name=f"{entry.name}-{role}") for entry in models.index() for role in ROLES]


def folder_of(models: ModelRepository, name: str) -> str:
    """The model folder a name in the repository extension stands for: a half's (mnist-encoder ->
    mnist), as both halves load and unload together, or a folder's own name."""
    vae, _, role = name.rpartition("-")
    return vae if role in ROLES and vae in models.folders() else name


def halves_of(folder: str) -> list[str]:
    return [f"{folder}-{role}" for role in ROLES]


async def load_folder(models: ModelRepository, name: str) -> str:
    """Loads (or reloads) the folder a name stands for; a folder that fails verification leaves the
    loaded version serving, and the error says why. Returns the folder's name."""
    folder = folder_of(models, name)
    try:
        await models.load(folder)
    except ModelError as error:
        raise ProtocolError(f"failed to load '{name}': {error}") from None
    return folder


async def unload_folder(models: ModelRepository, name: str) -> str:
    """Unloads the folder a name stands for (both halves); returns the folder's name."""
    folder = folder_of(models, name)
    await models.unload(folder)
    return folder


def resolve(models: ModelRepository, name: str, version: str | None = None) -> Half:
    """The protocol model of that name (and version, if given); 404 naming the models there are."""
    vae, _, role = name.rpartition("-")
    served = models.find(vae) if role in ROLES else None
    if served is None:
        served_list = ", ".join(served_names(models))
        raise UnknownModel(f"Request for unknown model: '{name}' is not found; served: {served_list}")
    half = Half(vae, role, served)
    if version is not None and version != half.version:
        raise UnknownModel(
            f"Request for unknown model: '{name}' version {version} is not found; loaded version: {half.version}"
        )
    return half
