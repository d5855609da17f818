"""The target's lock and cooldown memory: one `coordination.k8s.io/v1` Lease per Deployment.

Acquiring replaces the Lease only if nobody changed it since it was read (resourceVersion), and
stamps the rebalance time in the same write: of N concurrent invocations exactly one gets through,
and the others then see the lock or the cooldown. The rules themselves are in core/cooldown.py.

A write whose answer was lost (a timeout, a dropped connection, a 5xx after the fact) may still
have been carried out — and a client that retries it then hears 409 for its own write. So after
a failed or conflicting write the Lease is read back: if it names this invocation, the write went
through. An acquire then holds the lock (and releases it as usual); a release knows it is done.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pod_rebalancer.core.cooldown import lease_refusal
from pod_rebalancer.core.effect import Judged
from pod_rebalancer.core.model import Effect, Lease, LeaseState, Reason, Target
from pod_rebalancer.errors import DependencyError
from pod_rebalancer.ports import LeaseStore

LOCK_TTL = timedelta(minutes=5)  # far beyond one invocation; a crashed holder frees it by then


def lease_name(target: Target) -> str:
    name = f"pod-rebalancer.{target.deployment}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(target.deployment.encode()).hexdigest()[:16]
    return f"pod-rebalancer.{digest}"


@dataclass(frozen=True, slots=True)
class Held:
    """A lock this invocation holds, and the state to restore if it ends up doing nothing."""

    lease: Lease
    previous: LeaseState | None


def blocked_by_lease(
    store: LeaseStore, target: Target, me: str, now: datetime, cooldown: timedelta
) -> Reason | None:
    """Read-only: why this target may not act now (cooldown, locked); dry runs ask it too."""
    return lease_refusal(read(store, target), me, now, cooldown)


def read(store: LeaseStore, target: Target) -> LeaseState | None:
    current = store.lease(target.namespace, lease_name(target))
    return current.state if current else None


def record_effect(store: LeaseStore, target: Target, judged: Judged, me: str) -> bool:
    """Write a measurement into the Lease, only if the Lease still holds the effect that was
    measured and no live lock (optimistic: a conflict means another invocation wrote first).
    True when it was written, False when the Lease changed meanwhile (nothing is counted twice)."""
    current = store.lease(target.namespace, lease_name(target))
    if current is None or current.state.effect is None or current.state.effect.measured:
        return False
    if (current.state.effect.before, current.state.effect.evicted) != (
        judged.effect.before,
        judged.effect.evicted,
    ):
        return False  # a newer rebalance: its own effect is not measured yet
    if current.state.holder and current.state.holder != me:
        return False  # someone is acting on it right now
    state = replace(
        current.state,
        effect=judged.effect,
        ineffective=judged.ineffective,
        last_ineffective=judged.last_ineffective,
    )
    try:
        written = store.replace_lease(current, state)
    except DependencyError:
        again = store.lease(target.namespace, lease_name(target))
        if again is not None and again.state.effect == judged.effect:
            return True  # the write went through; only its answer was lost
        raise
    return written is not None


def stamped(
    previous: LeaseState | None,
    holder: str,
    now: datetime,
    selection: tuple[str, ...],
    expected: Effect | None,
) -> LeaseState:
    """What `acquire` writes: the lock held by `holder`, the rebalance stamped now with the pods
    it selected and what it expects, the back-off count carried over from `previous`."""
    return LeaseState(
        holder=holder,
        renewed_at=now,
        duration=LOCK_TTL,
        last_rebalance=now,
        selection=selection,
        effect=expected,
        ineffective=previous.ineffective if previous else 0,
        last_ineffective=previous.last_ineffective if previous else None,
    )


def released(kept: LeaseState | None, now: datetime, evicted: tuple[str, ...]) -> LeaseState:
    """What `release` writes: no holder, and `kept`'s stamp, effect and count, the effect naming
    the `evicted` pods when there are any."""
    effect = kept.effect if kept else None
    if evicted and effect is not None:
        effect = replace(effect, evicted=evicted)
    return LeaseState(
        holder=None,
        renewed_at=now,
        duration=LOCK_TTL,
        last_rebalance=kept.last_rebalance if kept else None,
        selection=kept.selection if kept else (),
        effect=effect,
        ineffective=kept.ineffective if kept else 0,
        last_ineffective=kept.last_ineffective if kept else None,
    )


def acquire(
    store: LeaseStore,
    target: Target,
    *,
    me: str,
    now: datetime,
    cooldown: timedelta,
    selection: tuple[str, ...],
    expected: Effect | None = None,
) -> Held | Reason:
    """Take the lock and stamp the rebalance (with what it expects, `expected`, whose evicted
    pods `release` fills in); the back-off count is carried over."""
    name = lease_name(target)
    current = store.lease(target.namespace, name)
    refusal = lease_refusal(current.state if current else None, me, now, cooldown)
    if refusal is not None:
        return refusal
    previous = current.state if current else None
    state = stamped(previous, me, now, selection, expected)
    try:
        if current is None:
            won = store.create_lease(target.namespace, name, state)
        else:
            won = store.replace_lease(current, state)
    except DependencyError:
        # The answer was lost, not necessarily the write: read it back before giving up.
        mine = _held_by(store.lease(target.namespace, name), me)
        if mine is None:
            raise
        return Held(mine, previous)
    if won is None:
        # Lost the race, or a retry of our own write lost to the write itself.
        winner = store.lease(target.namespace, name)
        mine = _held_by(winner, me)
        if mine is not None:
            return Held(mine, previous)
        # Report what the winner left behind (normally the fresh cooldown).
        again = lease_refusal(winner.state if winner else None, me, now, cooldown)
        return again or Reason.LOCKED
    return Held(won, previous)


def _held_by(lease: Lease | None, me: str) -> Lease | None:
    return lease if lease is not None and lease.state.holder == me else None


def release(store: LeaseStore, held: Held, now: datetime, evicted: tuple[str, ...] = ()) -> bool:
    """Free the lock; False when it is left to expire. Keep the rebalance stamp (and its effect,
    now naming the `evicted` pods) if anything was evicted, else restore the old one, so that the
    cooldown does not punish a run that did nothing. DependencyError when the API failed and the
    lock may still be held."""
    state = released(held.lease.state if evicted else held.previous, now, evicted)
    me = held.lease.state.holder or ""
    try:
        if store.replace_lease(held.lease, state) is not None:
            return True
    except DependencyError:
        if _held_by(store.lease(held.lease.namespace, held.lease.name), me) is not None:
            raise
        return True  # the release went through; only its answer was lost
    # A conflict: our own release, retried after a lost answer, or someone wrote meanwhile.
    mine = _held_by(store.lease(held.lease.namespace, held.lease.name), me)
    if mine is None:
        return True
    return store.replace_lease(mine, state) is not None
