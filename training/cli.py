"""`vae-train`: the command line of the training package."""

import sys
from pathlib import Path

import torch
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, CliApp, CliSubCommand

from training.config import TrainConfig
from training.data import DataError, download_mnist, load_dataset, missing_files
from training.export import ExportError
from training.pipeline import publish
from training.train import LAST_CHECKPOINT, ResumeError, Trainer, split_training_set


def _ensure_data(data_dir: Path, download: bool) -> None:
    missing = missing_files(data_dir)
    if not missing:
        return
    if not download and sys.stdin.isatty():
        answer = input(f"{data_dir} lacks {', '.join(missing)}. Download the standard MNIST files there? [y/N] ")
        download = answer.strip().lower() in {"y", "yes"}
    if not download:
        raise DataError(f"{data_dir}: missing {', '.join(missing)} (pass --download to fetch MNIST)")
    download_mnist(data_dir, missing)


class Train(TrainConfig):
    """Train a VAE on a folder of MNIST-format IDX files, then evaluate, draw and export it."""

    export_dir: Path | None = Field(None, description="Where the model folder goes (default: OUT_DIR/model).")
    resume: bool = Field(False, description="Continue from OUT_DIR/last.pt.")
    download: bool = Field(False, description="Download the standard MNIST files if DATA_DIR lacks them.")

    def cli_cmd(self) -> None:
        config = TrainConfig.model_validate(self.model_dump(exclude={"export_dir", "resume", "download"}))
        _ensure_data(config.data_dir, self.download)
        dataset = load_dataset(config.data_dir)
        trainer = Trainer(config, split_training_set(dataset, config))
        if self.resume:
            trainer.resume()
        try:
            history = trainer.run()
        except KeyboardInterrupt:
            sys.exit(
                f"\ninterrupted: {config.out_dir / LAST_CHECKPOINT} holds the last finished epoch; "
                "rerun with --resume to continue"
            )
        description = publish(config, dataset, history, self.export_dir or config.out_dir / "model")
        print(f"exported {description['id']} to {self.export_dir or config.out_dir / 'model'}")


class Export(BaseModel):
    """Evaluate, draw and export the best weights of an earlier (or interrupted) run."""

    out_dir: Path = Field(description="The run folder holding last.pt and best.pt.")
    export_dir: Path | None = Field(None, description="Where the model folder goes (default: OUT_DIR/model).")

    def cli_cmd(self) -> None:
        checkpoint = torch.load(self.out_dir / LAST_CHECKPOINT, weights_only=False)
        config = TrainConfig.model_validate(checkpoint["config"]).model_copy(update={"out_dir": self.out_dir})
        description = publish(
            config, load_dataset(config.data_dir), checkpoint["history"], self.export_dir or self.out_dir / "model"
        )
        print(f"exported {description['id']}")


class VaeTrain(BaseSettings, cli_prog_name="vae-train", cli_kebab_case=True, cli_implicit_flags=True):
    """Train and export the VAE."""

    train: CliSubCommand[Train]
    export: CliSubCommand[Export]

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


def main(argv: list[str] | None = None) -> None:
    try:
        CliApp.run(VaeTrain, cli_args=sys.argv[1:] if argv is None else argv)
    except ValidationError as error:
        sys.exit(f"vae-train: invalid option: {error}")
    except (DataError, ResumeError, ExportError, FileNotFoundError) as error:
        sys.exit(f"vae-train: {error}")
