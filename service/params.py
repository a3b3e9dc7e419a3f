"""Route parameters as pydantic models, validated by pydantic directly, documented from the same models.

One rule for every route: a parameter comes from the query string, or (on POST routes that take
JSON) from the JSON body; a parameter given in both, given twice, or unknown to the route is a 422
that names it and says where it belongs. Nothing is silently ignored.

The routes take only the Request and validate one model each: FastAPI's per-parameter machinery
(solving the signature, validating and collecting parameter by parameter) costs several times more
than one model. Errors keep FastAPI's shape: a RequestValidationError whose locations start with
"query" or "body".
"""

from functools import cache
from typing import TypeVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.errors import Problem

Params = TypeVar("Params", bound=BaseModel)
JSON_MEDIA_TYPES = {"application/json", ""}  # a body without a declared type is read as JSON


def _takes(model: type[BaseModel]) -> str:
    names = ", ".join(model.model_fields)
    return f"this route takes {names}" if names else "this route takes no parameters"


def _located(where: str, error: ValidationError, model: type[BaseModel]) -> RequestValidationError:
    errors = []
    for e in error.errors(include_url=False):
        if e["type"] == "extra_forbidden":
            e = {**e, "msg": f"unknown field; {_takes(model)}"}
        errors.append({**e, "loc": (where, *e["loc"])})
    return RequestValidationError(errors)


def query_values(model: type[BaseModel], request: Request, body_only: frozenset[str] = frozenset()) -> dict[str, str]:
    """The query string as a dict, refusing names the model lacks and names given twice."""
    values: dict[str, str] = {}
    if not request.scope["query_string"]:  # most requests: no QueryParams to build
        return values
    for name, value in request.query_params.multi_items():
        if name not in model.model_fields:
            raise Problem(422, f"unknown query parameter {name!r}; {_takes(model)}")
        if name in body_only:
            raise Problem(422, f"{name!r} belongs in the JSON body, not the query string")
        if name in values:
            raise Problem(422, f"query parameter {name!r} is given more than once; give it once")
        values[name] = value
    return values


@cache
def _defaults(model: type[Params]) -> Params:
    return model()


def from_query(model: type[Params], request: Request) -> Params:
    if not request.scope["query_string"]:  # most requests: the defaults, validated once
        return _defaults(model)
    values = query_values(model, request)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise _located("query", error, model) from None


def no_query(request: Request) -> None:
    """For routes without parameters: any query parameter is a mistake worth saying."""
    if request.query_params:
        name = next(iter(request.query_params))
        raise Problem(422, f"unknown query parameter {name!r}; this route takes no parameters")


async def from_query_and_json(
    model: type[Params], request: Request, body_only: frozenset[str] = frozenset(), optional: bool = False
) -> Params:
    """The model from the query string and the JSON body together; with optional, an empty body
    is allowed. A field in both is a conflict."""
    query = query_values(model, request, body_only)
    body = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise Problem(415, f"content type {media_type!r} not accepted; send the body as application/json")
    try:
        fields = orjson.loads(body) if body else ({} if optional else None)
    except orjson.JSONDecodeError as error:
        raise Problem(422, f"the body is not valid JSON ({error})") from None
    if fields is None:
        raise Problem(422, f"empty body: send a JSON object; {_takes(model)}")
    if not isinstance(fields, dict):
        raise Problem(422, f"the body must be a JSON object; {_takes(model)}")
    for name in fields.keys() & query.keys():
        raise Problem(422, f"{name!r} is given in both the query string and the body; give it in one")
    try:
        return model.model_validate({**fields, **query})
    except ValidationError as error:
        raise _located("body", error, model) from None


def query_docs(model: type[BaseModel], body_only: frozenset[str] = frozenset()) -> dict:
    """The OpenAPI `parameters` of a model read from the query string."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})

    def inlined(field: dict) -> dict:
        reference = field.get("$ref")
        return definitions[reference.rsplit("/", 1)[-1]] | field if reference else field

    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                "description": field.get("description", ""),
                "schema": {key: value for key, value in inlined(field).items() if key != "$ref"},
            }
            for name, field in schema["properties"].items()
            if name not in body_only
        ]
    }


def json_body_docs(model: type[BaseModel], optional: bool = False) -> dict:
    """The OpenAPI `requestBody` of a model read from a JSON body."""
    return {
        "requestBody": {
            "required": not optional,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
