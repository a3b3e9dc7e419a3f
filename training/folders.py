"""A model folder is replaced whole: the new one is written beside it, checked, flushed to disk and
swapped in, so that a crash, a kill or a full disk at any point leaves either the previous model,
untouched, or the new one, complete; never a folder whose files disagree (which vae-serve refuses)."""

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from training.errors import ExportError


def _beside(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}"


def recover(target: Path) -> None:
    """Finishes a swap that a crash cut short between its two renames, or clears what it left."""
    old = _beside(target, "old")
    if old.exists():
        if target.exists():
            shutil.rmtree(old)
        else:
            old.rename(target)
    shutil.rmtree(_beside(target, "new"), ignore_errors=True)


def _synced(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders that hold them
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextmanager
def replaced_whole(target: Path, check: Callable[[Path], None]) -> Iterator[Path]:
    """A fresh folder beside target to write the new model into; once the block ends and check
    passes on it, it takes target's place. If anything fails first, target is as it was."""
    recover(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = _beside(target, "new")
    new.mkdir()
    try:
        yield new
        check(new)
        _synced(new)
    except OSError as error:
        shutil.rmtree(new, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            message = f"{target}: no space left on the device for the new model; the folder is as it was"
            raise ExportError(message) from None
        raise
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = _beside(target, "old")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
