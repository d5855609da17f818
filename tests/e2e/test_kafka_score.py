"""IMBALANCE_SIGNAL=score end to end on `make demo-kafka`'s consumer group: functions-framework
serving the function, the simulator over TLS writing CPU, per-partition lag and the assignment
metric into a real VictoriaMetrics, and the README's assignment LAG_QUERY."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.kafka import LAG_QUERY, REPLICAS, lagging_consumer
from infra.stack.processes import FunctionServer, wait_until
from infra.stack.victoria import VictoriaMetrics
from tests.kube import kubeconfig, scenario

TOKEN = "e2e-kafka-token"
NAMESPACE = "e2e-kafka"
NAME = "events-consumer-e2e"


@pytest.fixture(scope="module")
def sim(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    body = scenario(
        [NAMESPACE],
        [lagging_consumer(NAMESPACE, NAME)],
        metrics={"intervalSeconds": 1.0, "backfillMinutes": 2},
    )
    server = KubeSim(session_dir / NAMESPACE, body, tls=True, victoria_url=victoria.url, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def function(
    sim: KubeSim, victoria: VictoriaMetrics, session_dir: Path
) -> Iterator[FunctionServer]:
    env = {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, session_dir / NAMESPACE / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": NAME,
        "WEBHOOK_TOKEN": TOKEN,
        "METRICS_TIME_WINDOW": "60s",
        "IMBALANCE_SIGNAL": "score",
        "LAG_QUERY": LAG_QUERY,
        "DRY_RUN": "false",  # the request's dry_run keeps the first call harmless
    }
    server = FunctionServer("rebalance", env, session_dir)
    try:
        yield server
    finally:
        server.stop()


def post(function: FunctionServer, body: dict[str, object]) -> dict[str, Any]:
    response = httpx.post(
        function.url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert isinstance(result, dict)
    return result


def test_the_score_evicts_the_pod_that_falls_behind_and_the_group_catches_up(
    sim: KubeSim, function: FunctionServer
) -> None:
    model = sim.cpu(NAMESPACE, NAME)
    lagging = max(model["pods"], key=lambda p: model["pods"][p]["lag"])
    dry = post(function, {"dry_run": True})
    assert (dry["action"], dry["reason"]) == ("would_rebalance", "imbalance_confirmed")
    busiest, idlest = dry["selected"]
    assert (busiest["pod"], busiest["role"]) == (lagging, "busiest")
    assert busiest["signals"]["cpu"] == pytest.approx(1.0, abs=0.01)  # at its limit
    assert busiest["signals"]["lag"] > 100_000
    assert idlest["signals"]["lag"] == 0.0
    assert busiest["score"] > 3 > idlest["score"]
    assert sim.cpu(NAMESPACE, NAME)["members"] == model["members"]  # nothing evicted

    real = post(function, {})
    assert real["action"] == "rebalanced"
    assert real["evicted"] == [lagging, idlest["pod"]]
    wait_until(lambda: sim.settled(NAMESPACE, NAME, REPLICAS), 30, "replacements Ready")
    after = sim.cpu(NAMESPACE, NAME)
    assert lagging not in after["members"]
    # Nobody's partitions need more than the limit now: the backlog only drains.
    assert all(after["pods"][m]["messagesPerSecond"] < 4750 for m in after["members"])
    backlog = sum(after["partitionLag"])
    wait_until(
        lambda: sum(sim.cpu(NAMESPACE, NAME)["partitionLag"]) < backlog - 1000, 10, "lag drains"
    )
