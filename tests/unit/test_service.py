"""The service with in-memory fakes of its own ports: every safety guard and every outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pod_rebalancer.adapters.kube import (
    LAST_REBALANCE,
    Deployment,
    EvictionResult,
    EvictionStatus,
    Lease,
    parse_time,
)
from pod_rebalancer.config import Settings
from pod_rebalancer.core.guards import DeploymentState
from pod_rebalancer.core.model import LeaseState, PodInfo, Target
from pod_rebalancer.errors import AuditError, KubernetesError, MetricsError
from pod_rebalancer.locking import lease_name
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
TARGET = Target("posthog", "ingestion-consumer")
CPU = [2.3, 2.0, 0.8, 0.9, 0.7, 0.8, 0.75, 0.85, 0.1, 0.05]
NAMES = [f"ingestion-consumer-abc-{i:02d}" for i in range(len(CPU))]


def settled(replicas: int = len(CPU), **changes: Any) -> DeploymentState:
    state = DeploymentState(
        generation=3,
        observed_generation=3,
        replicas=replicas,
        updated_replicas=replicas,
        available_replicas=replicas,
        unavailable_replicas=0,
    )
    return replace(state, **changes)


@dataclass
class FakeMetrics:
    samples: dict[str, float] = field(default_factory=lambda: dict(zip(NAMES, CPU, strict=True)))
    fail: bool = False
    calls: int = 0

    def pod_cpu(self, target: Target, container: str, window: timedelta, at: datetime):
        self.calls += 1
        if self.fail:
            raise MetricsError("metrics server unreachable")
        return dict(self.samples)


@dataclass
class FakeCluster:
    """Keeps pods, one Deployment and Leases in memory, with the real API's answers."""

    state: DeploymentState = field(default_factory=settled)
    pods_: list[PodInfo] = field(
        default_factory=lambda: [
            PodInfo(n, f"uid-{n}", True, NOW - timedelta(hours=2)) for n in NAMES
        ]
    )
    leases: dict[str, Lease] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # evictions answered with 429
    broken: set[str] = field(default_factory=set)  # evictions answered with 500
    removed: list[tuple[str, bool]] = field(default_factory=list)  # (pod, dry_run)
    deletes: list[str] = field(default_factory=list)
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    version: int = 0
    exists: bool = True

    def deployment(self, target: Target) -> Deployment | None:
        if not self.exists:
            return None
        return Deployment(
            target, "dep-uid", "app=ingestion-consumer", ("ingestion-consumer",), self.state
        )

    def pods(self, namespace: str, selector: str) -> list[PodInfo]:
        return list(self.pods_)

    def lease(self, namespace: str, name: str) -> Lease | None:
        return self.leases.get(name)

    def _store(self, namespace: str, name: str, body: dict[str, Any]) -> Lease:
        self.version += 1
        spec = body["spec"]
        state = LeaseState(
            holder=spec.get("holderIdentity"),
            renewed_at=parse_time(spec.get("renewTime")),
            duration=timedelta(seconds=spec["leaseDurationSeconds"]),
            last_rebalance=parse_time(body["metadata"]["annotations"].get(LAST_REBALANCE)),
        )
        lease = Lease(name, namespace, str(self.version), state, body)
        self.leases[name] = lease
        return lease

    def create_lease(self, namespace: str, name: str, body: dict[str, Any]) -> Lease | None:
        return None if name in self.leases else self._store(namespace, name, body)

    def replace_lease(self, lease: Lease, body: dict[str, Any]) -> Lease | None:
        current = self.leases.get(lease.name)
        if current is None or current.resource_version != lease.resource_version:
            return None
        return self._store(lease.namespace, lease.name, body)

    def evict(self, namespace: str, pod: str, uid: str, dry_run: bool) -> EvictionResult:
        if pod in self.broken:
            raise KubernetesError("HTTP 500", 500)
        if pod in self.blocked:
            return EvictionResult(pod, EvictionStatus.BLOCKED, "would violate the PDB")
        self.removed.append((pod, dry_run))
        return EvictionResult(pod, EvictionStatus.EVICTED)

    def delete(self, namespace: str, pod: str, uid: str, dry_run: bool) -> EvictionResult:
        self.deletes.append(pod)
        return self.evict(namespace, pod, uid, dry_run)

    def event(self, deployment, reason, message, *, warning, now, instance) -> None:
        self.events.append((reason, message, warning))


