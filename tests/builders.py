"""Builders of the core's records for tests: one healthy pod, a settled Deployment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pod_rebalancer.core.model import DeploymentState, PodInfo

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def pod(
    name: str = "ingestion-consumer-7f9c-abcde",
    *,
    ready: bool = True,
    age: timedelta | None = timedelta(hours=1),
    excluded: bool = False,
    terminating: bool = False,
    now: datetime = NOW,
) -> PodInfo:
    """A pod that started `age` ago (None: its start is unknown)."""
    return PodInfo(
        name=name,
        uid=f"uid-{name}",
        ready=ready,
        started_at=None if age is None else now - age,
        excluded=excluded,
        terminating=terminating,
    )


def pods(names: Iterable[str]) -> list[PodInfo]:
    """Healthy, old enough pods, one per name."""
    return [pod(name) for name in names]


def settled(replicas: int = 6, **changes: Any) -> DeploymentState:
    """A Deployment whose rollout is complete; `changes` unsettle it."""
    state = DeploymentState(
        generation=7,
        observed_generation=7,
        replicas=replicas,
        updated_replicas=replicas,
        unavailable_replicas=0,
    )
    return replace(state, **changes)
