"""GET /models, /models/{model} and its reference set: what the service serves, and each model's
description."""

from pydantic import BaseModel, Field
from starlette.responses import Response

from contract.description import ModelDescription
from contract.reference import LAYOUT
from service.http.problems import Problem
from service.http.responses import ERRORS, JSONResponse
from service.http.routing import MODEL_PARAMETER, MODEL_PREFIX, Call, Route

TAGS = ("models",)


class ServedModel(BaseModel):
    name: str = Field(examples=["mnist"])
    id: str = Field(examples=["mnist-k2-gaussian-abd5139eaf51"])
    dataset: str = Field(examples=["mnist"])
    latent_size: int = Field(examples=[2])
    classes: list[str]
    recipe: str = Field(description="How uploaded pictures are prepared.", examples=["digit"])


class ModelList(BaseModel):
    default: str = Field(description="The model the unprefixed routes serve.", examples=["mnist"])
    models: list[ServedModel]


async def list_models(call: Call) -> Response:
    models = call.engine.repository()
    served = [
        {
            "name": name,
            "id": served.model.id,
            "dataset": served.model.description.dataset,
            "latent_size": served.model.latent_size,
            "classes": served.model.description.classes,
            "recipe": served.model.recipe,
        }
        for name, served in models.served().items()
    ]
    return JSONResponse({"default": models.default_name, "models": served})


async def description(call: Call) -> Response:
    """Latent size, input/output contract, preprocessing, likelihood, training configuration,
    test metrics, library versions and file checksums, as written by the exporter."""
    return JSONResponse(call.model.model.description.model_dump(mode="json"))


async def reference(call: Call) -> Response:
    served = call.model.model
    if served.reference is None:
        name = call.path["model"]
        raise Problem(404, f"model {name!r} has no reference set; export it again with this version of vae-train")
    return Response(served.reference, media_type="application/octet-stream")


ROUTES = [
    Route(
        ("GET",),
        "/models",
        list_models,
        "The served models",
        TAGS,
        response_model=ModelList,
        responses={503: ERRORS[503]},
    ),
    Route(
        ("GET",),
        "/model",
        description,
        "The default model's description (model.json)",
        TAGS,
        response_model=ModelDescription,
        responses={503: ERRORS[503]},
        serves_model=True,
    ),
    Route(
        ("GET",),
        MODEL_PREFIX,
        description,
        "A model's description (model.json)",
        TAGS,
        response_model=ModelDescription,
        responses={404: ERRORS[404], 503: ERRORS[503]},
        path_docs={"model": MODEL_PARAMETER},
        serves_model=True,
    ),
    Route(
        ("GET",),
        f"{MODEL_PREFIX}/reference",
        reference,
        "A model's reference set: its test images on the latent plane",
        TAGS,
        responses={
            200: {
                "description": f"Binary, {LAYOUT}; the count and latent size are in the model's description.",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            404: ERRORS[404],
            503: ERRORS[503],
        },
        path_docs={"model": MODEL_PARAMETER},
        serves_model=True,
    ),
]
