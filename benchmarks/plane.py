"""What gives the best K=2 plane: each training choice of the bundled MNIST model varied alone,
trained in full and measured on the held-out validation split (never the test set, which the
chosen model's card keeps for its own figures).

    python -m benchmarks.plane [--only NAME ...] [--data-dir ../shared/data/mnist]

Each variant trains in runs/plane/NAME (a finished run is measured again, not retrained; an
interrupted one resumes) and prints one row: 5-NN accuracy of validation mu (fit on the training
split's mu), the Bernoulli loss of PyTorch's example, the importance-weighted log-likelihood
(k = 1000, the first 2,000 validation images) under the literature's Bernoulli likelihood and under
the model's own, the gaussian ELBO, epochs and training time.
"""

import argparse
import json
import time
from pathlib import Path

from training.config import TrainConfig
from training.data import load_dataset
from training.evaluate import (
    bernoulli_test_loss,
    importance_weighted_log_likelihood,
    knn_accuracy,
    mean_elbo,
    posterior_means,
)
from training.train import Trainer, load_best_model, split_training_set

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "mnist" / "model.json"

# name -> what changes from the bundled model's training configuration
VARIANTS: dict[str, dict] = {
    "without deskewing": {},
    "200 epochs": {"epochs": 200, "patience": 30},
    "wider 1024-512": {"vae": {"hidden_sizes": [1024, 512]}},
    "batch 64": {"batch_size": 64},
    "warm-up 30 of 200 epochs": {"epochs": 200, "patience": 30, "kl_warmup_epochs": 30},
    "sigma^2 0.02, 200 epochs": {"epochs": 200, "patience": 30, "vae": {"gaussian_variance": 0.02}},
    "no printed digits": {"typeset_fonts": []},
    "conv": {"vae": {"architecture": "conv"}},
    "importance-weighted bound, k=5": {"importance_samples": 5},
    "constant learning rate 1e-3": {"learning_rate": 1e-3, "min_learning_rate": 1e-3},
    "deeper 784-512-512-256": {"vae": {"hidden_sizes": [512, 512, 256]}},
    "deskewed": {"deskew": True},
}


def configured(name: str, data_dir: Path) -> TrainConfig:
    # every variant starts from the bundled command on the digits as they come, deskew being one of the choices
    base = json.loads(BUNDLED.read_text())["training"] | {"deskew": False}
    change = VARIANTS[name]
    merged = base | change | {"vae": base["vae"] | change.get("vae", {})}
    folder = ROOT / "runs" / "plane" / name.replace(" ", "-").replace("^", "").replace(",", "").replace("=", "")
    return TrainConfig.model_validate(merged | {"data_dir": data_dir, "out_dir": folder})


def measured(name: str, data_dir: Path) -> dict:
    config = configured(name, data_dir)
    splits = split_training_set(load_dataset(config.data_dir), config)
    trainer = Trainer(config, splits)
    if (config.out_dir / "last.pt").exists():
        trainer.resume()
    history = trainer.run()
    model = load_best_model(config)
    started = time.perf_counter()
    validation, seed = splits.validation, config.seed
    figures = {
        "variant": name,
        "knn5_accuracy": knn_accuracy(
            posterior_means(model, splits.train),
            splits.train_labels,
            posterior_means(model, validation),
            splits.validation_labels,
        ),
        "bernoulli_loss": bernoulli_test_loss(model, validation, seed),
        "elbo": mean_elbo(model, validation, seed)["elbo"],
        "iw_log_likelihood": importance_weighted_log_likelihood(
            model, validation[: config.iw_images], config.iw_samples, seed
        ),
        "iw_bernoulli_log_likelihood": importance_weighted_log_likelihood(
            model, validation[: config.iw_images], config.iw_samples, seed, bernoulli=True
        ),
        "epochs": len(history),
        "best_epoch": max(history, key=lambda row: row["validation_elbo"])["epoch"],
        "training_seconds": round(sum(row["seconds"] for row in history)),
        "evaluation_seconds": round(time.perf_counter() - started),
    }
    (config.out_dir / "validation.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    options = parser.parse_args()
    print(
        "| variant | 5-NN (validation) | Bernoulli loss | IW log-likelihood, k=1000: Bernoulli | gaussian "
        "| gaussian ELBO | epochs (best) | training |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in options.only:
        row = measured(name, options.data_dir)
        print(
            f"| {name} | {row['knn5_accuracy']:.3f} | {row['bernoulli_loss']:.2f} | "
            f"{row['iw_bernoulli_log_likelihood']:.2f} | {row['iw_log_likelihood']:.2f} | {row['elbo']:.2f} | "
            f"{row['epochs']} ({row['best_epoch']}) | {row['training_seconds']} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
