"""Pod guards, the pod age guard among them: a pod that fails one is neither measured nor
selected. Each returns why it leaves the pod out, or None; the first in POD_GUARDS wins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pod_rebalancer.core.model import PodInfo, PodSkip


def terminating(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    return PodSkip.TERMINATING if pod.terminating else None


def not_ready(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    return None if pod.ready else PodSkip.NOT_READY


def too_young(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    """Age counts from the pod's start: a pod that sat Pending has only its running time of
    metrics. A pod whose start is unknown is treated as young: its rate() window may be partial."""
    if pod.started_at is None or now - pod.started_at < min_age:
        return PodSkip.TOO_YOUNG
    return None


def pod_excluded(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    return PodSkip.EXCLUDED if pod.excluded else None


PodGuard = Callable[[PodInfo, datetime, timedelta], PodSkip | None]
POD_GUARDS: tuple[PodGuard, ...] = (terminating, not_ready, too_young, pod_excluded)


def pod_skip(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    for guard in POD_GUARDS:
        skip = guard(pod, now, min_age)
        if skip is not None:
            return skip
    return None
