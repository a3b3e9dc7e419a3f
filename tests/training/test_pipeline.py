"""One short run on the sample digits, end to end: train, resume, evaluate, export, parity."""

import itertools
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from training import train as train_module
from training.cli import main
from training.config import TrainConfig
from training.data import load_dataset
from training.export import DESCRIPTION_FILE
from training.train import BEST_WEIGHTS, LAST_CHECKPOINT, METRICS_FILE, Trainer, split_training_set


def run_cli(*args: str) -> None:
    main(["train", *args])


@pytest.fixture
def exported(trained_run):
    return trained_run


def test_export_writes_a_complete_model_folder(exported):
    model_dir = exported / "model"
    description = json.loads((model_dir / DESCRIPTION_FILE).read_text())
    assert description["latent_size"] == 2
    assert description["training"]["epochs"] == 2
    assert set(description["data_sha256"]) == {
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }
    metrics = description["metrics"]
    assert metrics["elbo"]["elbo"] == pytest.approx(metrics["elbo"]["reconstruction"] - metrics["elbo"]["kl"])
    iw = metrics["importance_weighted_log_likelihood"]
    assert iw["value"] > metrics["elbo"]["elbo"]
    # a probability of the pixels (below 0 nats), tighter than the one-draw Bernoulli loss's ELBO
    assert -metrics["bernoulli_test_loss"] < iw["bernoulli"] < 0
    assert 0 <= metrics["knn5_accuracy"] <= 1
    assert max(description["parity_max_abs_difference"].values()) <= 1e-5
    for part in ("encoder", "decoder"):
        proto = onnx.load(model_dir / description[part]["file"])
        onnx.checker.check_model(proto)
        embedded = json.loads({p.key: p.value for p in proto.metadata_props}["model_json"])
        assert embedded["training"] == description["training"] and embedded["classes"] == description["classes"]
        assert "metrics" not in embedded and "created" not in embedded  # nothing that changes between exports
    figures = {path.name for path in (model_dir / "figures").iterdir()}
    assert figures == {"latent.png", "manifold.png", "reconstructions.png", "samples.png", "training.png"}
    assert len((exported / METRICS_FILE).read_text().splitlines()) == 2


def test_onnx_contract(exported):
    encoder = onnxruntime.InferenceSession(exported / "model" / "encoder.onnx")
    decoder = onnxruntime.InferenceSession(exported / "model" / "decoder.onnx")
    for batch in (1, 7):
        mu, sigma = encoder.run(None, {"image": np.random.rand(batch, 1, 28, 28).astype(np.float32)})
        assert mu.shape == sigma.shape == (batch, 2) and (sigma > 0).all()
        (image,) = decoder.run(None, {"z": mu})
        assert image.shape == (batch, 1, 28, 28) and image.min() >= 0 and image.max() <= 1


def _config(tmp_path, sample_data_dir, epochs: int, **options) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "data_dir": sample_data_dir,
            "out_dir": tmp_path,
            "epochs": epochs,
            "vae": {"hidden_sizes": [32]},
            "batch_size": 64,
            "validation_size": 100,
            **options,
        }
    )


def test_same_seed_same_weights(tmp_path, sample_data_dir):
    weights = []
    for run in ("a", "b"):
        config = _config(tmp_path / run, sample_data_dir, epochs=2)
        Trainer(config, split_training_set(load_dataset(sample_data_dir), config)).run()
        weights.append(torch.load(tmp_path / run / BEST_WEIGHTS))
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, sample_data_dir, monkeypatch):
    dataset = load_dataset(sample_data_dir)
    straight = _config(tmp_path / "straight", sample_data_dir, epochs=3)
    Trainer(straight, split_training_set(dataset, straight)).run()

    interrupted = _config(tmp_path / "interrupted", sample_data_dir, epochs=3)
    original = Trainer.train_epoch

    def interrupt_in_epoch_2(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(train_module.Trainer, "train_epoch", interrupt_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, split_training_set(dataset, interrupted)).run()
    assert torch.load(tmp_path / "interrupted" / LAST_CHECKPOINT, weights_only=False)["epoch"] == 1

    monkeypatch.setattr(train_module.Trainer, "train_epoch", original)
    resumed = Trainer(interrupted, split_training_set(dataset, interrupted))
    resumed.resume()
    history = resumed.run()
    assert [row["epoch"] for row in history] == [1, 2, 3]
    final = [
        torch.load(tmp_path / run / LAST_CHECKPOINT, weights_only=False)["model"] for run in ("straight", "interrupted")
    ]
    for name, tensor in final[0].items():
        assert torch.equal(tensor, final[1][name]), name


def test_cli_reports_bad_options_in_one_line(tmp_path, sample_data_dir):
    with pytest.raises(SystemExit, match="vae.likelihood"):
        run_cli("--data-dir", str(sample_data_dir), "--vae.likelihood", "poisson")


def test_cli_names_missing_data(tmp_path):
    with pytest.raises(SystemExit, match="missing .*pass --download"):
        run_cli("--data-dir", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "out"))


def test_export_command_republishes_a_run(trained_run, tmp_path, capfd):
    main(["export", "--out-dir", str(trained_run), "--export-dir", str(tmp_path / "again")])
    printed = capfd.readouterr()
    assert "torch.onnx" not in printed.out + printed.err and "Warning" not in printed.err  # no exporter chatter
    assert "5-NN accuracy of test mu" in printed.out  # the summary ends the command
    again = json.loads((tmp_path / "again" / DESCRIPTION_FILE).read_text())
    first = json.loads((trained_run / "model" / DESCRIPTION_FILE).read_text())
    assert again["training"] == first["training"]
    assert again["metrics"]["knn5_accuracy"] == first["metrics"]["knn5_accuracy"]
    # A model's id is its content: the same weights give the same id and the same bytes.
    assert again["id"] == first["id"]
    for name in ("encoder.onnx", "decoder.onnx"):
        assert (tmp_path / "again" / name).read_bytes() == (trained_run / "model" / name).read_bytes()


