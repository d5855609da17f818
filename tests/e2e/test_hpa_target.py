"""IMBALANCE_POLICY=hpa_target end to end: functions-framework serving the function, the
simulator over TLS with the HPAs and exactly rbac.yaml's grants, real VictoriaMetrics."""

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
from tests.kube import deployment, hpa, kubeconfig, scenario

TOKEN = "e2e-hpa-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMESPACE = "e2e-hpa"
# Every pod requests 500m and the HPA targets 60%: hot above 0.6 x 1.5 x 0.5 = 0.45 cores.
LOADS = [1.2, 0.4, 0.4, 0.35, 0.3, 0.05]


@pytest.fixture(scope="module")
def sim(session_dir: Path) -> Iterator[KubeSim]:
    body = scenario(
        [NAMESPACE],
        [deployment(NAMESPACE, "consumer", 6), deployment(NAMESPACE, "unscaled", 6)],
        hpas=[hpa(NAMESPACE, "consumer", 60)],
    )
    server = KubeSim(session_dir / "e2e-hpa", body, tls=True, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def loads(victoria: VictoriaMetrics, sim: KubeSim) -> dict[str, dict[str, float]]:
    now_ms = int(time.time() * 1000)
    found = {}
    for name in ("consumer", "unscaled"):
        pods = sorted(p["metadata"]["name"] for p in sim.pods(NAMESPACE, name))
        found[name] = dict(zip(pods, LOADS, strict=True))
        victoria.import_series(
            cpu_counters(NAMESPACE, name, found[name], now_ms, minutes=10, noise=0.01)
        )
    return found


@pytest.fixture(scope="module")
def function(
    victoria: VictoriaMetrics, sim: KubeSim, session_dir: Path
) -> Iterator[FunctionServer]:
    env = {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, session_dir / "e2e-hpa" / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": "consumer",
        "WEBHOOK_TOKEN": TOKEN,
        "IMBALANCE_POLICY": "hpa_target",
        "TOLERANCE_MULTIPLIER": "1.5",
        "DRY_RUN": "false",  # the request's dry_run is what keeps these runs harmless
    }
    server = FunctionServer("rebalance", env, session_dir)
    try:
        yield server
    finally:
        server.stop()


def post(function: FunctionServer, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(function.url, json=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert isinstance(result, dict)
    return result


def test_the_pod_above_the_hpa_target_is_selected_with_the_idlest(
    function: FunctionServer, sim: KubeSim, loads: dict[str, dict[str, float]]
) -> None:
    sim.control.delete("/_sim/requests")
    result = post(function, {"dry_run": True})
    pods = loads["consumer"]
    hot, idle = max(pods, key=pods.__getitem__), min(pods, key=pods.__getitem__)
    assert (result["action"], result["reason"]) == ("would_rebalance", "imbalance_confirmed")
    assert [(s["pod"], s["role"]) for s in result["selected"]] == [  # type: ignore[attr-defined]
        (hot, "busiest"),
        (idle, "idlest"),
    ]
    assert result["hpa"] == {
        "name": "consumer",
        "target_utilization_percent": 60,
        "hot_line_percent": pytest.approx(90.0),
        "hot_pods": 1,
        "peak_utilization_percent": pytest.approx(240.0, rel=0.03),
    }
    assert result["threshold"] == pytest.approx(90.0)
    assert result["evicted"] == []
    routes = [r["route"] for r in sim.requests()]
    assert routes.count("hpas.get") == 1
    assert routes.count("pods.evict") == 2  # server-side dry runs


def test_a_deployment_without_an_hpa_is_skipped_with_no_hpa_target(
    function: FunctionServer, loads: dict[str, dict[str, float]]
) -> None:
    result = post(function, {"deployment": "unscaled", "dry_run": True})
    assert (result["action"], result["reason"]) == ("skipped", "no_hpa_target")
    assert result["selected"] == []
