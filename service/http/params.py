"""Route parameters as pydantic models, validated by pydantic directly (service.http.routing
declares which model a route takes; its OpenAPI document is made from the same models).

One rule for every route: a parameter comes from the query string, or (on POST routes that take
JSON) from the JSON body; a parameter given in both, given twice, or unknown to the route is a 422
that names it and says where it belongs. Nothing is silently ignored.

One model per request, validated at once: FastAPI's per-parameter machinery (solving the
signature, validating and collecting parameter by parameter) costs several times more. Errors keep
FastAPI's shape: locations that start with "query" or "body".
"""

from functools import cache
from typing import TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request

from service.http.problems import InvalidParameters, Problem

Params = TypeVar("Params", bound=BaseModel)


JSON_MEDIA_TYPES = {"application/json", ""}  # a body without a declared type is read as JSON


class NoParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _takes(model: type[BaseModel]) -> str:
    names = ", ".join(model.model_fields)
    return f"this route takes {names}" if names else "this route takes no parameters"


def _located(where: str, error: ValidationError, model: type[BaseModel]) -> InvalidParameters:
    errors = []
    for e in error.errors(include_url=False):
        if e["type"] == "extra_forbidden":
            e = {**e, "msg": f"unknown field; {_takes(model)}"}
        errors.append({**e, "loc": (where, *e["loc"])})
    return InvalidParameters(errors)


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
