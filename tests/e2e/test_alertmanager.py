"""Alert-driven runs end to end, every hop a real process on loopback.

Alertmanager (configured from infra/alertmanager/alertmanager.yml) → the function (DRY_RUN=false)
→ the Kubernetes API simulator, with CPU history in VictoriaMetrics; then the full chain, where
real Prometheus evaluates infra/prometheus/rules.yml (only `for` shortened) over the simulator's
load model and the function reads its metrics from that Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.alerting import AlertPath, alert_path
from infra.stack.alertmanager import Alertmanager, webhook_config
from infra.stack.demo import KAFKA
from infra.stack.processes import FunctionServer, wait_until
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.e2e.probes import LAST_SELECTION, evictions, last_rebalance, lease
from tests.kube import deployment, kubeconfig, scenario

NAMESPACE = "e2e-alert"
TOKEN = "alert-token"
MAX_PODS_TO_DELETE = 2
SKEW = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]  # variance 0.51 > the default threshold 0.3


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_labels(namespace: str, deployment_name: str) -> dict[str, str]:
    """The labels PodCPUImbalance carries (rules.yml): the route matches alertname and action."""
    return {
        "alertname": "PodCPUImbalance",
        "action": "rebalance",
        "severity": "warning",
        "namespace": namespace,
        "container": deployment_name,
        "deployment": deployment_name,
    }


def decisions_for(function: FunctionServer, target: str, **match: Any) -> list[dict[str, Any]]:
    return [
        d
        for d in function.decisions()
        if d["target"] == target and all(d.get(k) == v for k, v in match.items())
    ]


# ---------------------------------------------------------------- Alertmanager → function


@pytest.fixture(scope="module")
def sim(workdir: Path) -> Iterator[KubeSim]:
    body = scenario([NAMESPACE], [deployment(NAMESPACE, name, 8) for name in ("alpha", "bravo")])
    server = KubeSim(workdir, body, tls=True, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def loads(victoria: VictoriaMetrics, sim: KubeSim) -> dict[str, dict[str, float]]:
    """Ten minutes of skewed CPU for both Deployments' pods; busiest and idlest known."""
    now_ms = int(time.time() * 1000)
    loads = {}
    for name in ("alpha", "bravo"):
        pods = sorted(p["metadata"]["name"] for p in sim.pods(NAMESPACE, name))
        loads[name] = dict(zip(pods, SKEW, strict=True))
        victoria.import_series(
            cpu_counters(NAMESPACE, name, loads[name], now_ms, minutes=10, noise=0.01)
        )
    return loads


@pytest.fixture(scope="module")
def token_file(workdir: Path) -> Path:
    path = workdir / "webhook-token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture(scope="module")
