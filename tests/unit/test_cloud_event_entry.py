"""The `rebalance_pubsub` CloudEvent entry point through functions-framework's real app."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from pod_rebalancer import gcf
from tests.entry import MAIN


def client() -> FlaskClient:
    return create_app("rebalance_pubsub", str(MAIN), "cloudevent").test_client()


def post_event(
    body: Any = None, *, raw_data: str | None = None, age: timedelta = timedelta(seconds=5)
) -> Any:
    """A Pub/Sub CloudEvent in binary mode, as Eventarc delivers it."""
    published = (datetime.now(UTC) - age).isoformat().replace("+00:00", "Z")
    if raw_data is None:
        raw_data = base64.b64encode(json.dumps(body).encode()).decode() if body is not None else ""
    data = {
        "message": {"data": raw_data, "messageId": "42", "publishTime": published},
        "subscription": "projects/p/subscriptions/s",
    }
    headers = {
        "ce-id": "42",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/pod-rebalancer-schedule",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "ce-time": published,
        "Content-Type": "application/json",
    }
    return client().post("/", json=data, headers=headers)


def decisions(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_dependency_failure_raises_so_pubsub_redelivers(env: pytest.MonkeyPatch) -> None:
    # The Kubernetes API in `env` is down: a retry later can help, so the event is not acked.
    assert post_event({"dry_run": True}).status_code == 500


def test_a_cluster_lookup_failing_at_startup_raises_so_pubsub_redelivers(
    eks_down: pytest.MonkeyPatch,
) -> None:
    assert post_event({}).status_code == 500


def test_empty_message_runs_the_default_target(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    post_event(None)
    (decision,) = [line for line in decisions(capsys) if line.get("event") == "decision"]
    assert decision["target"] == "posthog/ingestion-consumer"
    assert decision["source"] == "scheduler"


def test_target_not_allowed_is_acknowledged(env: pytest.MonkeyPatch) -> None:
    assert post_event({"namespace": "kube-system"}).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"raw_data": "%%%not-base64"}, "unreadable event"),
        ({"raw_data": base64.b64encode(b"{nope").decode()}, "unreadable event"),
        ({"raw_data": base64.b64encode(b"[" * 50_000).decode()}, "nested too deeply"),
        ({"body": {"namespace": 'x"} or vector(1) #'}}, "invalid request"),
        ({"body": {"dryrun": True}}, "invalid request"),
        ({"body": {}, "age": timedelta(minutes=11)}, "dropped an event published"),
    ],
    ids=["not-base64", "not-json", "too-deep", "injection", "unknown-field", "stale"],
)
def test_bad_or_stale_events_are_logged_and_acknowledged(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kwargs: dict[str, Any],
    expected: str,
) -> None:
    # With every server down, a 200 proves nothing was attempted.
    assert post_event(**kwargs).status_code == 200
    assert any(expected in line["message"] for line in decisions(capsys))


def test_invalid_configuration_is_logged_and_acknowledged(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("MAX_PODS_TO_DELETE", "0")
    assert post_event({}).status_code == 200
    (line,) = [line for line in decisions(capsys) if line["severity"] == "CRITICAL"]
    assert "MAX_PODS_TO_DELETE" in line["message"]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"data": 123}, "message.data"),
        ({"data": ["e30="]}, "message.data"),
        ({"data": "é"}, "message.data"),
        ({"data": base64.b64encode(b'{"dry_run": NaN}').decode()}, "message.data"),
        ({"data": base64.b64encode(b'{"dry_run": true, "dry_run": false}').decode()}, "dry_run"),
        ({"data": "", "publishTime": "yesterday"}, "message.publishTime"),
        ({"data": "", "publishTime": 1_700_000_000}, "message.publishTime"),
        ({"data": "", "ce-time": "yesterday"}, "time"),
    ],
    ids=[
        "number",
        "list",
        "not-ascii",
        "nan",
        "duplicate-key",
        "bad-time",
        "time-not-text",
        "bad-event-time",
    ],
)
def test_a_message_field_that_is_wrong_is_acknowledged_and_logged_naming_it(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    message: dict[str, Any],
    field: str,
) -> None:
    # A data of the wrong type raised a TypeError (HTTP 500: Pub/Sub redelivered it for days);
    # an undatable event ran without the age guard.
    headers = {
        "ce-id": "42",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        # Absent, the SDK stamps the time of arrival; empty, the message's own time counts.
        "ce-time": message.pop("ce-time", ""),
        "Content-Type": "application/json",
    }
    response = client().post("/", json={"message": message}, headers=headers)
    assert response.status_code == 200
    (line,) = [line for line in decisions(capsys) if line["message"].startswith("dropped")]
    assert line["field"] == field


def test_a_cloud_event_too_deeply_nested_to_parse_is_a_400_not_a_500(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # functions-framework raises rather than answers for this one; every other envelope it
    # cannot read it answers with a 400, so this one is answered the same.
    deep = b"[" * 100_000 + b"]" * 100_000
    binary = {
        "ce-id": "1",
        "ce-source": "s",
        "ce-type": "t",
        "ce-specversion": "1.0",
        "Content-Type": "application/json",
    }
    structured = {"Content-Type": "application/cloudevents+json"}
    for headers in (binary, structured):
        assert client().post("/", data=deep, headers=headers).status_code == 400
    lines = decisions(capsys)
    assert [line["field"] for line in lines if line["message"].startswith("dropped")] == [
        "body",
        "body",
    ]


def test_a_recursion_error_of_our_own_is_still_a_bug() -> None:
    with pytest.raises(RecursionError):
        gcf.unreadable_cloud_event(RecursionError("ours"))


def test_a_request_that_is_no_cloud_event_is_refused_without_quoting_it(
    env: pytest.MonkeyPatch,
) -> None:
    # functions-framework's own 400 quoted the request's headers and body back: a webhook sent
    # here by mistake got its bearer token in the answer, which Alertmanager then logs.
    token = "token-of-a-webhook-sent-to-the-wrong-function"
    response = client().post(
        "/",
        json={"version": "4", "status": "firing", "alerts": []},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert token not in response.get_data(as_text=True)
    assert "not a readable CloudEvent" in response.get_data(as_text=True)
