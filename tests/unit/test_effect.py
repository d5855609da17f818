"""The closed loop's rules (core/effect.py): when a rebalance can be measured, the effectiveness
rule, the count of ineffective rebalances and the back-off."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer.core import effect
from pod_rebalancer.core.model import Effect, LeaseState, PodInfo
from pod_rebalancer.core.stats import Statistic
from tests.builders import NOW, pod

WINDOW = timedelta(minutes=5)
AT = NOW - timedelta(minutes=30)  # the rebalance
EXPECTED = Effect("variance", before=0.4, expected_after=0.05, evicted=("hot", "idle"))

positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
percent = st.floats(min_value=0, max_value=100, allow_nan=False)
scale = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)


def lease(**changes: Any) -> LeaseState:
    state = LeaseState(None, AT, timedelta(minutes=5), AT, ("hot", "idle"), EXPECTED)
    return replace(state, **changes)


@given(before=positive, achieved=positive, k=scale)
def test_the_improvement_does_not_depend_on_the_units(
    before: float, achieved: float, k: float
) -> None:
    one = effect.improvement_percent(before, achieved)
    scaled = effect.improvement_percent(before * k, achieved * k)
    assert one is not None
    assert scaled is not None
    assert math.isclose(one, scaled, rel_tol=1e-9, abs_tol=1e-9)


@given(before=positive, a=positive, b=positive)
def test_a_lower_achieved_value_is_never_a_smaller_improvement(
    before: float, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    better = effect.improvement_percent(before, low)
    worse = effect.improvement_percent(before, high)
    assert better is not None
    assert worse is not None
    assert better >= worse


@pytest.mark.parametrize("before", [0.0, -1.0, math.nan, math.inf])
def test_no_improvement_is_computed_from_a_before_that_is_not_positive(before: float) -> None:
    assert effect.improvement_percent(before, 0.1) is None


@given(improvement=st.floats(-1000, 100, allow_nan=False), required=percent)
def test_effective_exactly_when_half_the_required_improvement_is_reached(
    improvement: float, required: float
) -> None:
    assert effect.is_effective(improvement, required) is (improvement >= required / 2)


def test_the_boundary_is_half_of_min_improvement_percent() -> None:
    assert effect.is_effective(5.0, 10.0)
    assert not effect.is_effective(4.999, 10.0)
    assert effect.is_effective(0.0, 0.0)  # nothing was asked: any non-negative result helps
    assert not effect.is_effective(-0.1, 0.0)


def test_an_effective_rebalance_resets_the_count() -> None:
    state = lease(ineffective=1, last_ineffective=AT - timedelta(hours=2))
    judged = effect.judge(state, achieved=0.1, min_improvement_percent=10, now=NOW)
    assert judged is not None
    assert judged.effect.effective is True
    assert judged.effect.achieved == 0.1
    assert judged.effect.improvement_percent == pytest.approx(75.0)
    assert judged.effect.measured_at == NOW
    assert judged.ineffective == 0


def test_an_ineffective_rebalance_counts_and_stamps_the_time() -> None:
    judged = effect.judge(lease(ineffective=1), achieved=0.39, min_improvement_percent=10, now=NOW)
    assert judged is not None
    assert judged.effect.effective is False
    assert (judged.ineffective, judged.last_ineffective) == (2, NOW)


def test_a_worse_balance_is_ineffective() -> None:
    judged = effect.judge(lease(), achieved=0.5, min_improvement_percent=10, now=NOW)
    assert judged is not None
    assert judged.effect.effective is False
    assert judged.effect.improvement_percent == pytest.approx(-25.0)


def test_a_rebalance_is_judged_once() -> None:
    judged = effect.judge(lease(), achieved=0.39, min_improvement_percent=10, now=NOW)
    assert judged is not None
    again = lease(effect=judged.effect, ineffective=judged.ineffective)
    assert effect.judge(again, achieved=0.39, min_improvement_percent=10, now=NOW) is None
    assert (
        effect.judge(lease(effect=None), achieved=0.1, min_improvement_percent=10, now=NOW) is None
    )


@given(
    count=st.integers(0, 10),
    most=st.integers(1, 10),
    ago=st.integers(0, 48 * 3600),
)
def test_backing_off_exactly_within_the_backoff_after_enough_ineffective_rebalances(
    count: int, most: int, ago: int
) -> None:
    backoff = timedelta(hours=24)
    state = lease(ineffective=count, last_ineffective=NOW - timedelta(seconds=ago))
    expected = count >= most and timedelta(seconds=ago) < backoff
    assert effect.backing_off(state, NOW, most, backoff) is expected


def test_no_lease_or_no_stamp_never_backs_off() -> None:
    assert not effect.backing_off(None, NOW, 1, timedelta(hours=1))
    assert not effect.backing_off(lease(ineffective=5), NOW, 1, timedelta(hours=1))


def replacement(name: str, ready_for: timedelta, **changes: Any) -> PodInfo:
    """A pod started after the rebalance, Ready for `ready_for`."""
    started = NOW - ready_for - timedelta(seconds=20)
    return replace(pod(name), started_at=started, ready_since=NOW - ready_for, **changes)


def test_measurable_once_every_replacement_was_ready_for_a_full_window() -> None:
    pods = [pod("old-1"), pod("old-2"), replacement("new-1", WINDOW), replacement("new-2", WINDOW)]
    assert effect.too_early(EXPECTED, AT, pods, WINDOW, NOW) is None


def test_too_early_while_a_replacement_was_ready_for_less_than_the_window() -> None:
    pods = [pod("old-1"), replacement("new-1", WINDOW), replacement("new-2", timedelta(minutes=2))]
    note = effect.too_early(EXPECTED, AT, pods, WINDOW, NOW)
    assert note == "too early to measure: replacement new-2 Ready for 120s of the 300s window"


def test_too_early_while_an_evicted_pod_is_still_there() -> None:
    pods = [pod("old-1"), pod("hot", terminating=True), replacement("new-1", WINDOW)]
    note = effect.too_early(EXPECTED, AT, pods, WINDOW, NOW)
    assert note == "too early to measure: evicted pod hot is still there"


def test_too_early_while_a_replacement_is_not_ready() -> None:
    pods = [pod("old-1"), replacement("new-1", WINDOW, ready=False)]
    note = effect.too_early(EXPECTED, AT, pods, WINDOW, NOW)
    assert note == "too early to measure: replacement new-1 is not Ready"


def test_a_pod_without_a_start_time_is_too_early() -> None:
    pods = [pod("old-1"), pod("new-1", age=None)]
    note = effect.too_early(EXPECTED, AT, pods, WINDOW, NOW)
    assert note == "too early to measure: pod new-1 has no start time yet"


@given(
    values=st.lists(st.floats(0, 64, allow_nan=False), min_size=2, max_size=30),
    data=st.data(),
)
def test_achieved_is_the_statistic_of_the_ready_pods_in_any_order(
    values: list[float], data: st.DataObject
) -> None:
    names = [f"p-{i}" for i in range(len(values))]
    samples = dict(zip(names, values, strict=True))
    samples["not-ready"] = 50.0
    samples["nan"] = math.nan
    listed = [pod(n) for n in names] + [pod("not-ready", ready=False), pod("nan")]
    shuffled = data.draw(st.permutations(listed))
    got = effect.achieved_value(samples, shuffled, Statistic.VARIANCE)
    mean = sum(values) / len(values)
    want = sum((v - mean) ** 2 for v in values) / len(values)
    assert got is not None
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def test_achieved_needs_two_pods() -> None:
    assert effect.achieved_value({"a": 1.0}, [pod("a"), pod("b")], Statistic.CV) is None
