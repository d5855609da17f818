"""`make evaluate` (infra/evaluate): deterministic by seed, bounded, and the behaviour it reports.

The quick grid runs here (a few seconds); the full grid is `make evaluate`.
"""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from infra.evaluate.cases import QUICK, Case
from infra.evaluate.grid import Result, run_grid
from infra.evaluate.policies import Evaluated, policies, settings, without_backoff
from infra.evaluate.simulation import INTERVAL, noisy, simulate
from infra.evaluate.summary import comparisons, report
from infra.kubesim.metrics import draw_cpu
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Reason

POLICIES = {p.name: p for p in policies()}


@pytest.fixture(scope="module")
def quick() -> Result:
    return run_grid(QUICK, seed=0)


def test_same_seed_prints_the_same_tables_on_any_number_of_processes(quick: Result) -> None:
    again = run_grid(QUICK, seed=0, jobs=2)
    assert report(again) == report(quick)


def test_another_seed_gives_other_numbers(quick: Result) -> None:
    other = run_grid(QUICK, seed=1)
    assert report(other) != report(quick)
    evictions = {n: [o.run.evictions for o in out] for n, out in quick.outcomes.items()}
    assert {n: [o.run.evictions for o in out] for n, out in other.outcomes.items()} != evictions


def test_the_quick_report_has_a_table_for_every_policy(quick: Result) -> None:
    text = report(quick)
    for name in ("variance", "stddev", "cv", "score", "hpa_target"):
        assert f"\n{name}: " in text
    assert [c.label for c in comparisons(quick)] == list(POLICIES)
    assert {len(out) for out in quick.outcomes.values()} == {len(list(QUICK.cases(0)))}


def test_runs_are_bounded_by_the_schedule_the_cooldown_and_the_cap(quick: Result) -> None:
    steps = round(QUICK.hours * 3600 / INTERVAL.total_seconds())
    for name, outcomes in quick.outcomes.items():
        limits = POLICIES[name].settings
        cooldown = limits.cooldown.total_seconds()
        for outcome in outcomes:
            run = outcome.run
            assert run.invocations == steps
            assert sum(run.reasons.values()) == steps  # every invocation decided once
            times = [r.at for r in run.rebalances]
            assert all(b - a >= cooldown for a, b in itertools.pairwise(times))
            assert all(1 <= r.evicted <= limits.max_pods_to_delete for r in run.rebalances)


@pytest.mark.parametrize(
    "case",
    [
        Case("dominant", "sticky", 1.0, 12, None, seed=4, start="clustered"),
        Case("zipf", "roundrobin", 1.4, 12, 2.0, seed=4),  # capped: its lag grows meanwhile
    ],
    ids=["dominant", "capped"],
)
def test_summing_up_the_idle_invocations_changes_no_outcome(case: Case) -> None:
    for policy in (None, POLICIES["variance"].settings):
        fast = simulate(case, policy, hours=4)
        slow = simulate(case, policy, hours=4, fast=False)
        assert fast.reasons == slow.reasons
        assert fast.rebalances == slow.rebalances
        outcomes = [(run.variance, run.peak_ratio, run.lag) for run in (fast, slow)]
        assert outcomes[0] == pytest.approx(outcomes[1], rel=1e-9, abs=1e-9)
    assert slow.reasons[Reason.NOT_EFFECTIVE] > 10  # so the variance's run did jump


def test_a_balanced_group_is_never_touched() -> None:
    balanced = Case("zipf", "cooperative-sticky", 0.0, 12, None, seed=5)  # 48 equal partitions
    for policy in POLICIES.values():
        run = simulate(balanced, policy.settings, hours=2, name=policy.name)
        assert run.evictions == 0, policy.name
        assert set(run.reasons) <= {Reason.BELOW_THRESHOLD, Reason.NO_HOT_PODS}


@pytest.mark.parametrize("name", ["variance", "hpa_target"])
def test_one_dominant_partition_backs_off_after_the_allowed_ineffective_rebalances(
    name: str,
) -> None:
    case = Case("dominant", "cooperative-sticky", 1.0, 12, None, seed=2, start="clustered")
    policy = POLICIES[name]
    run = simulate(case, policy.settings, hours=3, name=name)
    allowed = policy.settings.max_ineffective_rebalances
    assert run.backoff_at is not None
    assert len(run.rebalances) == allowed
    assert [r.effective for r in run.rebalances] == [False] * allowed
    assert all(r.at < run.backoff_at for r in run.rebalances)
    after = round((3 * 3600 - run.backoff_at) / INTERVAL.total_seconds()) + 1
    assert run.reasons[Reason.NOT_EFFECTIVE] == after  # every call since skips
    churn = simulate(case, without_backoff(policy.settings), hours=3, name=name)
    assert churn.evictions > 2 * run.evictions  # what the back-off prevented


