from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
SAMPLE_DATA = TESTS / "data" / "mnist-sample"
FULL_MNIST = REPO.parent / "shared" / "data" / "mnist"
BUNDLED_MODEL = REPO / "models" / "mnist"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, sample_data_dir) -> Path:
    """A run folder from two quick epochs on the sample digits, with its exported model in model/."""
    from training.cli import main

    out = tmp_path_factory.mktemp("run")
    main(
        [
            "train",
            "--data-dir",
            str(sample_data_dir),
            "--out-dir",
            str(out),
            "--epochs",
            "2",
            "--vae.hidden-sizes",
            "[32]",
            "--batch-size",
            "64",
            "--iw-samples",
            "50",
            "--iw-images",
            "20",
            "--validation-size",
            "100",
        ]
    )
    return out


@pytest.fixture(scope="session")
def model_dir(trained_run) -> Path:
    return trained_run / "model"
