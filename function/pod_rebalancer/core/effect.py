"""Did the last rebalance help? The closed loop's rules, pure: when its effect can be measured, what
the measurement says, and when a target that keeps not being helped is left alone.

- A rebalance is measured once every replacement pod (a pod that started after it) has been Ready
  for a full METRICS_TIME_WINDOW and none of the evicted pods is still there: before that, the
  rate over the window still mixes in the old placement, and the judgement would be noise.
- `achieved` is the same statistic over the target's Ready pods now (replacements included; the
  planner's age guard would leave them out), and the improvement is `(before - achieved) / before`
  in percent.
- Effective when that improvement is at least half of what MIN_IMPROVEMENT_PERCENT asked of the
  plan (EFFECTIVE_SHARE): the plan promised at least that much, and a rebalance that delivers
  less than half of the promise mostly moved the load around (one hot partition, a range
  assignor, fewer partitions than pods).
- After MAX_INEFFECTIVE_REBALANCES ineffective rebalances in a row, the target is skipped
  (`not_effective`) until INEFFECTIVE_BACKOFF has passed since the last of them; an effective
  rebalance resets the count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from pod_rebalancer.core.model import Effect, LeaseState, PodInfo
from pod_rebalancer.core.stats import Statistic, summarize

EFFECTIVE_SHARE = 0.5  # of MIN_IMPROVEMENT_PERCENT that the achieved improvement must reach
ADVICE = (
    "rebalancing does not spread this load: look for a single hot partition (one partition "
    "carrying most of the traffic), a range assignor (partitions move in blocks; prefer the "
    "cooperative-sticky assignor), or fewer partitions than pods"
)


def improvement_percent(before: float, achieved: float) -> float | None:
    """How much lower the statistic is now, in percent of before; None when before is not > 0."""
    if not (math.isfinite(before) and math.isfinite(achieved)) or before <= 0:
        return None
    return (before - achieved) / before * 100.0


def is_effective(improvement: float, min_improvement_percent: float) -> bool:
    return improvement >= EFFECTIVE_SHARE * min_improvement_percent


def too_early(
    effect: Effect,
    rebalanced_at: datetime,
    pods: Sequence[PodInfo],
    window: timedelta,
    now: datetime,
) -> str | None:
    """Why measuring now would be premature (a note for the report), or None when it is time."""
    present = {p.name for p in pods}
    lingering = sorted(set(effect.evicted) & present)
    if lingering:
        return f"too early to measure: evicted pod {lingering[0]} is still there"
    for pod in pods:
        if pod.started_at is None:
            return f"too early to measure: pod {pod.name} has no start time yet"
        if pod.started_at <= rebalanced_at:
            continue  # was there before the rebalance
        since = pod.ready_since or pod.started_at
        if not pod.ready or pod.terminating:
            return f"too early to measure: replacement {pod.name} is not Ready"
        ready_for = now - since
        if ready_for < window:
            return (
                f"too early to measure: replacement {pod.name} Ready for "
                f"{int(ready_for.total_seconds())}s of the {int(window.total_seconds())}s window"
            )
    return None


def achieved_value(
    samples: Mapping[str, float], pods: Sequence[PodInfo], statistic: Statistic
) -> float | None:
    """The statistic over the Ready, running pods that have a finite sample; None under two."""
    values = [
        samples[p.name]
        for p in pods
        if p.ready and not p.terminating and p.name in samples and math.isfinite(samples[p.name])
    ]
    if len(values) < 2:
        return None
    return summarize(np.asarray(values, dtype=np.float64)).of(statistic)


@dataclass(frozen=True, slots=True)
class Judged:
    """A measurement: the effect filled in, and the Lease's count after it."""

    effect: Effect
    ineffective: int
    last_ineffective: datetime | None


def judge(
    state: LeaseState, achieved: float, min_improvement_percent: float, now: datetime
) -> Judged | None:
    """Measure the Lease's unmeasured effect with `achieved`; None when there is nothing to judge
    (no effect, already measured, or a `before` that makes a percentage meaningless)."""
    effect = state.effect
    if effect is None or effect.measured:
        return None
    improvement = improvement_percent(effect.before, achieved)
    if improvement is None:
        return None
    effective = is_effective(improvement, min_improvement_percent)
    measured = replace(
        effect,
        achieved=achieved,
        improvement_percent=improvement,
        effective=effective,
        measured_at=now,
    )
    if effective:
        return Judged(measured, 0, state.last_ineffective)
    return Judged(measured, state.ineffective + 1, now)


def backing_off(
    state: LeaseState | None, now: datetime, max_ineffective: int, backoff: timedelta
) -> bool:
    """Too many ineffective rebalances in a row, the last of them less than `backoff` ago."""
    if state is None or state.ineffective < max_ineffective or state.last_ineffective is None:
        return False
    return now - state.last_ineffective < backoff
