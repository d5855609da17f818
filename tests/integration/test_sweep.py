"""A sweep's discovery through the real Kubernetes client against the API simulator: Deployments
listed in pages, opt-in and exclusion read from their annotations, RBAC without `deployments
list` failing closed; and a dry-run sweep with the production adapters and real VictoriaMetrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.kube import PAGE_SIZE, Cluster
from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.errors import KubernetesError
from pod_rebalancer.triggers import RunRequest
from tests.kube import (
    TOKEN,
    api_client,
    deployment,
    kubeconfig,
    rebalancer_rules,
    scenario,
)

A, B, MANY = "sweep-a", "sweep-b", "sweep-many"
ENABLED = {"pod-rebalancer.io/enabled": "true"}
EXCLUDED = {"pod-rebalancer.io/exclude": "true"}
NO_SWEEP = "no-sweep-token"  # an identity granted rbac.yaml but not rbac-sweep.yaml
SKEW = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]
MANY_COUNT = PAGE_SIZE + 20  # two pages


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    deployments = [
        deployment(A, "opted-in", len(SKEW), annotations=ENABLED),
        deployment(A, "shouting", len(SKEW), annotations={"pod-rebalancer.io/enabled": " TRUE "}),
        deployment(A, "declined", len(SKEW), annotations={"pod-rebalancer.io/enabled": "false"}),
        deployment(A, "silent", len(SKEW)),
        deployment(B, "kept-out", len(SKEW), annotations={**ENABLED, **EXCLUDED}),
        deployment(B, "also-in", len(SKEW), annotations=ENABLED),
    ]
    deployments += [
        deployment(MANY, f"app-{i:04d}", 0, annotations=ENABLED if i % 100 == 0 else {})
        for i in range(MANY_COUNT)
    ]
    body = scenario([A, B, MANY], deployments, sweep=True)
    body["users"][NO_SWEEP] = {"name": "system:serviceaccount:ops:no-sweep", "groups": []}
    body["bindings"] += [
        {"user": "system:serviceaccount:ops:no-sweep", "namespace": ns, "rules": rebalancer_rules()}
        for ns in (A, B)
    ]
    server = KubeSim(tmp_path_factory.mktemp("sweep"), body, tick=0.5)
    try:
        now_ms = int(time.time() * 1000)
        for namespace, name in ((A, "opted-in"), (A, "shouting"), (A, "silent"), (B, "also-in")):
            pods = sorted(p["metadata"]["name"] for p in server.pods(namespace, name))
            loads = dict(zip(pods, SKEW, strict=True))
            victoria.import_series(
                cpu_counters(namespace, name, loads, now_ms, minutes=10, noise=0.01)
            )
        yield server
    finally:
        server.stop()


def cluster(sim: KubeSim, token: str = TOKEN) -> Cluster:
    return Cluster(
        api_client(sim, token), exclude_annotation="pod-rebalancer.io/exclude", timeout=5.0
    )


def test_lists_the_deployments_of_a_namespace_with_opt_in_and_exclusion(sim: KubeSim) -> None:
    client = cluster(sim)
    try:
        found = {d.target.deployment: d for d in client.deployments(A)}
        other = {d.target.deployment: d for d in client.deployments(B)}
    finally:
        client.close()
    assert sorted(found) == ["declined", "opted-in", "shouting", "silent"]
    assert {name: d.enabled for name, d in found.items()} == {
        "declined": False,
        "opted-in": True,
        "shouting": True,
        "silent": False,
    }
    assert found["opted-in"].selector == "app=opted-in"
    assert found["opted-in"].state.replicas == len(SKEW)
    assert (other["kept-out"].enabled, other["kept-out"].state.excluded) == (True, True)


def test_lists_more_deployments_than_a_page_in_pages(sim: KubeSim) -> None:
    client = cluster(sim)
    sim.clear_requests()
    try:
        found = client.deployments(MANY)
    finally:
        client.close()
    assert len(found) == MANY_COUNT
    assert len({d.target for d in found}) == MANY_COUNT
    assert [d.target.deployment for d in found if d.enabled] == [
        f"app-{i:04d}" for i in range(0, MANY_COUNT, 100)
    ]
    lists = [r for r in sim.requests() if r["route"] == "deployments.list"]
    assert [r["query"].get("limit") for r in lists] == [str(PAGE_SIZE), str(PAGE_SIZE)]
    assert "continue" not in lists[0]["query"]
    assert lists[1]["query"]["continue"]


def test_without_deployments_list_the_list_is_refused_by_rbac(sim: KubeSim) -> None:
    client = cluster(sim, NO_SWEEP)
    try:
        with pytest.raises(KubernetesError) as caught:
            client.deployments(A)
    finally:
        client.close()
    assert caught.value.status == 403
    assert 'cannot list resource "deployments"' in str(caught.value)


def settings_for(victoria: VictoriaMetrics, **extra: object) -> Settings:
    values: dict[str, object] = {
        "prometheus_endpoint": victoria.url,
        "kube_namespace": A,
        "deployment_name": "opted-in",
        "kube_auth": "kubeconfig",
        "allowed_namespaces": (A, B, "sweep-*"),
        "cpu_variance_threshold": 0.1,
        "min_pod_age": "10m",
        "dry_run": True,
    }
    return Settings(**{**values, **extra})  # type: ignore[arg-type]


@pytest.fixture
def config(sim: KubeSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = kubeconfig(sim, tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_a_dry_run_sweep_with_the_production_adapters(
    sim: KubeSim, victoria: VictoriaMetrics, config: Path
) -> None:
    service = build(settings_for(victoria))
    sim.clear_requests()
    try:
        outcomes = service.run(RunRequest((), True, "test", sweep=True))
    finally:
        service.close()
    assert [(str(o.target), o.action.value, o.reason) for o in outcomes] == [
        ("sweep-a/opted-in", "would_rebalance", "imbalance_confirmed"),
        ("sweep-a/shouting", "would_rebalance", "imbalance_confirmed"),
        ("sweep-b/also-in", "would_rebalance", "imbalance_confirmed"),
        ("sweep-b/kept-out", "skipped", "excluded"),
    ]
    requests = sim.requests()
    # Only the literal namespaces are listed (sweep-* is not expanded), and nothing is written.
    listed = sorted(r["path"] for r in requests if r["route"] == "deployments.list")
    assert listed == [f"/apis/apps/v1/namespaces/{ns}/deployments" for ns in (A, B)]
    writes = [r for r in requests if r["method"] != "GET"]
    assert len(writes) == 6  # the dry-run evictions: two per acting target
    assert all(r["query"].get("dryRun") == "All" for r in writes)
    assert not [r for r in requests if "/silent" in r["path"] or "/declined" in r["path"]]


def test_a_sweep_without_deployments_list_fails_closed(
    sim: KubeSim, victoria: VictoriaMetrics, config: Path
) -> None:
    kubeconfig(sim, config, token=NO_SWEEP)
    service = build(settings_for(victoria, allowed_namespaces=(A, B)))
    sim.clear_requests()
    try:
        with pytest.raises(KubernetesError) as caught:
            service.run(RunRequest((), True, "test", sweep=True))
    finally:
        service.close()
    assert "needs `deployments list`" in str(caught.value)
    assert caught.value.status == 403
    assert [r["route"] for r in sim.requests()] == ["deployments.list"]  # nothing else tried
