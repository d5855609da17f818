"""The statistic choice and per-pod CPU statistics, equal to PromQL's avg/stddev/stdvar.

PromQL uses population formulas (divide by n). Two-pass numpy (mean first, then squared
deviations) agrees with the servers' running algorithms to rounding error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Statistic(StrEnum):
    """How imbalance is measured (IMBALANCE_STATISTIC); each equals the PromQL aggregation."""

    VARIANCE = "variance"  # population variance, PromQL stdvar()
    STDDEV = "stddev"  # population standard deviation, PromQL stddev()
    CV = "cv"  # stddev / mean: independent of the workload's absolute CPU


@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of per-pod CPU (cores), population formulas as PromQL uses."""

    count: int
    mean: float
    stddev: float
    variance: float
    cv: float
    min: float
    max: float

    def of(self, statistic: Statistic) -> float:
        """The value the threshold is compared with, for the configured statistic."""
        if statistic is Statistic.VARIANCE:
            return self.variance
        if statistic is Statistic.STDDEV:
            return self.stddev
        return self.cv


def summarize(values: FloatArray) -> Summary:
    """Statistics of finite CPU values; the caller has removed NaN and Inf."""
    count = int(values.size)
    if count == 0:
        raise ValueError("summarize needs at least one value")
    # Floating-point sums depend on the order of their terms; sorting first makes the result (and
    # so a decision sitting exactly at the threshold) independent of the order pods were listed.
    values = np.sort(values)
    mean = float(values.mean())
    deviations = values - mean
    # Not np.dot: BLAS threads make it erratic on a busy 2-core instance (see bench/README.md).
    variance = float(np.square(deviations).sum() / count)
    stddev = variance**0.5
    # CPU is never negative, so mean == 0 means every pod idles: perfectly balanced.
    cv = stddev / mean if mean > 0 else 0.0
    return Summary(
        count=count,
        mean=mean,
        stddev=stddev,
        variance=variance,
        cv=cv,
        min=float(values.min()),
        max=float(values.max()),
    )
