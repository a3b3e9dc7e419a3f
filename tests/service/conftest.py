from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings


def make_client(model_dir: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)), raise_server_exceptions=False)


@pytest.fixture
def client(model_dir):
    with make_client(model_dir, max_body_bytes=1_000_000, max_batch=8, max_samples=16) as client:
        yield client


@pytest.fixture
def client_large(model_dir):
    """Room for the multi-megabyte hostile uploads."""
    with make_client(model_dir, max_body_bytes=8_000_000) as client:
        yield client
