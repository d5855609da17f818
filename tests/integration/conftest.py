"""The healthy stack the integration fuzz suites run against: a simulated cluster and real
VictoriaMetrics, with a Deployment worth rebalancing inside the allow-list and one outside it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from infra.kubesim.launcher import KubeSim
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.prometheus import PrometheusClient
from tests import hostile
from tests.kube import deployment, kubeconfig, scenario

ALLOWED = "fuzz-allowed"
FORBIDDEN = "fuzz-forbidden"  # bound by RBAC like ALLOWED: only the allow-list keeps it out
SKEW = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]
WRITES = ("POST", "PUT", "PATCH", "DELETE")
TIMEOUT = 30.0  # seconds an answer may take; Cloud Functions' default timeout is 60


@dataclass(frozen=True)
class FuzzStack:
    sim: KubeSim
    victoria: VictoriaMetrics
    kubeconfig: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The function's configuration against this stack (the allow-list names ALLOWED)."""
        return {
            "PROMETHEUS_ENDPOINT": self.victoria.url,
            "PROMETHEUS_TIMEOUT": "10s",
            "KUBE_AUTH": "kubeconfig",
            "KUBECONFIG": str(self.kubeconfig),
            "KUBE_NAMESPACE": ALLOWED,
            "DEPLOYMENT_NAME": "skewed",
            "ALLOWED_NAMESPACES": ALLOWED,
            "CPU_VARIANCE_THRESHOLD": "0.1",
            **extra,
        }

    def requests(self) -> list[dict[str, Any]]:
        """The API requests since the last call (the log is cleared each time)."""
        requests = self.sim.requests()
        self.sim.clear_requests()
        return requests


def writes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests that change the cluster: every write but a server-side dry run."""
    return [r for r in requests if r["method"] in WRITES and r["query"].get("dryRun") != "All"]


def outside(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests for anything but the allowed namespace: the allow-list should stop them all."""
    return [r for r in requests if not r["path"].split("?")[0].count(f"/namespaces/{ALLOWED}/")]


@pytest.fixture(scope="session")
def fuzz_stack(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[FuzzStack]:
    workdir = session_dir / "fuzz"
    body = scenario(
        [ALLOWED, FORBIDDEN],
        [
            deployment(ALLOWED, "skewed", len(SKEW)),
            deployment(ALLOWED, "balanced", 6),
            deployment(FORBIDDEN, "skewed", len(SKEW)),
        ],
    )
    sim = KubeSim(workdir, body, tick=0.1)
    try:
        now_ms = int(time.time() * 1000)
        for namespace, name in ((ALLOWED, "skewed"), (ALLOWED, "balanced"), (FORBIDDEN, "skewed")):
            pods = sorted(p["metadata"]["name"] for p in sim.pods(namespace, name))
            load = SKEW if name == "skewed" else [0.5] * len(pods)
            victoria.import_series(
                cpu_counters(
                    namespace, name, dict(zip(pods, load, strict=True)), now_ms, minutes=30
                )
            )
        yield FuzzStack(sim, victoria, kubeconfig(sim, workdir / "kubeconfig"))
    finally:
        sim.stop()


# Names: the real ones on both sides of the allow-list, beside hostile ones built from them.
REAL_NAMESPACES = [ALLOWED, FORBIDDEN, "kube-system"]
REAL_DEPLOYMENTS = ["skewed", "balanced", "missing"]


def namespaces() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(REAL_NAMESPACES),
        hostile.names(),
        st.builds(
            lambda real, trick: real + trick,
            st.sampled_from(REAL_NAMESPACES),
            st.sampled_from(['"}', "/../" + FORBIDDEN, "%2F..%2F" + FORBIDDEN, "\x00", ",x=y"]),
        ),
    )


def deployments() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(REAL_DEPLOYMENTS),
        hostile.names(),
        st.builds(
            lambda real, trick: real + trick,
            st.sampled_from(REAL_DEPLOYMENTS),
            st.sampled_from(['"}[5m])', "/../../skewed", "%2fskewed", ".", "..", "-"]),
        ),
    )


@pytest.fixture
def client(victoria: VictoriaMetrics) -> Iterator[PrometheusClient]:
    """The function's Prometheus client on the session's VictoriaMetrics."""
    metrics = PrometheusClient(victoria.url, timedelta(seconds=10))
    try:
        yield metrics
    finally:
        metrics.close()
