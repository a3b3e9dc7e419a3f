"""GET /models, /models/{model} and its reference set: what the service serves, and each model's
description."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from contract.description import ModelDescription
from contract.reference import LAYOUT
from service.deps import repository, serving
from service.errors import Problem
from service.params import no_query
from service.responses import ERRORS, JSONResponse

router = APIRouter(tags=["models"])

MODEL_PREFIX = "/models/{model}"
ModelName = Annotated[str, Path(description="A served model's name (GET /models lists them).", examples=["mnist"])]


def model_in_path(model: ModelName) -> None:
    """Declares the path's model name for the schema; the routes look the model up themselves."""


class ServedModel(BaseModel):
    name: str = Field(examples=["mnist"])
    id: str = Field(examples=["mnist-k2-gaussian-dd60aacc2d95"])
    dataset: str = Field(examples=["mnist"])
    latent_size: int = Field(examples=[2])
    classes: list[str]
    recipe: str = Field(description="How uploaded pictures are prepared.", examples=["digit"])


class ModelList(BaseModel):
    default: str = Field(description="The model the unprefixed routes serve.", examples=["mnist"])
    models: list[ServedModel]


@router.get("/models", response_model=ModelList, responses={503: ERRORS[503]}, summary="The served models")
async def list_models(request: Request) -> JSONResponse:
    no_query(request)
    models = repository(request)
    served = [
        {
            "name": name,
            "id": inference.model.id,
            "dataset": inference.model.description.dataset,
            "latent_size": inference.model.latent_size,
            "classes": inference.model.description.classes,
            "recipe": inference.model.recipe,
        }
        for name, inference in models.served().items()
    ]
    return JSONResponse({"default": models.default_name, "models": served})


def _description(request: Request) -> JSONResponse:
    no_query(request)
    return JSONResponse(serving(request).inference.model.description.model_dump(mode="json"))


@router.get(
    "/model",
    summary="The default model's description (model.json)",
    response_model=ModelDescription,
    responses={503: ERRORS[503]},
)
async def default_model(request: Request) -> JSONResponse:
    """Latent size, input/output contract, preprocessing, likelihood, training configuration,
    test metrics, library versions and file checksums, as written by the exporter."""
    return _description(request)


@router.get(
    MODEL_PREFIX,
    summary="A model's description (model.json)",
    response_model=ModelDescription,
    responses={404: ERRORS[404], 503: ERRORS[503]},
)
async def named_model(request: Request, model: ModelName) -> JSONResponse:
    """As GET /model, for the model the path names."""
    return _description(request)


@router.get(
    f"{MODEL_PREFIX}/reference",
    summary="A model's reference set: its test images on the latent plane",
    response_class=Response,
    responses={
        200: {
            "description": f"Binary, {LAYOUT}; the count and latent size are in the model's description.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: ERRORS[404],
        503: ERRORS[503],
    },
)
async def reference(request: Request, model: ModelName) -> Response:
    no_query(request)
    served = serving(request).inference.model
    if served.reference is None:
        raise Problem(404, f"model {model!r} has no reference set; export it again with this version of vae-train")
    return Response(served.reference, media_type="application/octet-stream")
