"""Sweeps and the run's budget, with in-memory fakes of the ports: which Deployments a sweep
finds, SWEEP_CONCURRENCY, MAX_PODS_PER_RUN shared by concurrent targets, failures kept apart."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer.budget import RunBudget
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import AllowList, LeaseState, Target
from pod_rebalancer.core.sweep import reach
from pod_rebalancer.errors import ConfigError, KubernetesError
from pod_rebalancer.locking import LOCK_TTL, lease_name
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.sweep import in_parallel
from pod_rebalancer.triggers import RunRequest
from pod_rebalancer.web import HttpRequest, handle
from tests.builders import NOW
from tests.fakes import FakeFleet, FleetMetrics

SKEWED = [2.3, 2.0, 0.8, 0.9, 0.7, 0.8, 0.75, 0.85, 0.1, 0.05]  # two pods selected
SMALL = [2.3, 0.8, 0.75, 0.05]  # four pods: one selected, three (MIN_PODS_REQUIRED) stay
BALANCED = [0.5, 0.51, 0.49, 0.5, 0.5, 0.5]
A, B, C = "team-a", "team-b", "team-c"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "prometheus_endpoint": "http://metrics.invalid",
        "kube_namespace": A,
        "deployment_name": "consumer",
        "dry_run": False,
        "min_pod_age": "10m",
        "allowed_namespaces": f"{A},{B}",
    }
    values.update(overrides)
    return Settings(**values)


def service(fleet: FakeFleet, metrics: FleetMetrics | None = None, **overrides: Any) -> Rebalancer:
    return Rebalancer(
        settings(**overrides),
        metrics or FleetMetrics(fleet),
        fleet,
        clock=lambda: NOW,
        log=logging.getLogger("test-sweep"),
    )


def sweep(svc: Rebalancer, dry_run: bool = False) -> list[Outcome]:
    return svc.run(RunRequest((), dry_run, "test", sweep=True))


def summary(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    return [(str(o.target), o.action.value, o.reason) for o in outcomes]


def skewed_fleet(*targets: Target) -> FakeFleet:
    fleet = FakeFleet()
    for target in targets:
        fleet.add(target, SKEWED)
    return fleet


def test_a_sweep_runs_every_opted_in_deployment_of_the_allowed_namespaces_in_order() -> None:
    fleet = FakeFleet()
    fleet.add(Target(B, "ingest"), SKEWED)
    fleet.add(Target(A, "consumer"), SKEWED)
    fleet.add(Target(A, "balanced"), BALANCED)
    fleet.add(Target(A, "not-opted-in"), SKEWED, enabled=False)
    fleet.add(Target(A, "legacy"), SKEWED)  # opted in, but not in ALLOWED_DEPLOYMENTS
    fleet.add(Target(C, "elsewhere"), SKEWED)  # opted in, outside ALLOWED_NAMESPACES
    metrics = FleetMetrics(fleet)
    outcomes = sweep(service(fleet, metrics, allowed_deployments="consumer,balanced,ingest"))
    assert summary(outcomes) == [
        ("team-a/balanced", "skipped", "below_threshold"),
        ("team-a/consumer", "rebalanced", "imbalance_confirmed"),
        ("team-b/ingest", "rebalanced", "imbalance_confirmed"),
    ]
    assert sorted(fleet.listed) == [A, B]  # team-c is never listed
    assert set(fleet.removed()) == {Target(A, "consumer"), Target(B, "ingest")}
    # The others are left alone: not measured, no Lease read, nothing removed.
    assert set(metrics.queried) == {
        Target(A, "balanced"),
        Target(A, "consumer"),
        Target(B, "ingest"),
    }
    for name in ("not-opted-in", "legacy"):
        assert fleet.members[Target(A, name)].leases == {}
        assert fleet.members[Target(A, name)].deployment_reads == 0


def test_each_target_keeps_its_own_lease_cap_and_events() -> None:
    fleet = skewed_fleet(Target(A, "one"), Target(B, "two"))
    outcomes = sweep(service(fleet, max_pods_to_delete=2))
    for outcome in outcomes:
        member = fleet.members[outcome.target]
        assert len(outcome.evicted) == 2
        lease = member.leases[lease_name(outcome.target)]
        assert (lease.state.holder, lease.state.last_rebalance) == (None, NOW)
        assert [e.reason for e in member.events] == ["Rebalanced"]


def test_the_exclude_annotation_wins_over_the_opt_in() -> None:
    fleet = skewed_fleet(Target(A, "consumer"))
    member = fleet.members[Target(A, "consumer")]
    member.state = replace(member.state, excluded=True)
    (outcome,) = sweep(service(fleet))
    assert (outcome.action.value, outcome.reason) == ("skipped", "excluded")
    assert member.removed == []


def test_an_empty_sweep_has_no_results() -> None:
    fleet = FakeFleet()
    fleet.add(Target(A, "consumer"), SKEWED, enabled=False)
    assert sweep(service(fleet)) == []


def test_a_second_sweep_inside_the_cooldown_evicts_nothing_more() -> None:
    fleet = skewed_fleet(Target(A, "one"), Target(B, "two"))
    svc = service(fleet)
    sweep(svc)
    assert {o.reason for o in sweep(svc)} == {"cooldown"}
    assert sum(len(pods) for pods in fleet.removed().values()) == 4


def test_targets_whose_selection_no_longer_fits_the_run_budget_are_skipped() -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target(A, "a2"), Target(A, "a3"))
    fleet.add(Target(B, "small"), SMALL)  # selects one pod: still fits the last one left
    outcomes = sweep(service(fleet, max_pods_per_run=5, sweep_concurrency=1))
    assert summary(outcomes) == [
        ("team-a/a1", "rebalanced", "imbalance_confirmed"),
        ("team-a/a2", "rebalanced", "imbalance_confirmed"),
        ("team-a/a3", "skipped", "run_budget_exhausted"),
        ("team-b/small", "rebalanced", "imbalance_confirmed"),
    ]
    skipped = outcomes[2]
    assert skipped.plan is not None
    assert len(skipped.plan.selected) == 2  # what it would have done
    assert skipped.evicted == ()
    assert skipped.errors == {
        "budget": "MAX_PODS_PER_RUN=5: 1 of the run's 5 pods left, 2 planned here"
    }
    assert skipped.retryable is False
    a3 = fleet.members[Target(A, "a3")]
    assert (a3.removed, a3.leases, a3.events) == ([], {}, [])  # not even locked
    assert sum(len(pods) for pods in fleet.removed().values()) == 5


def test_pods_a_target_did_not_remove_go_back_to_the_budget() -> None:
    fleet = skewed_fleet(Target(A, "blocked"), Target(A, "next"))
    fleet.members[Target(A, "blocked")].blocked = {"blocked-abc-00"}  # a PDB refuses the first
    outcomes = sweep(service(fleet, max_pods_per_run=2, sweep_concurrency=1))
    assert summary(outcomes) == [
        ("team-a/blocked", "skipped", "eviction_blocked"),
        ("team-a/next", "rebalanced", "imbalance_confirmed"),
    ]


def test_pods_whose_removal_may_have_happened_stay_charged() -> None:
    fleet = skewed_fleet(Target(A, "lost"), Target(A, "next"))
    lost = fleet.members[Target(A, "lost")]
    lost.lost = {"lost-abc-00"}  # carried out, the answer lost,
    lost.unreadable = True  # and whether it went cannot be told
    outcomes = sweep(service(fleet, max_pods_per_run=2, sweep_concurrency=1))
    assert summary(outcomes) == [
        ("team-a/lost", "failed", "dependency_unavailable"),
        ("team-a/next", "skipped", "run_budget_exhausted"),
    ]
    assert outcomes[0].disrupted == 1
    assert outcomes[1].errors["budget"].startswith("MAX_PODS_PER_RUN=2: 1 of")


def test_a_dry_run_sweep_sends_only_dry_runs_and_is_capped_as_a_real_one() -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target(A, "a2"), Target(B, "b1"))
    outcomes = sweep(service(fleet, max_pods_per_run=4, sweep_concurrency=1), dry_run=True)
    assert summary(outcomes) == [
        ("team-a/a1", "would_rebalance", "imbalance_confirmed"),
        ("team-a/a2", "would_rebalance", "imbalance_confirmed"),
        ("team-b/b1", "skipped", "run_budget_exhausted"),
    ]
    assert all(o.dry_run for o in outcomes)
    for member in fleet.members.values():
        assert all(r.dry_run for r in member.removed)
        assert (member.leases, member.events) == ({}, [])


def test_the_dry_run_setting_holds_for_a_whole_sweep() -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target(B, "b1"))
    outcomes = sweep(service(fleet, dry_run=True), dry_run=False)
    assert {o.action.value for o in outcomes} == {"would_rebalance"}
    assert all(r.dry_run for m in fleet.members.values() for r in m.removed)


def test_one_failing_target_does_not_stop_the_others() -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target(A, "a2"), Target(B, "b1"), Target(B, "b2"))
    fleet.members[Target(B, "b2")].broken = {"b2-abc-00"}  # the Eviction API fails
    metrics = FleetMetrics(fleet, failing={Target(A, "a2")})
    outcomes = sweep(service(fleet, metrics, sweep_concurrency=4))
    assert summary(outcomes) == [
        ("team-a/a1", "rebalanced", "imbalance_confirmed"),
        ("team-a/a2", "failed", "dependency_unavailable"),
        ("team-b/b1", "rebalanced", "imbalance_confirmed"),
        ("team-b/b2", "failed", "dependency_unavailable"),
    ]
    assert [o.retryable for o in outcomes] == [False, True, False, True]
    assert "metrics" in outcomes[1].errors
    # The failed removal was given back: 2 + 2 removed of the default 10, nothing else.
    assert sum(len(pods) for pods in fleet.removed().values()) == 4


def test_at_most_sweep_concurrency_targets_are_worked_on_at_once() -> None:
    fleet = skewed_fleet(*(Target(A, f"d{i}") for i in range(6)))
    together = threading.Barrier(2, timeout=10)  # the first two must be in flight together
    lock = threading.Lock()
    in_flight = {"now": 0, "most": 0, "seen": 0}

    def entering(target: Target) -> None:
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
            in_flight["seen"] += 1
            first_two = in_flight["seen"] <= 2
        if first_two:
            together.wait()
        with lock:
            in_flight["now"] -= 1

    fleet.on_pods = entering
    outcomes = sweep(service(fleet, sweep_concurrency=2, max_pods_per_run=20))
    assert in_flight["most"] == 2
    assert [str(o.target) for o in outcomes] == [f"team-a/d{i}" for i in range(6)]
    assert {o.reason for o in outcomes} == {"imbalance_confirmed"}


def test_a_sweep_without_deployments_list_fails_closed_before_acting_anywhere() -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target(B, "b1"))
    fleet.forbidden = {B}
    with pytest.raises(KubernetesError) as caught:
        sweep(service(fleet))
    assert caught.value.status == 403
    assert "needs `deployments list` in every namespace it covers" in str(caught.value)
    assert "forbidden" in str(caught.value)
    assert fleet.removed() == {}
    assert all(m.leases == {} for m in fleet.members.values())


def test_a_sweep_lists_literal_namespaces_and_says_which_patterns_it_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target("team-x", "x1"))
    with caplog.at_level(logging.WARNING, logger="test-sweep"):
        outcomes = sweep(service(fleet, allowed_namespaces=f"{A},team-*"))
    assert summary(outcomes) == [("team-a/a1", "rebalanced", "imbalance_confirmed")]
    assert fleet.listed == [A]
    (record,) = [r for r in caplog.records if "not listed" in r.getMessage()]
    assert record.fields == {  # type: ignore[attr-defined]
        "event": "sweep_not_listed",
        "namespaces": [A],
        "not_listed": ["team-*"],
    }


def test_a_sweep_whose_allow_list_has_only_wildcards_is_a_configuration_error() -> None:
    fleet = skewed_fleet(Target(A, "a1"))
    with pytest.raises(ConfigError) as caught:
        sweep(service(fleet, allowed_namespaces="team-*,*-prod"))
    assert caught.value.variable == "ALLOWED_NAMESPACES"
    assert "literal" in caught.value.problem
    assert fleet.listed == []


def test_reach_keeps_literal_namespaces_and_names_every_pattern_it_cannot_list() -> None:
    covered = reach(AllowList(("b", "a", "team-*", "a", "x.y", "*"), ("*",)))
    assert covered.namespaces == ("a", "b")
    assert covered.not_listed == ("team-*", "x.y", "*")  # x.y can be no namespace's name


def test_an_alertmanager_payload_naming_many_targets_is_capped_in_its_own_order() -> None:
    fleet = skewed_fleet(Target(A, "c"), Target(A, "a"), Target(A, "b"))
    request = RunRequest((Target(A, "c"), Target(A, "a"), Target(A, "b")), False, "alertmanager")
    outcomes = service(fleet, max_pods_per_run=4).run(request)
    assert summary(outcomes) == [
        ("team-a/c", "rebalanced", "imbalance_confirmed"),
        ("team-a/a", "rebalanced", "imbalance_confirmed"),
        ("team-a/b", "skipped", "run_budget_exhausted"),
    ]
    assert fleet.listed == []  # a payload names its targets: nothing is listed


# --- through the HTTP edge -------------------------------------------------------------------


@dataclass
class Runtime:
    svc: Rebalancer

    def settings(self) -> Settings:
        return self.svc.settings

    def service(self) -> Rebalancer:
        return self.svc

    def now(self) -> datetime:
        return NOW

    def webhook_token(self) -> str | None:
        return None


def post(svc: Rebalancer, body: bytes) -> tuple[int, dict[str, Any]]:
    request = HttpRequest(
        method="POST",
        headers={"content-type": "application/json"},
        query=[],
        read=io.BytesIO(body).read,
        content_length=len(body),
    )
    answer = handle(request, Runtime(svc))
    return answer.status, answer.body


def edge_service(fleet: FakeFleet, **overrides: Any) -> Rebalancer:
    return service(fleet, allow_unauthenticated=True, **overrides)


def test_a_sweep_over_http_answers_one_result_per_opted_in_deployment() -> None:
    fleet = skewed_fleet(Target(B, "b1"), Target(A, "a1"))
    fleet.add(Target(A, "quiet"), SKEWED, enabled=False)
    status, body = post(edge_service(fleet), b'{"sweep": true, "dry_run": true}')
    assert status == 200
    assert [(r["target"], r["action"]) for r in body["results"]] == [
        ({"namespace": A, "deployment": "a1"}, "would_rebalance"),
        ({"namespace": B, "deployment": "b1"}, "would_rebalance"),
    ]


def test_a_sweep_with_a_failed_target_is_a_503_with_every_result() -> None:
    fleet = skewed_fleet(Target(A, "a1"), Target(B, "b1"))
    metrics = FleetMetrics(fleet, failing={Target(B, "b1")})
    svc = Rebalancer(
        settings(allow_unauthenticated=True),
        metrics,
        fleet,
        clock=lambda: NOW,
        log=logging.getLogger("test-sweep"),
    )
    status, body = post(svc, b'{"sweep": true}')
    assert status == 503
    assert [r["action"] for r in body["results"]] == ["rebalanced", "failed"]


def test_a_sweep_that_cannot_list_deployments_is_a_503_naming_the_missing_permission() -> None:
    fleet = skewed_fleet(Target(A, "a1"))
    fleet.forbidden = {A}
    status, body = post(edge_service(fleet), b'{"sweep": true}')
    assert status == 503
    assert body["results"] == []
    assert body["error"].startswith("kubernetes unavailable: a sweep lists Deployments")


def test_a_sweep_over_wildcards_only_is_a_500_naming_allowed_namespaces() -> None:
    status, body = post(edge_service(FakeFleet(), allowed_namespaces="team-*"), b'{"sweep": true}')
    assert status == 500
    assert body["variable"] == "ALLOWED_NAMESPACES"


def test_a_sweep_naming_a_target_is_a_400_naming_the_field() -> None:
    status, body = post(edge_service(FakeFleet()), b'{"sweep": true, "deployment": "x"}')
    assert (status, body["field"]) == (400, "deployment")


# --- the budget ------------------------------------------------------------------------------


def test_the_budget_reserves_all_or_nothing_and_takes_back_what_was_not_used() -> None:
    budget = RunBudget(5)
    assert budget.reserve(3)
    assert not budget.reserve(3)  # nothing taken
    assert budget.left == 2
    budget.give_back(1)
    assert budget.reserve(3)
    assert budget.left == 0
    with pytest.raises(ValueError, match="exceed"):
        budget.give_back(6)


def test_the_budget_holds_under_threads_racing_for_it() -> None:
    budget = RunBudget(3)
    lock = threading.Lock()
    held = {"now": 0, "most": 0}

    def worker() -> None:
        for _ in range(2000):
            if budget.reserve(1):
                with lock:
                    held["now"] += 1
                    held["most"] = max(held["most"], held["now"])
                with lock:
                    held["now"] -= 1
                budget.give_back(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert held["most"] <= 3
    assert budget.left == 3


def test_in_parallel_keeps_the_order_and_raises_a_bug_after_the_others_finish() -> None:
    assert in_parallel(list(range(10)), lambda n: n * n, 4) == [n * n for n in range(10)]
    finished: list[int] = []

    def work(n: int) -> int:
        if n == 1:
            raise RuntimeError("a bug")
        finished.append(n)
        return n

    with pytest.raises(RuntimeError, match="a bug"):
        in_parallel([0, 1, 2], work, 3)
    assert 0 in finished


@st.composite
def fleets(draw: st.DrawFn) -> tuple[FakeFleet, dict[str, Any], bool]:
    """Random opted-in targets (pod counts, skews, PDB refusals, broken or lost evictions) and
    random caps, concurrency and dry-run flag."""
    fleet = FakeFleet()
    count = draw(st.integers(1, 8))
    for index in range(count):
        namespace = draw(st.sampled_from([A, B]))
        size = draw(st.integers(3, 12))
        cpu = draw(
            st.lists(
                st.floats(0.0, 4.0, allow_nan=False, allow_infinity=False),
                min_size=size,
                max_size=size,
            )
        )
        member = fleet.add(Target(namespace, f"d{index}"), cpu)
        fault = draw(st.sampled_from(["none", "none", "blocked", "broken", "lost", "gone"]))
        victim = {draw(st.sampled_from(member.names))}
        if fault == "blocked":
            member.blocked = victim
        elif fault == "broken":
            member.broken = victim
        elif fault == "lost":
            member.lost = victim
        elif fault == "gone":
            member.gone = victim
    per_target = draw(st.integers(1, 4))
    knobs = {
        "max_pods_to_delete": per_target,
        "max_pods_per_run": draw(st.integers(per_target, 12)),
        "sweep_concurrency": draw(st.integers(1, 4)),
        "imbalance_threshold": 0.0,
        "min_improvement_percent": 0.0,
    }
    return fleet, knobs, draw(st.booleans())


@given(fleets())
def test_a_sweep_never_removes_more_than_max_pods_per_run(
    case: tuple[FakeFleet, dict[str, Any], bool],
) -> None:
    fleet, knobs, dry_run = case
    outcomes = sweep(service(fleet, **knobs), dry_run=dry_run)
    assert len(outcomes) == len(fleet.members)
    assert [o.target for o in outcomes] == sorted(
        fleet.members, key=lambda t: (t.namespace, t.deployment)
    )
    # What the cluster saw: real removals, or dry-run removals the API accepted.
    removed = {t: len(pods) for t, pods in fleet.removed().items()}
    assert sum(removed.values()) <= knobs["max_pods_per_run"]
    assert all(n <= knobs["max_pods_to_delete"] for n in removed.values())
    by_target = {o.target: o for o in outcomes}
    for target, outcome in by_target.items():
        if outcome.reason == "run_budget_exhausted":
            assert target not in removed
            assert fleet.members[target].leases == {}
    if knobs["sweep_concurrency"] == 1:
        # One after the other, the budget is exact: a target is skipped only if its whole
        # selection did not fit in what the targets before it left.
        left = knobs["max_pods_per_run"]
        for outcome in outcomes:
            planned = len(outcome.plan.selected) if outcome.plan else 0
            if outcome.reason == "run_budget_exhausted":
                assert planned > left
            else:
                left -= outcome.disrupted
        assert left >= 0


def held_by_another(fleet: FakeFleet, target: Target) -> None:
    state = LeaseState("someone-else", NOW - timedelta(minutes=1), LOCK_TTL, last_rebalance=None)
    fleet.members[target].put_lease(target.namespace, lease_name(target), state)


def test_a_locked_target_reserves_nothing() -> None:
    fleet = skewed_fleet(Target(A, "locked"), Target(A, "next"))
    held_by_another(fleet, Target(A, "locked"))
    outcomes = sweep(service(fleet, max_pods_per_run=2, sweep_concurrency=1))
    assert summary(outcomes) == [
        ("team-a/locked", "skipped", "locked"),
        ("team-a/next", "rebalanced", "imbalance_confirmed"),
    ]


def sweep_threads() -> int:
    """Threads other than a service's read pool (kept for the instance's life, like its clients)."""
    return sum(not t.name.startswith("rebalancer-read") for t in threading.enumerate())


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = sweep_threads()
    yield
    assert sweep_threads() <= before
