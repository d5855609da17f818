"""Fixtures for the entry-point tests: the function configured against servers that are down."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.stack.processes import free_port

TOKEN = "s3cret-token-for-tests"

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: dead, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: dead, user: u}}}}]
current-context: c
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    # Nothing listens on these ports: any metrics query or Kubernetes call is refused, so no test
    # here can act. The servers themselves are exercised in tests/integration and tests/e2e.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=free_port()))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("KUBE_AUTH", "kubeconfig")
    monkeypatch.setenv("PROMETHEUS_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("PROMETHEUS_TIMEOUT", "2s")
    monkeypatch.setenv("KUBE_NAMESPACE", "posthog")
    monkeypatch.setenv("DEPLOYMENT_NAME", "ingestion-consumer")
    monkeypatch.setenv("WEBHOOK_TOKEN", TOKEN)
    return monkeypatch
