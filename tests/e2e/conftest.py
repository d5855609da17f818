"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def workdir(session_dir: Path, request: pytest.FixtureRequest) -> Path:
    """A directory per test module (named after its NAMESPACE) for its servers' files and logs."""
    path = session_dir / str(request.module.NAMESPACE)
    path.mkdir(exist_ok=True)
    return path
