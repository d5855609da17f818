"""In-memory fakes of the service's own ports (ports.py), answering as the real API would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pod_rebalancer.core.model import (
    Deployment,
    DeploymentState,
    EvictionResult,
    EvictionStatus,
    Lease,
    LeaseState,
    PodInfo,
    Target,
)
from pod_rebalancer.errors import AuditError, KubernetesError, MetricsError
from pod_rebalancer.ports import EventNote, EvictionMode
from tests.builders import pods, settled


@dataclass
class FakeMetrics:
    samples: dict[str, float] = field(default_factory=dict)
    fail: bool = False
    calls: list[tuple[Target, str]] = field(default_factory=list)  # (target, container)

    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        self.calls.append((target, container))
        if self.fail:
            raise MetricsError("metrics server unreachable")
        return dict(self.samples)


@dataclass
class Removal:
    pod: str
    uid: str
    mode: EvictionMode
    dry_run: bool


@dataclass
class FakeCluster:
    """One Deployment, its pods and Leases in memory; Leases keep resourceVersion semantics."""

    names: list[str] = field(default_factory=list)
    state: DeploymentState = field(default_factory=settled)
    selector: str | None = "app=ingestion-consumer"
    containers: tuple[str, ...] = ("ingestion-consumer",)
    exists: bool = True
    leases: dict[str, Lease] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # removals answered with 429
    gone: set[str] = field(default_factory=set)  # removals answered with 404
    broken: set[str] = field(default_factory=set)  # removals that fail (HTTP 500)
    lost: set[str] = field(default_factory=set)  # removals carried out, their answer lost
    unreadable: bool = False  # whether a pod went cannot be told (the API is down)
    removed: list[Removal] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # selectors pods were listed with
    pods_: list[PodInfo] = field(default_factory=list)
    version: int = 0
    # Change the cluster behind the run's back (a rollout): after each removal, and before each
    # read of the Deployment (with how many reads there were, this one included).
    after_removal: Callable[[FakeCluster], None] | None = None
    before_read: Callable[[FakeCluster, int], None] | None = None
    deployment_reads: int = 0
    # Lease writes ("create", "replace") carried out whose answer is then lost: a timeout, or
    # (with `retried`) the client's retry of the write conflicting with the write itself.
    lost_answers: list[str] = field(default_factory=list)
    retried: bool = False
    lease_reads_fail: bool = False

    def __post_init__(self) -> None:
        if not self.pods_:
            self.pods_ = pods(self.names)

    def deployment(self, target: Target) -> Deployment | None:
        self.deployment_reads += 1
        if self.before_read is not None:
            self.before_read(self, self.deployment_reads)
        if not self.exists:
            return None
        problem = "" if self.selector is not None else "the Deployment has an empty selector"
        return Deployment(target, "dep-uid", self.selector, self.containers, self.state, problem)

    def pods(self, namespace: str, selector: str) -> list[PodInfo]:
        self.listed.append(selector)
        return list(self.pods_)

    def lease(self, namespace: str, name: str) -> Lease | None:
        if self.lease_reads_fail:
            raise KubernetesError("Kubernetes API unreachable (GET lease): timed out")
        return self.leases.get(name)

    def put_lease(self, namespace: str, name: str, state: LeaseState) -> Lease:
        """Store a Lease as the API server would: a new resourceVersion on every write."""
        self.version += 1
        lease = Lease(namespace, name, str(self.version), state)
        self.leases[name] = lease
        return lease

    def create_lease(self, namespace: str, name: str, state: LeaseState) -> Lease | None:
        if name in self.leases:
            return None
        return self._answer("create", self.put_lease(namespace, name, state))

    def replace_lease(self, lease: Lease, state: LeaseState) -> Lease | None:
        current = self.leases.get(lease.name)
        if current is None or current.version != lease.version:
            return None
        return self._answer("replace", self.put_lease(lease.namespace, lease.name, state))

    def _answer(self, write: str, done: Lease) -> Lease | None:
        if write not in self.lost_answers:
            return done
        self.lost_answers.remove(write)
        if self.retried:
            return None  # the retry named the version the write itself replaced: 409
        raise KubernetesError(f"Kubernetes API unreachable ({write} lease): read timed out")

    def remover(self, mode: EvictionMode, *, dry_run: bool) -> FakeRemover:
        return FakeRemover(self, mode, dry_run)

    def event(
        self, deployment: Deployment, note: EventNote, *, now: datetime, instance: str
    ) -> None:
        self.events.append(note)

    def without_ready(self, index: int) -> None:
        self.pods_[index] = replace(self.pods_[index], ready=False)


@dataclass
class FakeRemover:
    cluster: FakeCluster
    mode: EvictionMode
    dry_run: bool

    def remove(self, namespace: str, pod: str, uid: str) -> EvictionResult:
        if pod in self.cluster.broken:
            raise KubernetesError("Kubernetes API answered HTTP 500", 500, unsure=True)
        if pod in self.cluster.lost:
            if not self.dry_run:
                self.cluster.removed.append(Removal(pod, uid, self.mode, self.dry_run))
            raise KubernetesError("Kubernetes API unreachable: read timed out", unsure=True)
        if pod in self.cluster.blocked:
            return EvictionResult(pod, EvictionStatus.BLOCKED, "would violate the PDB")
        if pod in self.cluster.gone:
            return EvictionResult(pod, EvictionStatus.GONE, f'pods "{pod}" not found')
        self.cluster.removed.append(Removal(pod, uid, self.mode, self.dry_run))
        if self.cluster.after_removal is not None:
            self.cluster.after_removal(self.cluster)
        return EvictionResult(pod, EvictionStatus.EVICTED)

    def gone(self, namespace: str, pod: str, uid: str) -> bool:
        if self.dry_run:
            return False
        if self.cluster.unreadable:
            raise KubernetesError("Kubernetes API unreachable: connection refused", unsure=True)
        return pod in {r.pod for r in self.cluster.removed}


@dataclass
class FakeAudit:
    fail: bool = False
    records: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    topic: str = "projects/p/topics/audit"

    def publish(self, record: dict[str, Any], attributes: dict[str, str]) -> str:
        if self.fail:
            raise AuditError("publish timed out")
        self.records.append((record, attributes))
        return str(len(self.records))
