"""What every peer runs per request: the service's decode of a grey PNG (libspng) and the bundled
ONNX encoder. Imports only numpy, pyspng and onnxruntime, which every peer's environment has."""

from pathlib import Path

import numpy as np
import onnxruntime
import pyspng

ENCODER = Path(__file__).resolve().parents[2] / "models" / "mnist" / "encoder.onnx"


def session() -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(ENCODER, options, providers=["CPUExecutionProvider"])


def pixels(png: bytes) -> np.ndarray:
    """An uploaded 28x28 grey PNG -> the model's input, (1, 1, 28, 28) in [0, 1]."""
    return (np.asarray(pyspng.load(png), np.float32) / 255).reshape(1, 1, 28, 28)


def answer(mu: np.ndarray, sigma: np.ndarray) -> dict:
    return {"mu": mu.tolist(), "sigma": sigma.tolist()}