def function(
    victoria: VictoriaMetrics, sim: KubeSim, workdir: Path, token_file: Path
) -> Iterator[FunctionServer]:
    env = {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": "alpha",
        "WEBHOOK_TOKEN_FILE": str(token_file),
        "MAX_PODS_TO_DELETE": str(MAX_PODS_TO_DELETE),
        "DRY_RUN": "false",
    }
    server = FunctionServer("rebalance", env, workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def alertmanager(
    function: FunctionServer, workdir: Path, token_file: Path
) -> Iterator[Alertmanager]:
    server = Alertmanager(workdir, webhook_config(function.url, token_file))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fired_alpha(
    alertmanager: Alertmanager, function: FunctionServer, loads: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """PodCPUImbalance for alpha, posted to Alertmanager as Prometheus would; returns once the
    function has decided (its decision log line)."""
    posted = datetime.now(UTC)
    alert = {
        "labels": alert_labels(NAMESPACE, "alpha"),
        "annotations": {"summary": "CPU imbalance across e2e-alert/alpha pods"},
        "startsAt": iso(posted),
        "generatorURL": "http://127.0.0.1/e2e",
    }
    alertmanager.post_alerts([alert])
    (decision,) = wait_until(
        lambda: decisions_for(function, f"{NAMESPACE}/alpha", source="alertmanager"),
        timeout=20,
        what="the function's decision on the alert for alpha",
    )
    return {"alert": alert, "posted": posted, "decision": decision}


def test_alert_posted_to_alertmanager_evicts_the_busiest_and_idlest_pods(
    fired_alpha: dict[str, Any], sim: KubeSim, loads: dict[str, dict[str, float]]
) -> None:
    skewed = loads["alpha"]
    busiest = max(skewed, key=skewed.__getitem__)
    idlest = min(skewed, key=skewed.__getitem__)
    decision = fired_alpha["decision"]
    assert (decision["action"], decision["reason"]) == ("rebalanced", "imbalance_confirmed")
    assert decision["alert_status"] == "firing"
    assert decision["receiver"] == "pod-rebalancer"
    assert 'deployment="alpha"' in decision["group_key"]
    assert evictions(sim, NAMESPACE, "alpha") == [busiest, idlest]
    assert len(evictions(sim, NAMESPACE, "alpha")) == MAX_PODS_TO_DELETE
    stamp = lease(sim, NAMESPACE, "alpha")
    assert stamp is not None
    assert stamp["metadata"]["annotations"][LAST_SELECTION] == f"{busiest},{idlest}"
    assert fired_alpha["posted"] - timedelta(seconds=1) <= last_rebalance(stamp)
    assert last_rebalance(stamp) <= datetime.now(UTC)
    on_alpha = [
        e["reason"]
        for e in sim.state()["events"]
        if e["involvedObject"]["kind"] == "Deployment" and e["involvedObject"]["name"] == "alpha"
    ]
    assert on_alpha == ["Rebalanced"]


def test_resolved_alert_is_reported_as_alert_resolved_and_evicts_nothing(
    fired_alpha: dict[str, Any], alertmanager: Alertmanager, function: FunctionServer, sim: KubeSim
) -> None:
    before = evictions(sim, NAMESPACE, "alpha")
    alertmanager.post_alerts([{**fired_alpha["alert"], "endsAt": iso(datetime.now(UTC))}])
    (decision,) = wait_until(
        lambda: decisions_for(function, f"{NAMESPACE}/alpha", reason="alert_resolved"),
        timeout=20,
        what="Alertmanager's resolved notification for alpha",
    )
    assert decision["action"] == "skipped"
    assert decision["alert_status"] == "resolved"
    assert decision["evicted"] == []
    assert evictions(sim, NAMESPACE, "alpha") == before


def webhook_payload(status: str, namespace: str, deployment_name: str) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one alert, as the function receives it."""
    labels = alert_labels(namespace, deployment_name)
    return {
        "version": "4",
        "groupKey": (
            '{}/{action="rebalance",alertname="PodCPUImbalance"}:'
            f'{{deployment="{deployment_name}", namespace="{namespace}"}}'
        ),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "pod-rebalancer",
        "groupLabels": {"deployment": deployment_name, "namespace": namespace},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": "5d1c0a5e4b6f7a81",
            }
        ],
    }


def test_duplicate_delivery_inside_the_cooldown_evicts_nothing_more(
    function: FunctionServer, sim: KubeSim, loads: dict[str, dict[str, float]]
) -> None:
    """Alertmanager HA delivers at least once: the same payload again is never a second rebalance.

    The Lease is read before the Deployment's rollout state, so a duplicate is answered
    `cooldown` both at once (replacements still starting) and after the Deployment settled.
    """
    payload = webhook_payload("firing", NAMESPACE, "bravo")
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def deliver() -> dict[str, Any]:
        answer = httpx.post(function.url, json=payload, headers=headers, timeout=30)
        assert answer.status_code == 200
        (result,) = answer.json()["results"]
        return dict(result)

    first, at_once = deliver(), deliver()
    assert (first["action"], first["reason"]) == ("rebalanced", "imbalance_confirmed")
    assert len(first["evicted"]) == MAX_PODS_TO_DELETE
    assert at_once["action"] == "skipped"
    assert at_once["reason"] == "cooldown"
    assert at_once["evicted"] == []
    wait_until(lambda: sim.settled(NAMESPACE, "bravo", 8), timeout=20, what="bravo settled")
    later = deliver()
    assert (later["action"], later["reason"]) == ("skipped", "cooldown")
    assert later["evicted"] == []
    assert evictions(sim, NAMESPACE, "bravo") == first["evicted"]


# ---------------------------------------------------------------- Prometheus → Alertmanager → ...

CHAIN = "e2e-chain"
CHAIN_DEPLOYMENT = "ingestion-consumer"  # the workload rules.yml opts in


@dataclass(frozen=True)
class Chain:
    sim: KubeSim
    path: AlertPath
    model: dict[str, float]  # each pod's CPU in the load model before anything happened


@pytest.fixture(scope="module")
def chain(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[Chain]:
    """The simulator's load model (12 pods, 48 skewed partitions, sticky assignor) writing to
    VictoriaMetrics; Prometheus with that history, scraping the simulator; Alertmanager; the
    function reading Prometheus. Alertmanager repeats a still-firing alert every 2s."""
    workdir = session_dir / CHAIN
    body = scenario(
        [CHAIN],
        [deployment(CHAIN, CHAIN_DEPLOYMENT, 12, startupSeconds=1.0, kafka=KAFKA)],
        metrics={"intervalSeconds": 1.0, "backfillMinutes": 6},
    )
    sim = KubeSim(workdir, body, tls=True, victoria_url=victoria.url, tick=0.1)
    env = {
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": CHAIN,
        "DEPLOYMENT_NAME": CHAIN_DEPLOYMENT,
        "MAX_PODS_TO_DELETE": str(MAX_PODS_TO_DELETE),
        "DRY_RUN": "false",
    }
    try:
        pods = sim.cpu(CHAIN, CHAIN_DEPLOYMENT)["pods"]
        model = {pod: float(value["cpu"]) for pod, value in pods.items()}
        with alert_path(workdir, victoria, sim, CHAIN, env, TOKEN, repeat_interval="2s") as path:
            yield Chain(sim, path, model)
    finally:
        sim.stop()


def test_prometheus_rule_fires_and_alertmanager_delivers_to_the_function_which_evicts(
    chain: Chain,
) -> None:
    sim, path = chain.sim, chain.path
    target = f"{CHAIN}/{CHAIN_DEPLOYMENT}"
    firing = wait_until(
        lambda: [a for a in path.prometheus.alerts("PodCPUImbalance") if a["state"] == "firing"],
        timeout=20,
        what="PodCPUImbalance firing in Prometheus",
    )
    assert firing[0]["labels"]["deployment"] == CHAIN_DEPLOYMENT
    assert firing[0]["labels"]["namespace"] == CHAIN
    assert float(firing[0]["value"]) > 0.3
    decisions = wait_until(
        lambda: decisions_for(path.function, target, source="alertmanager"),
        timeout=20,
        what="the function's decision on Prometheus' alert",
    )
    acted = decisions[0]
    assert (acted["action"], acted["reason"]) == ("rebalanced", "imbalance_confirmed")
    evicted = evictions(sim, CHAIN, CHAIN_DEPLOYMENT)
    assert evicted == acted["evicted"]
    assert len(evicted) == MAX_PODS_TO_DELETE
    roles = {s["pod"]: s["role"] for s in acted["selected"]}
    assert [roles[pod] for pod in evicted] == ["busiest", "idlest"]
    # What Prometheus measured is the load model: the pod with the hottest partitions went first.
    model = chain.model
    assert evicted[0] == max(model, key=model.__getitem__)
    assert model[evicted[1]] < sum(model.values()) / len(model)
    stamp = lease(sim, CHAIN, CHAIN_DEPLOYMENT)
    assert stamp is not None
    logged = datetime.fromisoformat(acted["time"])  # the stamp is taken before evicting
    assert logged - timedelta(seconds=5) <= last_rebalance(stamp) <= logged

    # The alert keeps firing (rate over 5m still holds the evicted pods), so Alertmanager sends
    # it again: the function answers cooldown, and nothing more is evicted.
    again = wait_until(
        lambda: decisions_for(path.function, target, source="alertmanager", reason="cooldown"),
        timeout=15,
        what="Alertmanager's repeated notification",
    )
    assert again[0]["action"] == "skipped"
    assert again[0]["group_key"] == acted["group_key"]
    later = decisions_for(path.function, target, source="alertmanager")[1:]
    assert {d["action"] for d in later} == {"skipped"}
    assert evictions(sim, CHAIN, CHAIN_DEPLOYMENT) == evicted