def test_export_never_replaces_a_model_folder_unasked(trained_run, tmp_path):
    with pytest.raises(SystemExit, match="already holds a model; pass --overwrite"):
        main(["export", "--out-dir", str(trained_run)])
    target = tmp_path / "m"
    main(["export", "--out-dir", str(trained_run), "--export-dir", str(target)])
    main(["export", "--out-dir", str(trained_run), "--export-dir", str(target), "--overwrite"])


def test_training_never_replaces_a_run_unasked(trained_run, sample_data_dir):
    before = (trained_run / LAST_CHECKPOINT).read_bytes()
    with pytest.raises(SystemExit, match="already holds a run; pass --resume to continue it, --overwrite"):
        run_cli("--data-dir", str(sample_data_dir), "--out-dir", str(trained_run))
    assert (trained_run / LAST_CHECKPOINT).read_bytes() == before


def test_a_missing_option_is_one_line():
    with pytest.raises(SystemExit) as exited:
        main(["train"])
    assert str(exited.value.code) == "vae-train: --data-dir: Field required"


def test_help_answers_without_importing_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom training.cli import main\ntry: main(['--help'])\n"
        "except SystemExit: pass\nprint('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("False")


def test_a_short_run_shortens_its_warm_up_and_says_so(tmp_path, sample_data_dir):
    config = _config(tmp_path / "short", sample_data_dir, epochs=3)
    trainer = Trainer(config, split_training_set(load_dataset(sample_data_dir), config))
    assert trainer.warmup_epochs == 1 and "KL warm-up shortened from 10 to 1" in trainer.notes[0]
    assert trainer.kl_weight(trainer.steps_per_epoch) == 1.0  # full ELBO from the second epoch on


def test_the_kl_weight_rises_linearly_from_zero_and_is_exactly_one_from_the_end_of_the_warm_up(
    tmp_path, sample_data_dir
):
    config = _config(tmp_path / "warm", sample_data_dir, epochs=9, kl_warmup_epochs=3)
    trainer = Trainer(config, split_training_set(load_dataset(sample_data_dir), config))
    warmup_steps = 3 * trainer.steps_per_epoch
    weights = [trainer.kl_weight(step) for step in range(config.epochs * trainer.steps_per_epoch)]
    assert weights[0] == 0.0
    assert weights[warmup_steps // 2] == pytest.approx((warmup_steps // 2) / warmup_steps, abs=1e-12)
    assert all(later > earlier for earlier, later in itertools.pairwise(weights[:warmup_steps]))
    assert weights[warmup_steps - 1] < 1.0
    assert set(weights[warmup_steps:]) == {1.0}  # exactly the ELBO for the rest of the run, never above it


def test_without_a_warm_up_the_weight_is_one_from_the_first_step(tmp_path, sample_data_dir):
    config = _config(tmp_path / "cold", sample_data_dir, epochs=2, kl_warmup_epochs=0)
    trainer = Trainer(config, split_training_set(load_dataset(sample_data_dir), config))
    assert [trainer.kl_weight(step) for step in range(3)] == [1.0, 1.0, 1.0]


def test_training_on_the_importance_weighted_bound_trains_on_it(tmp_path, sample_data_dir):
    config = _config(tmp_path / "iw", sample_data_dir, epochs=3, kl_warmup_epochs=0, importance_samples=4)
    trainer = Trainer(config, split_training_set(load_dataset(sample_data_dir), config))
    batch = trainer.splits.train[:8]
    trainer.noise.manual_seed(5)
    objective, bound = trainer.objective(batch, kl_weight=0.5)
    expected = trainer.model.importance_terms(batch, 4, torch.Generator().manual_seed(5))
    torch.testing.assert_close(objective, expected.bound(0.5))
    torch.testing.assert_close(bound, expected.bound(1.0))
    history = trainer.run()
    assert history[-1]["validation_elbo"] > history[0]["validation_elbo"]


def test_evaluation_keeps_its_own_random_numbers(trained_run, sample_data_dir):
    from training.evaluate import bernoulli_test_loss, importance_weighted_log_likelihood, mean_elbo
    from training.train import as_pixels, load_best_model

    config = TrainConfig.model_validate(json.loads((trained_run / "model" / DESCRIPTION_FILE).read_text())["training"])
    model = load_best_model(config.model_copy(update={"out_dir": trained_run}))
    pixels = as_pixels(load_dataset(sample_data_dir).test.images[:20])
    state = torch.get_rng_state()
    first = mean_elbo(model, pixels, seed=0)
    bernoulli_test_loss(model, pixels, seed=0)
    importance_weighted_log_likelihood(model, pixels, samples=5, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert mean_elbo(model, pixels, seed=0) == first  # and the same seed gives the same figures


def test_figures_use_no_pyplot_state():
    import subprocess
    import sys

    code = "import sys, training.plots\nprint('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_the_latent_figure_names_the_classes(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from training import plots

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, *args, **kwargs: drawn.append(figure))
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    plots.latent_scatter(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10, classes, tmp_path / "x.png")
    colour_bar = drawn[0].axes[1]
    assert [label.get_text() for label in colour_bar.get_yticklabels()] == classes