def test_capped_members_look_balanced_on_cpu_but_the_score_sees_their_lag() -> None:
    # The hot partitions piled on a few members, each capped just above the mean: their CPU
    # sits at the limit, near everyone else's, while their partitions fall behind.
    case = Case("zipf", "sticky", 0.6, 12, cpu_limit=1.2, seed=3, start="clustered")
    alone = simulate(case, None, hours=3)
    by_cpu = simulate(case, POLICIES["variance"].settings, hours=3, name="variance")
    by_score = simulate(case, POLICIES["score"].settings, hours=3, name="score")
    assert alone.lag > 0
    assert alone.variance < POLICIES["variance"].settings.imbalance_threshold
    assert set(by_cpu.reasons) == {Reason.BELOW_THRESHOLD}
    assert by_score.rebalances
    assert by_score.lag < 0.9 * alone.lag


def test_the_variance_line_moves_with_the_pods_size_and_the_cv_line_does_not() -> None:
    # The same drifted group, its pods at half a core: its variance is a quarter of what it is at
    # one core, its CV the same, so the variance's line (drawn at one core) hardly sees it.
    case = Case("zipf", "sticky", 1.0, 12, None, seed=0, start="clustered", mean_cpu=0.5)
    by_variance = simulate(case, POLICIES["variance"].settings, hours=3, name="variance")
    by_cv = simulate(case, POLICIES["cv"].settings, hours=3, name="cv")
    assert by_variance.reasons[Reason.BELOW_THRESHOLD] > 0
    assert len(by_cv.rebalances) >= 3 * max(1, len(by_variance.rebalances))


def test_a_futile_rebalance_is_never_judged_effective(quick: Result) -> None:
    judged = [
        r.effective
        for outcomes in quick.outcomes.values()
        for o in outcomes
        if o.case.futile
        for r in o.run.rebalances
        if r.effective is not None
    ]
    assert judged
    assert not any(judged)


def test_a_reading_is_the_metrics_writers_draw() -> None:
    for limit in (None, 0.9):
        mine, writers = random.Random(11), random.Random(11)
        for mean in (0.05, 0.4, 0.85):
            sample = {"base": 0.05, "busy": mean - 0.05, "noise": 0.3, "limit": limit}
            assert noisy(mean, 0.05, 0.3, limit, mine) == draw_cpu(sample, writers)


def test_a_pod_at_its_limit_reads_the_limit_as_the_simulator_writes_it() -> None:
    """The simulator's load samples carry no noise for a throttled pod (control.load_samples)."""
    for mean in (0.9, 3.0):
        sample = {"base": 0.05, "busy": mean - 0.05, "noise": 0.0, "limit": 0.9}
        assert noisy(mean, 0.05, 0.3, 0.9, random.Random(3)) == 0.9
        assert draw_cpu(sample, random.Random(3)) == 0.9
    assert noisy(3.0, 0.05, 0.3, None, random.Random(3)) != 3.0  # no limit: noise as ever


def test_policies_are_the_functions_defaults_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CPU_VARIANCE_THRESHOLD", "5")
    monkeypatch.setenv("COOLDOWN", "1m")
    monkeypatch.setenv("IMBALANCE_STATISTIC", "cv")
    default = Settings(
        prometheus_endpoint="http://metrics.invalid",
        kube_namespace="evaluate",
        deployment_name="consumer",
        cpu_variance_threshold=0.3,
        cooldown=timedelta(minutes=15),
        imbalance_statistic="variance",
    )
    evaluated: dict[str, Evaluated] = {p.name: p for p in policies()}
    assert evaluated["variance"].settings.policy() == default.policy()
    assert settings().cooldown == default.cooldown
    named = {"imbalance_statistic", "imbalance_threshold", "imbalance_signal", "lag_query"}
    named.add("imbalance_policy")  # what names a policy; everything else is the default
    for policy in evaluated.values():
        for field in Settings.model_fields:
            if field not in named:
                assert getattr(policy.settings, field) == getattr(default, field), field
    # stddev and cv draw the variance's line (cv at the grid's 1-core pods).
    assert evaluated["stddev"].policy.threshold ** 2 == pytest.approx(0.3)
    assert evaluated["cv"].policy.threshold ** 2 == pytest.approx(0.3)
