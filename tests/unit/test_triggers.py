"""Wire models: Alertmanager webhooks (version 4) and manual/scheduler bodies into a RunRequest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.errors import RequestError
from pod_rebalancer.triggers import (
    MAX_TARGETS_PER_CALL,
    decode_json,
    is_alertmanager,
    parse_body,
    parse_manual,
)

SETTINGS = Settings(
    prometheus_endpoint="http://metrics.invalid",
    kube_namespace="posthog",
    deployment_name="ingestion-consumer",
)


def alert(status: str = "firing", fingerprint: str = "f1", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "PodCPUImbalance", **labels},
        "annotations": {"summary": "x"},
        "startsAt": "2026-11-22T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def webhook(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}/{action="rebalance"}:{deployment="ingestion-consumer"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "pod-rebalancer",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


def test_each_firing_alert_is_a_target_from_its_labels() -> None:
    request = parse_body(
        webhook(
            alert(namespace="posthog", deployment="ingestion-consumer"),
            alert(namespace="posthog", deployment="events-consumer", fingerprint="f2"),
        ),
        {},
        SETTINGS,
    )
    assert request.source == "alertmanager"
    assert request.targets == (
        Target("posthog", "ingestion-consumer"),
        Target("posthog", "events-consumer"),
    )
    assert request.context["fingerprints"] == ["f1", "f2"]
    assert request.context["group_key"].startswith("{}/")


def test_deployment_falls_back_to_container_then_to_the_default() -> None:
    request = parse_body(
        webhook(alert(namespace="posthog", container="events-consumer"), alert()), {}, SETTINGS
    )
    assert request.targets == (
        Target("posthog", "events-consumer"),
        Target("posthog", "ingestion-consumer"),
    )


def test_a_target_named_by_several_alerts_is_processed_once() -> None:
    same = {"namespace": "posthog", "deployment": "ingestion-consumer"}
    request = parse_body(
        webhook(alert(**same), alert(fingerprint="f2", **same), alert(status="resolved", **same)),
        {},
        SETTINGS,
    )
    assert request.targets == (Target("posthog", "ingestion-consumer"),)
    assert request.resolved == ()  # still firing through another alert: never "resolved"


def test_resolved_alerts_are_reported_not_acted_on() -> None:
    request = parse_body(
        webhook(alert(status="resolved", namespace="posthog", deployment="x"), status="resolved"),
        {},
        SETTINGS,
    )
    assert request.targets == ()
    assert request.resolved == (Target("posthog", "x"),)


def test_the_query_flag_can_turn_an_alert_into_a_dry_run() -> None:
    assert parse_body(webhook(alert()), {"dry_run": "true"}, SETTINGS).dry_run is True
    assert parse_body(webhook(alert()), {}, SETTINGS).dry_run is False


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ({"namespace": 'x"} or vector(1) #'}, "alerts.0.labels.namespace"),
        ({"deployment": "Bad_Name"}, "alerts.0.labels.deployment"),
    ],
)
def test_an_alert_with_an_invalid_label_is_refused_naming_it(
    labels: dict[str, str], field: str
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_body(webhook(alert(**labels)), {}, SETTINGS)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**webhook(alert()), "status": "weird"}, "status"),
        ({**webhook(), "alerts": [{"labels": {}}]}, "alerts.0.status"),
        ({**webhook(), "alerts": "nope"}, "alerts"),
    ],
)
def test_malformed_webhooks_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_body(body, {}, SETTINGS)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "4", "status": "firing"}, "alerts"),
        ({"version": "3", "status": "firing", "alerts": []}, "version"),
        ({"version": 4, "status": "firing", "alerts": []}, "version"),
        ({"status": "firing", "alerts": []}, "version"),
        ({"alerts": [], "version": "4"}, "status"),
    ],
)
def test_a_body_with_the_webhooks_keys_is_read_as_one_and_its_errors_name_its_fields(
    body: dict[str, Any], field: str
) -> None:
    # Read as a manual body, {"version": "4", "status": "firing"} was refused naming `version`
    # as an unknown field, not the missing `alerts`.
    assert is_alertmanager(body)
    with pytest.raises(RequestError) as caught:
        parse_body(body, {}, SETTINGS)
    assert caught.value.field == field


def test_a_manual_body_is_not_a_webhook() -> None:
    assert is_alertmanager(webhook())
    assert not is_alertmanager({"namespace": "posthog", "status": "firing"})
    assert not is_alertmanager([{"version": "4"}])


def test_an_invalid_container_label_is_named_when_it_stands_in_for_the_deployment() -> None:
    with pytest.raises(RequestError) as caught:
        parse_body(webhook(alert(container="Bad_Name")), {}, SETTINGS)
    assert caught.value.field == "alerts.0.labels.container"
    with pytest.raises(RequestError) as caught:
        parse_body(webhook(alert(deployment="Bad_Name", container="fine")), {}, SETTINGS)
    assert caught.value.field == "alerts.0.labels.deployment"


@pytest.mark.parametrize("field", ["namespace", "deployment", "dry_run", "sweep"])
def test_an_explicit_null_in_a_manual_body_is_refused_not_read_as_the_default(field: str) -> None:
    # A template that rendered {"namespace": null} must not run against the default target.
    with pytest.raises(RequestError) as caught:
        parse_body({field: None}, {}, SETTINGS)
    assert caught.value.field == field
    assert caught.value.problem.startswith("must not be null")


def test_manual_body_defaults_and_dry_run() -> None:
    request = parse_body({}, {}, SETTINGS)
    assert request.targets == (Target("posthog", "ingestion-consumer"),)
    assert request.dry_run is False
    assert parse_body({"dry_run": True}, {}, SETTINGS).dry_run is True
    assert parse_body(None, {"dry_run": "1"}, SETTINGS).dry_run is True
    assert parse_body({"dry_run": False}, {"dry_run": "true"}, SETTINGS).dry_run is True


def test_a_sweep_names_no_target_and_may_be_a_dry_run() -> None:
    request = parse_body({"sweep": True}, {}, SETTINGS)
    assert (request.sweep, request.targets, request.dry_run) == (True, (), False)
    assert parse_body({"sweep": True, "dry_run": True}, {}, SETTINGS).dry_run is True
    assert parse_body({"sweep": True}, {"dry_run": "true"}, SETTINGS).dry_run is True


def test_sweep_false_is_the_usual_run_of_one_target() -> None:
    request = parse_body({"sweep": False, "deployment": "events"}, {}, SETTINGS)
    assert (request.sweep, request.targets) == (False, (Target("posthog", "events"),))


@pytest.mark.parametrize("field", ["namespace", "deployment"])
def test_a_sweep_that_also_names_a_target_is_refused_naming_the_field(field: str) -> None:
    # Ambiguous (a sweep of that target? of its namespace?), so refused rather than guessed.
    with pytest.raises(RequestError) as caught:
        parse_body({"sweep": True, field: "posthog"}, {}, SETTINGS)
    assert caught.value.field == field
    assert "cannot be combined with sweep" in caught.value.problem


@pytest.mark.parametrize("value", ["true", 1, [], {}])
def test_sweep_must_be_a_boolean(value: object) -> None:
    with pytest.raises(RequestError) as caught:
        parse_body({"sweep": value}, {}, SETTINGS)
    assert caught.value.field == "sweep"


def test_a_scheduler_sweep_is_marked_as_coming_from_the_scheduler() -> None:
    request = parse_manual({"sweep": True}, {}, SETTINGS, source="scheduler")
    assert (request.sweep, request.source) == (True, "scheduler")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"namespace": "kube-system", "namespace": "posthog"}', "namespace"),
        (b'{"dry_run": true, "dry_run": false}', "dry_run"),
        (
            b'{"version": "4", "status": "firing", "alerts": [{}, {"status": "firing", '
            b'"labels": {"namespace": "a", "namespace": "b"}}]}',
            "alerts.1.labels.namespace",
        ),
    ],
    ids=["namespace", "dry_run", "nested-label"],
)
def test_a_key_given_twice_is_refused_naming_it(raw: bytes, field: str) -> None:
    # Parsers disagree on which value wins; a signature checker or a proxy could see the other.
    with pytest.raises(RequestError) as caught:
        decode_json(raw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "raw",
    [
        b"NaN",
        b'{"dry_run": Infinity}',
        b'{"truncatedAlerts": -Infinity}',
        b'{"truncatedAlerts": 1e999}',
        '{"namespace": "kube-system"}'.encode("utf-16"),
        '{"namespace": "kube-system"}'.encode("utf-32"),
        b'{"namespace": "\xff"}',
        b'\xef\xbb\xbf{"namespace": "kube-system"}',
    ],
    ids=["nan", "infinity", "-infinity", "overflow", "utf-16", "utf-32", "bad-byte", "bom"],
)
def test_only_strict_utf8_json_is_read(raw: bytes) -> None:
    with pytest.raises(RequestError) as caught:
        decode_json(raw)
    assert caught.value.field == "body"


def test_escaped_text_of_any_code_point_is_still_json() -> None:
    assert decode_json(b'{"a": "\\u0000\\ud800\\u00e9", "b": [1.5e300, -0]}') == {
        "a": "\x00\ud800\u00e9",
        "b": [1.5e300, 0],
    }


def test_a_webhook_naming_more_targets_than_one_call_can_handle_is_refused() -> None:
    many = [alert(namespace="posthog", deployment=f"d{i}") for i in range(MAX_TARGETS_PER_CALL)]
    assert len(parse_body(webhook(*many), {}, SETTINGS).targets) == MAX_TARGETS_PER_CALL
    # The same target named by many alerts counts once; a resolved one counts too.
    repeated = [alert(namespace="posthog", deployment="d0") for _ in range(10_000)]
    assert len(parse_body(webhook(*many, *repeated), {}, SETTINGS).targets) == 100
    one_more = alert("resolved", namespace="posthog", deployment="d-extra")
    with pytest.raises(RequestError) as caught:
        parse_body(webhook(*many, one_more), {}, SETTINGS)
    assert caught.value.field == "alerts"


def test_what_a_webhook_adds_to_every_decision_log_line_is_bounded() -> None:
    # Cloud Logging drops an entry over 256 KiB: a sender's megabyte-long groupKey, receiver or
    # fingerprints must not take every decision line of the call with them.
    body = webhook(*[alert(fingerprint="f" * 1_000) for _ in range(1_000)])
    body.update(groupKey="g" * 500_000, receiver="r" * 500_000)
    context = parse_body(body, {}, SETTINGS).context
    assert len(json.dumps(context)) < 16 * 1024
    assert context["fingerprints_omitted"] == 900
    assert context["group_key"].startswith("g" * 1_000)
