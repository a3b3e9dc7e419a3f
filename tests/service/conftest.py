import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.core.engine import Engine
from service.http.app import create_app
from service.settings import Settings

PROBLEM = "application/problem+json"


def closed_pool() -> ThreadPoolExecutor:
    """A picture pool already shut down: a picture handed to it is refused, so one that is framed
    was framed where it arrived."""
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    return pool


def threads_named(prefix: str) -> int:
    """How many live threads bear this prefix: a pool's thread exists once it has been given work."""
    return sum(thread.name.startswith(prefix) for thread in threading.enumerate())


def assert_problem(response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and fragment in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def served_by(settings: Settings) -> TestClient:
    """A client of the app over an engine the test can reach as `client.engine`."""
    engine = Engine(settings)
    client = TestClient(create_app(engine=engine), raise_server_exceptions=False)
    client.engine = engine
    return client


def make_client(model_dir: Path, **settings) -> TestClient:
    return served_by(Settings(model_dir=model_dir, **settings))


def make_repository_client(repository: Path, **settings) -> TestClient:
    return served_by(Settings(model_repository=repository, **settings))


@pytest.fixture
def client(model_dir):
    with make_client(model_dir, max_body_bytes=1_000_000, max_batch=8, max_samples=16) as client:
        yield client


@pytest.fixture
def client_large(model_dir):
    """Room for the multi-megabyte hostile uploads."""
    with make_client(model_dir, max_body_bytes=8_000_000) as client:
        yield client
