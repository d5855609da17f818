"""Of 20 simultaneous invocations for one target, exactly one acts (Lease, resourceVersion)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from tests.kube import deployment, kubeconfig, scenario
from tests.threads import at_once

NS = "concurrency"
INVOCATIONS = 20


@pytest.fixture(scope="module")
def sim(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    server = KubeSim(session_dir / NS, scenario([NS], [deployment(NS, "consumer", 12)]), tick=0.1)
    names = sorted(p["metadata"]["name"] for p in server.pods(NS, "consumer"))
    loads = dict(zip(names, [2.2, 2.0, 1.8] + [0.5] * 7 + [0.05, 0.1], strict=True))
    victoria.import_series(
        cpu_counters(NS, "consumer", loads, int(time.time() * 1000), minutes=10, noise=0.01)
    )
    try:
        yield server
    finally:
        server.stop()


def test_twenty_simultaneous_invocations_evict_at_most_the_cap(
    sim: KubeSim, victoria: VictoriaMetrics, session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(sim, session_dir / NS / "kubeconfig")))
    settings = Settings(
        prometheus_endpoint=victoria.url,
        kube_namespace=NS,
        deployment_name="consumer",
        kube_auth="kubeconfig",
        dry_run=False,
        max_pods_to_delete=2,
    )
    # One service per thread: twenty function instances, each with its own clients.
    services = [build(settings) for _ in range(INVOCATIONS)]
    sim.control.delete("/_sim/requests")
    outcomes = at_once(services, Target(NS, "consumer"))
    for service in services:
        service.close()

    assert len(outcomes) == INVOCATIONS
    actions = Counter((o.action.value, o.reason) for o in outcomes)
    acted = [o for o in outcomes if o.action.value == "rebalanced"]
    assert len(acted) == 1, actions
    assert len(acted[0].evicted) == 2
    assert {o.reason for o in outcomes if o is not acted[0]} <= {"locked", "cooldown"}, actions
    evictions = [
        r
        for r in sim.requests()
        if r["path"].endswith("/eviction") and r["query"].get("dryRun") != "All"
    ]
    assert len(evictions) == 2
    lease_creates = [r for r in sim.requests() if r["method"] == "POST" and "leases" in r["path"]]
    assert sum(1 for r in lease_creates if r["status"] == 201) == 1
