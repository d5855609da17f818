"""Per-pod CPU statistics, equal to what PromQL's avg/stddev/stdvar return for the same series.

PromQL uses population formulas (divide by n). Two-pass numpy (mean first, then squared
deviations) agrees with the servers' running algorithms to rounding error.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pod_rebalancer.core.model import Summary

FloatArray = npt.NDArray[np.float64]


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
