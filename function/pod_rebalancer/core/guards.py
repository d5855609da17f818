"""Safety guards: small named constraints, each returning the reason it refuses, or None.

Target guards run in order and the first refusal wins; pod guards decide, per pod, whether a
pod may be measured and selected at all. The shell gathers the facts (Deployment status, Lease,
pods); these functions only judge them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from pod_rebalancer.core.model import LeaseState, PodInfo, PodSkip, Reason, Target


@lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    # Only `*` is special: names are DNS-1123, so `?` and `[` never need to match anything.
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")))


def matches_any(value: str, patterns: Sequence[str]) -> bool:
    return any(_pattern(p).fullmatch(value) for p in patterns)


@dataclass(frozen=True, slots=True)
class AllowList:
    namespaces: tuple[str, ...]
    deployments: tuple[str, ...]


def target_not_allowed(target: Target, allow: AllowList) -> Reason | None:
    if matches_any(target.namespace, allow.namespaces) and matches_any(
        target.deployment, allow.deployments
    ):
        return None
    return Reason.TARGET_NOT_ALLOWED


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """The parts of a Deployment's spec and status that decide whether it is settled."""

    generation: int
    observed_generation: int
    replicas: int
    updated_replicas: int
    available_replicas: int
    unavailable_replicas: int
    excluded: bool = False


def deployment_excluded(state: DeploymentState) -> Reason | None:
    return Reason.EXCLUDED if state.excluded else None


def rollout_in_progress(state: DeploymentState) -> Reason | None:
    settled = (
        state.observed_generation >= state.generation
        and state.updated_replicas == state.replicas
        and state.unavailable_replicas == 0
    )
    return None if settled else Reason.ROLLOUT_IN_PROGRESS


def in_cooldown(
    last_rebalance: datetime | None, now: datetime, cooldown: timedelta
) -> Reason | None:
    if last_rebalance is not None and now - last_rebalance < cooldown:
        return Reason.COOLDOWN
    return None


def lease_refusal(
    lease: LeaseState | None, me: str, now: datetime, cooldown: timedelta
) -> Reason | None:
    """Cooldown first (it outlives any holder), then a live lock held by another invocation."""
    if lease is None:
        return None
    cooling = in_cooldown(lease.last_rebalance, now, cooldown)
    if cooling is not None:
        return cooling
    return Reason.LOCKED if lease.held_by_other(me, now) else None


def pods_not_ready(pods: Sequence[PodInfo]) -> Reason | None:
    """A pod that is neither Ready nor on its way out means the group is already disrupted."""
    if any(not pod.ready and not pod.terminating for pod in pods):
        return Reason.PODS_NOT_READY
    return None


DeploymentGuard = Callable[[DeploymentState], Reason | None]
DEPLOYMENT_GUARDS: tuple[DeploymentGuard, ...] = (deployment_excluded, rollout_in_progress)


def first_refusal(state: DeploymentState) -> Reason | None:
    for guard in DEPLOYMENT_GUARDS:
        reason = guard(state)
        if reason is not None:
            return reason
    return None


# Pod guards: a pod that fails one is neither measured nor selected.


def terminating(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    return PodSkip.TERMINATING if pod.terminating else None


def not_ready(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    return None if pod.ready else PodSkip.NOT_READY


def too_young(pod: PodInfo, now: datetime, min_age: timedelta) -> PodSkip | None:
    # A pod whose start is unknown is treated as young: its rate() window may be partial.
    if pod.created_at is None or now - pod.created_at < min_age:
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
