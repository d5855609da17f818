"""The service with in-memory fakes of its own ports: every safety guard and every outcome."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import LeaseState, Target
from pod_rebalancer.errors import KubernetesError
from pod_rebalancer.locking import LOCK_TTL, lease_name
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest
from tests.builders import NOW, settled
from tests.fakes import FakeAudit, FakeCluster, FakeMetrics

TARGET = Target("posthog", "ingestion-consumer")
CPU = [2.3, 2.0, 0.8, 0.9, 0.7, 0.8, 0.75, 0.85, 0.1, 0.05]
NAMES = [f"ingestion-consumer-abc-{i:02d}" for i in range(len(CPU))]


def cluster_of(**changes: Any) -> FakeCluster:
    return FakeCluster(**{"names": list(NAMES), "state": settled(len(NAMES)), **changes})


def metrics_of() -> FakeMetrics:
    return FakeMetrics(dict(zip(NAMES, CPU, strict=True)))


def service(
    cluster: FakeCluster,
    metrics: FakeMetrics | None = None,
    audit: FakeAudit | None = None,
    **overrides: Any,
) -> Rebalancer:
    values: dict[str, Any] = {
        "prometheus_endpoint": "http://metrics.invalid",
        "kube_namespace": "posthog",
        "deployment_name": "ingestion-consumer",
        "dry_run": False,
        "min_pod_age": "10m",
    }
    values.update(overrides)
    return Rebalancer(
        Settings(**values),
        metrics or metrics_of(),
        cluster,
        clock=lambda: NOW,
        log=logging.getLogger("test-service"),
        audit=audit,
    )


def run(svc: Rebalancer, dry_run: bool = False, target: Target = TARGET) -> Outcome:
    (outcome,) = svc.run(RunRequest((target,), dry_run, "test"))
    return outcome


def removed(cluster: FakeCluster) -> list[str]:
    return [r.pod for r in cluster.removed]


def test_real_run_evicts_the_busiest_and_idlest_and_records_an_event() -> None:
    cluster = cluster_of()
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "imbalance_confirmed")
    assert outcome.evicted == (NAMES[0], NAMES[9])
    assert [(r.pod, r.uid, r.mode, r.dry_run) for r in cluster.removed] == [
        (NAMES[0], f"uid-{NAMES[0]}", "evict", False),
        (NAMES[9], f"uid-{NAMES[9]}", "evict", False),
    ]
    assert [e.reason for e in cluster.events] == ["Rebalanced"]
    assert cluster.events[0].warning is False
    lease = cluster.leases[lease_name(TARGET)]
    assert lease.state.holder is None  # released
    assert lease.state.last_rebalance == NOW  # cooldown remembered
    assert lease.state.selection == (NAMES[0], NAMES[9])


def test_dry_run_sends_server_side_dry_runs_and_changes_nothing() -> None:
    cluster = cluster_of()
    outcome = run(service(cluster), dry_run=True)
    assert (outcome.action.value, outcome.reason) == ("would_rebalance", "imbalance_confirmed")
    assert outcome.evicted == ()
    assert [(r.pod, r.dry_run) for r in cluster.removed] == [(NAMES[0], True), (NAMES[9], True)]
    assert cluster.leases == {}
    assert cluster.events == []


def test_dry_run_setting_wins_over_a_request_that_asks_for_a_real_run() -> None:
    cluster = cluster_of()
    outcome = run(service(cluster, dry_run=True), dry_run=False)
    assert outcome.dry_run is True
    assert all(r.dry_run for r in cluster.removed)


def test_delete_mode_deletes_instead_of_evicting() -> None:
    cluster = cluster_of()
    run(service(cluster, eviction_mode="delete"))
    assert [(r.pod, r.mode) for r in cluster.removed] == [
        (NAMES[0], "delete"),
        (NAMES[9], "delete"),
    ]


def test_skips_a_target_outside_the_allow_list_without_touching_anything() -> None:
    cluster, metrics = cluster_of(), metrics_of()
    outcome = run(service(cluster, metrics), target=Target("kube-system", "coredns"))
    assert outcome.reason == "target_not_allowed"
    assert metrics.calls == []
    assert cluster.listed == []


def test_missing_deployment_is_target_not_found() -> None:
    assert run(service(cluster_of(exists=False))).reason == "target_not_found"


@pytest.mark.parametrize(
    "changes",
    [{"observed_generation": 6}, {"updated_replicas": 7}, {"unavailable_replicas": 1}],
    ids=["generation-not-observed", "not-all-updated", "unavailable-replica"],
)
def test_skips_while_a_rollout_is_in_progress(changes: dict[str, int]) -> None:
    cluster, metrics = cluster_of(), metrics_of()
    cluster.state = replace(cluster.state, **changes)
    outcome = run(service(cluster, metrics))
    assert outcome.reason == "rollout_in_progress"
    assert metrics.calls == []
    assert cluster.removed == []


def test_skips_an_excluded_deployment() -> None:
    cluster = cluster_of()
    cluster.state = replace(cluster.state, excluded=True)
    assert run(service(cluster)).reason == "excluded"
    assert cluster.removed == []


def test_skips_a_deployment_whose_selector_cannot_be_used_as_permanent_not_retryable() -> None:
    cluster, metrics = cluster_of(selector=None), metrics_of()
    outcome = run(service(cluster, metrics))
    assert (outcome.action.value, outcome.reason) == ("skipped", "unsupported_selector")
    assert outcome.retryable is False
    assert "empty selector" in outcome.errors["selector"]
    assert cluster.listed == []
    assert metrics.calls == []


def test_kube_label_selector_overrides_the_selector_of_the_default_deployment_only() -> None:
    cluster = cluster_of(selector=None)
    svc = service(cluster, kube_label_selector="app=override", allowed_namespaces="*")
    assert run(svc).reason == "imbalance_confirmed"
    assert cluster.listed == ["app=override"]
    other = run(svc, target=Target("posthog", "other-consumer"))
    assert other.reason == "unsupported_selector"


def test_measures_the_container_named_like_the_deployment() -> None:
    cluster, metrics = cluster_of(containers=("istio-proxy", "ingestion-consumer")), metrics_of()
    run(service(cluster, metrics))
    assert metrics.calls == [(TARGET, "ingestion-consumer")]


def test_measures_the_only_container_whatever_its_name() -> None:
    cluster, metrics = cluster_of(containers=("consumer",)), metrics_of()
    run(service(cluster, metrics))
    assert metrics.calls == [(TARGET, "consumer")]


def test_container_name_setting_applies_to_the_default_deployment() -> None:
    cluster, metrics = cluster_of(containers=("a", "b")), metrics_of()
    run(service(cluster, metrics, container_name="b"))
    assert metrics.calls == [(TARGET, "b")]


def test_an_ambiguous_container_is_skipped_without_a_query() -> None:
    cluster, metrics = cluster_of(containers=("app", "istio-proxy")), metrics_of()
    outcome = run(service(cluster, metrics))
    assert outcome.reason == "no_metrics"
    assert "ambiguous" in outcome.errors["container"]
    assert metrics.calls == []


def test_skips_when_any_pod_is_not_ready() -> None:
    cluster = cluster_of()
    cluster.without_ready(4)
    assert run(service(cluster)).reason == "pods_not_ready"
    assert cluster.removed == []


def test_never_selects_an_excluded_pod() -> None:
    cluster = cluster_of()
    cluster.pods_[0] = replace(cluster.pods_[0], excluded=True)
    outcome = run(service(cluster, imbalance_threshold=0.1))
    assert NAMES[0] not in outcome.evicted
    assert outcome.reason == "imbalance_confirmed", outcome
    assert outcome.evicted[0] == NAMES[1]  # the next busiest


def test_never_selects_a_pod_started_less_than_min_age_ago() -> None:
    cluster = cluster_of()
    cluster.pods_[9] = replace(cluster.pods_[9], started_at=NOW - timedelta(minutes=3))
    outcome = run(service(cluster))
    assert NAMES[9] not in outcome.evicted
    assert outcome.plan is not None
    assert outcome.plan.ignored == {"too_young": 1}


def test_metrics_for_pods_that_no_longer_exist_are_ignored() -> None:
    metrics = metrics_of()
    metrics.samples["ingestion-consumer-old-zzzzz"] = 9.0  # a stale series, the busiest of all
    outcome = run(service(cluster_of(), metrics))
    assert "ingestion-consumer-old-zzzzz" not in outcome.evicted
    assert outcome.plan is not None
    assert outcome.plan.ignored == {"stale_series": 1}


def test_keeps_min_ready_pods_after_acting() -> None:
    cluster = cluster_of(state=settled(4))
    cluster.pods_ = cluster.pods_[:2] + cluster.pods_[8:]  # 4 pods: 2.3, 2.0, 0.1, 0.05
    outcome = run(service(cluster))
    assert len(outcome.evicted) == 1  # 4 Ready - 1 = 3 = MIN_PODS_REQUIRED


def test_never_exceeds_max_pods_to_delete() -> None:
    outcome = run(service(cluster_of(), max_pods_to_delete=3))
    assert len(outcome.evicted) == 3
    assert outcome.plan is not None
    assert [s.role for s in outcome.plan.selected] == ["busiest", "idlest", "busiest"]


def test_second_run_within_cooldown_is_skipped() -> None:
    cluster = cluster_of()
    svc = service(cluster)
    assert run(svc).action.value == "rebalanced"
    outcome = run(svc)
    assert outcome.reason == "cooldown"
    assert len(cluster.removed) == 2


def test_dry_run_reports_cooldown_too() -> None:
    cluster = cluster_of()
    run(service(cluster))
    assert run(service(cluster), dry_run=True).reason == "cooldown"


def held(cluster: FakeCluster, holder: str, renewed_ago: timedelta) -> None:
    """Another invocation's Lease on the target, renewed `renewed_ago`, for five minutes."""
    state = LeaseState(holder, NOW - renewed_ago, LOCK_TTL, last_rebalance=None)
    cluster.put_lease("posthog", lease_name(TARGET), state)


