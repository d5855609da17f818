"""Target guards: small named constraints on a target and its Deployment, each returning the
reason it refuses, or None. They run in order and the first refusal wins; the shell gathers the
facts (allow-list, Deployment status, pods) and these functions only judge them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from pod_rebalancer.core.model import (
    AllowList,
    Deployment,
    DeploymentState,
    PodInfo,
    Reason,
    Target,
)


@lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    # Only `*` is special: names are DNS-1123, so `?` and `[` never need to match anything.
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")))


def matches_any(value: str, patterns: Sequence[str]) -> bool:
    return any(_pattern(p).fullmatch(value) for p in patterns)


def target_not_allowed(target: Target, allow: AllowList) -> Reason | None:
    if matches_any(target.namespace, allow.namespaces) and matches_any(
        target.deployment, allow.deployments
    ):
        return None
    return Reason.TARGET_NOT_ALLOWED


def deployment_excluded(state: DeploymentState) -> Reason | None:
    return Reason.EXCLUDED if state.excluded else None


def rollout_in_progress(state: DeploymentState) -> Reason | None:
    settled = (
        state.observed_generation >= state.generation
        and state.updated_replicas == state.replicas
        and state.unavailable_replicas == 0
    )
    return None if settled else Reason.ROLLOUT_IN_PROGRESS


DeploymentGuard = Callable[[DeploymentState], Reason | None]
DEPLOYMENT_GUARDS: tuple[DeploymentGuard, ...] = (deployment_excluded, rollout_in_progress)


def first_refusal(state: DeploymentState) -> Reason | None:
    """The first Deployment guard that refuses: exclusion before a rollout."""
    for guard in DEPLOYMENT_GUARDS:
        reason = guard(state)
        if reason is not None:
            return reason
    return None


def changed_since(
    first: DeploymentState, now: DeploymentState | None, disrupted: int
) -> Reason | None:
    """Between two removals: why the next one must not be sent. The Deployment is gone, now
    excluded, or rolling out — its spec moved on, the controller has not caught up, or more of its
    replicas are missing or unavailable than the `disrupted` pods this run already went after."""
    if now is None:
        return Reason.TARGET_NOT_FOUND
    if now.excluded:
        return Reason.EXCLUDED
    rolling = (
        now.generation != first.generation
        or now.observed_generation < now.generation
        or now.replicas != first.replicas
        or not now.replicas - disrupted <= now.updated_replicas <= now.replicas
        or now.unavailable_replicas > disrupted
    )
    return Reason.ROLLOUT_IN_PROGRESS if rolling else None


def pod_selector(
    deployment: Deployment, *, default_deployment: str, override: str | None
) -> str | None:
    """KUBE_LABEL_SELECTOR for the default Deployment when set, else the Deployment's own
    selector; None when that cannot be used (the caller skips: `unsupported_selector`)."""
    if override and deployment.target.deployment == default_deployment:
        return override
    return deployment.selector


def pods_not_ready(pods: Sequence[PodInfo]) -> Reason | None:
    """A pod that is neither Ready nor on its way out means the group is already disrupted."""
    if any(not pod.ready and not pod.terminating for pod in pods):
        return Reason.PODS_NOT_READY
    return None
