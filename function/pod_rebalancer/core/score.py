"""The composite imbalance score (IMBALANCE_SIGNAL=score): each signal over its own mean, weighted.

Pure: CPU, lag and memory arrive as per-pod values; what comes back is one dimensionless number
per pod, 1.0 for a pod that is average in every signal. Dividing by the mean makes each signal
scale-free (cores, messages and bytes weigh only through SCORE_WEIGHTS); a signal whose mean is 0
(no lag anywhere) says nothing about any pod, so it contributes 0 to every score.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from pod_rebalancer.core.stats import FloatArray

SIGNALS = ("cpu", "lag", "memory")
DEFAULT_WEIGHTS = (("cpu", 0.4), ("lag", 0.4), ("memory", 0.2))

Weights = tuple[tuple[str, float], ...]


def effective_weights(weights: Weights, configured: Collection[str]) -> Weights:
    """The weights of the configured signals only, renormalised to sum to 1.

    ValueError when none of them has a positive weight: such a score could never rank a pod.
    """
    kept = [(name, weight) for name, weight in weights if name in configured and weight > 0]
    total = math.fsum(weight for _, weight in kept)
    if not kept or not total > 0:
        names = ", ".join(sorted(configured)) or "none"
        raise ValueError(f"no positive weight for the configured signals ({names})")
    # A weight too small to survive the division (a subnormal) weighs nothing: left out.
    shares = ((name, weight / total) for name, weight in kept)
    return tuple((name, share) for name, share in shares if share > 0)


def normalised(values: FloatArray) -> FloatArray:
    """`values` divided by their mean; all zeros when the mean is 0 (the signal says nothing)."""
    mean = float(np.sort(values).mean()) if values.size else 0.0
    if mean == 0.0:
        return np.zeros_like(values)
    return values / mean


def scores(columns: Mapping[str, FloatArray], weights: Weights) -> FloatArray:
    """The weighted sum of each signal over its mean: one score per pod (the columns' order).

    Every column holds the same pods in the same order; `weights` names only columns present.
    """
    size = len(next(iter(columns.values()))) if columns else 0
    total = np.zeros(size, dtype=np.float64)
    for name, weight in weights:
        total += weight * normalised(columns[name])
    return total


def per_pod(
    signals: Mapping[str, Mapping[str, float]], weights: Weights, pods: Sequence[str]
) -> dict[str, float]:
    """The score of every pod of `pods` that has a finite value for every weighted signal."""
    names = [
        pod
        for pod in pods
        if all(math.isfinite(signals[name].get(pod, math.nan)) for name, _ in weights)
    ]
    columns = {
        name: np.fromiter((signals[name][pod] for pod in names), np.float64, len(names))
        for name, _ in weights
    }
    return dict(zip(names, scores(columns, weights).tolist(), strict=True))
