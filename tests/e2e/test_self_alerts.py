"""Watching the rebalancer end to end: the function (functions-framework) pushes each run's
metrics to a real Pushgateway, a real Prometheus scrapes it and evaluates
infra/prometheus/rebalancer-rules.yml, and runs against an unreachable Kubernetes API fire
PodRebalancerFailing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from infra.stack.processes import REPO, FunctionServer, free_port, wait_until
from infra.stack.prometheus import Prometheus, rules_with_for, scrape_job
from infra.stack.pushgateway import Pushgateway, pushgateway

TOKEN = "e2e-token"
NAMESPACE = "e2e-self-alerts"
DEPLOYMENT = "ingestion-consumer"
SELF_RULES = REPO / "infra" / "prometheus" / "rebalancer-rules.yml"


@pytest.fixture(scope="module")
def gateway(workdir: Path) -> Iterator[Pushgateway]:
    with pushgateway(workdir) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(workdir: Path, gateway: Pushgateway) -> Iterator[Prometheus]:
    """Scrapes the gateway and evaluates the rules every second, alerts without `for`."""
    job = scrape_job("pushgateway", gateway.url, "/metrics")
    server = Prometheus(workdir, [job], rules_with_for("0s", SELF_RULES), interval="1s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def function(workdir: Path, gateway: Pushgateway) -> Iterator[FunctionServer]:
    """The function with a Kubernetes API that refuses every connection (nothing listens)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "down", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "rb", "user": {"token": "unused"}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "rb"}}],
        "current-context": "down",
    }
    kubeconfig = workdir / "kubeconfig-down"
    kubeconfig.write_text(yaml.safe_dump(config))
    env = {
        "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9",
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "WEBHOOK_TOKEN": TOKEN,
        "PUSHGATEWAY_URL": gateway.url,
    }
    server = FunctionServer("rebalance", env, workdir)
    try:
        yield server
    finally:
        server.stop()


def test_runs_that_keep_failing_fire_the_failure_alert(
    function: FunctionServer, gateway: Pushgateway, prometheus: Prometheus
) -> None:
    for _ in range(3):
        response = httpx.post(
            function.url, json={}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert response.status_code == 503
        (result,) = response.json()["results"]
        assert (result["action"], result["reason"]) == ("failed", "dependency_unavailable")
    firing = wait_until(
        lambda: [a for a in prometheus.alerts("PodRebalancerFailing") if a["state"] == "firing"],
        timeout=30,
        what="PodRebalancerFailing firing",
        interval=0.2,
    )
    ((alert),) = firing
    assert alert["labels"]["namespace"] == NAMESPACE
    assert alert["labels"]["deployment"] == DEPLOYMENT
    assert float(alert["value"]) == 3
    # What Prometheus scraped is what the function pushed: three failures of the Kubernetes API.
    (failures,) = prometheus.query("rebalancer_dependency_failures_total")
    assert failures["metric"]["dependency"] == "kubernetes"
    assert failures["value"][1] == "3"
    assert not prometheus.alerts("PodRebalancerEvictingTooMuch")
    runs = [r for r in function.records() if r.get("event") == "run"]
    assert len(runs) == 3
    assert all(r["duration_seconds"] > 0 for r in runs)
    assert not [r for r in function.records() if r.get("event") == "push_failed"]
