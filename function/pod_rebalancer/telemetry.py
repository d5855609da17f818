"""The rebalancer's own metric set, defined once: a run's results (their JSON form) and its duration
become samples, which each platform carries its own way (Cloud Logging metrics read the decision
log, CloudWatch reads the embedded metric format, Prometheus reads a Pushgateway). Pure: no I/O.

A sample's `group` is the target it belongs to (namespace, deployment), or () for the run itself:
the Pushgateway groups by it, the other platforms ignore it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    unit: str  # CloudWatch's unit name
    # Further dimension sets for CloudWatch, whose alarms read one series: a metric rolled up over
    # the other labels (every target's failures are `action=failed`, every pod removed is `()`).
    rollups: tuple[tuple[str, ...], ...] = ()


EXECUTIONS = Metric(
    "rebalancer_executions_total",
    Kind.COUNTER,
    ("namespace", "deployment", "action", "reason"),
    "Results per target, by action and reason code.",
    "Count",
    rollups=(("action",), ("reason",)),
)
PODS_DELETED = Metric(
    "rebalancer_pods_deleted_total",
    Kind.COUNTER,
    ("namespace", "deployment", "role"),
    "Pods evicted (or deleted) for real, by the role they were selected in.",
    "Count",
    rollups=((),),
)
DEPENDENCY_FAILURES = Metric(
    "rebalancer_dependency_failures_total",
    Kind.COUNTER,
    ("namespace", "deployment", "dependency"),
    "Failed results, by the dependency that failed (kubernetes, metrics, ...).",
    "Count",
)
DURATION = Metric(
    "rebalancer_execution_duration_seconds",
    Kind.HISTOGRAM,
    ("source",),
    "Seconds one invocation took, all its targets included.",
    "Seconds",
)
LOAD_VARIANCE = Metric(
    "rebalancer_load_variance_current",
    Kind.GAUGE,
    ("namespace", "deployment", "statistic"),
    "The imbalance statistic the last run measured (IMBALANCE_STATISTIC names it).",
    "None",
)
MEASURED = Metric(
    "rebalancer_rebalances_measured_total",
    Kind.COUNTER,
    ("namespace", "deployment", "effective"),
    "Rebalances judged (last_rebalance.effective true or false), once each: by the invocation "
    "that judged and recorded it.",
    "Count",
)
# The dependencies a DependencyError names (errors.py). A failed result's `errors` names them; a
# removal that failed names its pods instead, and only the Kubernetes API removes pods.
DEPENDENCIES = frozenset({"metrics", "kubernetes", "secrets", "dependency"})
METRICS = (EXECUTIONS, PODS_DELETED, DEPENDENCY_FAILURES, DURATION, LOAD_VARIANCE, MEASURED)
# Upper bounds of the duration histogram: a dry run takes well under a second, a sweep with
# evictions several; the platforms' time limits end at 540 s (Cloud Functions) and 900 s (Lambda).
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass(frozen=True, slots=True)
class Sample:
    metric: Metric
    labels: tuple[tuple[str, str], ...]  # in the metric's label order
    value: float  # a counter's increment, a gauge's value, a histogram's observation
    group: tuple[tuple[str, str], ...] = ()

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def _sample(
    metric: Metric, value: float, group: tuple[tuple[str, str], ...], **labels: str
) -> Sample:
    if set(labels) != set(metric.labels):
        raise ValueError(f"{metric.name} takes labels {metric.labels}, not {sorted(labels)}")
    return Sample(metric, tuple((name, labels[name]) for name in metric.labels), value, group)


def target_samples(result: Mapping[str, Any]) -> list[Sample]:
    """What one result (`Outcome.record_json()`, or the decision log's copy of it) counts."""
    target = result["target"]
    where = {"namespace": str(target["namespace"]), "deployment": str(target["deployment"])}
    group = tuple(where.items())
    action, reason = str(result["action"]), str(result["reason"])
    samples = [_sample(EXECUTIONS, 1, group, **where, action=action, reason=reason)]
    for _, role in removed_pods(result):
        samples.append(_sample(PODS_DELETED, 1, group, **where, role=role))
    for dependency in failed_dependencies(result):
        samples.append(_sample(DEPENDENCY_FAILURES, 1, group, **where, dependency=dependency))
    value, statistic = result.get("value"), result.get("statistic")
    if isinstance(value, int | float) and not isinstance(value, bool) and statistic:
        samples.append(_sample(LOAD_VARIANCE, float(value), group, **where, statistic=statistic))
    last = result.get("last_rebalance")
    effective = last.get("effective") if isinstance(last, Mapping) else None
    if isinstance(effective, bool) and result.get("judged") is True:
        samples.append(
            _sample(MEASURED, 1, group, **where, effective="true" if effective else "false")
        )
    return samples


def failed_dependencies(result: Mapping[str, Any]) -> list[str]:
    """The dependencies a failed result names; none for any other action."""
    if result.get("action") != "failed":
        return []
    named = sorted(DEPENDENCIES.intersection(result.get("errors") or {}))
    return named or ["kubernetes"]


def removed_pods(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(pod, role) of each pod a real run removed; none in a dry run."""
    if result.get("dry_run"):
        return []
    roles = {s["pod"]: str(s["role"]) for s in result.get("selected") or ()}
    return [(str(pod), roles.get(pod, "unknown")) for pod in result.get("evicted") or ()]


def run_samples(
    results: Iterable[Mapping[str, Any]], duration_seconds: float, source: str
) -> list[Sample]:
    """The samples of one invocation: each result's, then its duration."""
    samples = [sample for result in results for sample in target_samples(result)]
    samples.append(duration_sample(duration_seconds, source))
    return samples


def duration_sample(duration_seconds: float, source: str) -> Sample:
    return _sample(DURATION, duration_seconds, (), source=source)


def groups(samples: Sequence[Sample]) -> dict[tuple[tuple[str, str], ...], list[Sample]]:
    """The samples by group, in first-seen order (the run's own group, (), included)."""
    grouped: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.group, []).append(sample)
    return grouped


def embedded_documents(
    samples: Sequence[Sample], namespace: str, timestamp_ms: int
) -> list[dict[str, Any]]:
    """CloudWatch's embedded metric format: the `_aws` block and the fields it points at.

    A document holds one value per metric and one value per dimension, so samples that do not fit
    together (two dependencies of one failed result) go to a further document: the first belongs in
    the log line itself, any other on a line of its own.
    """
    documents: list[dict[str, Any]] = []
    for sample in samples:
        labels = sample.label_map
        home = next((d for d in documents if _fits(d, sample, labels)), None)
        if home is None:
            home = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": []}}
            documents.append(home)
        home.update(labels)
        home[sample.metric.name] = sample.value
        home["_aws"]["CloudWatchMetrics"].append(
            {
                "Namespace": namespace,
                "Dimensions": [list(d) for d in (sample.metric.labels, *sample.metric.rollups)],
                "Metrics": [{"Name": sample.metric.name, "Unit": sample.metric.unit}],
            }
        )
    return documents


def _fits(document: Mapping[str, Any], sample: Sample, labels: Mapping[str, str]) -> bool:
    if sample.metric.name in document:
        return False
    return all(document.get(name, value) == value for name, value in labels.items())
