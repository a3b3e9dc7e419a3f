"""Training benchmark: seconds per epoch of the project's trainer, against a plain reference loop
of the same model (PyTorch's VAE example: a DataLoader of per-image tensors, batch 128; the trainer
runs at its default batch size, the choice a user gets) and against
the FLOP floor from the model's shape and a measured matmul rate. All on one thread, in one run.

    python -m benchmarks.training [--epochs 3] [--smoke] [--data-dir ../shared/data/mnist]
"""

import argparse
import json
import statistics
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.config import TrainConfig, VAEConfig
from training.data import load_dataset
from training.train import Trainer, split_training_set

ROOT = Path(__file__).resolve().parent.parent
SHAPE = VAEConfig(latent_size=20, hidden_sizes=(400,), likelihood="bernoulli")
REFERENCE_BATCH = 128  # the example's


class ReferenceVAE(nn.Module):
    """PyTorch's example model, as written there."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class PerImage(Dataset):
    """What torchvision's MNIST with ToTensor() does per item: a PIL image, then a float tensor."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        picture = Image.fromarray(self.images[index])
        return torch.from_numpy(np.array(picture, copy=True)).unsqueeze(0).float().div(255)


def reference_epoch(images: np.ndarray) -> float:
    model = ReferenceVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for x in DataLoader(PerImage(images), batch_size=REFERENCE_BATCH, shuffle=True):
        recon, mu, logvar = model(x)
        loss = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
        loss = loss - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def project_epoch(trainer: Trainer) -> float:
    started = time.perf_counter()
    trainer.train_epoch()
    return time.perf_counter() - started


def matmul_gflops(seconds: float = 2.0) -> float:
    """The sustained rate of this model's largest matmuls (forward and backward shapes)."""
    a, b = torch.randn(REFERENCE_BATCH, 784), torch.randn(784, 400)
    g, w = torch.randn(REFERENCE_BATCH, 400), torch.randn(400, 784)
    flops, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        g @ w
        a.T @ g
        flops += 3 * 2 * REFERENCE_BATCH * 784 * 400
    return flops / (time.perf_counter() - started) / 1e9


def training_gflop_per_image(vae: VAEConfig) -> float:
    """Forward 2 FLOP per multiply-add, backward twice the forward: 6 x the weights' MACs."""
    encoder = (784, *vae.hidden_sizes, 2 * vae.latent_size)
    decoder = (vae.latent_size, *reversed(vae.hidden_sizes), 784)
    macs = sum(a * b for widths in (encoder, decoder) for a, b in pairwise(widths))
    return 6 * macs / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per loop (the median is quoted)")
    parser.add_argument("--smoke", action="store_true", help="a few batches per loop: keeps the benchmark working")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "training.json")
    args = parser.parse_args()
    data_dir = args.data_dir if args.data_dir.is_dir() and not args.smoke else ROOT / "tests" / "data" / "mnist-sample"
    torch.set_num_threads(1)
    dataset = load_dataset(data_dir)
    config = TrainConfig(
        data_dir=data_dir,
        out_dir=Path("unused"),
        vae=SHAPE,
        epochs=10,
        kl_warmup_epochs=0,
        train_limit=600 if args.smoke else None,
    )
    trainer = Trainer(config, split_training_set(dataset, config))
    images = dataset.train.images[: len(trainer.splits.train)]  # the same number of images in both loops
    rounds = 1 if args.smoke else args.epochs
    reference = statistics.median(reference_epoch(images) for _ in range(rounds))
    project = statistics.median(project_epoch(trainer) for _ in range(rounds))
    rate = matmul_gflops(0.5 if args.smoke else 3.0)
    floor = training_gflop_per_image(SHAPE) * len(images) / rate
    results = {
        "images_per_epoch": len(images),
        "reference_s": reference,
        "project_s": project,
        "matmul_gflops": rate,
        "flop_floor_s": floor,
        "project_vs_reference": project / reference,
        "project_vs_floor": project / floor,
    }
    print(
        f"images per epoch {len(images)}; 784-400-20 Bernoulli, 1 thread; batch {REFERENCE_BATCH} in the "
        f"reference, the trainer's default {config.batch_size} in the project"
    )
    print(f"  reference loop (DataLoader, per-image tensors): {reference:7.2f} s")
    print(
        f"  project trainer (in-memory batches):            {project:7.2f} s  "
        f"= {project / reference:.2f}x the reference"
    )
    print(
        f"  FLOP floor at {rate:.0f} GFLOP/s matmul:            {floor:7.2f} s  "
        f"-> project at {project / floor:.2f}x the floor"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
