"""The training loop: in-memory batches, a checkpoint after every epoch, resumable."""

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from contract.deskew import deskewed
from contract.geometry import PIXELS
from training.config import BEST_WEIGHTS, LAST_CHECKPOINT, METRICS_FILE, TrainConfig
from training.data import Dataset
from training.errors import ResumeError
from training.evaluate import mean_elbo
from training.model import VAE
from training.typeset import typeset_digits


def as_pixels(images: np.ndarray, deskew: bool = False) -> torch.Tensor:
    """uint8 (N, 28, 28) images -> float32 (N, 784) intensities in [0, 1], sheared upright with
    `deskew` as the service shears a deskewing model's inputs."""
    pixels = images.astype(np.float32) / 255.0
    if deskew:
        pixels = deskewed(pixels)
    return torch.from_numpy(pixels.reshape(len(images), PIXELS))


@dataclass(frozen=True)
class Splits:
    train: torch.Tensor  # (N_train, 784)
    validation: torch.Tensor  # (N_val, 784)
    train_labels: np.ndarray  # (N_train,): never seen by training, only by the figures of model choice
    validation_labels: np.ndarray  # (N_val,)


def split_training_set(dataset: Dataset, config: TrainConfig) -> Splits:
    """Hold out a fixed, seeded validation subset of the official training images; the printed
    digits, if any, join the rest."""
    pixels = as_pixels(dataset.train.images[: config.train_limit], config.deskew)
    labels = dataset.train.labels[: config.train_limit]
    validation_size = min(config.validation_size, len(pixels) // 10)
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(config.seed))
    held_out, kept = order[:validation_size].numpy(), order[validation_size:].numpy()
    train, train_labels = pixels[kept], labels[kept]
    if config.typeset_fonts:
        printed = typeset_digits(config.typeset_fonts, config.typeset_count, config.seed)
        train = torch.cat([train, as_pixels(printed.images, config.deskew)])
        train_labels = np.concatenate([train_labels, printed.labels])
    return Splits(train, pixels[held_out], train_labels, labels[held_out])


def _save_atomically(obj: object, path: Path) -> None:
    partial = path.with_suffix(".part")
    torch.save(obj, partial)
    os.replace(partial, path)  # a crash mid-write never clobbers the last good file


