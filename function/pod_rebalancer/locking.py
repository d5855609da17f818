"""The target's lock and cooldown memory: one `coordination.k8s.io/v1` Lease per Deployment.

Acquiring replaces the Lease only if nobody changed it since it was read (resourceVersion), and
stamps the rebalance time in the same write: of N concurrent invocations exactly one gets through,
and the others then see the lock or the cooldown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pod_rebalancer.adapters.kube import Lease, lease_body
from pod_rebalancer.core.guards import lease_refusal
from pod_rebalancer.core.model import Reason, Target

LOCK_TTL = timedelta(minutes=5)  # far beyond one invocation; a crashed holder frees it by then


class LeaseStore(Protocol):
    def lease(self, namespace: str, name: str) -> Lease | None: ...
    def create_lease(self, namespace: str, name: str, body: dict[str, Any]) -> Lease | None: ...
    def replace_lease(self, lease: Lease, body: dict[str, Any]) -> Lease | None: ...


def lease_name(target: Target) -> str:
    name = f"pod-rebalancer.{target.deployment}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(target.deployment.encode()).hexdigest()[:16]
    return f"pod-rebalancer.{digest}"


@dataclass(frozen=True, slots=True)
class Held:
    lease: Lease
    previous_rebalance: datetime | None


def check(
    store: LeaseStore, target: Target, me: str, now: datetime, cooldown: timedelta
) -> Reason | None:
    """Read-only: why this target may not act now (cooldown, locked), for dry runs too."""
    current = store.lease(target.namespace, lease_name(target))
    return lease_refusal(current.state if current else None, me, now, cooldown)


def acquire(
    store: LeaseStore,
    target: Target,
    *,
    me: str,
    now: datetime,
    cooldown: timedelta,
    selection: str,
) -> Held | Reason:
    name = lease_name(target)
    current = store.lease(target.namespace, name)
    refusal = lease_refusal(current.state if current else None, me, now, cooldown)
    if refusal is not None:
        return refusal
    body = lease_body(
        target.namespace,
        name,
        holder=me,
        now=now,
        duration=LOCK_TTL,
        last_rebalance=now,
        selection=selection,
        previous=current,
    )
    if current is None:
        won = store.create_lease(target.namespace, name, body)
    else:
        won = store.replace_lease(current, body)
    if won is None:
        # Lost the race: report what the winner left behind (normally the fresh cooldown).
        winner = store.lease(target.namespace, name)
        again = lease_refusal(winner.state if winner else None, me, now, cooldown)
        return again or Reason.LOCKED
    return Held(won, current.state.last_rebalance if current else None)


def release(store: LeaseStore, held: Held, now: datetime, acted: bool) -> bool:
    """Free the lock. Keep the cooldown stamp if anything was evicted, else restore the old one."""
    lease = held.lease
    body = lease_body(
        lease.namespace,
        lease.name,
        holder=None,
        now=now,
        duration=LOCK_TTL,
        last_rebalance=lease.state.last_rebalance if acted else held.previous_rebalance,
        previous=lease,
    )
    return store.replace_lease(lease, body) is not None
