"""The ports: what the service needs from the outside world, typed in the domain's own terms.

The adapters implement them (structurally); tests implement them with in-memory fakes. Nothing
here names Kubernetes JSON, Prometheus or a client library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pod_rebalancer.core.model import (
    Deployment,
    EvictionResult,
    HpaTarget,
    Lease,
    LeaseState,
    PodInfo,
    Target,
)
from pod_rebalancer.telemetry import Sample

Clock = Callable[[], datetime]
EvictionMode = Literal["evict", "delete"]


class MetricsSource(Protocol):
    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        """CPU cores per pod over `window` ending at `at`; MetricsError when unsure."""
        ...

    def pod_signal(
        self, template: str, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        """Another signal per pod (LAG_QUERY, MEMORY_QUERY, a template); MetricsError as above."""
        ...


class LeaseStore(Protocol):
    """Leases with optimistic concurrency: a write that lost a race answers None."""

    def lease(self, namespace: str, name: str) -> Lease | None: ...
    def create_lease(self, namespace: str, name: str, state: LeaseState) -> Lease | None: ...
    def replace_lease(self, lease: Lease, state: LeaseState) -> Lease | None: ...


class PodRemover(Protocol):
    """Removes one pod, by eviction or deletion, for real or as a server-side dry run."""

    def remove(self, namespace: str, pod: str, uid: str) -> EvictionResult: ...
    def gone(self, namespace: str, pod: str, uid: str) -> bool:
        """Whether the pod `uid` is gone or terminating: for a removal whose answer was lost."""
        ...


@dataclass(frozen=True, slots=True)
class EventNote:
    """What a Kubernetes Event on the Deployment says."""

    reason: str
    message: str
    warning: bool


class ClusterPort(LeaseStore, Protocol):
    def deployment(self, target: Target) -> Deployment | None: ...
    def hpa(self, target: Target, name: str) -> HpaTarget | None:
        """The HorizontalPodAutoscaler `name` if it scales the target's Deployment, else None
        (`horizontalpodautoscalers get`)."""
        ...

    def deployments(self, namespace: str) -> list[Deployment]:
        """Every Deployment of the namespace (a sweep's discovery; `deployments list`)."""
        ...

    def pods(self, namespace: str, selector: str) -> list[PodInfo]: ...
    def remover(self, mode: EvictionMode, *, dry_run: bool) -> PodRemover:
        """The writer for one run: chosen once, so no call below it asks "dry run?"."""
        ...

    def event(
        self, deployment: Deployment, note: EventNote, *, now: datetime, instance: str
    ) -> None: ...


class AuditSink(Protocol):
    @property
    def topic(self) -> str: ...
    def publish(self, record: dict[str, Any], attributes: dict[str, str]) -> str: ...


class MetricsSink(Protocol):
    """Where a run's own metrics go (a Pushgateway); TelemetryError when they could not be sent."""

    def push(self, samples: Sequence[Sample]) -> None: ...
