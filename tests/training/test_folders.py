"""An interrupted export loses nothing: the model folder is replaced whole or not at all."""

import errno
import shutil
import signal
import subprocess
import sys
import time

import pytest

from service.core.verified import VerifiedModel
from tests.conftest import BUNDLED_MODEL
from training import folders
from training.errors import ExportError
from training.export import check_folder


def _export(run, target) -> subprocess.Popen:
    command = [sys.executable, "-m", "training", "export", "--out-dir", str(run), "--export-dir", str(target)]
    return subprocess.Popen([*command, "--overwrite"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_an_export_killed_at_any_point_leaves_a_folder_that_serves(trained_run, tmp_path):
    target = tmp_path / "current"
    shutil.copytree(BUNDLED_MODEL, target)  # a served model, retrained into its own folder
    before = VerifiedModel.load(target, threads=1).id
    started = time.monotonic()
    assert _export(trained_run, target).wait(120) == 0
    whole = time.monotonic() - started
    after = VerifiedModel.load(target, threads=1).id
    assert after != before
    seen = set()
    for fraction in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        shutil.rmtree(target)
        shutil.copytree(BUNDLED_MODEL, target)
        export = _export(trained_run, target)
        time.sleep(whole * fraction)
        export.send_signal(signal.SIGKILL)
        export.wait()
        folders.recover(target)  # what the next export does first
        seen.add(VerifiedModel.load(target, threads=1).id)  # verifies every file against model.json
        assert not any(path.name.startswith(".current.") for path in tmp_path.iterdir())
    assert seen <= {before, after}


def test_a_full_disk_is_one_line_naming_the_folder_and_keeps_the_model(tmp_path):
    target = tmp_path / "current"
    shutil.copytree(BUNDLED_MODEL, target)
    files = sorted(path.name for path in target.iterdir())
    with pytest.raises(ExportError, match=f"^{target}: no space left on the device") as refused:
        with folders.replaced_whole(target, check_folder) as new:
            (new / "encoder.onnx").write_bytes(b"half of a grap")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert "\n" not in str(refused.value)
    assert sorted(path.name for path in target.iterdir()) == files
    VerifiedModel.load(target, threads=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["current"]


def test_a_folder_that_fails_its_check_is_not_swapped_in(tmp_path):
    target = tmp_path / "current"
    shutil.copytree(BUNDLED_MODEL, target)
    with pytest.raises(ExportError, match="sha256 differs"):
        with folders.replaced_whole(target, check_folder) as new:
            shutil.copytree(BUNDLED_MODEL, new, dirs_exist_ok=True)
            (new / "decoder.onnx").write_bytes(b"changed after model.json was written")
    VerifiedModel.load(target, threads=1)
