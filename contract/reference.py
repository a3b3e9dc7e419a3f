"""The model's reference set: its test images' posterior (mu, sigma) and labels, which the explorer
page draws on the latent plane. A compact binary the exporter writes and a browser reads with one
DataView: little-endian float32 mu[count][K], float32 sigma[count][K], then uint8 label[count]."""

from pathlib import Path

import numpy as np

REFERENCE_FILE = "reference.bin"
LAYOUT = "little-endian float32 mu[count][latent_size], float32 sigma[count][latent_size], uint8 label[count]"


def write_reference(path: Path, mu: np.ndarray, sigma: np.ndarray, labels: np.ndarray) -> None:
    if not (len(mu) == len(sigma) == len(labels)) or mu.shape != sigma.shape:
        raise ValueError(f"mu {mu.shape}, sigma {sigma.shape} and labels {labels.shape} disagree")
    parts = [np.asarray(mu, "<f4"), np.asarray(sigma, "<f4"), np.asarray(labels, np.uint8)]
    path.write_bytes(b"".join(part.tobytes() for part in parts))


def read_reference(path: Path, count: int, latent_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = path.read_bytes()
    floats = count * latent_size
    if len(data) != 8 * floats + count:
        raise ValueError(f"{path}: {len(data)} bytes, not the {8 * floats + count} of {count} x {latent_size}")
    mu = np.frombuffer(data, "<f4", floats).reshape(count, latent_size)
    sigma = np.frombuffer(data, "<f4", floats, 4 * floats).reshape(count, latent_size)
    return mu, sigma, np.frombuffer(data, np.uint8, count, 8 * floats)
