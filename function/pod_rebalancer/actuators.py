"""The actuator, chosen once per run: a dry run and a real run walk the same path.

Dry run: no lock is taken and nothing is announced; the removals are sent with dryRun=All, so RBAC,
admission and PodDisruptionBudgets are exercised while nothing changes. Real run: take the Lease,
remove, release it (keeping the cooldown stamp only if something went), announce with an Event.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from pod_rebalancer import locking
from pod_rebalancer.core.model import Deployment, Effect, Reason, Target
from pod_rebalancer.errors import DependencyError
from pod_rebalancer.ports import Clock, ClusterPort, PodRemover
from pod_rebalancer.records import kube_event
from pod_rebalancer.report import Outcome

Hold = locking.Held | None  # None: a dry run holds nothing


class Actuator(Protocol):
    dry_run: bool
    remover: PodRemover

    def lock(
        self, target: Target, selection: tuple[str, ...], expected: Effect | None
    ) -> Hold | Reason: ...
    def unlock(self, hold: Hold, target: Target, *, evicted: tuple[str, ...]) -> None: ...
    def announce(self, deployment: Deployment, outcome: Outcome) -> None: ...


class DryRun:
    """Sends every removal as a server-side dry run; takes no lock and leaves no Event."""

    dry_run = True

    def __init__(self, remover: PodRemover) -> None:
        self.remover = remover

    def lock(
        self, target: Target, selection: tuple[str, ...], expected: Effect | None
    ) -> Hold | Reason:
        return None

    def unlock(self, hold: Hold, target: Target, *, evicted: tuple[str, ...]) -> None:
        return None

    def announce(self, deployment: Deployment, outcome: Outcome) -> None:
        return None


class RealRun:
    """Holds the target's Lease around the removals and records an Event on the Deployment."""

    dry_run = False

    def __init__(
        self,
        cluster: ClusterPort,
        remover: PodRemover,
        *,
        instance: str,
        cooldown: timedelta,
        clock: Clock,
        log: logging.Logger,
    ) -> None:
        self.remover = remover
        self._cluster = cluster
        self._instance = instance
        self._cooldown = cooldown
        self._clock = clock
        self._log = log

    def lock(
        self, target: Target, selection: tuple[str, ...], expected: Effect | None
    ) -> Hold | Reason:
        return locking.acquire(
            self._cluster,
            target,
            me=self._instance,
            now=self._clock(),
            cooldown=self._cooldown,
            selection=selection,
            expected=expected,
        )

    def unlock(self, hold: Hold, target: Target, *, evicted: tuple[str, ...]) -> None:
        """`evicted`: the pods removed, or perhaps removed (an answer lost)."""
        assert hold is not None  # a real run always holds what it unlocks
        try:
            released = locking.release(self._cluster, hold, self._clock(), evicted)
        except DependencyError as exc:
            released = False
            self._log.warning("could not release the lock of %s: %s", target, exc)
        if not released:
            self._log.warning(
                "lock of %s left to expire after %s",
                target,
                locking.LOCK_TTL,
                extra={"fields": {"event": "lock_not_released", "target": str(target)}},
            )

    def announce(self, deployment: Deployment, outcome: Outcome) -> None:
        """An Event for every run that took the lock; best effort."""
        try:
            self._cluster.event(
                deployment, kube_event(outcome), now=self._clock(), instance=self._instance
            )
        except DependencyError as exc:
            self._log.warning("could not record an Event on %s: %s", deployment.target, exc)
