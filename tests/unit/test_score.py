"""core/score.py and the planner under IMBALANCE_SIGNAL=score: the laws of the composite score
(scale invariance per signal, weights summing to 1, permutation invariance) and what the plan
reports and skips."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer.core.model import Plan, PodSkip, Policy, Reason
from pod_rebalancer.core.planner import plan
from pod_rebalancer.core.score import (
    DEFAULT_WEIGHTS,
    SIGNALS,
    effective_weights,
    normalised,
    per_pod,
    scores,
)
from pod_rebalancer.core.stats import Statistic, summarize
from tests.builders import NOW, pods
from tests.unit.test_planner import POLICY

WEIGHTS = effective_weights(DEFAULT_WEIGHTS, SIGNALS)
SCORE = replace(POLICY, signal="score", weights=WEIGHTS, statistic=Statistic.CV, threshold=0.2)

values = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
scales = st.floats(min_value=1e-3, max_value=1e3)


@st.composite
def columns(draw: st.DrawFn, size: int | None = None) -> dict[str, np.ndarray]:
    n = size if size is not None else draw(st.integers(min_value=1, max_value=30))
    return {
        name: np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
        for name in SIGNALS
    }


weight_sets = st.lists(
    st.tuples(st.sampled_from(SIGNALS), st.floats(min_value=0.0, max_value=100.0)),
    min_size=1,
    max_size=3,
    unique_by=lambda pair: pair[0],
)


# --- the laws --------------------------------------------------------------------------------


@given(weights=weight_sets, configured=st.sets(st.sampled_from(SIGNALS), min_size=1))
def test_effective_weights_keep_only_configured_signals_and_sum_to_one(
    weights: list[tuple[str, float]], configured: set[str]
) -> None:
    try:
        kept = effective_weights(tuple(weights), configured)
    except ValueError:
        assert not any(name in configured and weight > 0 for name, weight in weights)
        return
    assert {name for name, _ in kept} <= configured
    assert math.isclose(math.fsum(weight for _, weight in kept), 1.0, rel_tol=1e-12)
    assert all(weight > 0 for _, weight in kept)


def test_default_weights_without_memory_become_half_and_half() -> None:
    assert effective_weights(DEFAULT_WEIGHTS, {"cpu", "lag"}) == (("cpu", 0.5), ("lag", 0.5))


@given(data=columns(), signal=st.sampled_from(SIGNALS), scale=scales)
def test_scaling_one_signal_leaves_every_score_unchanged(
    data: dict[str, np.ndarray], signal: str, scale: float
) -> None:
    scaled = {**data, signal: data[signal] * scale}
    np.testing.assert_allclose(scores(scaled, WEIGHTS), scores(data, WEIGHTS), rtol=1e-9, atol=1e-9)


@given(data=columns(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_permuting_the_pods_permutes_their_scores(data: dict[str, np.ndarray], seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(data["cpu"]))
    permuted = {name: column[order] for name, column in data.items()}
    np.testing.assert_allclose(
        scores(permuted, WEIGHTS), scores(data, WEIGHTS)[order], rtol=1e-12, atol=1e-12
    )


@given(data=columns())
def test_the_mean_score_is_one_when_no_signal_is_all_zero(data: dict[str, np.ndarray]) -> None:
    if any(not column.sum() > 0 for column in data.values()):
        return
    assert math.isclose(float(scores(data, WEIGHTS).mean()), 1.0, rel_tol=1e-9)


def test_a_signal_with_mean_zero_contributes_zero_to_every_pod() -> None:
    assert normalised(np.zeros(4)).tolist() == [0.0, 0.0, 0.0, 0.0]
    data = {"cpu": np.array([1.0, 3.0]), "lag": np.zeros(2), "memory": np.array([2.0, 2.0])}
    # cpu 0.4 * (0.5, 1.5) + lag 0 + memory 0.2 * (1, 1)
    np.testing.assert_allclose(scores(data, WEIGHTS), [0.4, 0.8])


def test_per_pod_scores_only_pods_with_every_weighted_signal() -> None:
    signals = {"cpu": {"a": 1.0, "b": 1.0, "c": 1.0}, "lag": {"a": 10.0, "b": math.nan}}
    weights = effective_weights(DEFAULT_WEIGHTS, {"cpu", "lag"})
    assert per_pod(signals, weights, ["a", "b", "c"]) == {"a": 1.0}


# --- the planner with the score ---------------------------------------------------------------

CPU = {f"c-{i}": 1.0 for i in range(6)}
LAG = {"c-0": 9000.0, "c-1": 0.0, "c-2": 200.0, "c-3": 300.0, "c-4": 250.0, "c-5": 250.0}
MEMORY = {name: 2.0e9 for name in CPU}


def scored(
    cpu: dict[str, float] = CPU,
    lag: dict[str, float] = LAG,
    memory: dict[str, float] = MEMORY,
    policy: Policy = SCORE,
) -> Plan:
    return plan(cpu, pods(cpu), policy, NOW, signals={"lag": lag, "memory": memory})


def test_a_lagging_pod_at_the_same_cpu_is_found_by_the_score_and_missed_by_cpu() -> None:
    by_cpu = plan(CPU, pods(CPU), POLICY, NOW)
    assert by_cpu.reason is Reason.BELOW_THRESHOLD  # every pod at 1.0 core

    result = scored()
    assert result.reason is Reason.IMBALANCE_CONFIRMED
    assert [(s.pod, s.role) for s in result.selected] == [("c-0", "busiest"), ("c-1", "idlest")]


def test_selected_pods_carry_their_raw_signals_and_score() -> None:
    busiest = scored().selected[0]
    assert busiest.signals == {"cpu": 1.0, "lag": 9000.0, "memory": 2.0e9}
    assert busiest.cpu == 1.0
    # 0.4 * 1 + 0.4 * 9000 / mean(lag) + 0.2 * 1
    assert busiest.score == pytest.approx(0.4 + 0.4 * 9000.0 / (10000.0 / 6) + 0.2)


def test_the_statistics_are_those_of_the_score() -> None:
    result = scored()
    lag_mean = sum(LAG.values()) / 6
    expected = [0.6 + 0.4 * LAG[name] / lag_mean for name in CPU]
    summary, wanted = result.summary, summarize(np.array(expected))
    assert summary is not None
    for name in ("count", "mean", "stddev", "variance", "cv", "min", "max"):
        assert getattr(summary, name) == pytest.approx(getattr(wanted, name), rel=1e-12, abs=1e-12)
    assert result.measured_as == "score:cv"


def test_a_pod_without_a_lag_series_is_skipped_and_counted_not_scored_as_zero() -> None:
    lag = {name: value for name, value in LAG.items() if name != "c-1"}
    result = scored(lag=lag)
    assert result.ignored == {PodSkip.MISSING_SIGNAL: 1}
    assert result.summary is not None
    assert result.summary.count == 5
    assert "c-1" not in {s.pod for s in result.selected}


def test_a_non_finite_memory_value_counts_as_a_missing_signal() -> None:
    result = scored(memory={**MEMORY, "c-2": math.inf})
    assert result.ignored == {PodSkip.MISSING_SIGNAL: 1}


def test_without_lag_anywhere_the_score_is_cpu_and_memory_alone() -> None:
    result = scored(lag=dict.fromkeys(CPU, 0.0))
    assert result.reason is Reason.BELOW_THRESHOLD  # every pod scores 0.4 + 0 + 0.2


@given(
    lag_scale=scales,
    memory_scale=scales,
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_the_decision_ignores_units_and_the_order_of_the_pods(
    lag_scale: float, memory_scale: float, seed: int
) -> None:
    base = scored()
    order = np.random.default_rng(seed).permutation(len(CPU)).tolist()
    names = [list(CPU)[i] for i in order]
    cpu = {name: CPU[name] for name in names}
    lag = {name: LAG[name] * lag_scale for name in names}
    memory = {name: MEMORY[name] * memory_scale for name in names}
    other = scored(cpu, lag, memory)
    assert other.reason is base.reason
    assert [(s.pod, s.role) for s in other.selected] == [(s.pod, s.role) for s in base.selected]
    assert other.summary is not None
    assert base.summary is not None
    assert other.summary.cv == pytest.approx(base.summary.cv, rel=1e-9)
