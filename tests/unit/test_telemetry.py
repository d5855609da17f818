"""The metric set (telemetry.py): what a run's results count, as laws over arbitrary results, and
the lines that carry them (the decision log, the embedded metric format, the run line)."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_rebalancer import logs, telemetry
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Effect, LastRebalance, Target
from pod_rebalancer.errors import KubernetesError, TelemetryError
from pod_rebalancer.records import decision_lines
from pod_rebalancer.report import Action, Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.telemetry import (
    DEPENDENCY_FAILURES,
    DURATION,
    EXECUTIONS,
    LOAD_VARIANCE,
    MEASURED,
    PODS_DELETED,
)
from pod_rebalancer.triggers import RunRequest
from tests.builders import NOW, settled
from tests.fakes import FakeCluster, FakeMetrics

NAMES = [f"ingestion-consumer-abc-{i:02d}" for i in range(10)]
CPU = [2.3, 2.0, 0.8, 0.9, 0.7, 0.8, 0.75, 0.85, 0.1, 0.05]
TARGET = Target("posthog", "ingestion-consumer")

names = st.text(alphabet="abcdefxyz0-", min_size=1, max_size=8)
pod_names = st.lists(names, unique=True, max_size=6)


@st.composite
def results(draw: st.DrawFn) -> dict[str, Any]:
    """Results shaped like Outcome.to_json(), with and without the closed loop's last_rebalance."""
    pods = draw(pod_names)
    selected = [
        {"pod": pod, "cpu": 1.0, "role": draw(st.sampled_from(["busiest", "idlest"]))}
        for pod in pods
    ]
    evicted = draw(st.lists(st.sampled_from(pods), unique=True)) if pods else []
    action = draw(st.sampled_from(["rebalanced", "would_rebalance", "skipped", "failed"]))
    errors = draw(st.dictionaries(st.sampled_from(["kubernetes", "metrics", *pods]), st.text()))
    value = draw(st.none() | st.floats(min_value=0, max_value=10))
    result: dict[str, Any] = {
        "target": {"namespace": draw(names), "deployment": draw(names)},
        "dry_run": draw(st.booleans()),
        "action": action,
        "reason": draw(st.sampled_from(["imbalance_confirmed", "cooldown", "not_effective"])),
        "statistic": None if value is None else "variance",
        "value": value,
        "selected": selected,
        "evicted": evicted,
        "errors": errors,
    }
    last = draw(
        st.none()
        | st.fixed_dictionaries({"at": st.just("2026-11-22T03:00:00+00:00")}).map(
            lambda d: {**d, "effective": draw(st.none() | st.booleans())}
        )
    )
    if last is not None or draw(st.booleans()):
        result["last_rebalance"] = last
        result["judged"] = last is not None and draw(st.booleans())
    return result


def of(samples: list[telemetry.Sample], metric: telemetry.Metric) -> list[telemetry.Sample]:
    return [s for s in samples if s.metric is metric]


@given(st.lists(results(), max_size=3), st.floats(min_value=0, max_value=900))
def test_every_result_counts_once_and_the_run_its_duration_once(
    batch: list[dict[str, Any]], duration: float
) -> None:
    samples = telemetry.run_samples(batch, duration, "scheduler")
    assert len(of(samples, EXECUTIONS)) == len(batch)
    ((timed),) = of(samples, DURATION)
    assert (timed.value, timed.labels, timed.group) == (duration, (("source", "scheduler"),), ())
    for sample in samples:
        assert tuple(name for name, _ in sample.labels) == sample.metric.labels
        if sample.metric is not DURATION:
            assert sample.group == tuple(sample.label_map.items())[:2]


@given(results())
def test_pods_deleted_are_the_evicted_of_real_runs_with_their_selected_role(
    result: dict[str, Any],
) -> None:
    deleted = of(telemetry.target_samples(result), PODS_DELETED)
    if result["dry_run"]:
        assert deleted == []
        return
    roles = {s["pod"]: s["role"] for s in result["selected"]}
    assert Counter(s.label_map["role"] for s in deleted) == Counter(
        roles[pod] for pod in result["evicted"]
    )
    assert all(s.value == 1 for s in deleted)