def service(cluster: FakeCluster, metrics: FakeMetrics | None = None, **overrides: Any):
    values: dict[str, Any] = {
        "prometheus_endpoint": "http://metrics.invalid",
        "kube_namespace": "posthog",
        "deployment_name": "ingestion-consumer",
        "dry_run": False,
        "min_pod_age": "10m",
    }
    values.update(overrides)
    settings = Settings(**values)
    return Rebalancer(
        settings,
        metrics or FakeMetrics(),
        cluster,
        clock=lambda: NOW,
        log=logging.getLogger("test-service"),
    )


def run(svc: Rebalancer, dry_run: bool = False, target: Target = TARGET):
    (outcome,) = svc.run(RunRequest((target,), dry_run, "test"))
    return outcome


def test_real_run_evicts_the_busiest_and_idlest_and_records_an_event() -> None:
    cluster = FakeCluster()
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "imbalance_confirmed")
    assert outcome.evicted == (NAMES[0], NAMES[9])
    assert cluster.removed == [(NAMES[0], False), (NAMES[9], False)]
    assert [e[0] for e in cluster.events] == ["Rebalanced"]
    lease = cluster.leases[lease_name(TARGET)]
    assert lease.state.holder is None  # released
    assert lease.state.last_rebalance == NOW  # cooldown remembered


def test_dry_run_sends_server_side_dry_runs_and_changes_nothing() -> None:
    cluster = FakeCluster()
    outcome = run(service(cluster), dry_run=True)
    assert (outcome.action.value, outcome.reason) == ("would_rebalance", "imbalance_confirmed")
    assert outcome.evicted == ()
    assert cluster.removed == [(NAMES[0], True), (NAMES[9], True)]
    assert cluster.leases == {}
    assert cluster.events == []


def test_dry_run_setting_wins_over_a_request_that_asks_for_a_real_run() -> None:
    cluster = FakeCluster()
    outcome = run(service(cluster, dry_run=True), dry_run=False)
    assert outcome.dry_run is True
    assert all(dry for _, dry in cluster.removed)


def test_delete_mode_deletes_instead_of_evicting() -> None:
    cluster = FakeCluster()
    run(service(cluster, eviction_mode="delete"))
    assert cluster.deletes == [NAMES[0], NAMES[9]]


def test_skips_a_target_outside_the_allow_list_without_touching_anything() -> None:
    cluster, metrics = FakeCluster(), FakeMetrics()
    outcome = run(service(cluster, metrics), target=Target("kube-system", "coredns"))
    assert outcome.reason == "target_not_allowed"
    assert metrics.calls == 0


def test_missing_deployment_is_target_not_found() -> None:
    assert run(service(FakeCluster(exists=False))).reason == "target_not_found"


@pytest.mark.parametrize(
    "state",
    [
        settled(observed_generation=2),
        settled(updated_replicas=7),
        settled(unavailable_replicas=1),
    ],
    ids=["generation-not-observed", "not-all-updated", "unavailable-replica"],
)
def test_skips_while_a_rollout_is_in_progress(state: DeploymentState) -> None:
    cluster, metrics = FakeCluster(state=state), FakeMetrics()
    outcome = run(service(cluster, metrics))
    assert outcome.reason == "rollout_in_progress"
    assert metrics.calls == 0
    assert cluster.removed == []


def test_skips_an_excluded_deployment() -> None:
    cluster = FakeCluster(state=settled(excluded=True))
    assert run(service(cluster)).reason == "excluded"
    assert cluster.removed == []


