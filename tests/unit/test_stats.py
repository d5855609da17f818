"""summarize(): population statistics as PromQL's avg/stddev/stdvar compute them, and their laws."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer.core.model import Statistic, Summary
from pod_rebalancer.core.stats import summarize

# CPU in cores: never negative, never absurdly large.
cpu = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)
cpu_lists = st.lists(cpu, min_size=1, max_size=20)


def of(values: list[float]) -> Summary:
    return summarize(np.array(values, dtype=np.float64))


def test_matches_hand_computed_population_statistics() -> None:
    # mean 5; squared deviations 9, 1, 1, 1, 0, 0, 4, 16 -> sum 32; population variance 32 / 8.
    summary = of([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])

    assert summary.count == 8
    assert summary.mean == 5.0
    assert summary.variance == 4.0
    assert summary.stddev == 2.0
    assert summary.cv == pytest.approx(0.4, rel=1e-12)
    assert summary.min == 2.0
    assert summary.max == 9.0


def test_variance_divides_by_n_not_n_minus_one() -> None:
    summary = of([1.0, 3.0])

    assert summary.variance == 1.0  # the sample variance would be 2.0
    assert summary.stddev == 1.0


def test_single_value_has_zero_spread() -> None:
    summary = of([0.7])

    assert summary == Summary(count=1, mean=0.7, stddev=0.0, variance=0.0, cv=0.0, min=0.7, max=0.7)


@pytest.mark.parametrize(
    "values",
    [
        [0.1, 0.2, 0.3],
        [2.3, 0.1, 0.8, 0.8, 0.75, 0.9, 1.2, 0.05, 0.6, 0.5, 0.4, 0.0],
        [1e-6, 3e-6, 2e-6],
        [250.0, 250.5, 249.5, 251.0],
    ],
)
def test_agrees_with_the_statistics_module(values: list[float]) -> None:
    summary = of(values)

    assert summary.count == len(values)
    assert summary.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert summary.variance == pytest.approx(statistics.pvariance(values), rel=1e-12)
    assert summary.stddev == pytest.approx(statistics.pstdev(values), rel=1e-12)
    assert summary.min == min(values)
    assert summary.max == max(values)


def test_cv_is_stddev_over_mean() -> None:
    summary = of([0.2, 0.4, 0.9, 1.5])

    assert summary.cv == pytest.approx(summary.stddev / summary.mean, rel=1e-12)


def test_cv_is_zero_when_every_pod_idles() -> None:
    summary = of([0.0, 0.0, 0.0])

    assert summary.mean == 0.0
    assert summary.cv == 0.0


def test_of_returns_the_requested_statistic() -> None:
    summary = of([0.2, 0.4, 0.9, 1.5])

    assert summary.of(Statistic.VARIANCE) == summary.variance
    assert summary.of(Statistic.STDDEV) == summary.stddev
    assert summary.of(Statistic.CV) == summary.cv


def test_refuses_empty_input() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        summarize(np.array([], dtype=np.float64))


@given(values=cpu_lists, data=st.data())
def test_every_field_is_invariant_under_permutation(
    values: list[float], data: st.DataObject
) -> None:
    # Exact equality: the planner compares these numbers with thresholds, so the last bit counts.
    shuffled = data.draw(st.permutations(values))

    assert of(shuffled) == of(values)


@given(values=cpu_lists)
def test_is_never_negative_and_agrees_with_the_statistics_module(values: list[float]) -> None:
    summary = of(values)

    assert summary.variance >= 0.0
    assert summary.stddev >= 0.0
    assert summary.cv >= 0.0
    # Absolute slack for sets whose spread is pure rounding (all values equal).
    assert summary.mean == pytest.approx(statistics.fmean(values), rel=1e-12, abs=1e-12)
    assert summary.variance == pytest.approx(statistics.pvariance(values), rel=1e-9, abs=1e-12)
    assert summary.min == min(values)
    assert summary.max == max(values)


@given(
    values=st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=2, max_size=20),
    scale=st.floats(min_value=1e-3, max_value=1e3),
)
def test_cv_is_scale_invariant_while_variance_scales_by_the_square(
    values: list[float], scale: float
) -> None:
    before = of(values)
    after = of([v * scale for v in values])

    # A spread that is pure rounding error has no scale to keep: give it an absolute floor.
    assert after.cv == pytest.approx(before.cv, rel=1e-9, abs=1e-12)
    assert after.variance == pytest.approx(
        before.variance * scale**2, rel=1e-9, abs=1e-12 * scale**2 * before.mean**2
    )
    assert after.mean == pytest.approx(before.mean * scale, rel=1e-12)