@given(results())
def test_dependency_failures_only_for_failed_results_named_by_their_dependency(
    result: dict[str, Any],
) -> None:
    failures = of(telemetry.target_samples(result), DEPENDENCY_FAILURES)
    if result["action"] != "failed":
        assert failures == []
        return
    named = {"kubernetes", "metrics"} & set(result["errors"])
    # A removal that failed names its pods; only the Kubernetes API removes pods.
    assert {s.label_map["dependency"] for s in failures} == (named or {"kubernetes"})


@given(results())
def test_the_statistic_is_a_gauge_when_measured_and_effect_counted_when_judged(
    result: dict[str, Any],
) -> None:
    samples = telemetry.target_samples(result)
    gauges = of(samples, LOAD_VARIANCE)
    if result["value"] is None:
        assert gauges == []
    else:
        ((gauge),) = gauges
        assert (gauge.value, gauge.label_map["statistic"]) == (result["value"], "variance")
    effective = (result.get("last_rebalance") or {}).get("effective")
    measured = of(samples, MEASURED)
    if effective is None or not result.get("judged"):
        assert measured == []  # counted once: by the invocation that judged it
    else:
        assert [s.label_map["effective"] for s in measured] == [str(effective).lower()]


@given(results())
def test_embedded_metric_documents_hold_every_sample_once_with_its_dimensions(
    result: dict[str, Any],
) -> None:
    samples = telemetry.target_samples(result)
    documents = telemetry.embedded_documents(samples, "PodRebalancer", 1795262400123)
    assert sum(len(d["_aws"]["CloudWatchMetrics"]) for d in documents) == len(samples)
    for document in documents:
        assert document["_aws"]["Timestamp"] == 1795262400123
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions, *rollups = directive["Dimensions"]
            ((metric),) = directive["Metrics"]
            assert all(set(rollup) < set(dimensions) for rollup in rollups)
            assert directive["Namespace"] == "PodRebalancer"
            assert isinstance(document[metric["Name"]], float | int)
            assert all(isinstance(document[name], str) for name in dimensions)
    placed = Counter(
        (m["Name"], tuple(d[n] for n in directive["Dimensions"][0]))
        for d in documents
        for directive in d["_aws"]["CloudWatchMetrics"]
        for m in directive["Metrics"]
    )
    assert placed == Counter((s.metric.name, tuple(v for _, v in s.labels)) for s in samples)