def test_skips_when_any_pod_is_not_ready() -> None:
    cluster = FakeCluster()
    cluster.pods_[4] = replace(cluster.pods_[4], ready=False)
    assert run(service(cluster)).reason == "pods_not_ready"
    assert cluster.removed == []


def test_never_selects_an_excluded_pod() -> None:
    cluster = FakeCluster()
    cluster.pods_[0] = replace(cluster.pods_[0], excluded=True)
    outcome = run(service(cluster, cpu_variance_threshold=0.1))
    assert NAMES[0] not in outcome.evicted
    assert outcome.reason == "imbalance_confirmed", outcome
    assert outcome.evicted[0] == NAMES[1]  # the next busiest


def test_never_selects_a_pod_younger_than_min_age() -> None:
    cluster = FakeCluster()
    cluster.pods_[9] = replace(cluster.pods_[9], created_at=NOW - timedelta(minutes=3))
    outcome = run(service(cluster))
    assert NAMES[9] not in outcome.evicted
    assert outcome.plan is not None
    assert outcome.plan.ignored == {"too_young": 1}


def test_metrics_for_pods_that_no_longer_exist_are_ignored() -> None:
    metrics = FakeMetrics()
    metrics.samples["ingestion-consumer-old-zzzzz"] = 9.0  # a stale series, the busiest of all
    outcome = run(service(FakeCluster(), metrics))
    assert "ingestion-consumer-old-zzzzz" not in outcome.evicted
    assert outcome.plan is not None
    assert outcome.plan.ignored == {"stale_series": 1}


def test_keeps_min_ready_pods_after_acting() -> None:
    cluster = FakeCluster(state=settled(replicas=4))
    cluster.pods_ = cluster.pods_[:2] + cluster.pods_[8:]  # 4 pods: 2.3, 2.0, 0.1, 0.05
    outcome = run(service(cluster))
    assert len(outcome.evicted) == 1  # 4 Ready - 1 = 3 = MIN_PODS_REQUIRED


def test_never_exceeds_max_pods_to_delete() -> None:
    cluster = FakeCluster()
    outcome = run(service(cluster, max_pods_to_delete=3))
    assert len(outcome.evicted) == 3
    assert [s.role for s in outcome.plan.selected] == ["busiest", "idlest", "busiest"]


def test_second_run_within_cooldown_is_skipped() -> None:
    cluster = FakeCluster()
    svc = service(cluster)
    assert run(svc).action.value == "rebalanced"
    outcome = run(svc)
    assert outcome.reason == "cooldown"
    assert len(cluster.removed) == 2


def test_dry_run_reports_cooldown_too() -> None:
    cluster = FakeCluster()
    run(service(cluster))
    assert run(service(cluster), dry_run=True).reason == "cooldown"


