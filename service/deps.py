"""What routes take from the application, in one call.

Not FastAPI's Depends: for two attribute lookups, its dependency solver was a visible share of the
CPU time of an /encode request.
"""

from concurrent.futures import Executor
from typing import NamedTuple

from fastapi import Request

from service.config import Settings
from service.errors import Problem
from service.inference import Inference
from service.repository import ModelRepository


class Serving(NamedTuple):
    settings: Settings
    inference: Inference
    pictures: Executor  # decodes and prepares uploaded pictures off the event loop


def repository(request: Request) -> ModelRepository:
    """The model repository; 503 while the models are loading."""
    models = request.app.state.models
    if models is None:
        raise Problem(503, "models not loaded yet", {"Retry-After": "1"})
    return models


def serving(request: Request) -> Serving:
    """The settings and the model the path names (/models/{model}/...), or the default model."""
    state = request.app.state
    inference = repository(request).get(request.path_params.get("model"))
    return Serving(state.settings, inference, state.pictures)
