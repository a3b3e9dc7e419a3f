"""Dependencies that routes declare, so that route functions stay a few lines."""

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.errors import Problem
from service.inference import Inference


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_inference(request: Request) -> Inference:
    inference = request.app.state.inference
    if inference is None:
        raise Problem(503, "model not loaded yet", {"Retry-After": "1"})
    return inference


SettingsDep = Annotated[Settings, Depends(get_settings)]
InferenceDep = Annotated[Inference, Depends(get_inference)]
