"""How well the novelty score tells the model's kind of picture from others: AUROC per kind of outsider.

    python -m benchmarks.novelty [--count 1000] [--model-dir models/mnist]

Insiders are the first COUNT MNIST test digits; outsiders are Fashion-MNIST test images, letters
set as the pictures benchmark sets its typeset digits (harness.pictures: its fonts, photographed
pages, through the digit recipe as an upload would be), and noise (uniform, and blurred). Each is
scored as the service scores it (the ELBO at the posterior mean, lowered by the outlier head's
verdict when the model has one) and given as its percentile among the test images; AUROC is the
chance that a random insider scores above a random outsider. The share below the suggested
threshold (percentile 1) is printed for each, and for the benchmark's typeset digits, which should
pass. Last, the cost: /encode's whole model call for one image and for 64, as served, without the
outlier head and without the deskew, medians of interleaved runs.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from sklearn.metrics import roc_auc_score

from contract.recipes import Recipe
from harness.pictures import corpus, typeset_letters
from service.core.pictures import Invert, prepare
from service.core.verified import VerifiedModel
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD_PERCENTILE = 1.0
# In most fonts these are a digit's shape (l and I a 1, O and o a 0, S and s a 5, Z and z a 2, b a 6,
# g and q a 9, B an 8): a score of how digit-like a picture is cannot tell them from digits.
DIGIT_LIKE = "lIOoSsZzbgqB"


def scores(model: VerifiedModel, images: np.ndarray) -> np.ndarray:
    """Each image's novelty score, whose percentile /encode gives: of the image as the graphs see it."""
    seen, _, _, _, elbo, _ = model.assess(images)
    return model.novelty_score(seen, elbo)


def letters(count: int) -> tuple[np.ndarray, np.ndarray]:
    """count typeset letters, framed as uploads are, and which letter each is."""
    chosen, pictures = zip(*typeset_letters(count), strict=True)
    return np.stack([prepare(picture, Invert.auto, Recipe.digit) for picture in pictures]), np.array(chosen)


def typeset_digits(count: int, data_dir: Path) -> np.ndarray:
    test = load_dataset(data_dir).test
    pictures = corpus(test.images[:count], test.labels[:count], "fonts")
    return np.stack([prepare(picture.data, Invert.auto, Recipe.digit) for picture in pictures])


def cost(model: VerifiedModel, images: np.ndarray, rounds: int = 400) -> dict[str, float]:
    """Median microseconds per image of the model call as served, without the outlier head, and
    without the deskew (for a model trained upright, whose answers it then changes: time only)."""
    variants = {"as served": model, "without the head": dataclasses.replace(model, outliers=None)}
    preprocessing = model.description.preprocessing
    if preprocessing.deskew:
        unsheared = preprocessing.model_copy(update={"deskew": False})
        description = model.description.model_copy(update={"preprocessing": unsheared})
        variants["without the deskew"] = dataclasses.replace(model, description=description)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, variant in variants.items():
            started = time.perf_counter()
            variant.assess(images)
            times[name].append((time.perf_counter() - started) / len(images) * 1e6)
    return {name: float(np.median(values)) for name, values in times.items()}


def noise(count: int, rng: np.random.Generator) -> np.ndarray:
    uniform = rng.random((count // 2, 1, 28, 28), np.float32)
    blurred = np.stack(
        [
            np.asarray(
                Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
            )
            for _ in range(count - count // 2)
        ]
    )
    return np.concatenate([uniform, (blurred[:, None] / 255).astype(np.float32)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "mnist")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--outsiders-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = parser.parse_args()
    model = VerifiedModel.load(args.model_dir, threads=1)
    as_input = lambda images: (images[: args.count].astype(np.float32) / 255)[:, None]  # noqa: E731
    digits = as_input(load_dataset(args.data_dir).test.images)
    letter_images, which = letters(args.count)
    digit_like = np.isin(which, list(DIGIT_LIKE))
    outsiders = {
        "Fashion-MNIST": as_input(load_dataset(args.outsiders_dir).test.images),
        "typeset letters": letter_images,
        f"  of them drawn like a digit ({DIGIT_LIKE})": letter_images[digit_like],
        "  the other letters": letter_images[~digit_like],
        "noise": noise(args.count, np.random.default_rng(0)),
    }
    # the same images scored by the ELBO alone, side by side, when the model has a head
    variants = {"AUROC": model}
    if model.outliers is not None:
        variants = {"AUROC, ELBO alone": dataclasses.replace(model, outliers=None), "AUROC, with the head": model}
    insiders = {name: scores(variant, digits) for name, variant in variants.items()}
    print(f"{model.id}; insiders: {len(digits)} MNIST test digits; threshold: percentile 1")
    print(f"| outsiders | {' | '.join(variants)} | share below percentile 1 | median percentile |")
    print(f"|---|{'---|' * len(variants)}---|---|")
    for name, images in outsiders.items():
        aurocs = []
        for variant_name, variant in variants.items():
            outside = scores(variant, images)
            labels = np.r_[np.ones(len(digits)), np.zeros(len(outside))]
            aurocs.append(f"{roc_auc_score(labels, np.r_[insiders[variant_name], outside]):.3f}")
        found = model.percentiles(outside)
        below = float((found < THRESHOLD_PERCENTILE).mean())
        print(f"| {name} | {' | '.join(aurocs)} | {below:.3f} | {float(np.median(found)):.2f} |")
    for name, images in {
        "MNIST test digits": digits,
        "typeset digits (the pictures benchmark's)": typeset_digits(args.count, args.data_dir),
    }.items():
        below = float((model.percentiles(scores(model, images)) < THRESHOLD_PERCENTILE).mean())
        print(f"| ({name}) | {'- | ' * len(variants)}{below:.3f} | - |")
    if model.outliers is not None or model.description.preprocessing.deskew:
        for batch in (1, 64):
            per_image = cost(model, digits[:batch])
            print(f"/encode's model call, {batch} image(s) per call, per image: ", end="")
            print(", ".join(f"{name} {micros:.0f} us" for name, micros in per_image.items()))


if __name__ == "__main__":
    main()
