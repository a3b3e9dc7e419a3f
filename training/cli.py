"""`vae-train`: the command line of the training package.

torch and the pipeline are imported inside the commands, so that `vae-train --help` answers at once.
"""

import sys
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, CliApp, CliSubCommand

from contract.description import DESCRIPTION_FILE
from contract.validation import Location, first_error
from training.config import LAST_CHECKPOINT, TrainConfig
from training.data import download_mnist, meant_for, missing_files
from training.errors import DataError, RefusedError, TrainingError


def _ensure_data(data_dir: Path, download: bool) -> None:
    missing = missing_files(data_dir)
    if not missing:
        return
    if meant_for(data_dir) != "mnist":
        raise DataError(
            f"{data_dir}: missing {', '.join(missing)} of Fashion-MNIST (--download fetches MNIST only); "
            "copy the four Fashion-MNIST IDX files there, or apt-get install dataset-fashion-mnist and pass "
            "--data-dir /usr/share/datasets/fashion-mnist"
        )
    if not download and sys.stdin.isatty():
        answer = input(f"{data_dir} lacks {', '.join(missing)}. Download the standard MNIST files there? [y/N] ")
        download = answer.strip().lower() in {"y", "yes"}
    if not download:
        raise DataError(f"{data_dir}: missing {', '.join(missing)} (pass --download to fetch MNIST)")
    download_mnist(data_dir, missing)


def _refuse_to_replace_model(export_dir: Path, overwrite: bool) -> None:
    if (export_dir / DESCRIPTION_FILE).exists() and not overwrite:
        raise RefusedError(
            f"{export_dir} already holds a model; pass --overwrite to replace it, or choose --export-dir"
        )


def _print_summary(description, export_dir: Path) -> None:
    metrics = description.metrics
    print(f"exported {description.id} to {export_dir}")
    print(f"  ELBO per test image: {metrics['elbo']['elbo']:.2f} nats (higher is better)")
    print(f"  Bernoulli test loss (PyTorch's example's figure): {metrics['bernoulli_test_loss']:.2f}")
    iw = metrics["importance_weighted_log_likelihood"]
    print(f"  importance-weighted log-likelihood: {iw['value']:.2f} ({iw['samples']} samples, {iw['images']})")
    print(f"  the same under a Bernoulli likelihood, as published figures are: {iw['bernoulli']:.2f}")
    print(f"  5-NN accuracy of test mu: {metrics['knn5_accuracy']:.3f}")


class Train(TrainConfig):
    """Train a VAE on a folder of MNIST-format IDX files, then evaluate, draw and export it."""

    export_dir: Path | None = Field(None, description="Where the model folder goes (default: OUT_DIR/model).")
    resume: bool = Field(False, description="Continue from OUT_DIR/last.pt.")
    overwrite: bool = Field(False, description="Start again in an OUT_DIR that holds a run, replacing it.")
    download: bool = Field(False, description="Download the standard MNIST files if DATA_DIR lacks them.")

    def cli_cmd(self) -> None:
        config = TrainConfig.model_validate(self.model_dump(exclude={"export_dir", "resume", "overwrite", "download"}))
        export_dir = self.export_dir or config.out_dir / "model"
        if (config.out_dir / LAST_CHECKPOINT).exists() and not (self.resume or self.overwrite):
            raise RefusedError(
                f"{config.out_dir} already holds a run; pass --resume to continue it, --overwrite to start again, "
                "or choose another --out-dir"
            )
        _refuse_to_replace_model(export_dir, self.overwrite)
        _ensure_data(config.data_dir, self.download)

        from training.data import load_dataset
        from training.pipeline import publish
        from training.train import Trainer, split_training_set

        dataset = load_dataset(config.data_dir)
        trainer = Trainer(config, split_training_set(dataset, config))
        for note in trainer.notes:
            print(f"note: {note}")
        if self.resume:
            trainer.resume()
        try:
            history = trainer.run()
        except KeyboardInterrupt:
            sys.exit(
                f"\ninterrupted: {config.out_dir / LAST_CHECKPOINT} holds the last finished epoch; "
                "rerun with --resume to continue"
            )
        _print_summary(publish(config, dataset, history, export_dir), export_dir)


class Export(BaseModel):
    """Evaluate, draw and export the best weights of an earlier (or interrupted) run."""

    out_dir: Path = Field(description="The run folder holding last.pt and best.pt.")
    export_dir: Path | None = Field(None, description="Where the model folder goes (default: OUT_DIR/model).")
    overwrite: bool = Field(False, description="Replace the model folder if EXPORT_DIR holds one.")
    triton_dir: Path | None = Field(
        None, description="Also write a Triton model repository here (tensors only: no picture recipe)."
    )

    def cli_cmd(self) -> None:
        export_dir = self.export_dir or self.out_dir / "model"
        _refuse_to_replace_model(export_dir, self.overwrite)
        if not (self.out_dir / LAST_CHECKPOINT).exists():
            raise RefusedError(f"{self.out_dir / LAST_CHECKPOINT}: missing (is --out-dir a run folder?)")

        import torch

        from training.data import load_dataset
        from training.pipeline import publish

        checkpoint = torch.load(self.out_dir / LAST_CHECKPOINT, weights_only=False)
        config = TrainConfig.model_validate(checkpoint["config"]).model_copy(update={"out_dir": self.out_dir})
        description = publish(config, load_dataset(config.data_dir), checkpoint["history"], export_dir)
        _print_summary(description, export_dir)
        if self.triton_dir is not None:
            from training.triton import write_triton_repository

            for folder in write_triton_repository(export_dir, self.triton_dir):
                print(f"wrote the Triton model {folder}")


class VaeTrain(BaseSettings, cli_prog_name="vae-train", cli_kebab_case=True, cli_implicit_flags=True):
    """Train and export the VAE."""

    train: CliSubCommand[Train]
    export: CliSubCommand[Export]

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


def _option(location: Location) -> str:
    subcommands = VaeTrain.model_fields
    parts = [str(part).replace("_", "-") for part in location if part not in subcommands]
    return "--" + ".".join(parts) if parts else ""  # a check of several options names them itself


def main(argv: list[str] | None = None) -> None:
    try:
        CliApp.run(VaeTrain, cli_args=sys.argv[1:] if argv is None else argv)
    except ValidationError as error:
        sys.exit(f"vae-train: {first_error(error, _option)}")
    except (TrainingError, FileNotFoundError) as error:
        sys.exit(f"vae-train: {error}")
