"""The serving core from a plain script, as the README shows it: no web framework imported, and each
picture encoded as the model encodes the dataset's own pixels."""

import ast
import os
import re
import subprocess
import sys

import numpy as np
import onnxruntime

from harness.bodies import png
from tests.conftest import BUNDLED_MODEL, REPO, SAMPLE_DATA
from tests.service.test_upright import as_the_bundled_model_sees
from training.data import load_dataset

WEB = ("fastapi", "starlette", "uvicorn", "httpx")


def readme_example() -> str:
    section = re.search(r"### Without a server.*?```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert section, "the README's 'Without a server' section has a python block"
    return section.group(1)


def test_the_readmes_script_encodes_a_folder_without_a_web_framework(tmp_path):
    digits = load_dataset(SAMPLE_DATA).test.images[:70]  # more than one model batch
    folder = tmp_path / "digits"
    folder.mkdir()
    for index, digit in enumerate(digits):
        (folder / f"{index:03}.png").write_bytes(png(digit))
    (folder / "050-cut.png").write_bytes(png(digits[0])[:40])  # a download cut short

    script = readme_example() + f"import sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {WEB}))\n"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VAE_")}
    environment["PYTHONPATH"] = str(REPO)
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    *lines, imported = run.stdout.splitlines()
    assert imported == "[]"

    printed = dict(line.split(" ", 1) for line in lines)
    cut = printed.pop("050-cut.png")
    assert not cut.startswith("(") and cut, "a cut file is named with the pipeline's message"
    encoder = onnxruntime.InferenceSession(str(BUNDLED_MODEL / "encoder.onnx"))
    expected_mu, _ = encoder.run(None, {"image": as_the_bundled_model_sees((digits / np.float32(255))[:, None])})
    assert sorted(printed) == [f"{index:03}.png" for index in range(len(digits))]
    for index, mu in enumerate(expected_mu):
        got_mu, percentile = ast.literal_eval(printed[f"{index:03}.png"])
        np.testing.assert_allclose(got_mu, mu, rtol=1e-5, atol=1e-5)
        assert 0 <= percentile <= 100