def test_a_live_lock_held_by_another_invocation_is_locked() -> None:
    cluster = cluster_of()
    held(cluster, "someone-else", timedelta(minutes=1))
    assert run(service(cluster)).reason == "locked"
    assert cluster.removed == []


def test_an_expired_lock_is_taken_over() -> None:
    cluster = cluster_of()
    held(cluster, "crashed", timedelta(hours=1))
    assert run(service(cluster)).action.value == "rebalanced"


def test_pdb_refusal_stops_the_run_and_is_reported_as_eviction_blocked() -> None:
    cluster = cluster_of(blocked={NAMES[0]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("skipped", "eviction_blocked")
    assert cluster.removed == []  # the idlest was not tried after the refusal
    assert NAMES[0] in outcome.errors
    assert [e.reason for e in cluster.events] == ["RebalanceBlocked"]
    # Nothing was evicted, so the cooldown stamp is not kept.
    assert cluster.leases[lease_name(TARGET)].state.last_rebalance is None


def test_a_run_that_removed_nothing_restores_the_previous_stamp_and_selection() -> None:
    cluster = cluster_of(blocked={NAMES[0]})
    before = LeaseState(None, NOW - timedelta(hours=2), LOCK_TTL, NOW - timedelta(hours=2), ("a",))
    cluster.put_lease("posthog", lease_name(TARGET), before)
    run(service(cluster))
    after = cluster.leases[lease_name(TARGET)].state
    assert (after.holder, after.last_rebalance, after.selection) == (
        None,
        before.last_rebalance,
        ("a",),
    )


def test_refusal_after_a_success_is_partial() -> None:
    cluster = cluster_of(blocked={NAMES[9]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "partial")
    assert outcome.evicted == (NAMES[0],)
    assert cluster.events[0].warning is True


def test_dry_run_that_a_pdb_would_refuse_says_so() -> None:
    cluster = cluster_of(blocked={NAMES[0]})
    outcome = run(service(cluster), dry_run=True)
    assert (outcome.action.value, outcome.reason) == ("skipped", "eviction_blocked")


@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry"])
def test_api_failure_during_eviction_fails_closed_and_retryably(dry_run: bool) -> None:
    cluster = cluster_of(broken={NAMES[0]})
    outcome = run(service(cluster), dry_run=dry_run)
    assert (outcome.action.value, outcome.reason) == ("failed", "dependency_unavailable")
    assert outcome.retryable is True
    assert NAMES[0] in outcome.errors
    assert cluster.removed == []
    assert all(lease.state.holder is None for lease in cluster.leases.values())


@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry"])
def test_pods_that_vanished_before_their_removal_are_partial(dry_run: bool) -> None:
    cluster = cluster_of(gone={NAMES[0], NAMES[9]})
    outcome = run(service(cluster), dry_run=dry_run)
    assert (outcome.action.value, outcome.reason) == ("skipped", "partial")
    assert set(outcome.errors) == {NAMES[0], NAMES[9]}


def rolls_out(cluster: FakeCluster) -> None:
    cluster.state = replace(cluster.state, generation=cluster.state.generation + 1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (rolls_out, "rollout_in_progress"),
        (lambda c: setattr(c, "state", replace(c.state, excluded=True)), "excluded"),
        (lambda c: setattr(c, "exists", False), "target_not_found"),
    ],
    ids=["rollout", "excluded", "vanished"],
)
def test_a_deployment_changed_after_the_first_eviction_stops_the_run(
    change: Any, reason: str
) -> None:
    cluster = cluster_of(after_removal=change)
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "partial")
    assert outcome.evicted == (NAMES[0],)
    assert outcome.errors[NAMES[9]].startswith(f"{reason}: not evicted")
    assert cluster.deployment_reads == 2  # once to decide, once before the second eviction
    # Something was evicted: the cooldown stamp stays.
    assert cluster.leases[lease_name(TARGET)].state.last_rebalance == NOW


def test_our_own_eviction_does_not_count_as_a_rollout() -> None:
    def evicted_one(cluster: FakeCluster) -> None:
        cluster.state = replace(cluster.state, updated_replicas=9, unavailable_replicas=1)

    cluster = cluster_of(after_removal=evicted_one)
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "imbalance_confirmed")
    assert outcome.evicted == (NAMES[0], NAMES[9])


