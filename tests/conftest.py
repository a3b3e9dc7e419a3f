from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
SAMPLE_DATA = TESTS / "data" / "mnist-sample"
FULL_MNIST = REPO.parent / "shared" / "data" / "mnist"
BUNDLED_MODEL = REPO / "models" / "mnist"


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    return SAMPLE_DATA
