import os
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
SAMPLE_DATA = TESTS / "data" / "mnist-sample"
BUNDLED_MODEL = REPO / "models" / "mnist"
# The full data sets, for the checks that need them (README, Development).
FULL_MNIST = Path(os.environ.get("VAE_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
FASHION_MNIST = Path(os.environ.get("VAE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def _data_set(folder: Path, what: str, how: str) -> Path:
    """The folder, if it holds the data set. Without it a check is skipped on a developer's machine,
    and fails in CI (CI=true), where the README says these checks run."""
    if (folder / "t10k-images-idx3-ubyte.gz").is_file() or (folder / "t10k-images-idx3-ubyte").is_file():
        return folder
    message = f"{what} is not at {folder}: {how}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _data_set(FULL_MNIST, "the full MNIST set", "set VAE_MNIST_DIR to a folder of its four IDX files")


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    how = "apt-get install dataset-fashion-mnist, or set VAE_FASHION_MNIST_DIR to a folder of its four IDX files"
    return _data_set(FASHION_MNIST, "Fashion-MNIST", how)


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
