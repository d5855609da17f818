"""The Kubernetes adapter over HTTP(S) through the real client, against the API simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import wait_until
from pod_rebalancer.adapters.kube import Cluster
from pod_rebalancer.core.model import EvictionStatus, LeaseState, Target
from pod_rebalancer.errors import KubernetesError
from pod_rebalancer.ports import EventNote
from tests.kube import TOKEN, api_client, deployment, scenario

NS = "adapter"
EXCLUDE = "pod-rebalancer.io/exclude"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    body = scenario(
        [NS],
        [
            deployment(NS, "web", 6),
            deployment(NS, "big", 1100),
            deployment(NS, "guarded", 3),
            deployment(NS, "opted-out", 3, annotations={EXCLUDE: "true"}),
        ],
        pdbs=[
            {"namespace": NS, "name": "guarded", "selector": {"app": "guarded"}, "minAvailable": 3}
        ],
        users={
            TOKEN: {"name": "system:serviceaccount:ops:pod-rebalancer"},
            "nobody": {"name": "x"},
        },
    )
    server = KubeSim(tmp_path_factory.mktemp("kube-adapter"), body, tls=True, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(sim: KubeSim) -> Iterator[Cluster]:
    sim.clear_faults()
    client = Cluster(api_client(sim), exclude_annotation=EXCLUDE, timeout=1.0)
    try:
        yield client
    finally:
        client.close()


def test_reads_a_settled_deployment_with_its_selector(cluster: Cluster) -> None:
    found = cluster.deployment(Target(NS, "web"))
    assert found is not None
    assert found.selector == "app=web"
    assert found.containers == ("web",)
    assert found.state.replicas == found.state.updated_replicas == 6
    assert found.state.unavailable_replicas == 0
    assert found.state.excluded is False


def test_a_missing_deployment_is_none(cluster: Cluster) -> None:
    assert cluster.deployment(Target(NS, "nope")) is None


def test_the_exclude_annotation_on_the_deployment_is_read(cluster: Cluster) -> None:
    found = cluster.deployment(Target(NS, "opted-out"))
    assert found is not None
    assert found.state.excluded is True


def test_lists_a_large_deployment_in_pages(cluster: Cluster, sim: KubeSim) -> None:
    pods = cluster.pods(NS, "app=big")
    assert len(pods) == len({p.name for p in pods}) == 1100
    assert all(p.ready and not p.terminating for p in pods)
    lists = [
        r
        for r in sim.requests()
        if r["path"] == f"/api/v1/namespaces/{NS}/pods"
        and r["query"].get("labelSelector") == "app=big"
    ]
    assert [r["query"]["limit"] for r in lists] == ["500", "500", "500"]
    assert "continue" in lists[-1]["query"]


def test_dry_run_eviction_changes_nothing(cluster: Cluster, sim: KubeSim) -> None:
    pod = cluster.pods(NS, "app=web")[0]
    result = cluster.remover("evict", dry_run=True).remove(NS, pod.name, pod.uid)
    assert result.status is EvictionStatus.EVICTED
    after = {p.name: p for p in cluster.pods(NS, "app=web")}
    assert after[pod.name].terminating is False
    assert sim.requests()[-2]["query"].get("dryRun") == "All"


def test_eviction_with_a_stale_uid_is_refused(cluster: Cluster) -> None:
    pod = cluster.pods(NS, "app=web")[0]
    evict = cluster.remover("evict", dry_run=False)
    result = evict.remove(NS, pod.name, "00000000-0000-0000-0000-000000000000")
    assert result.status is EvictionStatus.CHANGED
    assert "UID" in result.message


def test_pdb_refusal_is_blocked_with_the_servers_message(cluster: Cluster) -> None:
    pod = cluster.pods(NS, "app=guarded")[0]
    result = cluster.remover("evict", dry_run=False).remove(NS, pod.name, pod.uid)
    assert result.status is EvictionStatus.BLOCKED
    assert "disruption budget" in result.message


def test_eviction_of_a_missing_pod_is_gone(cluster: Cluster) -> None:
    result = cluster.remover("evict", dry_run=False).remove(NS, "web-gone-xxxxx", "uid")
    assert result.status is EvictionStatus.GONE


def test_eviction_removes_the_pod_and_the_replicaset_replaces_it(cluster: Cluster) -> None:
    before = cluster.pods(NS, "app=web")
    victim = before[-1]
    evict = cluster.remover("evict", dry_run=False)
    assert evict.remove(NS, victim.name, victim.uid).status is EvictionStatus.EVICTED

    def replaced() -> bool:
        now = {p.name: p for p in cluster.pods(NS, "app=web")}
        ready = [p for p in now.values() if p.ready and not p.terminating]
        return victim.name not in now and len(ready) == 6

    wait_until(replaced, timeout=10, what="the evicted pod replaced by a Ready one")


def test_gone_tells_whether_a_pod_went_after_a_lost_answer(cluster: Cluster) -> None:
    first, second = cluster.pods(NS, "app=web")[:2]
    evict = cluster.remover("evict", dry_run=False)
    assert evict.gone(NS, first.name, first.uid) is False
    assert evict.remove(NS, first.name, first.uid).status is EvictionStatus.EVICTED
    assert evict.gone(NS, first.name, first.uid) is True  # terminating, or already gone
    assert evict.gone(NS, second.name, "another-uid") is True  # replaced under its name
    assert cluster.remover("evict", dry_run=True).gone(NS, second.name, second.uid) is False


@pytest.mark.parametrize(
    ("fault", "unsure"),
    [
        ({"status": 403}, False),
        ({"status": 429}, False),
        ({"status": 500}, True),
        ({"status": 504}, True),
        ({"drop": True}, True),
        ({"phase": "after", "drop": True}, True),
        ({"delay": 3}, True),
    ],
    ids=["403", "429", "500", "504", "dropped", "dropped-after", "slower-than-timeout"],
)
def test_a_failed_write_says_whether_it_may_have_happened(
    cluster: Cluster, sim: KubeSim, fault: dict[str, object], unsure: bool
) -> None:
    sim.set_fault(path=f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", **fault)
    now = datetime.now(UTC)
    with pytest.raises(KubernetesError) as caught:
        cluster.create_lease(NS, "unsure", LeaseState("me", now, timedelta(minutes=5), now))
    assert caught.value.unsure is unsure


def test_delete_mode_honours_the_uid_precondition(cluster: Cluster) -> None:
    pod = cluster.pods(NS, "app=web")[0]
    delete = cluster.remover("delete", dry_run=False)
    assert delete.remove(NS, pod.name, "wrong-uid").status is EvictionStatus.CHANGED
    dry_delete = cluster.remover("delete", dry_run=True)
    assert dry_delete.remove(NS, pod.name, pod.uid).status is EvictionStatus.EVICTED
    assert pod.name in {p.name for p in cluster.pods(NS, "app=web")}


def test_lease_create_conflict_and_stale_replace(cluster: Cluster) -> None:
    now = datetime.now(UTC)
    state = LeaseState("me", now, timedelta(minutes=5), now, ("web-a", "web-b"))
    first = cluster.create_lease(NS, "lock-a", state)
    assert first is not None
    assert first.state.holder == "me"
    assert first.state.selection == ("web-a", "web-b")
    assert first.state.last_rebalance is not None
    assert abs(first.state.last_rebalance - now) < timedelta(milliseconds=1)
    assert cluster.create_lease(NS, "lock-a", state) is None  # AlreadyExists
    second = cluster.replace_lease(first, replace(state, holder="b"))
    assert second is not None
    assert cluster.replace_lease(first, state) is None  # stale resourceVersion: Conflict
    current = cluster.lease(NS, "lock-a")
    assert current is not None
    assert current.state.holder == "b"


def test_records_an_event_on_the_deployment(cluster: Cluster, sim: KubeSim) -> None:
    found = cluster.deployment(Target(NS, "web"))
    assert found is not None
    note = EventNote("Rebalanced", "evicted a, b", warning=False)
    cluster.event(found, note, now=datetime.now(UTC), instance="test")
    events = [
        e
        for e in sim.state()["events"]
        if e.get("involvedObject", {}).get("name") == "web" and e.get("reason") == "Rebalanced"
    ]
    assert events
    assert events[-1]["involvedObject"]["kind"] == "Deployment"


def test_forbidden_is_a_kubernetes_error_with_the_status(sim: KubeSim) -> None:
    client = Cluster(api_client(sim, token="nobody"), exclude_annotation=EXCLUDE)
    with pytest.raises(KubernetesError) as caught:
        client.deployment(Target(NS, "web"))
    assert caught.value.status == 403
    assert "forbidden" in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 500}, "HTTP 500"),
        ({"status": 503}, "HTTP 503"),
        ({"drop": True}, "unreachable"),
        ({"latency": 3}, "unreachable"),
    ],
    ids=["500", "503", "dropped", "slower-than-timeout"],
)
def test_api_faults_become_kubernetes_errors(
    cluster: Cluster, sim: KubeSim, fault: dict[str, object], expected: str
) -> None:
    sim.set_fault("pods.list", **fault)
    with pytest.raises(KubernetesError, match=expected):
        cluster.pods(NS, "app=web")


def test_unreachable_api_is_a_kubernetes_error(sim: KubeSim, tmp_path: Path) -> None:
    from kubernetes.client import ApiClient, Configuration  # noqa: PLC0415

    from infra.stack.processes import free_port  # noqa: PLC0415

    client = Cluster(
        ApiClient(Configuration(host=f"http://127.0.0.1:{free_port()}")),
        exclude_annotation=EXCLUDE,
    )
    with pytest.raises(KubernetesError, match="unreachable"):
        client.deployment(Target(NS, "web"))
