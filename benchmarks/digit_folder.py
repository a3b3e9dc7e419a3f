"""What the folder benchmarks share: their options, and the MNIST test digits written as PNG files."""

import argparse
from pathlib import Path

import numpy as np

from harness.bodies import png
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
FULL_MNIST = ROOT.parent / "shared" / "data" / "mnist"
SAMPLE_MNIST = ROOT / "tests" / "data" / "mnist-sample"


def count_and_rounds(description: str) -> tuple[int, int]:
    """--count, --rounds and --smoke (200 pictures, one round) from the command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="200 pictures, one round")
    args = parser.parse_args()
    return (200, 1) if args.smoke else (args.count, args.rounds)


def write_digits(folder: Path, count: int) -> np.ndarray:
    """The first `count` MNIST test digits (the full set's, or the sample's without it) as
    folder/00000.png, ...; returns them."""
    data = FULL_MNIST if (FULL_MNIST / "t10k-images-idx3-ubyte.gz").exists() else SAMPLE_MNIST
    images = load_dataset(data).test.images[:count]
    folder.mkdir(exist_ok=True)
    for index, image in enumerate(images):
        (folder / f"{index:05d}.png").write_bytes(png(image))
    return images
