from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and fragment in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def make_client(model_dir: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)), raise_server_exceptions=False)


def make_repository_client(repository: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(model_repository=repository, **settings)), raise_server_exceptions=False)


@pytest.fixture
def client(model_dir):
    with make_client(model_dir, max_body_bytes=1_000_000, max_batch=8, max_samples=16) as client:
        yield client


@pytest.fixture
def client_large(model_dir):
    """Room for the multi-megabyte hostile uploads."""
    with make_client(model_dir, max_body_bytes=8_000_000) as client:
        yield client