def test_a_rebalance_is_one_decision_line_and_one_line_per_pod_removed() -> None:
    svc, out = service(), io.StringIO()
    with Captured(out):
        svc.run(RunRequest((TARGET,), False, "alertmanager"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    decision, busiest, idlest, run = lines
    assert (decision["event"], decision["namespace"], decision["deployment"]) == (
        "decision",
        "posthog",
        "ingestion-consumer",
    )
    assert [(line["event"], line["pod"], line["role"]) for line in (busiest, idlest)] == [
        ("pod_removed", NAMES[0], "busiest"),
        ("pod_removed", NAMES[9], "idlest"),
    ]
    assert (run["event"], run["source"], run["results"]) == ("run", "alertmanager", 1)
    assert run["duration_seconds"] == 1.5  # the injected timer's two readings
    assert not any("_aws" in line for line in lines)  # not on Lambda


def test_on_lambda_the_lines_are_also_embedded_metrics() -> None:
    svc, out = service(), io.StringIO()
    with Captured(out, embedded="PodRebalancer"):
        svc.run(RunRequest((TARGET,), False, "scheduler"))
    decision, busiest, _idlest, run = (json.loads(line) for line in out.getvalue().splitlines())
    assert [m["Metrics"][0]["Name"] for m in decision["_aws"]["CloudWatchMetrics"]] == [
        "rebalancer_executions_total",
        "rebalancer_load_variance_current",
    ]
    assert decision["rebalancer_executions_total"] == 1
    assert decision["rebalancer_load_variance_current"] == decision["value"]
    assert (busiest["rebalancer_pods_deleted_total"], busiest["role"]) == (1, "busiest")
    # Rolled up too, as the alarms read them: every pod removed, every failed result.
    assert busiest["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["namespace", "deployment", "role"],
        [],
    ]
    assert decision["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["namespace", "deployment", "action", "reason"],
        ["action"],
        ["reason"],
    ]
    assert run["rebalancer_execution_duration_seconds"] == 1.5
    assert run["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "rebalancer_execution_duration_seconds", "Unit": "Seconds"}
    ]


@pytest.mark.parametrize(("effective", "label"), [(True, "true"), (False, "false")])
def test_a_judged_last_rebalance_counts_as_measured_with_its_verdict(
    effective: bool, label: str
) -> None:
    effect = Effect("variance", 0.5, 0.1, achieved=0.2, improvement_percent=60, effective=effective)
    outcome = Outcome(
        TARGET,
        False,
        Action.SKIPPED,
        "cooldown",
        last_rebalance=LastRebalance(NOW, effect, ""),
        judged=True,
    )
    (measured,) = of(telemetry.target_samples(outcome.record_json()), MEASURED)
    assert measured.label_map["effective"] == label
    reported_again = replace(outcome, judged=False)  # a later result repeating the report
    assert of(telemetry.target_samples(reported_again.record_json()), MEASURED) == []
    pending = Outcome(
        TARGET,
        False,
        Action.SKIPPED,
        "cooldown",
        last_rebalance=LastRebalance(NOW, Effect("variance", 0.5, 0.1), "not measured yet"),
    )
    assert of(telemetry.target_samples(pending.record_json()), MEASURED) == []


def test_a_failed_result_names_its_dependency_in_the_decision_line() -> None:
    outcome = Outcome.unavailable(TARGET, False, KubernetesError("down"))
    ((_, _, fields, samples),) = decision_lines(outcome, RunRequest((TARGET,), False, "x"), "i")
    assert fields["dependency"] == "kubernetes"
    assert [s.metric for s in samples] == [EXECUTIONS, DEPENDENCY_FAILURES]


class FakePushgateway:
    def __init__(self, fail: bool = False) -> None:
        self.pushed: list[list[telemetry.Sample]] = []
        self.fail = fail

    def push(self, samples: Any) -> None:
        if self.fail:
            raise TelemetryError("pushgateway at http://pgw.invalid refused")
        self.pushed.append(list(samples))


def test_each_run_pushes_its_samples_and_a_failed_push_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pushed = FakePushgateway()
    (outcome,) = service(pushed).run(RunRequest((TARGET,), False, "manual"))
    ((samples),) = pushed.pushed
    assert samples == telemetry.run_samples([outcome.to_json()], 1.5, "manual")
    failing = FakePushgateway(fail=True)
    with caplog.at_level(logging.WARNING, logger="test-telemetry"):
        (again,) = service(failing).run(RunRequest((TARGET,), False, "manual"))
    assert again.to_json() == outcome.to_json()
    assert "metrics not pushed: pushgateway at http://pgw.invalid refused" in caplog.text


def service(pushgateway: FakePushgateway | None = None) -> Rebalancer:
    readings = iter([10.0, 11.5])
    settings = Settings(
        prometheus_endpoint="http://metrics.invalid",
        kube_namespace="posthog",
        deployment_name="ingestion-consumer",
        dry_run=False,
        min_pod_age="10m",
    )
    cluster = FakeCluster(names=list(NAMES), state=settled(len(NAMES)))
    return Rebalancer(
        settings,
        FakeMetrics(dict(zip(NAMES, CPU, strict=True))),
        cluster,
        clock=lambda: NOW,
        log=logging.getLogger("test-telemetry"),
        pushgateway=pushgateway,
        timer=lambda: next(readings),
    )


class Captured:
    """The test logger written as the function writes its logs: JSON lines into `out`."""

    def __init__(self, out: io.StringIO, embedded: str | None = None) -> None:
        self._handler = logging.StreamHandler(out)
        self._handler.setFormatter(logs.JsonFormatter())
        self._embedded = embedded

    def __enter__(self) -> None:
        logger = logging.getLogger("test-telemetry")
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        logs.embed_metrics(self._embedded)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("test-telemetry").removeHandler(self._handler)
        logs.embed_metrics(None)
