"""The typed configuration of a model and of a training run: the one place sizes live."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contract.geometry import SIDE
from contract.recipes import RECIPES, Recipe
from training.networks import KINDS

Likelihood = Literal["bernoulli", "gaussian"]
Architecture = Literal[KINDS]  # one module of training/networks each

# Names of the files a run folder holds; here, so that the command line needs no torch to name them.
LAST_CHECKPOINT = "last.pt"
BEST_WEIGHTS = "best.pt"
METRICS_FILE = "metrics.jsonl"


class VAEConfig(BaseModel):
    """The model's shape and likelihood; stored in every checkpoint and in model.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latent_size: PositiveInt = Field(2, description="K, the dimension of z.")
    architecture: Architecture = Field(
        "mlp", description="The networks' kind: 'mlp' is the design's; 'conv' has convolutions before its last layer."
    )
    hidden_sizes: tuple[PositiveInt, ...] = Field(
        (512, 256),
        description="Hidden widths of the encoder; the decoder mirrors them ('conv' takes the last, after its "
        "convolutions).",
    )
    channels: tuple[PositiveInt, ...] = Field(
        (32, 64), description="'conv' only: the channels of its stride-2 convolutions, each halving the side."
    )
    likelihood: Likelihood = Field(
        "gaussian",
        description="P(X|z): 'gaussian' is N(f(z), sigma^2 I) as the design says; 'bernoulli' "
        "is the literature's choice, comparable with published numbers.",
    )
    gaussian_variance: PositiveFloat = Field(
        0.05, description="sigma^2 of the gaussian likelihood (ignored for bernoulli)."
    )

    @field_validator("channels")
    @classmethod
    def _halves_evenly(cls, channels: tuple[int, ...]) -> tuple[int, ...]:
        if SIDE % 2 ** len(channels):
            raise ValueError(f"{len(channels)} halvings do not divide the side of {SIDE} pixels; give at most 2")
        return channels


class TrainConfig(BaseModel):
    """Everything a training run depends on, so that a run can be rebuilt from its record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(description="Folder holding the four MNIST-format IDX files.")
    out_dir: Path = Field(Path("runs/mnist"), description="Folder for checkpoints, metrics, figures, ONNX.")
    vae: VAEConfig = VAEConfig()
    epochs: PositiveInt = Field(60, description="Upper bound on epochs; early stopping may end sooner.")
    batch_size: PositiveInt = 256
    learning_rate: PositiveFloat = 2e-3
    min_learning_rate: float = Field(1e-5, ge=0, description="End of the cosine learning-rate schedule.")
    kl_warmup_epochs: int = Field(10, ge=0, description="Epochs over which the KL weight rises linearly from 0 to 1.")
    importance_samples: PositiveInt = Field(
        1,
        description="Draws of z per image in the training objective: 1 trains the ELBO (its KL in closed form); "
        "k > 1 the importance-weighted bound of Burda et al. (2015), tighter, at k times the decoder's work.",
    )
    patience: PositiveInt = Field(10, description="Stop after this many epochs without a better validation ELBO.")
    validation_size: PositiveInt = Field(5000, description="Training images held out for model selection.")
    train_limit: PositiveInt | None = Field(None, description="Use only the first N training images (smoke runs).")
    test_limit: PositiveInt | None = Field(None, description="Use only the first N test images (smoke runs).")
    seed: int = 0
    typeset_fonts: tuple[Path, ...] = Field(
        (),
        description="Font files (TrueType or OpenType) whose digits join the training images, comma-separated: "
        "printed digits then land beside their handwritten kind (training.typeset).",
    )
    typeset_count: PositiveInt = Field(4500, description="How many printed digits join, when fonts are given.")
    outlier_letters: int = Field(
        0,
        ge=0,
        description="Printed letters, in the typeset fonts, that an outlier head learns to tell from the training "
        "images, lowering their novelty score (training.outliers); 0 trains no head.",
    )
    deskew: bool = Field(
        False,
        description="Train on digits sheared upright (contract.deskew), and have the service shear every input "
        "so: the plane need not spend a dimension on slant.",
    )
    iw_samples: PositiveInt = Field(1000, description="Importance samples per image for the log-likelihood estimate.")
    iw_images: PositiveInt = Field(2000, description="Test images (the first N) for the importance-weighted estimate.")
    recipe: Recipe | Literal["auto"] = Field(
        "auto",
        description="How the service frames uploads for this model: "
        + "; ".join(f"'{name}' ({framing.description})" for name, framing in RECIPES.items())
        + "; 'auto' chooses from the training images.",
    )
    threads: PositiveInt = Field(
        1,
        description="torch intra-op threads; 1 holds steady on a busy machine, where more can be slower "
        "(benchmarks.training measures it).",
    )

    @model_validator(mode="after")
    def _letters_need_fonts(self) -> "TrainConfig":
        if self.outlier_letters and not self.typeset_fonts:
            raise PydanticCustomError(
                "fonts_needed", "--outlier-letters sets letters in the typeset fonts: give --typeset-fonts too"
            )
        return self
