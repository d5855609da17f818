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
from pod_rebalancer.locking import lease_name
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
    enabled: bool = False  # carries pod-rebalancer.io/enabled: "true" (opted in to sweeps)

    def __post_init__(self) -> None:
        if not self.pods_:
            self.pods_ = pods(self.names)

    def deployment(self, target: Target) -> Deployment | None:
        self.deployment_reads += 1
        if self.before_read is not None:
            self.before_read(self, self.deployment_reads)
        if not self.exists:
            return None
        return self.record(target)

    def record(self, target: Target) -> Deployment:
        """The Deployment as a GET or a list of the API returns it."""
        problem = "" if self.selector is not None else "the Deployment has an empty selector"
        return Deployment(
            target,
            "dep-uid",
            self.selector,
            self.containers,
            self.state,
            problem,
            enabled=self.enabled,
        )

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


@dataclass
class FakeFleet:
    """Several Deployments in several namespaces behind one ClusterPort, each a FakeCluster of its
    own (pods, Lease, removals, Events), found by target, by pod selector, by Lease name or by pod
    name as the API would route the request. Lists Deployments per namespace; `forbidden`
    namespaces refuse the list (403), as RBAC without `deployments list` does."""

    members: dict[Target, FakeCluster] = field(default_factory=dict)
    cpu: dict[Target, dict[str, float]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    listed: list[str] = field(default_factory=list)  # namespaces whose Deployments were listed
    # Called at the start of each pod list with its target: lets a test hold targets in flight.
    on_pods: Callable[[Target], None] | None = None

    def add(
        self, target: Target, cpu: list[float], *, enabled: bool = True, **changes: Any
    ) -> FakeCluster:
        names = [f"{target.deployment}-abc-{i:02d}" for i in range(len(cpu))]
        member = FakeCluster(
            names=names,
            state=settled(len(names)),
            selector=f"app={target.deployment}",
            containers=(target.deployment,),
            enabled=enabled,
            **changes,
        )
        self.members[target] = member
        self.cpu[target] = dict(zip(names, cpu, strict=True))
        return member

    def removed(self) -> dict[Target, list[str]]:
        """The pods removed (real or dry) per target, for targets that removed any."""
        return {t: [r.pod for r in m.removed] for t, m in self.members.items() if m.removed}

    def deployments(self, namespace: str) -> list[Deployment]:
        self.listed.append(namespace)
        if namespace in self.forbidden:
            raise KubernetesError(
                f"Kubernetes API GET /apis/apps/v1/namespaces/{namespace}/deployments answered "
                f'HTTP 403: deployments.apps is forbidden: cannot list resource "deployments"',
                403,
                "Forbidden",
            )
        return [
            member.record(target)
            for target, member in self.members.items()
            if target.namespace == namespace and member.exists
        ]

    def deployment(self, target: Target) -> Deployment | None:
        member = self.members.get(target)
        return None if member is None else member.deployment(target)

    def pods(self, namespace: str, selector: str) -> list[PodInfo]:
        target, member = self._find(
            lambda t, m: t.namespace == namespace and m.selector == selector
        )
        if self.on_pods is not None:
            self.on_pods(target)
        return member.pods(namespace, selector)

    def lease(self, namespace: str, name: str) -> Lease | None:
        return self._by_lease(namespace, name).lease(namespace, name)

    def create_lease(self, namespace: str, name: str, state: LeaseState) -> Lease | None:
        return self._by_lease(namespace, name).create_lease(namespace, name, state)

    def replace_lease(self, lease: Lease, state: LeaseState) -> Lease | None:
        return self._by_lease(lease.namespace, lease.name).replace_lease(lease, state)

    def remover(self, mode: EvictionMode, *, dry_run: bool) -> FleetRemover:
        return FleetRemover(self, mode, dry_run)

    def event(
        self, deployment: Deployment, note: EventNote, *, now: datetime, instance: str
    ) -> None:
        self.members[deployment.target].events.append(note)

    def by_pod(self, namespace: str, pod: str) -> FakeCluster:
        return self._find(lambda t, m: t.namespace == namespace and pod in m.names)[1]

    def _by_lease(self, namespace: str, name: str) -> FakeCluster:
        return self._find(lambda t, m: t.namespace == namespace and lease_name(t) == name)[1]

    def _find(self, match: Callable[[Target, FakeCluster], bool]) -> tuple[Target, FakeCluster]:
        (found,) = [(t, m) for t, m in self.members.items() if match(t, m)]
        return found


@dataclass
class FleetRemover:
    fleet: FakeFleet
    mode: EvictionMode
    dry_run: bool

    def remove(self, namespace: str, pod: str, uid: str) -> EvictionResult:
        member = self.fleet.by_pod(namespace, pod)
        return member.remover(self.mode, dry_run=self.dry_run).remove(namespace, pod, uid)

    def gone(self, namespace: str, pod: str, uid: str) -> bool:
        member = self.fleet.by_pod(namespace, pod)
        return member.remover(self.mode, dry_run=self.dry_run).gone(namespace, pod, uid)


@dataclass
class FleetMetrics:
    """Each target's own samples; `failing` targets' queries fail (the metrics server errs)."""

    fleet: FakeFleet
    failing: set[Target] = field(default_factory=set)
    queried: list[Target] = field(default_factory=list)

    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        self.queried.append(target)
        if target in self.failing:
            raise MetricsError(f"metrics server answered HTTP 500 for {target}")
        return dict(self.fleet.cpu.get(target, {}))
