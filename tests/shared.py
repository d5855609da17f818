"""What the processes of one test run share when pytest-xdist runs it in several workers: a
directory of the run, and a lock to build something in it once."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def worker() -> str | None:
    """This xdist worker's name (gw0, gw1, ...), or None when pytest does not distribute."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def run_dir(factory: pytest.TempPathFactory) -> Path:
    """A directory of this run that every worker sees: xdist makes each worker's base temporary
    directory a subdirectory of the controller's, which is new for every run."""
    base = factory.getbasetemp()
    return base.parent if worker() else base


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) across processes."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
