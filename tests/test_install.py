"""What the install asks pip for: torch's CPU build, never PyPI's CUDA build (about 2.7 GB)."""

import re
import subprocess
import tomllib

import pytest

from tests.conftest import REPO


def _planned_commands(tmp_path) -> list[str]:
    """The commands `make test` would run to set up a fresh environment (make -n runs none)."""
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "-n", "-C", str(REPO), f"VENV={venv}", f"{venv}/.dev"], capture_output=True, text=True, check=True
    )
    return result.stdout.replace("\\\n", " ").splitlines()


def test_torch_comes_from_the_cpu_index_before_anything_asks_for_it(tmp_path):
    commands = _planned_commands(tmp_path)
    pinned = re.search(r"torch==[0-9.]+", (REPO / "pyproject.toml").read_text()).group()
    torch_step = next(index for index, line in enumerate(commands) if f"'{pinned}'" in line)
    extras_step = next(index for index, line in enumerate(commands) if "-e '.[dev]'" in line)
    assert torch_step < extras_step
    # Offline (a local wheel folder) first, else PyTorch's CPU index alone: PyPI is never asked for torch.
    assert f"--no-index --no-deps '{pinned}'" in commands[torch_step]
    assert f"'{pinned}' --index-url https://download.pytorch.org/whl/cpu" in commands[torch_step]


def test_torch_is_pinned_exactly_so_that_the_installed_cpu_build_satisfies_the_extras():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (torch,) = [requirement for requirement in extras["train"] if requirement.startswith("torch")]
    assert re.fullmatch(
        r"torch==\d+\.\d+\.\d+", torch
    )  # == X.Y.Z admits X.Y.Z+cpu; a range would admit newer CUDA builds


def test_make_help_lists_every_target_with_what_it_does():
    makefile = (REPO / "Makefile").read_text()
    targets = re.search(r"^\.PHONY: (.*)$", makefile, re.MULTILINE).group(1).split()
    help_command = ["make", "-s", "--no-print-directory", "-C", str(REPO), "help"]  # quiet inside another make too
    shown = subprocess.run(help_command, capture_output=True, text=True, check=True).stdout
    described = dict(line.split(None, 1) for line in shown.splitlines())
    assert set(described) == set(targets)
    assert all(len(description) > 10 for description in described.values())


def test_the_commands_help_gives_each_option_its_meaning_and_default(capsys):
    from service.cli import OPTIONS
    from service.cli import main as serve

    with pytest.raises(SystemExit):
        serve(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in OPTIONS:
        option = "--" + name.replace("_", "-")
        described = shown.split(f"{option} {name.upper()} ", 1)[1]
        assert not described.startswith("None") and "(default: " in described.split("--")[0], option
