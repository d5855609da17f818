"""Plain data shared by the core, the service and the adapters, in the domain's own terms.

The service and its ports speak only these records; the adapters translate them to and from the
Kubernetes and Prometheus wire formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pod_rebalancer.core.names import check_target
from pod_rebalancer.core.score import Weights
from pod_rebalancer.core.stats import Statistic, Summary


class Reason(StrEnum):
    """Stable reason codes; the README documents each. Never rename one."""

    IMBALANCE_CONFIRMED = "imbalance_confirmed"
    BELOW_THRESHOLD = "below_threshold"
    INSUFFICIENT_IMPROVEMENT = "insufficient_improvement"
    TOO_FEW_PODS = "too_few_pods"
    NO_METRICS = "no_metrics"
    COOLDOWN = "cooldown"
    LOCKED = "locked"
    ROLLOUT_IN_PROGRESS = "rollout_in_progress"
    PODS_NOT_READY = "pods_not_ready"
    EXCLUDED = "excluded"
    TARGET_NOT_ALLOWED = "target_not_allowed"
    TARGET_NOT_FOUND = "target_not_found"
    UNSUPPORTED_SELECTOR = "unsupported_selector"
    ALERT_RESOLVED = "alert_resolved"
    EVICTION_BLOCKED = "eviction_blocked"
    PARTIAL = "partial"
    RUN_BUDGET_EXHAUSTED = "run_budget_exhausted"
    NOT_EFFECTIVE = "not_effective"
    NO_HPA_TARGET = "no_hpa_target"
    NO_HOT_PODS = "no_hot_pods"


class PodSkip(StrEnum):
    """Why a single pod was left out of the measurement and the selection."""

    TERMINATING = "terminating"
    NOT_READY = "not_ready"
    TOO_YOUNG = "too_young"
    EXCLUDED = "excluded"
    NO_METRICS = "no_metrics"
    MISSING_SIGNAL = "missing_signal"  # IMBALANCE_SIGNAL=score: no lag or memory series
    NO_CPU_REQUEST = "no_cpu_request"  # IMBALANCE_POLICY=hpa_target: no request to compare with
    NON_FINITE = "non_finite_metric"
    STALE_SERIES = "stale_series"  # a series for a pod that no longer exists


@dataclass(frozen=True, slots=True)
class Target:
    """A Deployment to rebalance. Both names are checked here, the last line before PromQL."""

    namespace: str
    deployment: str

    def __post_init__(self) -> None:
        check_target(self.namespace, self.deployment)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.deployment}"


@dataclass(frozen=True, slots=True)
class AllowList:
    """Name patterns (`*` wildcard) a trigger may target."""

    namespaces: tuple[str, ...]
    deployments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of one decision; Settings holds their defaults and builds this."""

    statistic: Statistic
    threshold: float
    min_pods: int
    max_delete: int
    min_improvement_percent: float
    min_pod_age: timedelta
    # IMBALANCE_SIGNAL: "cpu" measures CPU alone; "score" the weighted signals (core/score.py),
    # with `weights` already reduced to the configured signals and summing to 1.
    signal: Literal["cpu", "score"] = "cpu"
    weights: Weights = (("cpu", 1.0),)
    # IMBALANCE_POLICY: "variance" compares the statistic with `threshold`; "hpa_target" looks
    # for pods above the HPA's CPU target times `tolerance` of their request.
    kind: Literal["variance", "hpa_target"] = "variance"
    tolerance: float = 1.5

    @property
    def measured_as(self) -> str:
        """What a rebalance's before/after values measure, as the Lease remembers it: a
        measurement in other terms is never compared with it."""
        if self.signal == "score" and self.kind == "variance":
            return f"score:{self.statistic.value}"
        return self.statistic.value


