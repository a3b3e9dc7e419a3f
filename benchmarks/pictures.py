"""Where real pictures land: 5-NN accuracy of /encode's mu, per condition, through the HTTP service.

    python -m benchmarks.pictures [--count 1000] [--data-dir ../shared/data/mnist] [--model-dir models/mnist]

MNIST test digits become uploads as people make them (harness.pictures: paper, noise, JPEG, blur,
lighting, colour, specks, ruled lines, pens, rotation and perspective, canvas drawings, all
combined, and typeset in fonts), go to a real server over HTTP, and each returned mu is classified
by its 5 nearest neighbours among the training images' mu from the same model. A picture the
service rejects counts as wrong. The targets are the pictures issue's: every condition at least
0.9x the clean digits' accuracy, all combined at least 0.85x, typeset digits at least 0.7. Then
--numbers pictures of numbers (harness.pictures.numbers) go to /encode/digits: how many have every
digit found, and the accuracy per digit.
"""

import argparse
import json
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from harness.pictures import ALL_CONDITIONS, Number, Picture, corpus, numbers, target_for
from harness.server import running_server
from service.core.verified import VerifiedModel
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Outcome:
    condition: str
    count: int
    accuracy: float
    rejected: int
    target: float

    @property
    def met(self) -> bool:
        return self.accuracy >= self.target


def training_neighbours(model_dir: Path, data_dir: Path) -> KNeighborsClassifier:
    """5-NN over the training images' mu, computed by the same ONNX encoder the service runs."""
    model = VerifiedModel.load(model_dir, threads=1)
    train = load_dataset(data_dir).train
    pixels = (train.images.astype(np.float32) / 255)[:, None]
    mu = np.concatenate([model.encode(batch)[0] for batch in np.array_split(pixels, 30)])
    return KNeighborsClassifier(n_neighbors=5).fit(mu, train.labels)


def encode_all(url: str, pictures: list[Picture]) -> list[list[float] | None]:
    """mu for each picture from POST /encode, or None where the service rejected it."""

    def one(picture: Picture) -> list[float] | None:
        response = client.post(f"{url}/encode", content=picture.data, headers={"Content-Type": picture.media_type})
        if response.status_code == 422:
            return None
        response.raise_for_status()
        return response.json()["mu"]

    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, pictures))


def measure(url: str, neighbours: KNeighborsClassifier, images, labels, conditions, seed: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    clean = None
    for condition in conditions:
        pictures = list(corpus(images, labels, condition, seed))
        mus = encode_all(url, pictures)
        placed = [(mu, picture.label) for mu, picture in zip(mus, pictures, strict=True) if mu is not None]
        correct = 0
        if placed:
            predicted = neighbours.predict(np.array([mu for mu, _ in placed]))
            correct = int((predicted == np.array([label for _, label in placed])).sum())
        accuracy = correct / len(pictures)
        clean = accuracy if condition == "clean" else clean
        target = target_for(condition, clean if clean is not None else 0.0)
        outcomes.append(Outcome(condition, len(pictures), accuracy, len(pictures) - len(placed), target))
        print(f"  {condition:<10} {accuracy:6.3f}  ({len(pictures) - len(placed)} rejected)", flush=True)
    return outcomes


def measure_numbers(url: str, neighbours: KNeighborsClassifier, images, labels, count: int, seed: int) -> None:
    """Pictures of numbers through /encode/digits: how many had every digit found, and the 5-NN
    accuracy per digit (a digit of a number whose digits were not all found counts as wrong)."""

    def one(number: Number) -> list[list[float]]:
        response = client.post(f"{url}/encode/digits", content=number.data, headers={"Content-Type": "image/jpeg"})
        return [item["mu"] for item in response.json()["items"]] if response.status_code == 200 else []

    for smallest in (False, True):
        made = list(numbers(images, labels, count, seed, smallest))
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(4) as pool:
            found = list(pool.map(one, made))
        whole = [(mu, number.labels) for mu, number in zip(found, made, strict=True) if len(mu) == len(number.labels)]
        digits = sum(len(number.labels) for number in made)
        correct = sum(int((neighbours.predict(np.array(mu)) == np.array(truth)).sum()) for mu, truth in whole)
        kind = "numbers, digits 1/20 of the page high" if smallest else "numbers, digits 1/20-1/5 of the page high"
        print(
            f"  {kind}: {len(whole)} of {len(made)} with every digit found; "
            f"5-NN accuracy per digit {correct / digits:.3f} ({digits} digits)",
            flush=True,
        )


def report(outcomes: list[Outcome]) -> str:
    clean = outcomes[0].accuracy
    lines = [
        "| condition | pictures | 5-NN accuracy | / clean | target | met | rejected (422) |",
        "|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        lines.append(
            f"| {outcome.condition} | {outcome.count} | {outcome.accuracy:.3f} | {outcome.accuracy / clean:.2f} "
            f"| {outcome.target:.3f} | {'yes' if outcome.met else 'NO'} | {outcome.rejected} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="test digits per condition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "mnist")
    parser.add_argument("--conditions", nargs="*", default=list(ALL_CONDITIONS), choices=ALL_CONDITIONS)
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument("--numbers", type=int, default=100, help="pictures of numbers of 2-6 digits (0: none)")
    args = parser.parse_args()
    conditions = ["clean", *(c for c in args.conditions if c != "clean")]

    neighbours = training_neighbours(args.model_dir, args.data_dir)
    test = load_dataset(args.data_dir).test
    with running_server(args.model_dir, VAE_MAX_BODY_BYTES=str(32 * 1024 * 1024)) as server:
        outcomes = measure(
            server.url, neighbours, test.images[: args.count], test.labels[: args.count], conditions, args.seed
        )
        print(report(outcomes))
        if args.numbers:
            measure_numbers(server.url, neighbours, test.images, test.labels, args.numbers, args.seed)
    ratios = [o.accuracy / outcomes[0].accuracy for o in outcomes[1:] if o.condition not in {"fonts", "combined"}]
    if ratios:
        print(f"median condition / clean: {statistics.median(ratios):.2f}")
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=2))


if __name__ == "__main__":
    main()
