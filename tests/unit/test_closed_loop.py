"""The closed loop through the service, invocation after invocation on a clock moved by hand: each
rebalance is measured once its replacements have been Ready for a window, judged, remembered in
the Lease, announced, and a target that is not helped is left alone for INEFFECTIVE_BACKOFF."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import LeaseState, Target
from pod_rebalancer.core.stats import Statistic
from pod_rebalancer.locking import lease_name
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest
from tests.builders import NOW, pod, settled
from tests.fakes import FakeCluster, FakeMetrics

TARGET = Target("posthog", "ingestion-consumer")
CPU = [2.3, 2.0, 0.8, 0.9, 0.7, 0.8, 0.75, 0.85, 0.1, 0.05]
NAMES = [f"ingestion-consumer-abc-{i:02d}" for i in range(len(CPU))]
AFTER_COOLDOWN = timedelta(minutes=16)  # COOLDOWN is 15m; the window 5m


class Loop:
    """One Deployment, its metrics and a clock, with the replacements a Deployment would start."""

    def __init__(self, **settings: Any) -> None:
        self.now = NOW
        self.cluster = FakeCluster(names=list(NAMES), state=settled(len(NAMES)))
        self.metrics = FakeMetrics(dict(zip(NAMES, CPU, strict=True)))
        self.log = logging.getLogger("test-closed-loop")
        values: dict[str, Any] = {
            "prometheus_endpoint": "http://metrics.invalid",
            "kube_namespace": TARGET.namespace,
            "deployment_name": TARGET.deployment,
            "dry_run": False,
            "min_pod_age": "10m",
            **settings,
        }
        self.service = Rebalancer(
            Settings(**values), self.metrics, self.cluster, clock=lambda: self.now, log=self.log
        )
        self.generation = 0

    def run(self, dry_run: bool = False) -> Outcome:
        (outcome,) = self.service.run(RunRequest((TARGET,), dry_run, "test"))
        return outcome

    def replace_evicted(self, evicted: tuple[str, ...], *, moved: bool, ready_after: float) -> None:
        """The Deployment replaces the evicted pods: started 10 s after now, Ready `ready_after`
        seconds later. `moved`: the hot partition lands on a replacement (nothing spreads)."""
        self.generation += 1
        started = self.now + timedelta(seconds=10)
        ready_since = started + timedelta(seconds=ready_after)
        kept = [p for p in self.cluster.pods_ if p.name not in evicted]
        samples = {name: cpu for name, cpu in self.metrics.samples.items() if name not in evicted}
        fresh = []
        for index, old in enumerate(evicted):
            name = f"ingestion-consumer-new{self.generation}-{index}"
            fresh.append(replace(pod(name), started_at=started, ready_since=ready_since))
            samples[name] = self.metrics.samples[old] if moved else 1.0
        if not moved:  # the load spread: every pod near the mean
            samples = {name: 1.0 + (i % 3) * 0.05 for i, name in enumerate(samples)}
        self.cluster.pods_ = kept + fresh
        self.metrics.samples = samples

    def lease(self) -> LeaseState:
        return self.cluster.leases[lease_name(TARGET)].state

    def events(self) -> list[str]:
        return [e.reason for e in self.cluster.events]

    def rebalance_and_replace(self, *, moved: bool) -> Outcome:
        outcome = self.run()
        assert outcome.action.value == "rebalanced", outcome
        self.replace_evicted(outcome.evicted, moved=moved, ready_after=20)
        self.now += AFTER_COOLDOWN
        return outcome


def last(outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = outcome.to_json()["last_rebalance"]
    return body


def test_the_lease_remembers_what_a_rebalance_expects() -> None:
    loop = Loop()
    outcome = loop.run()
    assert outcome.plan is not None
    assert outcome.plan.expected_after is not None
    state = loop.lease()
    assert state.effect is not None
    assert state.effect.statistic == "variance"
    assert state.effect.before == outcome.plan.value
    assert state.effect.expected_after == outcome.plan.expected_after.value
    assert state.effect.evicted == outcome.evicted
    assert state.effect.effective is None
    assert outcome.to_json()["last_rebalance"] is None  # the first rebalance has no previous one


def test_an_effective_rebalance_is_measured_once_announced_and_resets_the_count() -> None:
    loop = Loop()
    first = loop.rebalance_and_replace(moved=False)
    loop.cluster.leases[lease_name(TARGET)] = replace(
        loop.cluster.leases[lease_name(TARGET)],
        state=replace(loop.lease(), ineffective=1, last_ineffective=NOW - timedelta(hours=3)),
    )
    outcome = loop.run()
    assert outcome.reason == "below_threshold"
    report = last(outcome)
    assert first.plan is not None
    assert report["before"] == first.plan.value
    assert report["effective"] is True
    assert report["achieved"] < report["before"]
    assert report["improvement_percent"] > 5.0
    assert report["note"] == ""
    assert report["at"] == NOW.isoformat()
    assert outcome.judged is True  # the one result that counts the judgement
    assert loop.events() == ["Rebalanced", "RebalanceEffective"]
    assert loop.lease().ineffective == 0
    assert loop.lease().effect is not None
    assert loop.lease().effect.effective is True  # type: ignore[union-attr]

    loop.now += timedelta(minutes=10)
    again = loop.run()
    assert last(again)["effective"] is True  # still reported, never judged twice
    assert again.judged is False
    assert loop.events() == ["Rebalanced", "RebalanceEffective"]


def test_two_ineffective_rebalances_then_not_effective_until_the_backoff_has_passed() -> None:
    loop = Loop()
    loop.rebalance_and_replace(moved=True)

    # The second call measures the first rebalance (ineffective) and rebalances again; its
    # result reports the measured, previous one.
    second = loop.run()
    assert (second.action.value, second.reason) == ("rebalanced", "imbalance_confirmed")
    assert last(second)["effective"] is False
    assert loop.lease().ineffective == 1
    assert loop.events() == ["Rebalanced", "RebalanceIneffective", "Rebalanced"]
    loop.replace_evicted(second.evicted, moved=True, ready_after=20)
    loop.now += AFTER_COOLDOWN

    # The call that measures the second ineffective one already skips: no third eviction.
    removed = len(loop.cluster.removed)
    third = loop.run()
    assert (third.action.value, third.reason) == ("skipped", "not_effective")
    assert last(third)["effective"] is False
    assert "single hot partition" in last(third)["note"]
    assert len(loop.cluster.removed) == removed
    assert loop.lease().ineffective == 2
    assert loop.lease().last_ineffective == loop.now
    assert loop.events()[-2:] == ["RebalanceIneffective", "RebalanceNotEffective"]
    stamp = loop.now

    # Within the back-off: skipped without another measurement or eviction.
    loop.now = stamp + timedelta(hours=23, minutes=59)
    assert loop.run().reason == "not_effective"
    assert len(loop.cluster.removed) == removed

    # Once it has passed, the target is rebalanced again.
    loop.now = stamp + timedelta(hours=24)
    assert loop.run().action.value == "rebalanced"
    assert len(loop.cluster.removed) == removed + 2


def test_removing_the_count_ends_the_backoff() -> None:
    loop = Loop(max_ineffective_rebalances=1)
    loop.rebalance_and_replace(moved=True)
    assert loop.run().reason == "not_effective"
    lease = loop.cluster.leases[lease_name(TARGET)]
    loop.cluster.leases[lease.name] = replace(lease, state=replace(lease.state, ineffective=0))
    assert loop.run().action.value == "rebalanced"


def test_too_early_to_measure_says_so_and_judges_nothing() -> None:
    loop = Loop()
    outcome = loop.run()
    loop.replace_evicted(outcome.evicted, moved=True, ready_after=13 * 60)
    loop.now += AFTER_COOLDOWN  # Ready for 2m50s of the 5m window
    later = loop.run()
    report = last(later)
    assert report["effective"] is None
    assert report["achieved"] is None
    assert report["note"].startswith("too early to measure: replacement ")
    assert loop.lease().ineffective == 0
    assert "RebalanceIneffective" not in loop.events()


def test_during_the_cooldown_the_last_rebalance_is_reported_not_measured() -> None:
    loop = Loop()
    loop.run()
    loop.now += timedelta(minutes=1)
    outcome = loop.run()
    assert outcome.reason == "cooldown"
    assert last(outcome)["note"] == "not measured yet"
    assert last(outcome)["effective"] is None


def test_a_dry_run_measures_and_reports_but_writes_and_announces_nothing() -> None:
    loop = Loop()
    loop.rebalance_and_replace(moved=True)
    before = loop.cluster.leases[lease_name(TARGET)]
    events = loop.events()
    outcome = loop.run(dry_run=True)
    assert last(outcome)["effective"] is False
    assert outcome.judged is False  # a real run will judge and count it
    assert loop.cluster.leases[lease_name(TARGET)] == before
    assert loop.events() == events


def test_a_changed_statistic_is_not_judged_against_the_old_one() -> None:
    loop = Loop()
    loop.rebalance_and_replace(moved=True)
    settings = loop.service.settings.model_copy(update={"imbalance_statistic": Statistic.CV})
    service = Rebalancer(settings, loop.metrics, loop.cluster, clock=lambda: loop.now, log=loop.log)
    (outcome,) = service.run(RunRequest((TARGET,), False, "test"))
    assert last(outcome)["effective"] is None
    assert last(outcome)["note"] == "not judged: measured with variance, now cv"
    assert loop.lease().ineffective == 0


def test_a_measurement_that_lost_the_race_is_not_recorded() -> None:
    loop = Loop()
    loop.rebalance_and_replace(moved=True)
    real_replace = loop.cluster.replace_lease
    raced: list[datetime] = []

    def another_invocation_first(lease: Any, state: LeaseState) -> Any:
        if not raced:  # someone else recorded the same measurement a moment earlier
            raced.append(loop.now)
            real_replace(loop.cluster.leases[lease.name], replace(lease.state, ineffective=1))
        return real_replace(lease, state)

    loop.cluster.replace_lease = another_invocation_first  # type: ignore[method-assign]
    outcome = loop.run()
    assert raced
    assert outcome.judged is False  # the winner counts it
    assert "RebalanceIneffective" not in loop.events()  # only the winner announces it
