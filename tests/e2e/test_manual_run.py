"""A manual dry run end to end: functions-framework serving the function, real VictoriaMetrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import FunctionServer
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.kube import deployment, kubeconfig, scenario

TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMESPACE = "e2e-manual"


@pytest.fixture(scope="module")
def sim(session_dir: Path) -> Iterator[KubeSim]:
    body = scenario(
        [NAMESPACE], [deployment(NAMESPACE, "skewed", 8), deployment(NAMESPACE, "balanced", 6)]
    )
    server = KubeSim(session_dir / "e2e-manual", body, tls=True, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def loads(victoria: VictoriaMetrics, sim: KubeSim) -> dict[str, dict[str, float]]:
    """CPU history for the simulator's pods: one Deployment skewed, one balanced (10 minutes)."""
    skewed_pods = sorted(p["metadata"]["name"] for p in sim.pods(NAMESPACE, "skewed"))
    skewed = dict(zip(skewed_pods, [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1], strict=True))
    balanced = dict.fromkeys((p["metadata"]["name"] for p in sim.pods(NAMESPACE, "balanced")), 0.5)
    now_ms = int(time.time() * 1000)
    for container, load in (("skewed", skewed), ("balanced", balanced)):
        victoria.import_series(
            cpu_counters(NAMESPACE, container, load, now_ms, minutes=10, noise=0.01)
        )
    return {"skewed": skewed, "balanced": balanced}


@pytest.fixture(scope="module")
def function(
    victoria: VictoriaMetrics, sim: KubeSim, session_dir: Path
) -> Iterator[FunctionServer]:
    env = {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, session_dir / "e2e-manual" / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": "skewed",
        "WEBHOOK_TOKEN": TOKEN,
        "CPU_VARIANCE_THRESHOLD": "0.1",
        "DRY_RUN": "false",  # the request's dry_run is what keeps these runs harmless
    }
    server = FunctionServer("rebalance", env, session_dir)
    try:
        yield server
    finally:
        server.stop()


def post(function: FunctionServer, **kwargs: object) -> httpx.Response:
    return httpx.post(function.url, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_dry_run_reports_the_busiest_and_idlest_pods(
    function: FunctionServer, loads: dict[str, dict[str, float]]
) -> None:
    response = post(function, json={"dry_run": True}, headers=AUTH)
    assert response.status_code == 200
    (result,) = response.json()["results"]
    skewed = loads["skewed"]
    busiest = max(skewed, key=skewed.__getitem__)
    idlest = min(skewed, key=skewed.__getitem__)
    assert result["action"] == "would_rebalance"
    assert result["reason"] == "imbalance_confirmed"
    assert result["dry_run"] is True
    assert [(s["pod"], s["role"]) for s in result["selected"]] == [
        (busiest, "busiest"),
        (idlest, "idlest"),
    ]
    assert result["evicted"] == []
    assert result["statistics"]["count"] == 8
    assert result["value"] > result["threshold"] == 0.1
    assert result["expected_after"]["improvement_percent"] > 10


def test_manual_dry_run_changes_nothing_in_the_cluster(
    function: FunctionServer, sim: KubeSim, loads: dict[str, dict[str, float]]
) -> None:
    before = {
        p["metadata"]["name"]: p["metadata"]["resourceVersion"]
        for p in sim.pods(NAMESPACE, "skewed")
    }
    sim.control.delete("/_sim/requests")
    response = post(function, json={"dry_run": True}, headers=AUTH)
    assert response.json()["results"][0]["action"] == "would_rebalance"
    after = {
        p["metadata"]["name"]: p["metadata"]["resourceVersion"]
        for p in sim.pods(NAMESPACE, "skewed")
    }
    assert after == before
    state = sim.state()
    assert not [lease for lease in state["leases"] if lease["metadata"]["namespace"] == NAMESPACE]
    assert not [e for e in state["events"] if e["metadata"]["namespace"] == NAMESPACE]
    writes = [r for r in sim.requests() if r["method"] in ("POST", "PUT", "DELETE", "PATCH")]
    # The evictions were sent, so RBAC and PDBs were exercised, but only as server-side dry runs.
    assert [r["path"].rsplit("/", 1)[-1] for r in writes] == ["eviction", "eviction"]
    assert all(r["query"].get("dryRun") == "All" for r in writes)


def test_balanced_deployment_is_below_threshold(
    function: FunctionServer, loads: dict[str, dict[str, float]]
) -> None:
    response = post(
        function, json={"deployment": "balanced"}, params={"dry_run": "true"}, headers=AUTH
    )
    (result,) = response.json()["results"]
    assert (result["action"], result["reason"]) == ("skipped", "below_threshold")
    assert result["selected"] == []


def test_wrong_token_is_refused(function: FunctionServer) -> None:
    assert post(function, json={}, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_promql_injection_is_a_400_naming_namespace(function: FunctionServer) -> None:
    response = post(function, json={"namespace": 'x"} or vector(1) #'}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["field"] == "namespace"


def test_two_mebibyte_body_is_refused(function: FunctionServer) -> None:
    body = b'{"namespace": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = post(function, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_chunked_body_over_the_limit_is_refused(function: FunctionServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b" " * (512 * 1024)

    response = post(
        function, content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
