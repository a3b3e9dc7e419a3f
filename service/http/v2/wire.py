"""Inference requests and responses as the Open Inference Protocol writes them: JSON tensors (flat
or nested), and the binary tensor data extension, where the JSON header is followed by the raw
tensors and `Inference-Header-Content-Length` says where the JSON ends."""

from dataclasses import dataclass

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from contract.validation import first_error
from service.core.errors import counted
from service.core.protocol import BYTES, NUMPY_TYPES, ProtocolError, Tensor, element_count, raw_tensor

HEADER_LENGTH = "inference-header-content-length"
BINARY_MEDIA_TYPE = "application/octet-stream"


class InputParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    binary_data_size: StrictInt | None = Field(None, ge=0)


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    binary_data: StrictBool = False


class RequestParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    binary_data_output: StrictBool = False


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[StrictInt]
    datatype: str
    parameters: InputParameters = InputParameters()
    data: list | str | float | bool | None = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parameters: OutputParameters = OutputParameters()


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    model_name: str | None = None  # the kserve SDK repeats the URL's model here
    model_version: str | None = None
    parameters: RequestParameters = RequestParameters()
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


@dataclass(frozen=True)
class Request:
    id: str | None
    model_name: str | None
    model_version: str | None
    inputs: list[Tensor]
    outputs: list[RequestOutput] | None
    binary_output: bool


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length is {header_length!r}; it must be the JSON header's size in bytes, "
            f"at most the body's {len(body)}"
        )
    return body[: int(header_length)], body[int(header_length) :]


def _flattened(data: object) -> list:
    if not isinstance(data, list):
        return [data]
    if data and isinstance(data[0], list):
        return [value for row in data for value in _flattened(row)]
    return data


def _json_tensor(spec: RequestInput, count: int) -> np.ndarray | list[str]:
    values = _flattened(spec.data)
    if len(values) != count:
        holds = counted(count, "value")
        raise ProtocolError(f"input '{spec.name}': shape {spec.shape} holds {holds}, but data has {len(values)}")
    if spec.datatype == BYTES:
        if not all(isinstance(value, str) for value in values):
            raise ProtocolError(f"input '{spec.name}': BYTES data in JSON must be strings")
        return values
    try:
        array = np.asarray(values, dtype=NUMPY_TYPES[spec.datatype])
    except (TypeError, ValueError, OverflowError) as error:
        raise ProtocolError(f"input '{spec.name}': data is not all {spec.datatype} ({error})") from None
    return array.reshape(spec.shape)


def parse_request(body: bytes, header_length: str | None) -> Request:
    header, binary = _split(body, header_length)
    try:
        message = InferenceRequest.model_validate_json(header)
    except ValidationError as error:
        raise ProtocolError(f"not an inference request: {first_error(error)}") from None
    tensors, offset = [], 0
    for spec in message.inputs:
        shape = tuple(spec.shape)
        count = element_count(spec.name, spec.datatype, shape)
        size = spec.parameters.binary_data_size
        if size is None:
            if spec.data is None:
                raise ProtocolError(f"input '{spec.name}' has neither data nor parameters.binary_data_size")
            tensors.append(Tensor(spec.name, spec.datatype, shape, _json_tensor(spec, count)))
        else:
            if spec.data is not None:
                raise ProtocolError(f"input '{spec.name}' has both data and parameters.binary_data_size; send one")
            if offset + size > len(binary):
                raise ProtocolError(
                    f"input '{spec.name}': binary_data_size {size} runs past the body's end "
                    f"({len(binary) - offset} bytes left after the JSON header)"
                )
            tensors.append(raw_tensor(spec.name, spec.datatype, shape, binary[offset : offset + size]))
            offset += size
    if offset != len(binary):
        raise ProtocolError(
            f"{len(binary) - offset} bytes after the JSON header belong to no input; "
            "check the inputs' binary_data_size and Inference-Header-Content-Length"
        )
    return Request(
        message.id,
        message.model_name,
        message.model_version,
        tensors,
        message.outputs,
        message.parameters.binary_data_output,
    )


def encode_response(
    header: dict, outputs: list[tuple[str, np.ndarray]], binary: set[str]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: FP32 outputs as JSON lists, or as raw little-endian bytes
    after the JSON header for the names in binary."""
    described, chunks = [], []
    for name, array in outputs:
        tensor = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        if name in binary:
            chunk = np.ascontiguousarray(array, np.dtype("<f4")).tobytes()
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = array.reshape(-1)
        described.append(tensor)
    document = orjson.dumps({**header, "outputs": described}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return document, {"content-type": "application/json"}
    return b"".join([document, *chunks]), {
        "content-type": BINARY_MEDIA_TYPE,
        HEADER_LENGTH: str(len(document)),
    }
