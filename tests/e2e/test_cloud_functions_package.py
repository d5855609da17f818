"""The Cloud Functions zip, built by `make package`, unpacked and installed as the platform does
(its requirements.txt into a fresh virtual environment), both entry points served from there by
that environment's functions-framework: a dry run over HTTP and one through a Pub/Sub CloudEvent."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import REPO, FunctionServer, wait_until
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.kube import deployment, kubeconfig, scenario

NAMESPACE = "e2e-gcf-package"
DEPLOYMENT = "consumer"
TOKEN = "gcf-package-token"


@pytest.fixture(scope="module")
def source(workdir: Path) -> Path:
    out = workdir / "function.zip"
    done = subprocess.run(
        [sys.executable, str(REPO / "infra/scripts/package.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    unpacked = workdir / "source"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(unpacked)
    return unpacked


@pytest.fixture(scope="module")
def framework(source: Path, workdir: Path) -> str:
    """A fresh virtual environment with only the zip's requirements.txt installed. This
    environment's pip installs into it (`--python`): the same resolution and install as a pip
    inside it, without a copy of pip bootstrapped there first. No bytecode is compiled ahead:
    the servers compile what they import."""
    environment = workdir / "venv"
    venv.EnvBuilder(with_pip=False, clear=True).create(environment)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(environment / "bin" / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "-r",
            str(source / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return str(environment / "bin" / "functions-framework")


@pytest.fixture(scope="module")
def sim(workdir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    server = KubeSim(
        workdir / "kubesim", scenario([NAMESPACE], [deployment(NAMESPACE, DEPLOYMENT, 8)])
    )
    names = sorted(p["metadata"]["name"] for p in server.pods(NAMESPACE, DEPLOYMENT))
    loads = dict(zip(names, [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1], strict=True))
    victoria.import_series(
        cpu_counters(NAMESPACE, DEPLOYMENT, loads, int(time.time() * 1000), minutes=10, noise=0.01)
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def env(sim: KubeSim, victoria: VictoriaMetrics, workdir: Path) -> dict[str, str]:
    return {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "WEBHOOK_TOKEN": TOKEN,
        "CPU_VARIANCE_THRESHOLD": "0.1",
    }


def test_the_http_entry_point_answers_a_dry_run(
    source: Path, framework: str, env: dict[str, str], workdir: Path
) -> None:
    function = FunctionServer("rebalance", env, workdir, source=source, framework=framework)
    try:
        response = httpx.post(
            function.url,
            json={"dry_run": True},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    finally:
        function.stop()
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["action"], result["reason"]) == ("would_rebalance", "imbalance_confirmed")
    assert result["evicted"] == []


def test_the_pubsub_entry_point_answers_a_dry_run(
    source: Path, framework: str, env: dict[str, str], workdir: Path
) -> None:
    function = FunctionServer(
        "rebalance_pubsub", env, workdir, "cloudevent", source=source, framework=framework
    )
    published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = base64.b64encode(json.dumps({"dry_run": True}).encode()).decode()
    try:
        response = httpx.post(
            function.url,
            json={"message": {"data": data, "messageId": "7", "publishTime": published}},
            headers={
                "ce-id": "7",
                "ce-source": "//pubsub.googleapis.com/projects/p/topics/pod-rebalancer-schedule",
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                "ce-specversion": "1.0",
                "ce-time": published,
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text  # acknowledged
        (decision,) = wait_until(function.decisions, timeout=10, what="the decision logged")
    finally:
        function.stop()
    assert (decision["action"], decision["source"]) == ("would_rebalance", "scheduler")
    assert decision["message_id"] == "7"
