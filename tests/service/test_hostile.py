"""Hostile uploads and requests: each gets its 4xx and a detail that says why, or, when valid, the
mu of the picture it holds; never a 5xx, quickly."""

import time

import pytest

from harness.bodies import png
from tests.service.conftest import assert_problem
from tests.service.hostile import corpus

CASES = corpus()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_upload(client_large, case):
    started = time.perf_counter()
    response = client_large.post("/encode", content=case.body, headers={"Content-Type": case.content_type})
    assert time.perf_counter() - started < 5
    if case.status != 200:
        assert_problem(response, case.status, case.answer)
        return
    assert response.status_code == 200, response.text
    twin = client_large.post("/encode", content=png(case.answer), headers={"Content-Type": "image/png"})
    assert response.json()["mu"] == pytest.approx(twin.json()["mu"], abs=1e-6)


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
