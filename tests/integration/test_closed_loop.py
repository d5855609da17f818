"""The closed loop against the Kubernetes API simulator (real client, real Lease writes) and real
VictoriaMetrics: a rebalance is remembered in the Lease, measured by a later invocation once its
replacements have been Ready for a window, counted exactly once however many invocations measure
it at the same moment, and after two ineffective rebalances the target is left alone."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import wait_until
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.kube import INEFFECTIVE, LAST_EFFECT
from pod_rebalancer.adapters.prometheus import cpu_query
from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest
from tests.kube import deployment, kubeconfig, scenario
from tests.threads import at_once

NS = "closed-loop"
NAME = "consumer"
TARGET = Target(NS, NAME)
REPLICAS = 10
HOT, WARM, COOL = 2.2, 0.6, 0.05  # one pod carries the hot partition; one idles
CONCURRENT = 8


@pytest.fixture(scope="module")
def sim(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    server = KubeSim(session_dir / NS, scenario([NS], [deployment(NS, NAME, REPLICAS)]), tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def settings(sim: KubeSim, victoria: VictoriaMetrics, session_dir: Path) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig(sim, session_dir / NS / "kubeconfig")))
        yield Settings(
            prometheus_endpoint=victoria.url,
            kube_namespace=NS,
            deployment_name=NAME,
            container_name=NAME,
            kube_auth="kubeconfig",
            dry_run=False,
            max_pods_to_delete=2,
            imbalance_threshold=0.1,
            cooldown="1s",  # the lock's cooldown is not what is tested here
            min_pod_age="5m",
        )


def skew(victoria: VictoriaMetrics, sim: KubeSim) -> None:
    """The hot partition on one pod, whichever pods there are now: nothing a rebalance can
    spread (the replacements of the hot pod take its load with them)."""
    names = sorted(
        p["metadata"]["name"]
        for p in sim.pods(NS, NAME)
        if not p["metadata"].get("deletionTimestamp")
    )
    loads = {name: WARM for name in names}
    loads[names[0]], loads[names[-1]] = HOT, COOL
    victoria.import_series(
        cpu_counters(NS, NAME, loads, int(time.time() * 1000), minutes=10, noise=0.01)
    )
    query = cpu_query(TARGET, NAME, timedelta(minutes=5))
    wait_until(
        lambda: set(names) <= {s["metric"]["pod"] for s in victoria.query(query, time.time())},  # type: ignore[index]
        10,
        "the new series searchable",
    )


def settle_and_age(sim: KubeSim) -> None:
    """Wait for the replacements, then make every pod look Ready for 15 minutes."""
    wait_until(lambda: sim.settled(NS, NAME, REPLICAS), 30, "replacements Ready")
    for pod in sim.pods(NS, NAME):
        sim.set_pod(NS, pod["metadata"]["name"], createdSecondsAgo=16 * 60, readySecondsAgo=900)


def lease(sim: KubeSim) -> dict[str, Any]:
    (found,) = [
        item
        for item in sim.state()["leases"]
        if item["metadata"]["namespace"] == NS and item["metadata"]["name"].endswith(NAME)
    ]
    return found


def events(sim: KubeSim, reason: str) -> int:
    """Events with this reason on the Deployment, since the simulator started."""
    return sum(
        1
        for event in sim.state()["events"]
        if event["reason"] == reason and event["involvedObject"]["name"] == NAME
    )


def run(service: Rebalancer) -> Outcome:
    (outcome,) = service.run(RunRequest((TARGET,), False, "test"))
    return outcome


def test_measured_once_by_concurrent_invocations_then_not_effective(
    sim: KubeSim, victoria: VictoriaMetrics, settings: Settings
) -> None:
    skew(victoria, sim)
    service = build(settings)
    try:
        first = run(service)
        assert (first.action.value, first.reason) == ("rebalanced", "imbalance_confirmed"), first
        annotations = lease(sim)["metadata"]["annotations"]
        assert LAST_EFFECT in annotations
        assert INEFFECTIVE not in annotations

        settle_and_age(sim)
        skew(victoria, sim)
        time.sleep(1.1)  # past the 1 s cooldown
        sim.clear_requests()

        # Eight invocations at once measure the same rebalance: one records it.
        services = [build(settings) for _ in range(CONCURRENT)]
        outcomes = at_once(services, TARGET)
        for other in services:
            other.close()

        assert len(outcomes) == CONCURRENT
        judged = Counter(o.to_json()["last_rebalance"]["effective"] for o in outcomes)
        assert judged[False] >= 1, judged  # every invocation that measured saw it ineffective
        assert judged[True] == 0, judged
        assert lease(sim)["metadata"]["annotations"][INEFFECTIVE] == "1"
        assert events(sim, "RebalanceIneffective") == 1
        acted = [o for o in outcomes if o.action.value == "rebalanced"]
        assert len(acted) == 1, Counter((o.action.value, o.reason) for o in outcomes)

        # The second ineffective rebalance: the call that measures it skips, nothing evicted.
        settle_and_age(sim)
        skew(victoria, sim)
        time.sleep(1.1)
        sim.clear_requests()
        third = run(service)
        assert (third.action.value, third.reason) == ("skipped", "not_effective"), third
        assert lease(sim)["metadata"]["annotations"][INEFFECTIVE] == "2"
        assert events(sim, "RebalanceNotEffective") == 1
        assert not [r for r in sim.requests() if r["route"] == "pods.evict"]

        # The state survives a cold start: a new instance reads it from the Lease.
        fresh = build(settings)
        try:
            assert run(fresh).reason == "not_effective"
        finally:
            fresh.close()
    finally:
        service.close()
