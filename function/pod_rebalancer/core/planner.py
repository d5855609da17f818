"""The decision for one target: measure, judge, select the outliers, and return it as a Plan.

Pure: the caller passes the per-pod CPU samples, the target's pods, the policy and the current
time; nothing here reads the environment or the clock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from pod_rebalancer.core.model import (
    Expected,
    Plan,
    PodInfo,
    PodSkip,
    Policy,
    Reason,
    Role,
    Selected,
)
from pod_rebalancer.core.pod_guards import pod_skip
from pod_rebalancer.core.stats import FloatArray, Summary, summarize

_GUARD_SKIPS = (PodSkip.TERMINATING, PodSkip.NOT_READY, PodSkip.TOO_YOUNG, PodSkip.EXCLUDED)


def plan(
    samples: Mapping[str, float],
    pods: Sequence[PodInfo],
    policy: Policy,
    now: datetime,
) -> Plan:
    ignored: Counter[str] = Counter()
    names, values, ready = _candidates(samples, pods, policy, now, ignored)

    def decide(
        reason: Reason,
        summary: Summary | None = None,
        expected_after: Expected | None = None,
        selected: tuple[Selected, ...] = (),
    ) -> Plan:
        return Plan(
            reason=reason,
            statistic=policy.statistic,
            threshold=policy.threshold,
            summary=summary,
            expected_after=expected_after,
            selected=selected,
            ignored=dict(ignored),
        )

    if not names:
        # Nothing to measure: say "no_metrics" only when missing series are the whole story.
        guarded = any(ignored[s] for s in _GUARD_SKIPS)
        return decide(Reason.TOO_FEW_PODS if guarded else Reason.NO_METRICS)
    if len(names) < policy.min_pods:
        return decide(Reason.TOO_FEW_PODS)

    array = np.fromiter(values, dtype=np.float64, count=len(values))
    summary = summarize(array)
    value = summary.of(policy.statistic)
    if not value > policy.threshold:
        return decide(Reason.BELOW_THRESHOLD, summary=summary)

    # Never leave fewer than min_pods Ready pods behind, and never act on more than the cap.
    budget = min(policy.max_delete, ready - policy.min_pods, len(names) - 1)
    if budget <= 0:
        return decide(Reason.TOO_FEW_PODS, summary=summary)

    chosen = select_outliers(names, array, budget)
    remaining = np.delete(array, [index for index, _ in chosen])
    after = summarize(remaining).of(policy.statistic)
    improvement = (value - after) / value * 100.0
    expected = Expected(value=after, improvement_percent=improvement)
    selected = tuple(Selected(pod=names[i], cpu=float(array[i]), role=role) for i, role in chosen)
    if improvement < policy.min_improvement_percent:
        return decide(Reason.INSUFFICIENT_IMPROVEMENT, summary, expected, selected)
    return decide(Reason.IMBALANCE_CONFIRMED, summary, expected, selected)


def _candidates(
    samples: Mapping[str, float],
    pods: Sequence[PodInfo],
    policy: Policy,
    now: datetime,
    ignored: Counter[str],
) -> tuple[list[str], list[float], int]:
    """Pods that may be measured and selected, their CPU, and how many pods are Ready now."""
    names: list[str] = []
    values: list[float] = []
    ready = 0
    seen: set[str] = set()
    for pod in pods:
        seen.add(pod.name)
        if pod.ready and not pod.terminating:
            ready += 1
        why = pod_skip(pod, now, policy.min_pod_age)
        if why is not None:
            ignored[why] += 1
            continue
        measured = samples.get(pod.name)
        if measured is None:
            ignored[PodSkip.NO_METRICS] += 1  # skipped, never counted as zero
        elif not math.isfinite(measured):
            ignored[PodSkip.NON_FINITE] += 1
        else:
            names.append(pod.name)
            values.append(measured)
    stale = sum(1 for name in samples if name not in seen)
    if stale:
        ignored[PodSkip.STALE_SERIES] += stale
    return names, values, ready


def select_outliers(names: Sequence[str], values: FloatArray, count: int) -> list[tuple[int, Role]]:
    """Indices of the busiest and idlest pods, alternating (busiest first), `count` in all.

    Ties are broken by pod name so the choice never depends on the order of the input.
    """
    count = min(count, len(names))  # each pod at most once, in one role
    if count <= 0:
        return []
    n_busiest = (count + 1) // 2
    n_idlest = count // 2
    busiest = _extremes(names, values, n_busiest, largest=True, exclude=())
    idlest = _extremes(names, values, n_idlest, largest=False, exclude=busiest)
    chosen: list[tuple[int, Role]] = []
    for rank in range(n_busiest):
        chosen.append((busiest[rank], "busiest"))
        if rank < len(idlest):
            chosen.append((idlest[rank], "idlest"))
    return chosen


def _extremes(
    names: Sequence[str],
    values: FloatArray,
    k: int,
    *,
    largest: bool,
    exclude: Sequence[int],
) -> list[int]:
    if k <= 0:
        return []
    keyed = -values if largest else values.copy()
    if exclude:
        keyed[list(exclude)] = np.inf
    # Partition finds the k-th extreme in O(n); only the pods tied at or beyond it get sorted.
    kth = min(k, keyed.size) - 1
    cutoff = np.partition(keyed, kth)[kth]
    pool = np.flatnonzero(keyed <= cutoff)
    ranked = sorted(pool.tolist(), key=lambda i: (keyed[i], names[i]))
    return ranked[:k]