def held(cluster: FakeCluster, holder: str, renewed: str) -> None:
    """Another invocation's Lease on the target, renewed at `renewed`, for five minutes."""
    spec = {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": 300}
    cluster._store("posthog", lease_name(TARGET), {"metadata": {"annotations": {}}, "spec": spec})


def test_a_live_lock_held_by_another_invocation_is_locked() -> None:
    cluster = FakeCluster()
    held(cluster, "someone-else", "2026-11-22T02:59:00.000000Z")  # a minute ago
    assert run(service(cluster)).reason == "locked"
    assert cluster.removed == []


def test_an_expired_lock_is_taken_over() -> None:
    cluster = FakeCluster()
    held(cluster, "crashed", "2026-11-22T02:00:00.000000Z")  # an hour ago
    assert run(service(cluster)).action.value == "rebalanced"


def test_pdb_refusal_stops_the_run_and_is_reported_as_eviction_blocked() -> None:
    cluster = FakeCluster(blocked={NAMES[0]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("skipped", "eviction_blocked")
    assert cluster.removed == []  # the idlest was not tried after the refusal
    assert NAMES[0] in outcome.errors
    assert [e[0] for e in cluster.events] == ["RebalanceBlocked"]
    # Nothing was evicted, so the cooldown stamp is not kept.
    assert cluster.leases[lease_name(TARGET)].state.last_rebalance is None


def test_refusal_after_a_success_is_partial() -> None:
    cluster = FakeCluster(blocked={NAMES[9]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "partial")
    assert outcome.evicted == (NAMES[0],)
    assert cluster.events[0][2] is True  # a Warning Event


def test_dry_run_that_a_pdb_would_refuse_says_so() -> None:
    cluster = FakeCluster(blocked={NAMES[0]})
    outcome = run(service(cluster), dry_run=True)
    assert outcome.reason == "eviction_blocked"


def test_api_failure_during_eviction_fails_closed_and_frees_the_cooldown() -> None:
    cluster = FakeCluster(broken={NAMES[0]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("failed", "dependency_unavailable")
    assert outcome.retryable is True
    assert cluster.removed == []
    assert cluster.leases[lease_name(TARGET)].state.holder is None


def test_metrics_failure_is_retryable_and_does_nothing() -> None:
    cluster = FakeCluster()
    outcome = run(service(cluster, FakeMetrics(fail=True)))
    assert outcome.action.value == "failed"
    assert outcome.retryable is True
    assert "metrics" in outcome.errors
    assert cluster.removed == []
    assert cluster.leases == {}


def test_duplicate_targets_are_processed_once() -> None:
    cluster = FakeCluster()
    outcomes = service(cluster).run(RunRequest((TARGET, TARGET), False, "test"))
    assert len(outcomes) == 1


@dataclass
class FakeAudit:
    fail: bool = False
    records: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    topic: str = "projects/p/topics/audit"

    def publish(self, record: dict[str, Any], attributes: dict[str, str]) -> str:
        if self.fail:
            raise AuditError("publish timed out")
        self.records.append((record, attributes))
        return str(len(self.records))


def audited(cluster: FakeCluster, audit: FakeAudit) -> Rebalancer:
    settings = Settings(
        prometheus_endpoint="http://metrics.invalid",
        kube_namespace="posthog",
        deployment_name="ingestion-consumer",
        dry_run=False,
        min_pod_age="10m",
    )
    return Rebalancer(
        settings,
        FakeMetrics(),
        cluster,
        clock=lambda: NOW,
        log=logging.getLogger("t"),
        audit=audit,
    )


def test_every_report_is_published_to_the_audit_topic() -> None:
    audit = FakeAudit()
    run(audited(FakeCluster(), audit))
    ((record, attributes),) = audit.records
    assert record["action"] == "rebalanced"
    assert record["evicted"] == [NAMES[0], NAMES[9]]
    assert record["source"] == "test"
    assert attributes == {
        "namespace": "posthog",
        "deployment": "ingestion-consumer",
        "action": "rebalanced",
        "reason": "imbalance_confirmed",
    }


def test_a_failed_publish_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster()
    with caplog.at_level(logging.ERROR, logger="t"):
        outcome = run(audited(cluster, FakeAudit(fail=True)))
    assert outcome.action.value == "rebalanced"
    assert len(cluster.removed) == 2
    assert "audit record lost" in caplog.text


def test_resolved_alert_targets_are_reported_as_alert_resolved() -> None:
    cluster = FakeCluster()
    outcomes = service(cluster).run(
        RunRequest((), False, "alertmanager", resolved=(TARGET,), context={"group_key": "g"})
    )
    assert [(o.action.value, o.reason) for o in outcomes] == [("skipped", "alert_resolved")]
    assert cluster.removed == []


def test_a_duplicate_during_the_rollout_that_eviction_caused_hears_cooldown() -> None:
    cluster = FakeCluster()
    run(service(cluster))
    cluster.state = settled(unavailable_replicas=2, updated_replicas=8)  # replacements starting
    assert run(service(cluster)).reason == "cooldown"
