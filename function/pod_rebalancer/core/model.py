"""Plain data shared by the core and the shell: targets, policy, pods, reasons and the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pod_rebalancer.core.names import label_problem, subdomain_problem


class Statistic(StrEnum):
    """How imbalance is measured; each equals the PromQL aggregation of the same name."""

    VARIANCE = "variance"  # population variance, PromQL stdvar()
    STDDEV = "stddev"  # population standard deviation, PromQL stddev()
    CV = "cv"  # stddev / mean: independent of the workload's absolute CPU


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
    ALERT_RESOLVED = "alert_resolved"
    EVICTION_BLOCKED = "eviction_blocked"
    PARTIAL = "partial"


class PodSkip(StrEnum):
    """Why a single pod was left out of the measurement and the selection."""

    TERMINATING = "terminating"
    NOT_READY = "not_ready"
    TOO_YOUNG = "too_young"
    EXCLUDED = "excluded"
    NO_METRICS = "no_metrics"
    NON_FINITE = "non_finite_metric"
    STALE_SERIES = "stale_series"  # a series for a pod that no longer exists


@dataclass(frozen=True, slots=True)
class Target:
    """A Deployment to rebalance. Both names are checked here, the last line before PromQL."""

    namespace: str
    deployment: str

    def __post_init__(self) -> None:
        problem = label_problem(self.namespace)
        if problem:
            raise ValueError(f"namespace {self.namespace!r} {problem}")
        problem = subdomain_problem(self.deployment)
        if problem:
            raise ValueError(f"deployment {self.deployment!r} {problem}")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.deployment}"


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of one decision, taken from Settings by the shell."""

    statistic: Statistic = Statistic.VARIANCE
    threshold: float = 0.3
    min_pods: int = 3
    max_delete: int = 2
    min_improvement_percent: float = 10.0
    min_pod_age: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What the core needs to know about one pod of the target, read from the cluster."""

    name: str
    uid: str
    ready: bool
    created_at: datetime | None
    excluded: bool = False
    terminating: bool = False


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The target's lock and memory: who holds it until when, and when it last acted."""

    holder: str | None
    renewed_at: datetime | None
    duration: timedelta
    last_rebalance: datetime | None

    def held_by_other(self, me: str, now: datetime) -> bool:
        if not self.holder or self.holder == me or self.renewed_at is None:
            return False
        return now < self.renewed_at + self.duration


@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of per-pod CPU (cores), population formulas as PromQL uses."""

    count: int
    mean: float
    stddev: float
    variance: float
    cv: float
    min: float
    max: float

    def of(self, statistic: Statistic) -> float:
        if statistic is Statistic.VARIANCE:
            return self.variance
        if statistic is Statistic.STDDEV:
            return self.stddev
        return self.cv


Role = Literal["busiest", "idlest"]


@dataclass(frozen=True, slots=True)
class Selected:
    pod: str
    cpu: float
    role: Role


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
    threshold: float
    summary: Summary | None = None
    expected_after: Expected | None = None
    selected: tuple[Selected, ...] = ()
    ignored: dict[str, int] = field(default_factory=dict)

    @property
    def acts(self) -> bool:
        return self.reason is Reason.IMBALANCE_CONFIRMED and bool(self.selected)

    @property
    def value(self) -> float | None:
        return None if self.summary is None else self.summary.of(self.statistic)
