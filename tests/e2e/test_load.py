"""200 concurrent Alertmanager deliveries (HA pairs deliver everything twice, and more when they
retry) for 5 targets in 5 namespaces, against two function instances on one cluster: per target
exactly one rebalance and at most MAX_PODS_TO_DELETE evictions, no 5xx; latency reported."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import FunctionServer
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.e2e.probes import evictions
from tests.kube import deployment, kubeconfig, scenario
from tests.reliability import record

NAMESPACE = "e2e-load"
NAMESPACES = [f"load-{i}" for i in range(5)]
DEPLOYMENT = "consumer"
DELIVERIES = 200
SENDERS = 64  # concurrent connections
MAX_DELETE = 2
TOKEN = "load-token"


@pytest.fixture(scope="module")
def sim(workdir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    body = scenario(NAMESPACES, [deployment(ns, DEPLOYMENT, 8) for ns in NAMESPACES])
    server = KubeSim(workdir / "kubesim", body, tick=0.1)
    now_ms = int(time.time() * 1000)
    for ns in NAMESPACES:
        names = sorted(p["metadata"]["name"] for p in server.pods(ns, DEPLOYMENT))
        loads = dict(zip(names, [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1], strict=True))
        victoria.import_series(cpu_counters(ns, DEPLOYMENT, loads, now_ms, minutes=10, noise=0.01))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def instances(
    sim: KubeSim, victoria: VictoriaMetrics, workdir: Path
) -> Iterator[list[FunctionServer]]:
    env = {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACES[0],
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "ALLOWED_NAMESPACES": "load-*",
        "WEBHOOK_TOKEN": TOKEN,
        "CPU_VARIANCE_THRESHOLD": "0.1",
        "MAX_PODS_TO_DELETE": str(MAX_DELETE),
        "DRY_RUN": "false",
    }
    logs = [workdir / f"instance-{i}" for i in range(2)]  # one log file per instance
    for directory in logs:
        directory.mkdir(exist_ok=True)
    servers = [FunctionServer("rebalance", env, directory) for directory in logs]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def alert(namespace: str, delivery: int) -> dict[str, Any]:
    labels = {"alertname": "PodCPUImbalance", "namespace": namespace, "deployment": DEPLOYMENT}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{namespace="{namespace}", deployment="{DEPLOYMENT}"}}',
        "status": "firing",
        "receiver": "pod-rebalancer",
        "groupLabels": {"namespace": namespace, "deployment": DEPLOYMENT},
        "commonLabels": labels,
        "alerts": [{"status": "firing", "labels": labels, "fingerprint": f"f{delivery % 2}"}],
    }


def test_concurrent_deliveries_rebalance_each_target_once(
    instances: list[FunctionServer], sim: KubeSim
) -> None:
    sim.clear_requests()
    # No keep-alive: a connection the server closes after its idle timeout just as a sender
    # reuses it is a transport race (an Alertmanager retries it), not an answer of the function.
    fresh = httpx.Limits(max_keepalive_connections=0)
    clients = [httpx.Client(base_url=i.url, timeout=60.0, limits=fresh) for i in instances]

    def deliver(index: int) -> tuple[str, int, float, dict[str, Any]]:
        namespace = NAMESPACES[index % len(NAMESPACES)]
        client = clients[index % len(clients)]
        started = time.perf_counter()
        response = client.post(
            "/", json=alert(namespace, index), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        elapsed = time.perf_counter() - started
        (result,) = response.json()["results"] if response.status_code < 500 else [{}]
        return namespace, response.status_code, elapsed, result

    try:
        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            answers = list(pool.map(deliver, range(DELIVERIES)))
    finally:
        for client in clients:
            client.close()

    statuses = Counter(status for _, status, _, _ in answers)
    by_target: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for namespace, _, _, result in answers:
        by_target[namespace][(result.get("action", ""), result.get("reason", ""))] += 1
    removed = {ns: evictions(sim, ns, DEPLOYMENT) for ns in NAMESPACES}
    latencies = sorted(elapsed for _, _, elapsed, _ in answers)
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"\nload: {DELIVERIES} deliveries, {SENDERS} at a time, 2 instances, 5 targets")
    print(f"  statuses {dict(statuses)}; p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms")
    for ns in NAMESPACES:
        print(f"  {ns}: {dict(by_target[ns])}; evicted {removed[ns]}")
    record(
        "load",
        deliveries=DELIVERIES,
        server_errors=sum(n for status, n in statuses.items() if status >= 500),
        p50_ms=round(p50 * 1e3),
        p99_ms=round(p99 * 1e3),
        rebalanced=sum(by_target[ns][("rebalanced", "imbalance_confirmed")] for ns in NAMESPACES),
        pods_removed=sum(len(pods) for pods in removed.values()),
    )

    assert statuses == Counter({200: DELIVERIES})
    for ns in NAMESPACES:
        outcomes = by_target[ns]
        assert outcomes[("rebalanced", "imbalance_confirmed")] == 1, (ns, outcomes)
        others = {key for key in outcomes if key[0] != "rebalanced"}
        assert others <= {("skipped", "cooldown"), ("skipped", "locked")}, (ns, outcomes)
        assert len(removed[ns]) == MAX_DELETE, (ns, removed[ns])
