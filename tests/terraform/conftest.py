"""Fixtures for the Terraform tests: the terraform CLI (providers from the local mirror only), a
copy of terraform/ to run in, and the timings of every timed step for the run's summary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.terraform.tf import (
    TIMINGS,
    Terraform,
    copy_tree,
    find_provider_mirror,
    terraform_env,
    write_cli_config,
)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In an xdist worker: hand the timings to the controller, which prints the summary."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None and TIMINGS:
        output["terraform_timings"] = dict(TIMINGS)


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    binary = shutil.which("terraform")
    assert binary, "terraform is not on PATH"
    return binary


@pytest.fixture(scope="session")
def tf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tf-home")


@pytest.fixture(scope="session")
def offline_env(tf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """For provider-less roots: the mirror is an empty folder, so any provider install fails."""
    empty = tmp_path_factory.mktemp("no-providers")
    return terraform_env(write_cli_config(tf_home / "offline.tfrc", empty), tf_home)


@pytest.fixture(scope="session")
def mirror_env(tf_home: Path) -> dict[str, str]:
    """Providers from the machine's filesystem mirror, found at run time."""
    config = write_cli_config(tf_home / "mirror.tfrc", find_provider_mirror())
    return terraform_env(config, tf_home)


@pytest.fixture
def evaluator(terraform_bin: str, offline_env: dict[str, str], tmp_path: Path) -> Terraform:
    """A fresh root directory for evaluating a provider-less module."""
    return Terraform(terraform_bin, tmp_path / "root", offline_env)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of terraform/ for this test module's runs."""
    return copy_tree(tmp_path_factory.mktemp("tf"))
