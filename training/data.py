"""Reading MNIST-format IDX files (gzipped or not), and fetching the standard MNIST files."""

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.geometry import SIDE
from contract.recipes import Recipe, recipe_for
from training.errors import DataError

MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# SHA-256 of the decompressed files: re-compressed copies differ in their .gz bytes only.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Data sets known by their content, with their class names (Xiao et al. for Fashion-MNIST).
KNOWN_DATASETS = {
    "mnist": (MNIST_SHA256, [str(digit) for digit in range(10)]),
    "fashion-mnist": (
        FASHION_MNIST_SHA256,
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) uint8


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    sha256: dict[str, str]  # decompressed content hash of each file read, by standard name


def read_idx(path: Path) -> tuple[np.ndarray, str]:
    """The array in an IDX file and the SHA-256 of its decompressed bytes."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: truncated or padded: header says {shape} ({expected} bytes), file has {len(raw)}")
    array = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return array, hashlib.sha256(raw).hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped if the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)


def find_file(data_dir: Path, name: str) -> Path | None:
    """The file called `name`, plain or gzipped, in data_dir."""
    for candidate in (data_dir / f"{name}.gz", data_dir / name):
        if candidate.is_file():
            return candidate
    return None


def missing_files(data_dir: Path) -> list[str]:
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        raise DataError(f"{data_dir}: cannot read the folder (permission denied)")
    return [name for name in MNIST_SHA256 if find_file(data_dir, name) is None]


def meant_for(data_dir: Path) -> str:
    """The known data set whose files the folder holds some of ("mnist" when it holds none)."""
    present = {name: find_file(data_dir, name) for name in MNIST_SHA256}
    found = {name: read_idx(path)[1] for name, path in present.items() if path is not None}
    for dataset, (checksums, _) in KNOWN_DATASETS.items():
        if any(checksums[name] == sha256 for name, sha256 in found.items()):
            return dataset
    return "fashion-mnist" if "fashion" in data_dir.resolve().name.lower() else "mnist"


def download_mnist(data_dir: Path, names: list[str], mirror: str | None = None) -> None:
    """Fetch the named standard MNIST files into data_dir, keeping each only if its checksum holds.
    A failed download leaves nothing behind: no partial file, and no folder it created."""
    created = next((folder for folder in reversed([data_dir, *data_dir.parents]) if not folder.exists()), None)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        for name in names:
            _download(data_dir, name, mirror or MNIST_MIRROR)
    except BaseException:
        if created is not None and not any(path.is_file() for path in created.rglob("*")):
            shutil.rmtree(created)
        raise


def _download(data_dir: Path, name: str, mirror: str) -> None:
    target = data_dir / f"{name}.gz"
    partial = target.with_suffix(".gz.part")
    url = f"{mirror}{name}.gz"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error.strerror or error
        raise DataError(
            f"cannot download {url} ({reason}); on a machine without that access, copy the four MNIST IDX files "
            "into a folder and pass it as --data-dir"
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    digest = hashlib.sha256(gzip.decompress(partial.read_bytes())).hexdigest()
    if digest != MNIST_SHA256[name]:
        partial.unlink()
        raise DataError(f"{target}: downloaded file fails its checksum ({digest})")
    partial.rename(target)


def _read_split(data_dir: Path, prefix: str, sha256: dict[str, str]) -> Split:
    arrays = {}
    for kind, ndim in (("images", 3), ("labels", 1)):
        name = f"{prefix}-{kind}-idx{ndim}-ubyte"
        path = find_file(data_dir, name)
        if path is None:
            raise DataError(f"{data_dir / name}[.gz]: missing")
        array, sha256[name] = read_idx(path)
        if array.ndim != ndim or array.dtype != np.uint8:
            raise DataError(f"{path}: expected {ndim}-d uint8 data, found {array.ndim}-d {array.dtype}")
        arrays[kind] = array
    images, labels = arrays["images"], arrays["labels"]
    if images.shape[1:] != (SIDE, SIDE) or len(images) != len(labels):
        raise DataError(f"{data_dir}/{prefix}-*: {images.shape} images do not match {labels.shape} labels")
    return Split(images, labels)


def load_dataset(data_dir: Path) -> Dataset:
    """The training and test splits of an MNIST-format folder (MNIST, Fashion-MNIST, ...)."""
    sha256: dict[str, str] = {}
    train = _read_split(data_dir, "train", sha256)
    test = _read_split(data_dir, "t10k", sha256)
    return Dataset(train, test, sha256)


def dataset_name(dataset: Dataset, data_dir: Path) -> str:
    known = [name for name, (sha256, _) in KNOWN_DATASETS.items() if sha256 == dataset.sha256]
    return known[0] if known else data_dir.resolve().name


def class_names(dataset: Dataset, data_dir: Path) -> list[str]:
    name = dataset_name(dataset, data_dir)
    return (
        KNOWN_DATASETS[name][1] if name in KNOWN_DATASETS else [str(label) for label in np.unique(dataset.train.labels)]
    )


def framing_of(images: np.ndarray) -> Recipe:
    """The recipe that frames uploads as these images are framed: the median subject's longest side."""
    ink = images[:2000] > 25
    positions = np.arange(images.shape[1])

    def spans(occupied: np.ndarray) -> np.ndarray:  # (N, 28) bool -> extent of the True run per image
        first = np.where(occupied, positions, images.shape[1]).min(axis=1)
        last = np.where(occupied, positions, -1).max(axis=1)
        return np.maximum(last - first + 1, 0)

    longest = np.maximum(spans(ink.any(axis=2)), spans(ink.any(axis=1)))
    return recipe_for(float(np.median(longest)))
