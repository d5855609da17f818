"""Sweeps end to end: functions-framework serving `rebalance` (HTTP) and `rebalance_pubsub` (pushed
by the Pub/Sub emulator), the simulator with several Deployments in two namespaces, real
VictoriaMetrics. One Deployment has no opt-in annotation and is left alone; MAX_PODS_PER_RUN
lets two of the three opted-in ones act."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import pubsub_v1

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import FunctionServer, wait_until
from infra.stack.pubsub import PubSubEmulator
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.e2e.probes import evictions, lease
from tests.kube import deployment, kubeconfig, scenario

NAMESPACE = "e2e-sweep"
OTHER = "e2e-sweep-b"
PROJECT = "local-project"
TOKEN = "e2e-sweep-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENABLED = {"pod-rebalancer.io/enabled": "true"}
SKEW = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]
OPTED_IN = [(NAMESPACE, "alpha"), (NAMESPACE, "beta"), (OTHER, "gamma")]
PLAIN = (NAMESPACE, "plain")  # skewed too, but never opted in
MAX_PODS_TO_DELETE = 2
MAX_PODS_PER_RUN = 4


@pytest.fixture(scope="module")
def sim(workdir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    deployments = [deployment(ns, name, len(SKEW), annotations=ENABLED) for ns, name in OPTED_IN]
    deployments.append(deployment(*PLAIN, len(SKEW)))
    server = KubeSim(workdir, scenario([NAMESPACE, OTHER], deployments, sweep=True), tick=0.1)
    try:
        now_ms = int(time.time() * 1000)
        for namespace, name in [*OPTED_IN, PLAIN]:
            pods = sorted(p["metadata"]["name"] for p in server.pods(namespace, name))
            victoria.import_series(
                cpu_counters(
                    namespace, name, dict(zip(pods, SKEW, strict=True)), now_ms, 10, noise=0.01
                )
            )
        yield server
    finally:
        server.stop()


def environment(victoria: VictoriaMetrics, sim: KubeSim, workdir: Path) -> dict[str, str]:
    return {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": "alpha",
        "ALLOWED_NAMESPACES": f"{NAMESPACE},{OTHER}",
        "CPU_VARIANCE_THRESHOLD": "0.1",
        "MAX_PODS_TO_DELETE": str(MAX_PODS_TO_DELETE),
        "MAX_PODS_PER_RUN": str(MAX_PODS_PER_RUN),
        "DRY_RUN": "false",
    }


@pytest.fixture(scope="module")
def http_function(
    victoria: VictoriaMetrics, sim: KubeSim, workdir: Path
) -> Iterator[FunctionServer]:
    env = {**environment(victoria, sim, workdir), "WEBHOOK_TOKEN": TOKEN}
    server = FunctionServer("rebalance", env, workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def emulator(workdir: Path) -> Iterator[PubSubEmulator]:
    server = PubSubEmulator(workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scheduled(
    emulator: PubSubEmulator, victoria: VictoriaMetrics, sim: KubeSim, workdir: Path
) -> Iterator[tuple[FunctionServer, Any, str]]:
    """`rebalance_pubsub` behind a push subscription, and a publisher for its topic."""
    server = FunctionServer(
        "rebalance_pubsub", environment(victoria, sim, workdir), workdir, signature="cloudevent"
    )
    with pytest.MonkeyPatch.context() as patch:
        for key, value in emulator.env().items():
            patch.setenv(key, value)  # the clients find the emulator as the function does
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        try:
            topic = publisher.topic_path(PROJECT, "sweep-schedule")
            publisher.create_topic(name=topic)
            subscriber.create_subscription(
                name=subscriber.subscription_path(PROJECT, "sweep-push"),
                topic=topic,
                ack_deadline_seconds=10,
                push_config={"push_endpoint": f"{server.url}/{topic}"},
            )
            yield server, publisher, topic
        finally:
            publisher.stop()
            publisher.transport.close()
            subscriber.close()
            server.stop()


def post(function: FunctionServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(function.url, json=body, headers=AUTH, timeout=60)


def requests_for(sim: KubeSim, namespace: str, name: str) -> list[dict[str, Any]]:
    """Every API request about the Deployment: itself, its pods, its Lease."""
    return [
        r
        for r in sim.requests()
        if f"/namespaces/{namespace}/" in r["path"]
        and (
            r["path"].endswith((f"/deployments/{name}", f"/leases/pod-rebalancer.{name}"))
            or f"/pods/{name}-" in r["path"]
            or r["query"].get("labelSelector") == f"app={name}"
        )
    ]


def test_a_dry_run_sweep_over_http_reports_every_opted_in_deployment_and_the_cap(
    http_function: FunctionServer, sim: KubeSim
) -> None:
    sim.clear_requests()
    response = post(http_function, {"sweep": True, "dry_run": True})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["target"]["namespace"], r["target"]["deployment"]) for r in results] == OPTED_IN
    actions = sorted((r["action"], r["reason"]) for r in results)
    assert actions == [
        ("skipped", "run_budget_exhausted"),
        ("would_rebalance", "imbalance_confirmed"),
        ("would_rebalance", "imbalance_confirmed"),
    ]
    assert all(r["dry_run"] for r in results)
    writes = [r for r in sim.requests() if r["method"] != "GET"]
    assert len(writes) == MAX_PODS_PER_RUN  # the dry-run evictions of two targets
    assert all(r["query"].get("dryRun") == "All" for r in writes)
    assert requests_for(sim, *PLAIN) == []


def test_a_sweep_naming_a_target_is_refused(http_function: FunctionServer) -> None:
    response = post(http_function, {"sweep": True, "namespace": NAMESPACE})
    assert response.status_code == 400
    assert response.json()["field"] == "namespace"


def test_a_scheduled_sweep_over_pubsub_evicts_within_the_run_cap(
    scheduled: tuple[FunctionServer, Any, str], sim: KubeSim
) -> None:
    server, publisher, topic = scheduled
    sim.clear_requests()
    message_id = publisher.publish(topic, b'{"sweep": true}').result(timeout=10)

    def decisions() -> list[dict[str, Any]]:
        found = [d for d in server.decisions() if d.get("message_id") == message_id]
        return found if len(found) == len(OPTED_IN) else []

    found = wait_until(decisions, timeout=30, what="a decision per opted-in Deployment")
    by_target = {d["target"]: d for d in found}
    assert sorted(by_target) == sorted(f"{ns}/{name}" for ns, name in OPTED_IN)
    assert all(d["source"] == "scheduler" for d in found)
    rebalanced = [t for t, d in by_target.items() if d["action"] == "rebalanced"]
    capped = [t for t, d in by_target.items() if d["reason"] == "run_budget_exhausted"]
    assert (len(rebalanced), len(capped)) == (2, 1)
    removed = {f"{ns}/{name}": evictions(sim, ns, name) for ns, name in OPTED_IN}
    assert sum(len(pods) for pods in removed.values()) == MAX_PODS_PER_RUN
    for target in rebalanced:
        assert removed[target] == by_target[target]["evicted"]
        assert len(removed[target]) == MAX_PODS_TO_DELETE
        assert lease(sim, *target.split("/")) is not None
    (skipped,) = capped
    assert removed[skipped] == []
    assert lease(sim, *skipped.split("/")) is None  # never locked
    assert evictions(sim, *PLAIN) == []
    assert lease(sim, *PLAIN) is None
    assert requests_for(sim, *PLAIN) == []
