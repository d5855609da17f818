"""plan() and select_outliers(): every skip reason, the pod inventory, and the laws of selection."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer.core.model import Plan, PodInfo, PodSkip, Policy, Reason, Selected
from pod_rebalancer.core.planner import plan, select_outliers
from pod_rebalancer.core.pod_guards import pod_skip
from pod_rebalancer.core.stats import Statistic, summarize
from tests.builders import NOW, pod

MIN_AGE = timedelta(minutes=10)
POLICY = Policy(
    statistic=Statistic.VARIANCE,
    threshold=0.3,
    min_pods=3,
    max_delete=2,
    min_improvement_percent=10.0,
    min_pod_age=MIN_AGE,
)
# One hot pod and one idle pod among four that agree: variance 0.442, well above 0.3.
SKEWED = {"c-0": 2.3, "c-1": 0.1, "c-2": 0.8, "c-3": 0.9, "c-4": 0.7, "c-5": 0.8}


def planned(samples: Mapping[str, float], rules: Policy = POLICY) -> Plan:
    """The plan for `samples` when every measured pod is listed, healthy and old enough."""
    return plan(samples, [pod(name) for name in samples], rules, NOW)


def policy(**changes: object) -> Policy:
    fields = {
        "statistic": POLICY.statistic,
        "threshold": POLICY.threshold,
        "min_pods": POLICY.min_pods,
        "max_delete": POLICY.max_delete,
        "min_improvement_percent": POLICY.min_improvement_percent,
        "min_pod_age": POLICY.min_pod_age,
    }
    fields.update(changes)
    return Policy(**fields)  # type: ignore[arg-type]


def picked(result: Plan) -> list[tuple[str, str]]:
    return [(s.pod, s.role) for s in result.selected]


# --- skip reasons ---------------------------------------------------------------------------


def test_reports_no_metrics_when_there_are_no_samples() -> None:
    result = planned({})

    assert result.reason is Reason.NO_METRICS
    assert result.summary is None
    assert result.selected == ()
    assert not result.acts


def test_reports_no_metrics_when_no_listed_pod_has_a_series() -> None:
    pods = [pod("c-0"), pod("c-1"), pod("c-2")]

    result = plan({}, pods, POLICY, NOW)

    assert result.reason is Reason.NO_METRICS
    assert result.ignored == {"no_metrics": 3}


def test_reports_too_few_pods_when_fewer_than_min_pods_have_metrics() -> None:
    result = planned({"c-0": 2.0, "c-1": 0.0})

    assert result.reason is Reason.TOO_FEW_PODS
    assert result.selected == ()


def test_reports_too_few_pods_when_every_pod_is_guarded_out() -> None:
    pods = [pod("c-0", ready=False), pod("c-1", age=timedelta(0)), pod("c-2", excluded=True)]

    result = plan({"c-0": 2.0, "c-1": 0.0, "c-2": 1.0}, pods, POLICY, NOW)

    assert result.reason is Reason.TOO_FEW_PODS
    assert result.selected == ()


def test_reports_too_few_pods_when_acting_would_leave_fewer_than_min_pods_ready() -> None:
    # Three usable pods, clearly imbalanced, but min_pods 3 leaves no room to evict one.
    result = planned({"c-0": 3.0, "c-1": 0.0, "c-2": 0.1})

    assert result.reason is Reason.TOO_FEW_PODS
    assert result.summary is not None
    assert result.value is not None
    assert result.value > POLICY.threshold
    assert result.selected == ()


def test_reports_below_threshold_when_the_statistic_is_under_it() -> None:
    result = planned({"c-0": 0.5, "c-1": 0.6, "c-2": 0.55, "c-3": 0.5})

    assert result.reason is Reason.BELOW_THRESHOLD
    assert result.summary is not None
    assert result.selected == ()


@pytest.mark.parametrize(
    ("statistic", "threshold"),
    # 0, 0, 1, 1: mean 0.5, variance 0.25, stddev 0.5, cv 1.0, all exact in binary.
    [(Statistic.VARIANCE, 0.25), (Statistic.STDDEV, 0.5), (Statistic.CV, 1.0)],
)
def test_reports_below_threshold_when_the_statistic_equals_it(
    statistic: Statistic, threshold: float
) -> None:
    samples = {"c-0": 0.0, "c-1": 0.0, "c-2": 1.0, "c-3": 1.0}

    result = planned(samples, policy(statistic=statistic, threshold=threshold))

    assert result.value == threshold
    assert result.reason is Reason.BELOW_THRESHOLD
    assert result.selected == ()


def test_reports_insufficient_improvement_when_removing_the_outliers_does_not_help() -> None:
    # Two camps: without one pod of each the variance is still exactly 0.25.
    samples = {f"c-{i}": float(i % 2) for i in range(6)}

    result = planned(samples, policy(threshold=0.1))

    assert result.reason is Reason.INSUFFICIENT_IMPROVEMENT
    assert result.expected_after is not None
    assert result.expected_after.improvement_percent == 0.0
    assert len(result.selected) == 2  # reported so the operator sees what would have gone
    assert not result.acts


def test_reports_insufficient_improvement_below_the_configured_minimum() -> None:
    result = planned(SKEWED, policy(min_improvement_percent=100.0))

    assert result.reason is Reason.INSUFFICIENT_IMPROVEMENT
    assert result.expected_after is not None
    assert result.expected_after.improvement_percent < 100.0


def test_confirms_imbalance_and_picks_the_busiest_and_the_idlest() -> None:
    result = planned(SKEWED)

    assert result.reason is Reason.IMBALANCE_CONFIRMED
    assert result.acts
    assert result.selected == (
        Selected(pod="c-0", cpu=2.3, role="busiest"),
        Selected(pod="c-1", cpu=0.1, role="idlest"),
    )
    assert result.statistic is Statistic.VARIANCE
    assert result.threshold == 0.3
    assert result.ignored == {}


@pytest.mark.parametrize("statistic", list(Statistic))
def test_measures_with_the_configured_statistic(statistic: Statistic) -> None:
    result = planned(SKEWED, policy(statistic=statistic, threshold=0.01))

    summary = summarize(np.array(list(SKEWED.values())))
    assert result.statistic is statistic
    assert result.value == summary.of(statistic)
    remaining = np.array([v for k, v in SKEWED.items() if k not in {"c-0", "c-1"}])
    assert result.expected_after is not None
    assert result.expected_after.value == summarize(remaining).of(statistic)
    assert result.reason is Reason.IMBALANCE_CONFIRMED


def test_statistic_decides_the_verdict_for_the_same_samples() -> None:
    # Low absolute CPU: variance is tiny but relative spread (cv) is large.
    samples = {"c-0": 0.02, "c-1": 0.001, "c-2": 0.01, "c-3": 0.011, "c-4": 0.009}

    by_variance = planned(samples, policy(statistic=Statistic.VARIANCE))
    by_cv = planned(samples, policy(statistic=Statistic.CV))

    assert by_variance.reason is Reason.BELOW_THRESHOLD
    assert by_cv.reason is Reason.IMBALANCE_CONFIRMED


# --- selection and expectation ---------------------------------------------------------------


def test_alternates_busiest_and_idlest_up_to_max_delete() -> None:
    samples = {f"c-{i}": float(i) for i in range(10)}  # c-9 busiest, c-0 idlest

    result = planned(samples, policy(max_delete=5, min_improvement_percent=0.0))

    assert picked(result) == [
        ("c-9", "busiest"),
        ("c-0", "idlest"),
        ("c-8", "busiest"),
        ("c-1", "idlest"),
        ("c-7", "busiest"),
    ]


def test_takes_only_the_busiest_when_max_delete_is_one() -> None:
    result = planned(SKEWED, policy(max_delete=1, min_improvement_percent=0.0))

    assert picked(result) == [("c-0", "busiest")]


def test_expected_after_is_the_statistic_of_the_pods_left_behind() -> None:
    result = planned(SKEWED)

    left = [cpu for name, cpu in SKEWED.items() if name not in {s.pod for s in result.selected}]
    after = summarize(np.array(left)).variance
    before = summarize(np.array(list(SKEWED.values()))).variance
    assert result.expected_after is not None
    assert result.expected_after.value == after
    assert result.expected_after.improvement_percent == pytest.approx(
        (before - after) / before * 100.0, rel=1e-12
    )


def test_selected_cpu_is_the_measured_value() -> None:
    result = planned(SKEWED)

    assert all(s.cpu == SKEWED[s.pod] for s in result.selected)


def test_breaks_ties_by_pod_name() -> None:
    samples = {"c-d": 3.0, "c-b": 3.0, "c-c": 0.0, "c-a": 0.0, "c-e": 1.0, "c-f": 1.0}

    result = planned(samples, policy(min_improvement_percent=0.0))

    assert picked(result) == [("c-b", "busiest"), ("c-a", "idlest")]


# --- non-finite samples ----------------------------------------------------------------------


def test_ignores_non_finite_samples_of_listed_pods() -> None:
    samples = {**SKEWED, "c-6": math.inf, "c-7": math.nan}
    pods = [pod(name) for name in samples]

    result = plan(samples, pods, POLICY, NOW)

    assert result.ignored == {"non_finite_metric": 2}
    assert result.summary is not None
    assert result.summary.count == len(SKEWED)
    assert {s.pod for s in result.selected}.isdisjoint({"c-6", "c-7"})


def test_reports_no_metrics_when_every_sample_is_non_finite() -> None:
    result = planned({"c-0": math.nan, "c-1": math.inf})

    assert result.reason is Reason.NO_METRICS
    assert result.ignored == {"non_finite_metric": 2}


# --- the pod inventory -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guarded", "skip"),
    [
        (pod("hot", ready=False), PodSkip.NOT_READY),
        (pod("hot", terminating=True), PodSkip.TERMINATING),
        (pod("hot", age=timedelta(minutes=3)), PodSkip.TOO_YOUNG),
        (pod("hot", age=None), PodSkip.TOO_YOUNG),
        (pod("hot", excluded=True), PodSkip.EXCLUDED),
    ],
    ids=["not_ready", "terminating", "too_young", "unknown_age", "excluded"],
)
def test_guarded_pods_are_neither_measured_nor_selected(guarded: PodInfo, skip: PodSkip) -> None:
    # The guarded pod would be the busiest by far if it were measured.
    samples = {**SKEWED, "hot": 50.0}
    pods = [pod(name) for name in SKEWED] + [guarded]

    result = plan(samples, pods, POLICY, NOW)

    assert result.ignored == {skip.value: 1}
    assert result.summary == summarize(np.array(list(SKEWED.values())))
    assert "hot" not in {s.pod for s in result.selected}
    assert result.reason is Reason.IMBALANCE_CONFIRMED


def test_skips_pods_younger_than_min_age() -> None:
    pods = [pod(name) for name in SKEWED] + [pod("new", age=MIN_AGE - timedelta(seconds=1))]

    result = plan({**SKEWED, "new": 9.0}, pods, POLICY, NOW)

    assert result.ignored == {"too_young": 1}
    assert "new" not in {s.pod for s in result.selected}


def test_measures_pods_exactly_min_age_old() -> None:
    pods = [pod(name) for name in SKEWED] + [pod("ripe", age=MIN_AGE)]

    result = plan({**SKEWED, "ripe": 9.0}, pods, POLICY, NOW)

    assert result.ignored == {}
    assert result.selected[0] == Selected(pod="ripe", cpu=9.0, role="busiest")


def test_skips_pods_without_metrics_instead_of_counting_them_as_zero() -> None:
    pods = [pod(name) for name in SKEWED] + [pod("silent-1"), pod("silent-2")]

    result = plan(SKEWED, pods, POLICY, NOW)

    assert result.ignored == {"no_metrics": 2}
    assert result.summary is not None
    assert result.summary.count == len(SKEWED)
    assert result.summary.mean == pytest.approx(sum(SKEWED.values()) / len(SKEWED), rel=1e-12)
    assert result.summary.min == 0.1
    assert {s.pod for s in result.selected}.isdisjoint({"silent-1", "silent-2"})


def test_ignores_stale_series_of_pods_that_no_longer_exist() -> None:
    samples = {**SKEWED, "gone-1": 40.0, "gone-2": 0.0}
    pods = [pod(name) for name in SKEWED]

    result = plan(samples, pods, POLICY, NOW)

    assert result.ignored == {"stale_series": 2}
    assert result.summary == summarize(np.array(list(SKEWED.values())))
    assert {s.pod for s in result.selected}.isdisjoint({"gone-1", "gone-2"})


def test_counts_ready_but_unmeasured_pods_towards_the_ready_floor() -> None:
    # Four usable pods, plus two Ready pods too young to measure: six Ready in all, so two may go.
    samples = {"c-0": 3.0, "c-1": 0.0, "c-2": 1.0, "c-3": 1.1}
    pods = [pod(name) for name in samples] + [
        pod("young-1", age=timedelta(minutes=1)),
        pod("young-2", age=timedelta(minutes=1)),
    ]

    result = plan(samples, pods, policy(min_improvement_percent=0.0), NOW)

    assert picked(result) == [("c-0", "busiest"), ("c-1", "idlest")]


def test_never_counts_not_ready_or_terminating_pods_towards_the_ready_floor() -> None:
    # Four Ready pods with metrics and min_pods 3: only one may go, whatever else is listed.
    samples = {"c-0": 3.0, "c-1": 0.0, "c-2": 1.0, "c-3": 1.1}
    pods = [pod(name) for name in samples] + [
        pod("starting", ready=False),
        pod("leaving", terminating=True),
    ]

    result = plan(samples, pods, policy(min_improvement_percent=0.0), NOW)

    assert picked(result) == [("c-0", "busiest")]
    assert result.ignored == {"not_ready": 1, "terminating": 1}


def test_counts_every_kind_of_ignored_pod() -> None:
    samples = {**SKEWED, "young": 1.0, "gone": 1.0, "bad": math.nan, "off": 1.0}
    pods = [pod(name) for name in SKEWED] + [
        pod("young", age=timedelta(0)),
        pod("bad"),
        pod("off", excluded=True),
        pod("quiet"),
    ]

    result = plan(samples, pods, POLICY, NOW)

    assert result.ignored == {
        "too_young": 1,
        "stale_series": 1,
        "non_finite_metric": 1,
        "excluded": 1,
        "no_metrics": 1,
    }


# --- select_outliers directly ----------------------------------------------------------------


def test_select_outliers_returns_nothing_for_a_count_of_zero() -> None:
    assert select_outliers(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), 0) == []


def test_select_outliers_alternates_starting_with_the_busiest() -> None:
    names = ["a", "b", "c", "d", "e"]
    values = np.array([0.5, 4.0, 0.1, 2.0, 1.0])

    assert select_outliers(names, values, 4) == [
        (1, "busiest"),
        (2, "idlest"),
        (3, "busiest"),
        (0, "idlest"),
    ]


def test_select_outliers_can_take_every_pod_without_repeating_one() -> None:
    chosen = select_outliers(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), 3)

    assert chosen == [(2, "busiest"), (0, "idlest"), (1, "busiest")]


def test_select_outliers_never_returns_a_pod_twice_when_count_exceeds_the_pods() -> None:
    chosen = select_outliers(["a", "b"], np.array([1.0, 2.0]), 4)

    indices = [index for index, _ in chosen]
    assert len(indices) == len(set(indices))


# --- properties ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    samples: dict[str, float]
    pods: list[PodInfo]
    policy: Policy


# One flat draw per pod and one per policy keeps each law well under half a second.
# Small integer-valued CPU so that ties are common; now and then a broken series.
CPU_VALUES = [0.0, 1.0, 2.0, 3.0, 4.0] * 3 + [math.nan, math.inf]
# Mostly healthy pods, and every way a pod can be left out.
HEALTHY: dict[str, object] = {}
PROFILES: list[dict[str, object]] = [HEALTHY] * 10 + [
    {"ready": False},
    {"terminating": True},
    {"ready": False, "terminating": True},
    {"age": timedelta(0)},
    {"age": timedelta(minutes=5)},
    {"age": None},
    {"age": MIN_AGE},
    {"excluded": True},
    {"excluded": True, "age": None},
    {"measured": False},
    {"listed": False},
]
pod_specs = st.lists(
    st.sampled_from([(profile, cpu) for profile in PROFILES for cpu in CPU_VALUES]), max_size=10
)
policies = st.sampled_from(
    [
        Policy(statistic, threshold, min_pods, max_delete, improvement, MIN_AGE)
        for min_pods, max_delete, threshold, improvement, statistic in itertools.product(
            range(1, 6), range(1, 6), [0.0, 0.1, 0.3, 1.0], [0.0, 10.0, 50.0], list(Statistic)
        )
    ]
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    samples: dict[str, float] = {}
    pods: list[PodInfo] = []
    for index, (profile, cpu) in enumerate(draw(pod_specs)):
        name = f"pod-{index}"
        traits = dict(profile)
        listed = bool(traits.pop("listed", True))
        if traits.pop("measured", True) or not listed:
            samples[name] = cpu
        if listed:
            pods.append(pod(name, **traits))  # type: ignore[arg-type]
    return Case(samples, pods, draw(policies))


def usable(case: Case) -> dict[str, float]:
    """The pods that may be measured and selected, worked out independently of the planner."""
    finite = {k: v for k, v in case.samples.items() if math.isfinite(v)}
    return {
        p.name: finite[p.name]
        for p in case.pods
        if p.name in finite and pod_skip(p, NOW, case.policy.min_pod_age) is None
    }


def ready_count(case: Case) -> int:
    return sum(1 for p in case.pods if p.ready and not p.terminating)


def run(case: Case) -> Plan:
    return plan(case.samples, case.pods, case.policy, NOW)


def shuffled(case: Case, data: st.DataObject) -> tuple[Mapping[str, float], Sequence[PodInfo]]:
    samples = dict(data.draw(st.permutations(list(case.samples.items()))))
    pods = data.draw(st.permutations(case.pods))
    return samples, pods


@given(case=cases(), data=st.data())
def test_plan_does_not_depend_on_the_order_of_samples_or_pods(
    case: Case, data: st.DataObject
) -> None:
    samples, pods = shuffled(case, data)

    assert plan(samples, pods, case.policy, NOW) == run(case)


def test_decision_does_not_depend_on_order_when_the_value_sits_at_the_threshold() -> None:
    # The same six pods listed in two orders; the threshold is the variance of the first order.
    values = {"p-a": 4.0, "p-b": 0.0, "p-c": 6.0, "p-d": 8.0, "p-e": 10.0, "p-f": 1.0}
    other_order = ["p-d", "p-f", "p-e", "p-a", "p-c", "p-b"]
    first = summarize(np.array(list(values.values()))).variance
    at_threshold = policy(threshold=first)

    one = planned(values, at_threshold)
    two = planned({name: values[name] for name in other_order}, at_threshold)

    assert one.reason is Reason.BELOW_THRESHOLD
    assert two.reason is one.reason


@given(case=cases())
def test_never_exceeds_max_delete_nor_leaves_fewer_than_min_pods_ready(case: Case) -> None:
    result = run(case)
    chosen = len(result.selected)

    assert chosen <= case.policy.max_delete, "the cap was exceeded"
    if len(usable(case)) < case.policy.min_pods:
        assert chosen == 0, "selected with fewer than min_pods usable pods"
        assert result.reason in {Reason.TOO_FEW_PODS, Reason.NO_METRICS}
    if chosen:
        assert ready_count(case) - chosen >= case.policy.min_pods, "too few Ready pods left"


@given(case=cases())
def test_selects_distinct_usable_extremes_alternating_busiest_and_idlest(case: Case) -> None:
    result = run(case)
    candidates = usable(case)
    names = [s.pod for s in result.selected]
    rest = [cpu for name, cpu in candidates.items() if name not in names]

    assert len(names) == len(set(names)), "a pod was selected twice"
    roles = [s.role for s in result.selected]
    assert roles == ["busiest", "idlest"] * (len(roles) // 2) + ["busiest"] * (len(roles) % 2)
    for selected in result.selected:
        assert candidates[selected.pod] == selected.cpu, "selected a pod that is not usable"
        if selected.role == "busiest":
            assert all(selected.cpu >= cpu for cpu in rest), "a busier pod was left"
        else:
            assert all(selected.cpu <= cpu for cpu in rest), "an idler pod was left"
    if result.selected:
        assert result.summary is not None
        assert result.expected_after is not None
        after = summarize(np.array(rest)).of(case.policy.statistic)
        before = result.summary.of(case.policy.statistic)
        assert result.expected_after.value == pytest.approx(after, rel=1e-9, abs=1e-12)
        assert result.expected_after.improvement_percent == pytest.approx(
            (before - after) / before * 100.0, rel=1e-9, abs=1e-9
        )
