"""Hostile uploads and requests: each gets its 4xx (or 200 when valid), never a 5xx, quickly."""

import time

import pytest

from tests.service.conftest import assert_problem
from tests.service.hostile import corpus


@pytest.mark.parametrize(("name", "body", "content_type", "status"), corpus(), ids=[case[0] for case in corpus()])
def test_hostile_upload(client_large, name, body, content_type, status):
    started = time.perf_counter()
    response = client_large.post("/encode", content=body, headers={"Content-Type": content_type})
    assert time.perf_counter() - started < 5
    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"] == "application/problem+json"


def test_too_many_multipart_parts(client):
    parts = [("file", (f"{i}.png", b"x", "image/png")) for i in range(500)]
    response = client.post("/encode/batch", files=parts)
    assert response.status_code == 422 and "at most 8 image" in response.json()["detail"]


def test_deeply_nested_json(client):
    body = '{"z": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post("/decode", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "depth limit exceeded" in response.json()["detail"]


def test_wide_json_is_refused_by_size(client):
    body = '{"z": [' + ",".join(["0.5"] * 400_000) + "]}"
    response = client.post("/decode", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "request body over")
