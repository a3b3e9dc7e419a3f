"""A route is declared once: the dispatch refuses at start-up an endpoint whose FastAPI parameters
it would skip, and serves a declared query model with the same validation FastAPI would."""

import re

import pytest
from fastapi import Body, Depends, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from service.http import app
from service.http.responses import JSONResponse
from service.http.routing import Call, Route, RouteError, declared_routes
from service.settings import Settings


class Steps(BaseModel):
    steps: int = Field(3, ge=2, le=5)


def _depends() -> int:
    return 1


async def with_query(call: Call, steps: int = Query(3)): ...
async def with_depends(call: Call, one: int = Depends(_depends)): ...
async def with_body(call: Call, payload: dict = Body(...)): ...
async def with_typed_body(call: Call, payload: Steps): ...
async def without_call(): ...


@pytest.mark.parametrize("endpoint", [with_query, with_depends, with_body, with_typed_body, without_call])
def test_an_endpoint_with_parameters_the_dispatch_would_skip_fails_at_start_up_naming_its_route(
    endpoint, model_dir, monkeypatch
):
    route = Route(("GET",), "/walk", endpoint, summary="Walk", tags=("test",))
    with pytest.raises(RouteError, match=re.escape(f"route GET /walk: its endpoint {endpoint.__name__}(")):
        declared_routes([route])
    monkeypatch.setattr(app, "routes", lambda: declared_routes([route]))
    with pytest.raises(RouteError, match="Route\\(query=Model\\)"):
        app.create_app(Settings(model_dir=model_dir))


def test_a_path_declared_twice_fails_at_start_up(model_dir, monkeypatch):
    async def walk(call: Call): ...

    route = Route(("GET",), "/walk", walk, summary="Walk", tags=("test",))
    monkeypatch.setattr(app, "routes", lambda: declared_routes([route, route]))
    with pytest.raises(RouteError, match="route GET /walk is declared twice"):
        app.create_app(Settings(model_dir=model_dir))


async def walk(call: Call) -> JSONResponse:
    return JSONResponse({"steps": call.params.steps})


def test_a_declared_query_model_is_validated_served_and_documented_from_the_one_declaration(model_dir, monkeypatch):
    route = Route(("GET",), "/walk", walk, summary="Walk", tags=("test",), query=Steps)
    monkeypatch.setattr(app, "routes", lambda: declared_routes([route]))
    with TestClient(app.create_app(Settings(model_dir=model_dir)), raise_server_exceptions=False) as client:
        assert client.get("/walk", params={"steps": 4}).json() == {"steps": 4}
        assert client.get("/walk").json() == {"steps": 3}
        refused = client.get("/walk", params={"steps": 9})
        assert refused.status_code == 422 and "steps" in refused.json()["detail"]
        operation = client.get("/openapi.json").json()["paths"]["/walk"]["get"]
    (steps,) = operation["parameters"]
    assert steps["name"] == "steps" and steps["in"] == "query"
    assert steps["schema"]["minimum"] == 2 and steps["schema"]["maximum"] == 5 and steps["schema"]["default"] == 3
    assert operation["summary"] == "Walk" and operation["operationId"].startswith("walk")
