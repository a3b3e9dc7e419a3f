"""How well the novelty score tells the model's kind of picture from others: AUROC per kind of outsider.

    python -m benchmarks.novelty [--count 1000] [--model-dir models/mnist]

Insiders are the first COUNT MNIST test digits; outsiders are Fashion-MNIST test images, letters
set in the fonts of harness.pictures (through the digit recipe, as an upload would be), and noise
(uniform, and blurred). Each is scored as the service scores it (the ELBO at the
posterior mean); AUROC is the chance that a random insider scores above a random outsider. The
share of outsiders below the suggested threshold (the test images' 1st percentile) is printed too.
"""

import argparse
import io
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from sklearn.metrics import roc_auc_score

from harness.pictures import available_fonts
from service.core.pictures import Invert, prepare
from service.core.verified import VerifiedModel
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD_PERCENTILE = 1.0
# In most fonts these are a digit's shape (l and I a 1, O and o a 0, S and s a 5, Z and z a 2, b a 6,
# g and q a 9, B an 8): a score of how digit-like a picture is cannot tell them from digits.
DIGIT_LIKE = "lIOoSsZzbgqB"


def scores(model: VerifiedModel, images: np.ndarray) -> np.ndarray:
    mu, sigma = model.encode(images)
    return model.novelty(images, model.decode(mu), mu, sigma).elbo


def letters(model: VerifiedModel, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """count typeset letters, framed as uploads are, and which letter each is."""
    fonts, alphabet = available_fonts(), np.array(list(string.ascii_letters))
    chosen = alphabet[rng.integers(len(alphabet), size=count)]
    images = []
    for index, letter in enumerate(chosen):
        image = Image.new("L", (200, 200), 235)
        face = ImageFont.truetype(str(fonts[index % len(fonts)]), int(rng.uniform(80, 150)))
        ImageDraw.Draw(image).text((30, 10), letter, fill=20, font=face)
        upload = io.BytesIO()
        image.save(upload, format="PNG")
        images.append(prepare(upload.getvalue(), Invert.auto, model.recipe, 10**8))
    return np.stack(images), chosen


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
    rng = np.random.default_rng(0)
    model = VerifiedModel.load(args.model_dir, threads=1)
    as_input = lambda images: (images[: args.count].astype(np.float32) / 255)[:, None]  # noqa: E731
    insiders = scores(model, as_input(load_dataset(args.data_dir).test.images))
    letter_images, which = letters(model, args.count, rng)
    letter_scores, digit_like = scores(model, letter_images), np.isin(which, list(DIGIT_LIKE))
    outsiders = {
        "Fashion-MNIST": scores(model, as_input(load_dataset(args.outsiders_dir).test.images)),
        "typeset letters": letter_scores,
        f"  of them drawn like a digit ({DIGIT_LIKE})": letter_scores[digit_like],
        "  the other letters": letter_scores[~digit_like],
        "noise": scores(model, noise(args.count, rng)),
    }
    quantiles = model.description.novelty.test_quantiles
    threshold = float(np.interp(THRESHOLD_PERCENTILE, np.linspace(0, 100, len(quantiles)), quantiles))
    print(f"insiders: {len(insiders)} MNIST test digits; threshold: percentile {THRESHOLD_PERCENTILE}", end=" ")
    print(f"of the test images' scores = {threshold:.1f} nats")
    print("| outsiders | AUROC | share below the threshold | median percentile |")
    print("|---|---|---|---|")
    for name, outside in outsiders.items():
        labels = np.r_[np.ones(len(insiders)), np.zeros(len(outside))]
        auroc = roc_auc_score(labels, np.r_[insiders, outside])
        below = float((outside < threshold).mean())
        print(f"| {name} | {auroc:.3f} | {below:.3f} | {float(np.median(model.percentiles(outside))):.2f} |")
    print(f"| (MNIST test digits) | - | {float((insiders < threshold).mean()):.3f} | - |")


if __name__ == "__main__":
    main()
