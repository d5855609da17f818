"""The decision for one target: measure, judge, select the outliers, and return it as a Plan.

Pure: the caller passes the per-pod CPU samples, the target's pods, the policy and the current
time; nothing here reads the environment or the clock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np

from pod_rebalancer.core import score
from pod_rebalancer.core.model import (
    Expected,
    HpaJudgement,
    HpaTarget,
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
    *,
    signals: Mapping[str, Mapping[str, float]] | None = None,
    hpa: HpaTarget | None = None,
) -> Plan:
    """The decision. `samples` is CPU per pod; `signals` adds the other configured signals
    (IMBALANCE_SIGNAL=score) by name; `hpa` is the Deployment's HPA (IMBALANCE_POLICY=hpa_target),
    None when it has none."""
    ignored: Counter[str] = Counter()
    by_hpa = policy.kind == "hpa_target"
    threshold: float | None = policy.threshold
    if by_hpa:
        utilization = hpa.cpu_utilization if hpa is not None else None
        threshold = None if utilization is None else utilization * policy.tolerance

    def decide(
        reason: Reason,
        summary: Summary | None = None,
        expected_after: Expected | None = None,
        selected: tuple[Selected, ...] = (),
        judged: HpaJudgement | None = None,
    ) -> Plan:
        return Plan(
            reason=reason,
            statistic=policy.statistic,
            threshold=threshold,
            summary=summary,
            expected_after=expected_after,
            selected=selected,
            ignored=dict(ignored),
            measured_as=policy.measured_as,
            hpa=judged,
        )

    if by_hpa and (hpa is None or hpa.cpu_utilization is None):
        return decide(Reason.NO_HPA_TARGET)
    hpa = hpa if by_hpa else None
    names, values, ready = _candidates(samples, pods, policy, now, ignored)
    raw: list[dict[str, float]] | None = None
    if policy.signal == "score" and not by_hpa:
        names, values, raw = _scored(names, values, signals or {}, policy, ignored)

    if not names:
        # Nothing to measure: say "no_metrics" only when missing series are the whole story.
        guarded = any(ignored[s] for s in _GUARD_SKIPS)
        return decide(Reason.TOO_FEW_PODS if guarded else Reason.NO_METRICS)
    if len(names) < policy.min_pods:
        return decide(Reason.TOO_FEW_PODS)

    array = np.fromiter(values, dtype=np.float64, count=len(values))
    summary = summarize(array)
    value = summary.of(policy.statistic)
    if hpa is not None and threshold is not None:
        requests = {pod.name: pod.cpu_request for pod in pods}
        request = np.fromiter((requests[n] or 0.0 for n in names), np.float64, len(names))
        return _hot_plan(
            names,
            array,
            request,
            hot_line_percent=threshold,
            ready=ready,
            policy=policy,
            hpa=hpa,
            decide=decide,
            summary=summary,
        )
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
    if raw is None:
        selected = tuple(Selected(pod=names[i], cpu=float(array[i]), role=r) for i, r in chosen)
    else:
        selected = tuple(
            Selected(names[i], raw[i]["cpu"], r, signals=raw[i], score=float(array[i]))
            for i, r in chosen
        )
    if improvement < policy.min_improvement_percent:
        return decide(Reason.INSUFFICIENT_IMPROVEMENT, summary, expected, selected)
    return decide(Reason.IMBALANCE_CONFIRMED, summary, expected, selected)


class _Decide(Protocol):
    def __call__(
        self,
        reason: Reason,
        summary: Summary | None = None,
        expected_after: Expected | None = None,
        selected: tuple[Selected, ...] = (),
        judged: HpaJudgement | None = None,
    ) -> Plan: ...


def _hot_plan(
    names: Sequence[str],
    cpu: FloatArray,
    request: FloatArray,
    *,
    hot_line_percent: float,
    ready: int,
    policy: Policy,
    hpa: HpaTarget,
    decide: _Decide,
    summary: Summary,
) -> Plan:
    """IMBALANCE_POLICY=hpa_target: the pods above the HPA's target times the tolerance of their
    request, each paired with one of the idlest, and what spreading their load should gain."""
    utilisation = cpu / request * 100.0  # every candidate has a positive request
    hot = np.flatnonzero(utilisation > hot_line_percent)
    judged = HpaJudgement(
        name=hpa.name,
        target_percent=hpa.cpu_utilization or 0,
        hot_line_percent=hot_line_percent,
        hot_pods=int(hot.size),
        peak_percent=float(utilisation.max()),
    )
    if hot.size == 0:
        return decide(Reason.NO_HOT_PODS, summary=summary, judged=judged)
    budget = min(policy.max_delete, ready - policy.min_pods, len(names) - 1)
    if budget <= 0:
        return decide(Reason.TOO_FEW_PODS, summary=summary, judged=judged)
    n_hot = min((budget + 1) // 2, int(hot.size))
    n_idle = min(budget - n_hot, n_hot, len(names) - int(hot.size))  # never a hot one
    hottest = _extremes(names, utilisation, n_hot, largest=True, exclude=())
    idlest = _extremes(names, utilisation, n_idle, largest=False, exclude=hot.tolist())
    chosen: list[tuple[int, Role]] = []
    for rank, index in enumerate(hottest):
        chosen.append((index, "busiest"))
        if rank < len(idlest):
            chosen.append((idlest[rank], "idlest"))
    improvement = hot_improvement(cpu[hottest], cpu[[i for i, _ in chosen]])
    remaining = np.delete(cpu, [index for index, _ in chosen])
    expected = Expected(
        value=summarize(remaining).of(policy.statistic), improvement_percent=improvement
    )
    selected = tuple(Selected(pod=names[i], cpu=float(cpu[i]), role=r) for i, r in chosen)
    if improvement < policy.min_improvement_percent:
        return decide(Reason.INSUFFICIENT_IMPROVEMENT, summary, expected, selected, judged)
    return decide(Reason.IMBALANCE_CONFIRMED, summary, expected, selected, judged)


def hot_improvement(hot: FloatArray, together: FloatArray) -> float:
    """(mean(hot) - mean(hot + idlest)) / mean(hot) * 100: how far the hot pods' CPU falls once
    the group spreads their partitions over the pods that replace the selected ones."""
    before = float(np.sort(hot).mean())
    if not before > 0:
        return 0.0
    return (before - float(np.sort(together).mean())) / before * 100.0


def _scored(
    names: list[str],
    cpu: list[float],
    signals: Mapping[str, Mapping[str, float]],
    policy: Policy,
    ignored: Counter[str],
) -> tuple[list[str], list[float], list[dict[str, float]]]:
    """The candidates with every configured signal, their scores and raw values. A pod without
    one is left out and counted (missing_signal), never scored as zero."""
    columns = {"cpu": dict(zip(names, cpu, strict=True)), **signals}
    kept: list[str] = []
    raw: list[dict[str, float]] = []
    for name in names:
        values = {
            signal: columns.get(signal, {}).get(name, math.nan) for signal, _ in policy.weights
        }
        if all(math.isfinite(v) for v in values.values()):
            kept.append(name)
            raw.append(values)
        else:
            ignored[PodSkip.MISSING_SIGNAL] += 1
    arrays = {
        signal: np.fromiter((r[signal] for r in raw), np.float64, len(raw))
        for signal, _ in policy.weights
    }
    return kept, score.scores(arrays, policy.weights).tolist(), raw


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
        if policy.kind == "hpa_target" and not (pod.cpu_request or 0.0) > 0:
            ignored[PodSkip.NO_CPU_REQUEST] += 1  # no request: "hot" has no meaning for it
        elif measured is None:
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