def test_a_failed_reread_stops_the_run_after_what_was_done() -> None:
    def fails_second(cluster: FakeCluster, reads: int) -> None:
        if reads > 1:
            raise KubernetesError("Kubernetes API answered HTTP 503", 503)

    cluster = cluster_of(before_read=fails_second)
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "partial")
    assert outcome.evicted == (NAMES[0],)
    assert "HTTP 503" in outcome.errors[NAMES[9]]


def test_a_rollout_seen_before_anything_was_evicted_is_the_reason_to_skip() -> None:
    def rolls_out_on_second(cluster: FakeCluster, reads: int) -> None:
        if reads == 2:
            rolls_out(cluster)

    cluster = cluster_of(gone={NAMES[0]}, before_read=rolls_out_on_second)
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("skipped", "rollout_in_progress")
    assert cluster.removed == []
    assert set(outcome.errors) == {NAMES[0], NAMES[9]}


def test_a_removal_whose_answer_was_lost_counts_if_the_pod_went() -> None:
    cluster = cluster_of(lost={NAMES[0]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "partial")
    assert outcome.evicted == (NAMES[0],)  # what happened, although its answer was lost
    assert outcome.errors[NAMES[9]].startswith("not evicted: the run stopped")
    assert removed(cluster) == [NAMES[0]]  # nothing more sent once the API misbehaved
    assert cluster.leases[lease_name(TARGET)].state.last_rebalance == NOW  # the stamp stays


def test_the_last_removal_whose_answer_was_lost_is_a_full_rebalance() -> None:
    cluster = cluster_of(lost={NAMES[9]})
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("rebalanced", "imbalance_confirmed")
    assert outcome.evicted == (NAMES[0], NAMES[9])


def test_a_lost_removal_that_cannot_be_checked_fails_but_keeps_the_cooldown() -> None:
    cluster = cluster_of(lost={NAMES[0]}, unreadable=True)
    outcome = run(service(cluster))
    assert (outcome.action.value, outcome.reason) == ("failed", "dependency_unavailable")
    assert outcome.retryable is True
    assert "whether it was evicted is unknown" in outcome.errors[NAMES[0]]
    # It may have been evicted: a retry must meet the cooldown, not evict again.
    lease = cluster.leases[lease_name(TARGET)].state
    assert (lease.holder, lease.last_rebalance) == (None, NOW)


def test_a_dry_run_removal_whose_answer_was_lost_removed_nothing() -> None:
    cluster = cluster_of(lost={NAMES[0]})
    outcome = run(service(cluster), dry_run=True)
    assert (outcome.action.value, outcome.reason) == ("failed", "dependency_unavailable")
    assert cluster.removed == []


def test_metrics_failure_is_retryable_and_does_nothing() -> None:
    cluster, metrics = cluster_of(), metrics_of()
    metrics.fail = True
    outcome = run(service(cluster, metrics))
    assert outcome.action.value == "failed"
    assert outcome.retryable is True
    assert "metrics" in outcome.errors
    assert cluster.removed == []
    assert cluster.leases == {}


def test_duplicate_targets_are_processed_once() -> None:
    outcomes = service(cluster_of()).run(RunRequest((TARGET, TARGET), False, "test"))
    assert len(outcomes) == 1


def test_every_report_is_published_to_the_audit_topic() -> None:
    audit = FakeAudit()
    run(service(cluster_of(), audit=audit))
    ((record, attributes),) = audit.records
    assert record["action"] == "rebalanced"
    assert record["evicted"] == [NAMES[0], NAMES[9]]
    assert record["source"] == "test"
    assert record["time"] == NOW.isoformat()
    assert attributes == {
        "namespace": "posthog",
        "deployment": "ingestion-consumer",
        "action": "rebalanced",
        "reason": "imbalance_confirmed",
    }


def test_a_failed_publish_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    cluster = cluster_of()
    with caplog.at_level(logging.ERROR, logger="test-service"):
        outcome = run(service(cluster, audit=FakeAudit(fail=True)))
    assert outcome.action.value == "rebalanced"
    assert len(cluster.removed) == 2
    assert "audit record lost" in caplog.text


def test_resolved_alert_targets_are_reported_as_alert_resolved() -> None:
    cluster = cluster_of()
    outcomes = service(cluster).run(
        RunRequest((), False, "alertmanager", resolved=(TARGET,), context={"group_key": "g"})
    )
    assert [(o.action.value, o.reason) for o in outcomes] == [("skipped", "alert_resolved")]
    assert cluster.removed == []


def test_a_duplicate_during_the_rollout_that_eviction_caused_hears_cooldown() -> None:
    cluster = cluster_of()
    run(service(cluster))
    cluster.state = replace(cluster.state, unavailable_replicas=2, updated_replicas=8)
    assert run(service(cluster)).reason == "cooldown"
