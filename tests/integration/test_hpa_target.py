"""IMBALANCE_POLICY=hpa_target against the Kubernetes API simulator (real client, real HPA reads
with exactly the RBAC of rbac.yaml) and real VictoriaMetrics: the HPA named like the Deployment or
named by its annotation is read, its CPU target against the pods' requests decides; no HPA, one
scaling something else, or one without a CPU target is no_hpa_target; a cool Deployment is
no_hot_pods; and without the `horizontalpodautoscalers get` grant the run fails closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import wait_until
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.kube import HPA_ANNOTATION
from pod_rebalancer.adapters.prometheus import cpu_query
from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest
from tests.kube import USER, deployment, hpa, kubeconfig, scenario

pytestmark = pytest.mark.integration

NAME = "consumer"
REPLICAS = 6
HOT, WARM, COOL = 2.2, 0.4, 0.05  # cores; every pod requests 500m, hot above 525m (70% x 1.5)


def scaling(name: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


SPECS: dict[str, dict[str, Any]] = {
    "hpa-found": {"hpa": hpa("hpa-found", NAME, 70)},
    "hpa-named": {
        "hpa": hpa("hpa-named", "consumers", 70, scaleTargetRef=scaling(NAME)),
        "annotations": {HPA_ANNOTATION: "consumers"},
    },
    "hpa-absent": {},
    "hpa-elsewhere": {
        "hpa": hpa("hpa-elsewhere", NAME, 70, scaleTargetRef=scaling("web")),
    },
    "hpa-no-cpu": {"hpa": hpa("hpa-no-cpu", NAME, None)},
    "hpa-cool": {"hpa": hpa("hpa-cool", NAME, 70), "cool": True},
    "hpa-forbidden": {"hpa": hpa("hpa-forbidden", NAME, 70)},
}


def world() -> dict[str, Any]:
    granted = [ns for ns in SPECS if ns != "hpa-forbidden"]
    deployments = [
        deployment(ns, NAME, REPLICAS, annotations=spec.get("annotations", {}))
        for ns, spec in SPECS.items()
    ]
    body = scenario(granted, deployments, hpas=[s["hpa"] for s in SPECS.values() if "hpa" in s])
    # rbac.yaml's rules without the HPA grant: everything else the function needs.
    rules = [
        r for r in body["bindings"][0]["rules"] if "horizontalpodautoscalers" not in r["resources"]
    ]
    assert len(rules) == len(body["bindings"][0]["rules"]) - 1  # rbac.yaml grants it
    body["bindings"].append({"user": USER, "namespace": "hpa-forbidden", "rules": rules})
    return body


@pytest.fixture(scope="module")
def sim(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    server = KubeSim(session_dir / "hpa-target", world(), tick=0.1)
    try:
        for namespace, spec in SPECS.items():
            load(victoria, server, namespace, cool=spec.get("cool", False))
        yield server
    finally:
        server.stop()


def load(victoria: VictoriaMetrics, sim: KubeSim, namespace: str, cool: bool) -> None:
    names = sorted(p["metadata"]["name"] for p in sim.pods(namespace, NAME))
    loads = dict.fromkeys(names, WARM)
    if not cool:
        loads[names[0]], loads[names[-1]] = HOT, COOL
    victoria.import_series(
        cpu_counters(namespace, NAME, loads, int(time.time() * 1000), minutes=10, noise=0.01)
    )
    query = cpu_query(Target(namespace, NAME), NAME, timedelta(minutes=5))
    wait_until(
        lambda: len(victoria.query(query, time.time())) == len(names), 10, "series searchable"
    )


@pytest.fixture(scope="module")
def service(sim: KubeSim, victoria: VictoriaMetrics, session_dir: Path) -> Iterator[Rebalancer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig(sim, session_dir / "hpa-target" / "kubeconfig")))
        settings = Settings(
            prometheus_endpoint=victoria.url,
            kube_namespace="hpa-found",
            deployment_name=NAME,
            container_name=NAME,  # whatever the environment says
            kube_auth="kubeconfig",
            allowed_namespaces=("hpa-*",),
            imbalance_policy="hpa_target",
            min_pod_age="5m",
        )
        rebalancer = build(settings)
        try:
            yield rebalancer
        finally:
            rebalancer.close()


def run(service: Rebalancer, namespace: str) -> Outcome:
    (outcome,) = service.run(RunRequest((Target(namespace, NAME),), True, "test"))
    return outcome


def hpa_reads(sim: KubeSim, namespace: str) -> list[dict[str, Any]]:
    inside = f"/namespaces/{namespace}/"
    return [r for r in sim.requests() if r["route"] == "hpas.get" and inside in r["path"]]


@pytest.mark.parametrize(
    ("namespace", "hpa_name"), [("hpa-found", NAME), ("hpa-named", "consumers")]
)
def test_the_hot_pod_is_selected_against_the_hpas_cpu_target(
    sim: KubeSim, service: Rebalancer, namespace: str, hpa_name: str
) -> None:
    outcome = run(service, namespace)
    report = outcome.to_json()
    assert (report["action"], report["reason"]) == ("would_rebalance", "imbalance_confirmed"), (
        report
    )
    assert report["hpa"] == {
        "name": hpa_name,
        "target_utilization_percent": 70,
        "hot_line_percent": pytest.approx(105.0),
        "hot_pods": 1,
        "peak_utilization_percent": pytest.approx(440.0, rel=0.03),
    }
    assert report["threshold"] == pytest.approx(105.0)
    assert [s["role"] for s in report["selected"]] == ["busiest", "idlest"]
    assert report["selected"][0]["cpu"] == pytest.approx(HOT, rel=0.03)
    assert report["expected_after"]["improvement_percent"] == pytest.approx(
        (HOT - (HOT + COOL) / 2) / HOT * 100, rel=0.03
    )
    assert [r["status"] for r in hpa_reads(sim, namespace)][-1:] == [200]
    assert hpa_reads(sim, namespace)[-1]["path"].endswith(f"/horizontalpodautoscalers/{hpa_name}")


@pytest.mark.parametrize("namespace", ["hpa-absent", "hpa-elsewhere", "hpa-no-cpu"])
def test_without_a_cpu_target_for_the_deployment_it_skips_with_no_hpa_target(
    sim: KubeSim, service: Rebalancer, namespace: str
) -> None:
    outcome = run(service, namespace)
    assert (outcome.action.value, outcome.reason) == ("skipped", "no_hpa_target"), outcome
    assert not outcome.evicted
    expected = 404 if namespace == "hpa-absent" else 200
    assert [r["status"] for r in hpa_reads(sim, namespace)][-1:] == [expected]


def test_a_deployment_below_the_hot_line_skips_with_no_hot_pods(service: Rebalancer) -> None:
    report = run(service, "hpa-cool").to_json()
    assert (report["action"], report["reason"]) == ("skipped", "no_hot_pods"), report
    assert report["hpa"]["hot_pods"] == 0
    assert report["hpa"]["peak_utilization_percent"] == pytest.approx(80.0, rel=0.03)


def test_without_the_hpa_grant_the_run_fails_closed(sim: KubeSim, service: Rebalancer) -> None:
    outcome = run(service, "hpa-forbidden")
    assert (outcome.action.value, outcome.reason) == ("failed", "dependency_unavailable")
    assert outcome.retryable
    assert "403" in outcome.errors["kubernetes"], outcome.errors
    assert [r["status"] for r in hpa_reads(sim, "hpa-forbidden")] == [403]
    evictions = [r for r in sim.requests() if r["route"] == "pods.evict"]
    assert not [r for r in evictions if "/namespaces/hpa-forbidden/" in r["path"]]
