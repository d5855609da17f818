"""Shared fixtures: a clean environment for every test; real servers started once per session."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from infra.stack.moto import Moto, start_moto
from infra.stack.processes import REPO, reserve_ports_in, setting_names
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer import logs
from tests.shared import exclusive, run_dir, worker
from tests.terraform.tf import TIMINGS

# Bounded for `make test`; `make reliability` runs the long profile (HYPOTHESIS_PROFILE).
settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile(
    "reliability",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SETTING_NAMES = sorted(setting_names())

# The modules that take longest, most of it in module fixtures (a Terraform apply and destroy,
# the two packages built and installed): when xdist distributes whole files (`make test`), these
# go first so that none of them starts last and runs alone. The Lambda package's module comes
# second: its worker builds the zip while the first one's Terraform init and validate run.
FIRST = (
    "tests/terraform/test_aws.py",
    "tests/e2e/test_lambda_package.py",
    "tests/e2e/test_cloud_functions_package.py",
    "tests/integration/test_fault_matrix.py",
    "tests/e2e/test_secrets.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if worker() is None:
        return  # one process: the order stays the files' own
    rank = {path: index for index, path in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(FIRST)))


@pytest.hookimpl(optionalhook=True)  # an xdist hook: a worker is done
def pytest_testnodedown(node: Any, error: object) -> None:
    TIMINGS.update(getattr(node, "workeroutput", {}).get("terraform_timings", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in TIMINGS.items())
        terminalreporter.write_line(f"terraform timings: {steps}")


@pytest.fixture(scope="session", autouse=True)
def unique_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No two workers of a run are handed the same free port."""
    reserve_ports_in(run_dir(tmp_path_factory) / "ports")
    yield
    reserve_ports_in(None)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees machine variables that share a name with a setting (e.g. CONTAINER_NAME)."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    saved = dict(os.environ)
    logger = logging.getLogger("pod_rebalancer")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    os.environ.clear()
    os.environ.update(saved)
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate
    logs.embed_metrics(None)  # a Lambda entry point turned the embedded metrics on


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def victoria(session_dir: Path) -> Iterator[VictoriaMetrics]:
    """A real VictoriaMetrics on a free loopback port for the session; each test owns its series."""
    vm = VictoriaMetrics(session_dir)
    try:
        yield vm
    finally:
        vm.stop()


@pytest.fixture(scope="session")
def moto(session_dir: Path) -> Iterator[Moto]:
    """A real moto_server on a free loopback port for the session; tests use names of their own."""
    server = start_moto(session_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lambda zip, built by `make package-lambda`'s command once per run: the first worker
    that needs it builds it, any other waits for that build and takes the same file."""
    shared = run_dir(tmp_path_factory)
    out = shared / "lambda.zip"
    with exclusive(shared / "lambda.zip.lock"):
        if out.exists():
            print(f"{out}: built by another worker")
            return out
        building = shared / f"lambda-{worker() or 'main'}.zip"  # renamed once it passed
        done = subprocess.run(
            [
                sys.executable,
                str(REPO / "infra/scripts/package.py"),
                "--kind",
                "lambda",
                str(building),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        print(done.stdout.strip())
        building.replace(out)
    return out
