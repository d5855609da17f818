"""Watching the rebalancer on Google Cloud, read as data (no Google provider offline): the
log-based metrics are telemetry.py's metric set, their filters and extractors read fields the
function really writes, and the three alert policies watch the right metric with the variables.
The AWS alarms are applied against moto in test_aws.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pod_rebalancer import telemetry
from pod_rebalancer.core.model import Effect, LastRebalance, Reason
from pod_rebalancer.errors import MetricsError
from pod_rebalancer.records import decision_lines, run_log
from pod_rebalancer.report import Action, Outcome
from pod_rebalancer.triggers import RunRequest
from tests.builders import NOW
from tests.terraform.tf import dynamic, module, one
from tests.unit.test_telemetry import TARGET, service

GCP = module("gcp")
METRICS = {
    "executions": telemetry.EXECUTIONS,
    "pods_deleted": telemetry.PODS_DELETED,
    "dependency_failures": telemetry.DEPENDENCY_FAILURES,
    "duration": telemetry.DURATION,
    "load_variance": telemetry.LOAD_VARIANCE,
    "measured": telemetry.MEASURED,
}


def logged_lines() -> list[dict[str, Any]]:
    """The fields of every line a rebalance, a failed run and their run lines write."""
    request = RunRequest((TARGET,), False, "scheduler")
    (rebalanced,) = service().run(request)
    failed = Outcome.unavailable(TARGET, False, MetricsError("down"))
    # The closed loop's answer for a target whose last rebalance did not help.
    effect = Effect("variance", 0.5, 0.1, achieved=0.45, improvement_percent=10, effective=False)
    judged = Outcome(
        TARGET,
        False,
        Action.SKIPPED,
        Reason.NOT_EFFECTIVE.value,
        last_rebalance=LastRebalance(NOW, effect, ""),
        judged=True,
    )
    outcomes = (rebalanced, failed, judged)
    lines = [line for o in outcomes for line in decision_lines(o, request, "i")]
    lines.append(run_log(request, "i", 1, 0.42))
    return [fields for _, _, fields, _ in lines]


def extracted(body: dict[str, Any]) -> dict[str, str]:
    """Label → the jsonPayload path its extractor reads (merge(local.target_labels, {...}) too)."""
    extractors = body["label_extractors"]
    if isinstance(extractors, dict):
        pairs = dict(extractors)
    else:
        assert extractors.startswith("${merge(local.target_labels, {")
        pairs = dict(re.findall(r'(\w+) = "(EXTRACT\(jsonPayload\.[\w.]+\))"', extractors))
        pairs.update(GCP.locals()["target_labels"])
    paths = {}
    for label, extractor in pairs.items():
        (path,) = re.fullmatch(r"EXTRACT\(jsonPayload\.([\w.]+)\)", extractor).groups()
        paths[label] = path
    return paths


def lookup(fields: dict[str, Any], path: str) -> Any:
    value: Any = fields
    for part in path.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize("name", sorted(METRICS))
def test_each_log_based_metric_is_one_of_the_metric_set_by_its_name_and_labels(name: str) -> None:
    metric, body = METRICS[name], GCP.resource("google_logging_metric", name)
    assert body["count"] == "${local.monitoring}"
    assert body["name"] == f"${{var.name}}/{metric.name}"
    assert body["description"] == metric.help or metric.kind is telemetry.Kind.GAUGE
    descriptor = one(body["metric_descriptor"])
    assert descriptor["metric_kind"] == "DELTA"
    counted = metric.kind is telemetry.Kind.COUNTER
    assert descriptor["value_type"] == ("INT64" if counted else "DISTRIBUTION")
    labels = dynamic(descriptor, "labels")
    if labels:
        assert one(labels)["for_each"] == list(metric.labels)
    else:
        assert [label["key"] for label in descriptor["labels"]] == list(metric.labels)
    found = extracted(body)
    assert set(found) == set(metric.labels)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_filters_and_extractors_read_fields_the_function_writes(name: str) -> None:
    body = GCP.resource("google_logging_metric", name)
    assert body["filter"].startswith("${local.function_logs} AND ")
    (event,) = re.findall(r'jsonPayload\.event=\\?"(\w+)\\?"', body["filter"])
    lines = [fields for fields in logged_lines() if fields["event"] == event]
    assert lines, f"the function writes no line with event {event!r}"
    paths = list(extracted(body).values())
    if "value_extractor" in body:
        paths.append(body["value_extractor"].removeprefix("EXTRACT(jsonPayload.").rstrip(")"))
    for path in paths:
        assert any(_has(fields, path) for fields in lines), (name, path)
    if name == "duration":
        assert body["value_extractor"] == "EXTRACT(jsonPayload.duration_seconds)"
        bounds = GCP.locals()["duration_bounds"]
        assert [float(b) for b in bounds] == list(telemetry.DURATION_BUCKETS)
    if name == "measured":
        assert "jsonPayload.judged=true" in body["filter"]  # once, by the judging invocation
        assert "jsonPayload.last_rebalance.effective=true" in body["filter"]
        assert "jsonPayload.last_rebalance.effective=false" in body["filter"]


def _has(fields: dict[str, Any], path: str) -> bool:
    try:
        lookup(fields, path)
    except (KeyError, TypeError):
        return False
    return True


def test_the_logs_read_are_both_functions_own() -> None:
    expression = GCP.locals()["function_logs"]
    assert 'resource.type=\\"cloud_run_revision\\"' in expression
    assert "for f in local.functions" in expression
    assert "lower(f.name)" in expression


def policy(name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    body = GCP.resource("google_monitoring_alert_policy", name)
    assert body["count"] == "${local.monitoring}"
    assert body["notification_channels"] == "${var.monitoring.notification_channels}"
    assert body["combiner"] == "OR"
    threshold = one(one(body["conditions"])["condition_threshold"])
    return body, threshold, one(threshold["aggregations"])


def test_failing_policy_counts_failed_results_per_target_within_the_window() -> None:
    _, threshold, aggregation = policy("failing")
    assert "google_logging_metric.executions[0].name" in threshold["filter"]
    assert 'metric.labels.action="failed"' in threshold["filter"]
    assert (threshold["comparison"], threshold["threshold_value"]) == (
        "COMPARISON_GT",
        "${var.monitoring.failed_runs - 1}",
    )
    assert aggregation == {
        "alignment_period": "${var.monitoring.failure_window}",
        "per_series_aligner": "ALIGN_SUM",
        "cross_series_reducer": "REDUCE_SUM",
        "group_by_fields": ["metric.label.namespace", "metric.label.deployment"],
    }


def test_evictions_policy_sums_every_target_over_an_hour() -> None:
    _, threshold, aggregation = policy("evictions")
    assert "google_logging_metric.pods_deleted[0].name" in threshold["filter"]
    assert threshold["threshold_value"] == "${var.monitoring.max_evictions_per_hour}"
    assert threshold["comparison"] == "COMPARISON_GT"
    assert aggregation["alignment_period"] == "3600s"
    assert "group_by_fields" not in aggregation  # across every target


def test_not_effective_policy_fires_on_any_such_result() -> None:
    _, threshold, aggregation = policy("not_effective")
    assert "google_logging_metric.executions[0].name" in threshold["filter"]
    assert 'metric.labels.reason="not_effective"' in threshold["filter"]
    assert (threshold["comparison"], threshold["threshold_value"]) == ("COMPARISON_GT", 0)
    assert aggregation["group_by_fields"] == ["metric.label.namespace", "metric.label.deployment"]


def test_monitoring_variable_defaults() -> None:
    variable = GCP.variables()["monitoring"]
    assert variable["default"] == {}
    for field in (
        "enabled = optional(bool, true)",
        "notification_channels = optional(list(string), [])",
        "failed_runs = optional(number, 3)",
        'failure_window = optional(string, "3600s")',
        "max_evictions_per_hour = optional(number, 10)",
    ):
        assert field in " ".join(variable["type"].split()), field
    assert "monitoring.tf" in {path.name for path in GCP.files}
