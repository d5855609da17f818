"""Whether a target may act now, judged from its Lease: the cooldown after a rebalance, and a
live lock held by another invocation. The shell reads and writes the Lease; this only judges."""

from __future__ import annotations

from datetime import datetime, timedelta

from pod_rebalancer.core.model import LeaseState, Reason


def in_cooldown(
    last_rebalance: datetime | None, now: datetime, cooldown: timedelta
) -> Reason | None:
    if last_rebalance is not None and now - last_rebalance < cooldown:
        return Reason.COOLDOWN
    return None


def held_by_other(lease: LeaseState, me: str, now: datetime) -> bool:
    """A holder other than `me` whose lock has not expired (a crashed holder's lapses)."""
    if not lease.holder or lease.holder == me or lease.renewed_at is None:
        return False
    return now < lease.renewed_at + lease.duration


def lease_refusal(
    lease: LeaseState | None, me: str, now: datetime, cooldown: timedelta
) -> Reason | None:
    """Cooldown first (it outlives any holder), then a live lock held by another invocation."""
    if lease is None:
        return None
    cooling = in_cooldown(lease.last_rebalance, now, cooldown)
    if cooling is not None:
        return cooling
    return Reason.LOCKED if held_by_other(lease, me, now) else None
