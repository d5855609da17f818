"""IMBALANCE_SIGNAL=score through the production adapters: the simulator's pods, CPU, lag and
memory from a real VictoriaMetrics through the README's queries, and the report the service
builds from them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.series import cpu_counters, gauges
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest
from tests.integration.test_signals import QUERIES
from tests.kube import deployment, kubeconfig, scenario

pytestmark = pytest.mark.integration

NS = "score-service"
NAME = "consumer"
TARGET = Target(NS, NAME)


@pytest.fixture(scope="module")
def sim(session_dir: Path) -> Iterator[KubeSim]:
    server = KubeSim(session_dir / NS, scenario([NS], [deployment(NS, NAME, 6)]), tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pods(sim: KubeSim, victoria: VictoriaMetrics) -> list[str]:
    """Equal CPU and memory everywhere; the first pod owns the lagging partitions, two own a
    little, three own none."""
    names = sorted(p["metadata"]["name"] for p in sim.pods(NS, NAME))
    end_ms = int(time.time() * 1000)
    owners = {0: (names[0], 5000.0), 1: (names[0], 7000.0), 2: (names[1], 100.0)}
    owners[3] = (names[2], 100.0)
    labels = {"namespace": NS}
    owned = [
        ({**labels, "pod": pod, "topic": "events", "partition": str(p)}, 1.0)
        for p, (pod, _) in owners.items()
    ]
    lag = [
        ({"consumergroup": NAME, "topic": "events", "partition": str(p)}, value)
        for p, (_, value) in owners.items()
    ]
    memory = [({**labels, "pod": pod, "container": NAME}, 7e8) for pod in names]
    victoria.import_series(
        [
            *cpu_counters(NS, NAME, dict.fromkeys(names, 0.8), end_ms, minutes=10, noise=0.0),
            *gauges("kafka_consumer_assignment", owned, end_ms, 10),
            *gauges("kafka_consumergroup_lag", lag, end_ms, 10),
            *gauges("container_memory_working_set_bytes", memory, end_ms, 10),
        ]
    )
    return names


@pytest.fixture(scope="module")
def service(sim: KubeSim, victoria: VictoriaMetrics, session_dir: Path) -> Iterator[Rebalancer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig(sim, session_dir / NS / "kubeconfig")))
        settings = Settings(
            prometheus_endpoint=victoria.url,
            kube_namespace=NS,
            deployment_name=NAME,
            container_name=NAME,
            kube_auth="kubeconfig",
            min_pod_age="5m",
            imbalance_signal="score",
            lag_query=f"{QUERIES['assignment']}\n{QUERIES['zero_fallback']}",
            memory_query=QUERIES["memory"],
        )
        rebalancer = build(settings)
        try:
            yield rebalancer
        finally:
            rebalancer.close()


def test_the_lagging_pod_is_selected_and_reported_with_its_signals(
    service: Rebalancer, pods: list[str]
) -> None:
    (outcome,) = service.run(RunRequest((TARGET,), True, "test"))
    report = outcome.to_json()
    assert (report["action"], report["reason"]) == ("would_rebalance", "imbalance_confirmed"), (
        report
    )
    busiest, idlest = report["selected"]
    assert (busiest["pod"], busiest["role"]) == (pods[0], "busiest")
    assert busiest["signals"] == {"cpu": pytest.approx(0.8), "lag": 12000.0, "memory": 7e8}
    # 0.4 x 1 + 0.4 x 12000 / mean(lag) + 0.2 x 1, mean(lag) = 12200 / 6
    assert busiest["score"] == pytest.approx(0.6 + 0.4 * 12000 / (12200 / 6), rel=1e-6)
    assert idlest["role"] == "idlest"
    assert idlest["signals"]["lag"] == 0.0
    assert report["statistics"]["count"] == 6
    assert report["statistics"]["mean"] == pytest.approx(1.0)  # the mean score, by construction
    assert report["ignored_pods"] == {}
