"""The service's routes as calls: what to send and how to read the answer. Shared by `Client` and
`AsyncClient`, which only differ in how they send."""

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx
import numpy as np

from vae_client.pictures import Picture, as_file, image_of, is_many
from vae_client.results import Digits, Encoding, Samples

T = TypeVar("T")
ACCEPT_JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    options: dict = field(default_factory=dict)  # httpx.request's json, content, files, params, headers


def prefix(model: str | None) -> str:
    return "" if model is None else f"/models/{model}"


def _encoding(response: httpx.Response) -> Encoding:
    body = response.json()
    items = body.get("items", [body])
    return Encoding(
        body["model_id"],
        np.array([item["mu"] for item in items], np.float32),
        np.array([item["sigma"] for item in items], np.float32),
        np.array([item["novelty"]["elbo"] for item in items]),
        np.array([item["novelty"]["percentile"] for item in items]),
    )


def joined(encodings: list[Encoding], many: bool) -> Encoding:
    """One Encoding from per-request ones: (N, K) arrays for many pictures, (K,) for one."""
    pick = (lambda arrays: np.concatenate(arrays)) if many else (lambda arrays: arrays[0][0])
    return Encoding(
        encodings[0].model_id,
        pick([e.mu for e in encodings]),
        pick([e.sigma for e in encodings]),
        pick([e.elbo for e in encodings]),
        pick([e.percentile for e in encodings]),
    )


def encode(model: str | None, pictures: Picture | Sequence[Picture], batch_size: int) -> tuple[bool, list[Call]]:
    """One picture as the raw body; many as multipart forms of at most batch_size files."""
    if not is_many(pictures):
        name, data = as_file(pictures)
        headers = {"Content-Type": "application/octet-stream"}
        return False, [Call("POST", f"{prefix(model)}/encode", _encoding, {"content": data, "headers": headers})]
    files = [as_file(picture, f"image-{index}") for index, picture in enumerate(pictures)]
    if not files:
        raise ValueError("no pictures to encode")
    return True, [
        Call("POST", f"{prefix(model)}/encode/batch", _encoding, {"files": [("file", file) for file in chunk]})
        for chunk in (files[start : start + batch_size] for start in range(0, len(files), batch_size))
    ]


def _digits(response: httpx.Response) -> Digits:
    boxes = [[item["box"][side] for side in ("left", "top", "width", "height")] for item in response.json()["items"]]
    return Digits(_encoding(response), np.array(boxes, np.int64).reshape(-1, 4))


def encode_digits(model: str | None, picture: Picture) -> Call:
    _, data = as_file(picture)
    headers = {"Content-Type": "application/octet-stream"}
    return Call("POST", f"{prefix(model)}/encode/digits", _digits, {"content": data, "headers": headers})


def _images(response: httpx.Response) -> list:
    return [image_of(base64.b64decode(item["png_base64"])) for item in response.json()["images"]]


def decode(model: str | None, z: Sequence[float] | Sequence[Sequence[float]] | np.ndarray) -> Call:
    rows = np.asarray(z, np.float64)
    one = rows.ndim == 1
    body = {"z": np.atleast_2d(rows).tolist()}

    def parse(response: httpx.Response):
        images = _images(response)
        return images[0] if one else images

    return Call("POST", f"{prefix(model)}/decode", parse, {"json": body, "headers": ACCEPT_JSON})


def sample(model: str | None, n: int, seed: int | None, temperature: float) -> Call[Samples]:
    body = {"n": n, "temperature": temperature} | ({} if seed is None else {"seed": seed})

    def parse(response: httpx.Response) -> Samples:
        answer = response.json()
        z = np.array([item["z"] for item in answer["images"]], np.float32)
        return Samples(answer["model_id"], answer["seed"], z, _images(response))

    return Call("POST", f"{prefix(model)}/sample", parse, {"json": body, "headers": ACCEPT_JSON})


def models() -> Call[dict]:
    return Call("GET", "/models", lambda response: response.json())


def _is_vector(point: object) -> bool:
    if isinstance(point, np.ndarray):
        return point.ndim == 1
    return isinstance(point, list | tuple) and all(isinstance(value, int | float) for value in point)


def interpolate(model: str | None, start: object, end: object, steps: int, path: str) -> Call[list]:
    """Between two latent vectors, or between two pictures' posterior means."""
    url = f"{prefix(model)}/interpolate"
    if _is_vector(start) and _is_vector(end):
        body = {"start": np.asarray(start, float).tolist(), "end": np.asarray(end, float).tolist()}
        body |= {"steps": steps, "path": path}
        return Call("POST", url, _images, {"json": body, "headers": ACCEPT_JSON})
    files = [("file", as_file(start, "start")), ("file", as_file(end, "end"))]
    params = {"steps": steps, "path": path}
    return Call("POST", url, _images, {"files": files, "params": params, "headers": ACCEPT_JSON})


def reconstruct(model: str | None, picture: Picture) -> Call:
    _, data = as_file(picture)
    headers = {"Content-Type": "application/octet-stream"}
    return Call(
        "POST",
        f"{prefix(model)}/reconstruct",
        lambda response: image_of(response.content),
        {"content": data, "headers": headers},
    )
