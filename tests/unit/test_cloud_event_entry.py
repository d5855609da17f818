"""The `rebalance_pubsub` CloudEvent entry point through functions-framework's real app."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

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
