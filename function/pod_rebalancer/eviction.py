"""Removing the selected pods, in order, and what that amounts to: PDB refusals (HTTP 429) and
API failures stop the run at once, with no retry loop; before each removal after the first the
Deployment is read again, and a rollout, an exclusion or its disappearance stops the run too. One
mapping from removals to an Outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pod_rebalancer.core.model import EvictionStatus, Plan, PodInfo, Reason, Target
from pod_rebalancer.errors import DependencyError, KubernetesError
from pod_rebalancer.ports import PodRemover
from pod_rebalancer.report import DEPENDENCY_UNAVAILABLE, Action, Outcome


@dataclass
class Removals:
    """What the API said to each removal that was sent."""

    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    blocked: bool = False  # a PodDisruptionBudget refused one
    failure: DependencyError | None = None  # the API failed; nothing more was sent
    stopped: Reason | None = None  # the Deployment changed under the run; nothing more was sent
    # Removals whose answer was lost and whose effect could not be checked: maybe removed.
    unsure: list[str] = field(default_factory=list)

    @property
    def acted(self) -> bool:
        """Whether anything may have been removed (and the cooldown stamp must stay)."""
        return bool(self.removed or self.unsure)


# Asked before each removal after the first, with how many pods were gone after so far: why the
# next one must not be sent (the Deployment re-read and judged), or None.
Recheck = Callable[[int], Reason | None]

_STOPPED = {
    Reason.ROLLOUT_IN_PROGRESS: "the Deployment started rolling out, or lost replicas, after the "
    "previous eviction",
    Reason.EXCLUDED: "the Deployment was excluded after the previous eviction",
    Reason.TARGET_NOT_FOUND: "the Deployment is gone",
}


def remove_in_order(
    remover: PodRemover,
    namespace: str,
    pods: Sequence[PodInfo],
    recheck: Recheck | None = None,
) -> Removals:
    """Remove `pods` one after the other (busiest first), each with its UID as a precondition."""
    removals = Removals()
    for index, pod in enumerate(pods):
        if index and recheck is not None:
            try:
                stop = recheck(index)
            except DependencyError as exc:
                removals.errors[pod.name] = str(exc)
                removals.failure = exc
                break
            if stop is not None:
                why = _STOPPED.get(stop, "the Deployment changed")
                for rest in pods[index:]:
                    removals.errors[rest.name] = f"{stop.value}: not evicted: {why}"
                removals.stopped = stop
                break
        try:
            result = remover.remove(namespace, pod.name, pod.uid)
        except DependencyError as exc:
            # Fail closed: nothing more is removed once the API misbehaves.
            removals.failure = exc
            _after_failure(removals, remover, namespace, pod=pod, exc=exc, rest=pods[index + 1 :])
            break
        if result.status is EvictionStatus.EVICTED:
            removals.removed.append(pod.name)
            continue
        removals.errors[pod.name] = f"{result.status.value}: {result.message}".rstrip(": ")
        if result.status is EvictionStatus.BLOCKED:
            # A PDB said no: the group cannot take more disruption now. Never retry in a loop.
            removals.blocked = True
            break
    return removals


def _after_failure(
    removals: Removals,
    remover: PodRemover,
    namespace: str,
    *,
    pod: PodInfo,
    exc: DependencyError,
    rest: Sequence[PodInfo],
) -> None:
    """A removal failed. If the API may have carried it out all the same (its answer was lost),
    look whether the pod went: then it counts as removed, and the pods after it are reported
    as not sent. If that cannot be told either, the removal is unsure."""
    if not (isinstance(exc, KubernetesError) and exc.unsure):
        removals.errors[pod.name] = str(exc)
        return
    try:
        went = remover.gone(namespace, pod.name, pod.uid)
    except DependencyError as check:
        removals.errors[pod.name] = f"{exc}; whether it was evicted is unknown ({check})"
        removals.unsure.append(pod.name)
        return
    if not went:
        removals.errors[pod.name] = str(exc)
        return
    removals.removed.append(pod.name)
    for later in rest:
        removals.errors[later.name] = (
            f"not evicted: the run stopped after the API lost its answer to {pod.name}'s "
            f"removal ({exc})"
        )


def outcome_of(target: Target, plan: Plan, removals: Removals, *, dry_run: bool) -> Outcome:
    """The one mapping from removals to a result, for real runs and dry runs alike.

    Nothing removed: a failed API is `failed` (retryable), a PDB refusal `eviction_blocked`, a
    Deployment that changed under the run its reason, pods that vanished or changed `partial`.
    Something removed: `rebalanced` (in a dry run `would_rebalance`), `partial` if some removal
    did not go through or was not sent; `errors` says why, per pod.
    """
    errors = dict(removals.errors)
    disrupted = len(removals.removed) + len(removals.unsure)
    if not removals.removed:
        if removals.failure is not None:
            return Outcome(
                target,
                dry_run,
                Action.FAILED,
                DEPENDENCY_UNAVAILABLE,
                plan,
                errors=errors,
                retryable=True,
                disrupted=disrupted,
            )
        reason = removals.stopped or (
            Reason.EVICTION_BLOCKED if removals.blocked else Reason.PARTIAL
        )
        return Outcome(target, dry_run, Action.SKIPPED, reason.value, plan, errors=errors)
    reason = Reason.PARTIAL if errors else plan.reason
    if dry_run:
        return Outcome(
            target,
            True,
            Action.WOULD_REBALANCE,
            reason.value,
            plan,
            errors=errors,
            disrupted=disrupted,
        )
    evicted = tuple(removals.removed)
    return Outcome(
        target,
        False,
        Action.REBALANCED,
        reason.value,
        plan,
        evicted,
        errors=errors,
        disrupted=disrupted,
    )
