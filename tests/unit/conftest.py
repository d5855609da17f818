"""Fixtures for the entry-point tests: the function configured against servers that are down."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.stack.processes import free_port
from tests.hostile import Tripwire

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


@pytest.fixture
def eks_down(env: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """KUBE_AUTH=eks with DescribeCluster pointing at a port nobody listens on: building the
    service fails with a KubernetesError, a failure a later retry can fix."""
    env.setenv("KUBE_AUTH", "eks")
    env.setenv("EKS_CLUSTER_NAME", "posthog-prod")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_EKS": f"http://127.0.0.1:{free_port()}",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        env.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN"):
        env.delenv(name, raising=False)
    return env


# Matched by no name the fuzz suites generate, so every target they name is refused by the
# allow-list before any dependency is asked.
UNREACHABLE_NAMESPACE = "allowed-only-in-the-integration-suite-4b1d"


@pytest.fixture
def watched(env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Watched]:
    """`env`, with the metrics server and the Kubernetes API replaced by tripwires (loopback
    listeners that count connections and answer none), and an allow-list no fuzzed target
    matches, the default target's included: any input either is refused or skipped, and
    `contacts` proves that no dependency was asked either way."""
    metrics, cluster = Tripwire(), Tripwire()
    kubeconfig = tmp_path / "kubeconfig-tripwire"
    kubeconfig.write_text(KUBECONFIG.format(port=cluster.port))
    env.setenv("KUBECONFIG", str(kubeconfig))
    env.setenv("PROMETHEUS_ENDPOINT", f"http://127.0.0.1:{metrics.port}")
    env.setenv("ALLOWED_NAMESPACES", UNREACHABLE_NAMESPACE)
    try:
        yield Watched(metrics, cluster)
    finally:
        metrics.close()
        cluster.close()


@dataclass
class Watched:
    metrics: Tripwire
    cluster: Tripwire

    @property
    def contacts(self) -> int:
        return self.metrics.contacts + self.cluster.contacts
