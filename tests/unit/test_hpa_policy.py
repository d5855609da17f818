"""The planner under IMBALANCE_POLICY=hpa_target: hot pods against the HPA's CPU target times
TOLERANCE_MULTIPLIER of their requests, their selection with the idlest, and the laws of it
(caps never exceeded, never below the minimum, every busiest hot, order of the pods irrelevant)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer.core.model import HpaTarget, Plan, PodInfo, PodSkip, Reason, Target
from pod_rebalancer.core.planner import hot_improvement, plan
from pod_rebalancer.records import kube_event
from pod_rebalancer.report import Action, Outcome
from tests.builders import NOW, pod
from tests.unit.test_planner import POLICY

HPA_POLICY = replace(POLICY, kind="hpa_target", tolerance=1.5)
HPA = HpaTarget(name="ingestion-consumer", cpu_utilization=70)
REQUEST = 0.5  # cores: hot above 0.7 * 1.5 * 0.5 = 0.525


def requested(names: dict[str, float], request: float | None = REQUEST) -> list[PodInfo]:
    return [replace(pod(name), cpu_request=request) for name in names]


def judged(samples: dict[str, float], hpa: HpaTarget | None = HPA, **policy: object) -> Plan:
    rules = replace(HPA_POLICY, **policy)  # type: ignore[arg-type]
    return plan(samples, requested(samples), rules, NOW, hpa=hpa)


# Two hot pods (0.9, 0.6 > 0.525), the rest below; c-5 idles.
CPU = {"c-0": 0.9, "c-1": 0.6, "c-2": 0.4, "c-3": 0.45, "c-4": 0.35, "c-5": 0.05}


def test_without_an_hpa_it_skips_with_no_hpa_target() -> None:
    result = judged(CPU, hpa=None)
    assert result.reason is Reason.NO_HPA_TARGET
    assert not result.selected


def test_an_hpa_without_a_cpu_utilization_target_is_no_hpa_target() -> None:
    assert judged(CPU, hpa=HpaTarget("x", None)).reason is Reason.NO_HPA_TARGET


def test_no_pod_above_the_hot_line_skips_with_no_hot_pods() -> None:
    cool = {name: min(value, 0.5) for name, value in CPU.items()}
    result = judged(cool)
    assert result.reason is Reason.NO_HOT_PODS
    assert result.hpa is not None
    assert result.hpa.hot_pods == 0
    assert result.hpa.hot_line_percent == pytest.approx(105.0)
    assert result.hpa.peak_percent == pytest.approx(100.0)
    assert result.threshold == pytest.approx(105.0)  # the HPA replaces CPU_VARIANCE_THRESHOLD


def test_the_variance_threshold_plays_no_part() -> None:
    # Variance far below 0.3, yet one pod is hot: hpa_target acts where variance would not.
    samples = {f"c-{i}": 0.5 for i in range(5)} | {"c-5": 0.56}
    assert plan(samples, requested(samples), POLICY, NOW).reason is Reason.BELOW_THRESHOLD
    result = judged(samples, min_improvement_percent=0.0)
    assert result.reason is Reason.IMBALANCE_CONFIRMED
    assert result.selected[0].pod == "c-5"


def test_hot_pods_alternate_with_the_idlest() -> None:
    result = judged(CPU, max_delete=4, min_pods=2)
    assert [(s.pod, s.role) for s in result.selected] == [
        ("c-0", "busiest"),
        ("c-5", "idlest"),
        ("c-1", "busiest"),
        ("c-4", "idlest"),
    ]
    assert result.hpa is not None
    assert result.hpa.hot_pods == 2


def test_one_hot_pod_takes_one_idlest_however_large_the_cap() -> None:
    samples = {**CPU, "c-1": 0.5}
    result = judged(samples, max_delete=6, min_pods=1)
    assert [(s.pod, s.role) for s in result.selected] == [("c-0", "busiest"), ("c-5", "idlest")]


def test_the_expected_improvement_is_the_hot_mean_against_hot_and_idlest() -> None:
    result = judged(CPU)
    assert result.expected_after is not None
    # hot c-0 (0.9) with idlest c-5 (0.05): (0.9 - 0.475) / 0.9
    assert result.expected_after.improvement_percent == pytest.approx(425 / 9)
    assert hot_improvement(np.array([0.9]), np.array([0.9, 0.05])) == pytest.approx(425 / 9)


def test_too_small_an_improvement_is_insufficient() -> None:
    samples = {name: 0.55 for name in CPU}  # every pod hot, none idle
    result = judged(samples)
    assert result.reason is Reason.INSUFFICIENT_IMPROVEMENT


def test_pods_without_a_cpu_request_are_left_out_and_counted() -> None:
    pods = requested(CPU)
    pods[0] = replace(pods[0], cpu_request=None)
    result = plan(CPU, pods, HPA_POLICY, NOW, hpa=HPA)
    assert result.ignored == {PodSkip.NO_CPU_REQUEST: 1}
    assert "c-0" not in {s.pod for s in result.selected}


def test_utilisation_is_against_each_pods_own_request() -> None:
    pods = requested(CPU)
    pods[1] = replace(pods[1], cpu_request=2.0)  # 0.6 of 2 cores is 30%: not hot
    result = plan(CPU, pods, HPA_POLICY, NOW, hpa=HPA)
    assert result.hpa is not None
    assert result.hpa.hot_pods == 1


def test_never_leaves_fewer_than_min_pods_ready() -> None:
    result = judged(CPU, min_pods=6)
    assert result.reason is Reason.TOO_FEW_PODS


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, float]:
    n = draw(st.integers(min_value=1, max_value=20))
    cpu = draw(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=n, max_size=n))
    return {f"p-{i:02d}": value for i, value in enumerate(cpu)}


@given(
    samples=fleets(),
    max_delete=st.integers(min_value=1, max_value=6),
    min_pods=st.integers(min_value=1, max_value=8),
    target=st.integers(min_value=10, max_value=150),
    tolerance=st.floats(min_value=0.5, max_value=3.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_laws_of_the_hpa_selection(
    samples: dict[str, float],
    max_delete: int,
    min_pods: int,
    target: int,
    tolerance: float,
    seed: int,
) -> None:
    hpa = HpaTarget("h", target)
    rules = {"max_delete": max_delete, "min_pods": min_pods, "tolerance": tolerance}
    result = judged(samples, hpa=hpa, **rules)
    line = target * tolerance / 100 * REQUEST
    busiest = [s for s in result.selected if s.role == "busiest"]
    idlest = [s for s in result.selected if s.role == "idlest"]
    assert len(result.selected) <= max_delete
    assert len(samples) - len(result.selected) >= min_pods or not result.selected
    assert all(s.cpu > line for s in busiest)
    assert all(not s.cpu > line for s in idlest)
    assert len(idlest) <= len(busiest)
    if result.reason is Reason.NO_HOT_PODS:
        assert all(not value > line for value in samples.values())
    # The order the pods were listed in changes nothing.
    order = np.random.default_rng(seed).permutation(len(samples)).tolist()
    shuffled = {list(samples)[i]: samples[list(samples)[i]] for i in order}
    again = judged(shuffled, hpa=hpa, **rules)
    assert again.reason is result.reason
    assert again.selected == result.selected


def test_without_an_hpa_target_there_is_no_threshold_to_report() -> None:
    assert judged(CPU, hpa=None).threshold is None
    assert judged(CPU, hpa=HpaTarget("x", None)).threshold is None


def test_the_rebalanced_event_speaks_of_the_hpa_target_not_the_variance() -> None:
    result = judged(CPU)
    outcome = Outcome(
        Target("posthog", "ingestion-consumer"),
        False,
        Action.REBALANCED,
        result.reason.value,
        result,
        evicted=("c-0", "c-5"),
    )
    note = kube_event(outcome)
    assert note.message == (
        "evicted c-0, c-5 (the hottest pod at 180% of its CPU request > 105%: "
        "HPA ingestion-consumer target 70% x TOLERANCE_MULTIPLIER)"
    )
