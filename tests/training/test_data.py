import gzip
import hashlib

import numpy as np
import pytest

from training.data import MNIST_SHA256, download_mnist, load_dataset, read_idx, write_idx
from training.errors import DataError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_reads_what_was_written(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    read, digest = read_idx(tmp_path / name)
    np.testing.assert_array_equal(read, array)
    raw = (tmp_path / name).read_bytes()
    assert digest == hashlib.sha256(gzip.decompress(raw) if name.endswith(".gz") else raw).hexdigest()


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros(1000, np.uint8))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: cannot read"):
        read_idx(path)


def test_not_idx_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, world")
    with pytest.raises(DataError, match=r"notes.txt: not an IDX file"):
        read_idx(path)


def test_loads_the_sample_set(sample_data_dir):
    dataset = load_dataset(sample_data_dir)
    assert dataset.train.images.shape == (600, 28, 28) and dataset.test.labels.shape == (200,)
    assert set(dataset.train.labels) == set(range(10))
    assert sorted(dataset.sha256) == sorted(MNIST_SHA256)


def test_missing_file_is_named(tmp_path, sample_data_dir):
    for path in sample_data_dir.glob("*.gz"):
        if "labels" not in path.name or "t10k" not in path.name:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[.gz\]: missing"):
        load_dataset(tmp_path)


def test_download_refuses_a_file_that_fails_its_checksum(tmp_path, sample_data_dir):
    # The sample's labels are real MNIST labels, but only 200 of them: not the published file.
    with pytest.raises(DataError, match="fails its checksum"):
        download_mnist(tmp_path / "data", ["t10k-labels-idx1-ubyte"], mirror=sample_data_dir.as_uri() + "/")
    assert not (tmp_path / "data").exists()  # the folder it made is gone with the bad file


def test_download_keeps_files_that_match_their_checksums(tmp_path, mnist_dir):
    names = ["t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"]
    download_mnist(tmp_path, names, mirror=mnist_dir.resolve().as_uri() + "/")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{name}.gz" for name in names)


@pytest.mark.slow
def test_reads_fashion_mnist(fashion_mnist_dir):
    dataset = load_dataset(fashion_mnist_dir)
    assert dataset.train.images.shape == (60_000, 28, 28) and dataset.test.images.shape == (10_000, 28, 28)
    assert set(dataset.test.labels) == set(range(10))


def test_an_unreachable_mirror_is_one_line_naming_the_url_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from harness.server import refusing_url
    from training import data
    from training.cli import main

    target = tmp_path / "data" / "mnist"
    with refusing_url() as url, pytest.raises(SystemExit) as stopped:
        mirror = f"{url}/mnist/"
        monkeypatch.setattr(data, "MNIST_MIRROR", mirror)
        main(["train", "--data-dir", str(target), "--download", "--out-dir", str(tmp_path / "run")])
    message = str(stopped.value.code)
    assert message.startswith(f"vae-train: cannot download {mirror}train-images-idx3-ubyte.gz (")
    assert "--data-dir" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # neither data/ nor data/mnist/ is left behind


def test_a_fashion_mnist_folder_missing_files_is_named_as_such(tmp_path, fashion_mnist_dir):
    from training.cli import main

    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes((fashion_mnist_dir / name).read_bytes())
    with pytest.raises(SystemExit, match="missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte of Fashion-MNIST"):
        main(["train", "--data-dir", str(tmp_path), "--download", "--out-dir", str(tmp_path / "run")])
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