@dataclass(frozen=True, slots=True)
class HpaTarget:
    """The Deployment's HorizontalPodAutoscaler, as far as the hpa_target policy needs it."""

    name: str
    cpu_utilization: int | None  # the CPU Utilization target in percent of requests, if any


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """The parts of a Deployment's spec and status that decide whether it is settled."""

    generation: int
    observed_generation: int
    replicas: int
    updated_replicas: int
    unavailable_replicas: int
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class Deployment:
    """A target's Deployment as read from the cluster."""

    target: Target
    uid: str
    # The pod selector as a `labelSelector` query, or None when it cannot be used (empty, or an
    # operator this function does not know); `selector_problem` then says why.
    selector: str | None
    containers: tuple[str, ...]
    state: DeploymentState
    selector_problem: str = ""
    # Opted in to sweeps: it carries `pod-rebalancer.io/enabled: "true"` (the exclusion still wins).
    enabled: bool = False
    # The HPA named by its `pod-rebalancer.io/hpa` annotation; empty: the one named like it.
    hpa: str = ""


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What the core needs to know about one pod of the target, read from the cluster."""

    name: str
    uid: str
    ready: bool
    # When the pod started (status.startTime; creationTimestamp only when that is absent): the
    # first moment it can have produced metrics.
    started_at: datetime | None
    excluded: bool = False
    terminating: bool = False
    # Since when its Ready condition has held (lastTransitionTime), when it is Ready.
    ready_since: datetime | None = None
    # The sum of its containers' CPU requests in cores; None when a container requests none.
    cpu_request: float | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """The last rebalance: what it expected, and once measured, what it achieved."""

    statistic: str
    before: float
    expected_after: float
    evicted: tuple[str, ...] = ()
    achieved: float | None = None
    improvement_percent: float | None = None
    effective: bool | None = None
    measured_at: datetime | None = None

    @property
    def measured(self) -> bool:
        return self.effective is not None


@dataclass(frozen=True, slots=True)
class LastRebalance:
    """What a result says of the target's previous rebalance (`last_rebalance`)."""

    at: datetime
    effect: Effect
    note: str = ""


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The target's lock and memory: who holds it until when, when and what it last did, what
    that achieved, and how many rebalances in a row did not help."""

    holder: str | None
    renewed_at: datetime | None
    duration: timedelta
    last_rebalance: datetime | None
    selection: tuple[str, ...] = ()
    effect: Effect | None = None
    ineffective: int = 0  # ineffective rebalances in a row (an effective one resets it)
    last_ineffective: datetime | None = None  # when the latest of them was measured


@dataclass(frozen=True, slots=True)
class Lease:
    """A target's Lease as read: its state and the version a replacement must name."""

    namespace: str
    name: str
    version: str  # resourceVersion: a replacement succeeds only if nobody wrote in between
    state: LeaseState
    # As found, so that a write keeps what others put on the object.
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


class EvictionStatus(StrEnum):
    """How the API answered one removal (eviction or deletion) that it did not fail."""

    EVICTED = "evicted"
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget said no
    GONE = "gone"  # 404: the pod is already gone
    CHANGED = "changed"  # 409: the pod's UID changed (a new pod under the old name)


@dataclass(frozen=True, slots=True)
class EvictionResult:
    pod: str
    status: EvictionStatus
    message: str = ""


Role = Literal["busiest", "idlest"]


@dataclass(frozen=True, slots=True)
class Selected:
    pod: str
    cpu: float
    role: Role
    # IMBALANCE_SIGNAL=score: each configured signal's raw value, and the pod's score.
    signals: Mapping[str, float] | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """The statistic over the pods that remain once the selected ones are gone."""

    value: float
    improvement_percent: float


@dataclass(frozen=True, slots=True)
class Plan:
    """The core's answer for one target: act on `selected`, or skip for `reason`."""

    reason: Reason
    statistic: Statistic
    # CPU_VARIANCE_THRESHOLD; under hpa_target the hot line in percent of the CPU request (None
    # when there is no HPA CPU target to draw it from).
    threshold: float | None
    summary: Summary | None = None
    expected_after: Expected | None = None
    selected: tuple[Selected, ...] = ()
    ignored: dict[str, int] = field(default_factory=dict)
    # What `summary` and `expected_after` measure, as Policy.measured_as says.
    measured_as: str = ""
    hpa: HpaJudgement | None = None

    @property
    def acts(self) -> bool:
        return self.reason is Reason.IMBALANCE_CONFIRMED and bool(self.selected)

    @property
    def value(self) -> float | None:
        return None if self.summary is None else self.summary.of(self.statistic)


@dataclass(frozen=True, slots=True)
class HpaJudgement:
    """How the hpa_target policy judged the pods: the HPA, the line above which a pod is hot (in
    percent of its CPU request), how many were, and the highest utilisation seen."""

    name: str
    target_percent: int
    hot_line_percent: float
    hot_pods: int
    peak_percent: float