class Trainer:
    def __init__(self, config: TrainConfig, splits: Splits):
        self.config = config
        self.splits = splits
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.model = VAE(config.vae)
        # fused: one kernel for all parameters, a third of the foreach step's time on CPU
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, fused=True)
        self.steps_per_epoch = math.ceil(len(splits.train) / config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=config.epochs * self.steps_per_epoch, eta_min=config.min_learning_rate
        )
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.noise = torch.Generator().manual_seed(config.seed + 1)  # the reparameterisation's epsilon
        self.epoch = 0
        self.history: list[dict] = []
        self.best_validation_elbo = -math.inf
        self.epochs_since_best = 0

    @property
    def out_dir(self) -> Path:
        return self.config.out_dir

    @property
    def warmup_epochs(self) -> int:
        """The KL warm-up, at most a third of the run: a short run must end on the real ELBO."""
        return min(self.config.kl_warmup_epochs, self.config.epochs // 3)

    @property
    def notes(self) -> list[str]:
        """What the run does differently from what its options say, and why."""
        if self.warmup_epochs < self.config.kl_warmup_epochs:
            return [
                f"KL warm-up shortened from {self.config.kl_warmup_epochs} to {self.warmup_epochs} epochs "
                f"(at most a third of {self.config.epochs}), so that the run ends on the full ELBO"
            ]
        return []

    def kl_weight(self, step: int) -> float:
        warmup_steps = self.warmup_epochs * self.steps_per_epoch
        return 1.0 if warmup_steps == 0 else min(1.0, step / warmup_steps)

    def state(self) -> dict:
        return {
            "config": self.config.model_dump(mode="json"),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "shuffle": self.shuffle.get_state(),
            "noise": self.noise.get_state(),
            "epoch": self.epoch,
            "history": self.history,
            "best_validation_elbo": self.best_validation_elbo,
            "epochs_since_best": self.epochs_since_best,
        }

    def resume(self) -> None:
        checkpoint = torch.load(self.out_dir / LAST_CHECKPOINT, weights_only=False)
        saved = TrainConfig.model_validate(checkpoint["config"])
        if saved.model_dump(exclude={"epochs"}) != self.config.model_dump(exclude={"epochs"}):
            raise ResumeError(
                f"{self.out_dir / LAST_CHECKPOINT} was made with a different configuration; "
                "resume with the same options (only --epochs may change)"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.shuffle.set_state(checkpoint["shuffle"])
        self.noise.set_state(checkpoint["noise"])
        self.epoch = checkpoint["epoch"]
        self.history = checkpoint["history"]
        self.best_validation_elbo = checkpoint["best_validation_elbo"]
        self.epochs_since_best = checkpoint["epochs_since_best"]

    def objective(self, batch: torch.Tensor, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) what training maximises, with the KL weighted for the warm-up, and (B,) the bound it
        stands for at full weight: the ELBO, or the importance-weighted bound."""
        samples = self.config.importance_samples
        if samples == 1:
            terms = self.model.elbo(batch, self.noise)
            return terms.reconstruction - kl_weight * terms.kl, terms.elbo
        weighted = self.model.importance_terms(batch, samples, self.noise)
        return weighted.bound(kl_weight), weighted.bound()

    def train_epoch(self) -> float:
        self.model.train()
        train = self.splits.train
        order = torch.randperm(len(train), generator=self.shuffle)
        total = 0.0
        bar = tqdm(order.split(self.config.batch_size), desc=f"epoch {self.epoch + 1}", unit="batch", leave=False)
        for step, indices in enumerate(bar, start=self.epoch * self.steps_per_epoch):
            objective, bound = self.objective(train[indices], self.kl_weight(step))
            loss = -objective.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += bound.detach().sum().item()
            bar.set_postfix(elbo=f"{-loss.item():.2f}", refresh=False)  # the objective, as the summary shows it
        return total / len(train)

    def run(self) -> list[dict]:
        """Train until the epoch budget or early stopping; best weights land in best.pt."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        while self.epoch < self.config.epochs and self.epochs_since_best < self.config.patience:
            started = time.perf_counter()
            train_elbo = self.train_epoch()
            seconds = time.perf_counter() - started
            validation = mean_elbo(self.model, self.splits.validation, seed=self.config.seed)
            self.epoch += 1
            self.history.append(
                {
                    "epoch": self.epoch,
                    "train_elbo": train_elbo,
                    "seconds": seconds,
                    "learning_rate": self.scheduler.get_last_lr()[0],
                    **{f"validation_{name}": value for name, value in validation.items()},
                }
            )
            if validation["elbo"] > self.best_validation_elbo:
                self.best_validation_elbo, self.epochs_since_best = validation["elbo"], 0
                _save_atomically(self.model.state_dict(), self.out_dir / BEST_WEIGHTS)
            else:
                self.epochs_since_best += 1
            _save_atomically(self.state(), self.out_dir / LAST_CHECKPOINT)
            self._write_metrics()
            tqdm.write(
                f"epoch {self.epoch}: train ELBO {train_elbo:.2f}, validation ELBO {validation['elbo']:.2f} "
                f"({seconds:.1f} s)"
            )
        return self.history

    def _write_metrics(self) -> None:
        # Rewritten whole from the checkpointed history, so a resumed run never duplicates lines.
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        partial = self.out_dir / f"{METRICS_FILE}.part"
        partial.write_text(lines)
        os.replace(partial, self.out_dir / METRICS_FILE)


def load_best_model(config: TrainConfig) -> VAE:
    model = VAE(config.vae)
    model.load_state_dict(torch.load(config.out_dir / BEST_WEIGHTS, weights_only=True))
    return model.eval()
