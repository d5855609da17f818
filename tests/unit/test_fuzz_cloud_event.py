"""Hostile input to the `rebalance_pubsub` CloudEvent entry point, through functions-framework's
real app: binary and structured CloudEvents, the plain Pub/Sub push wrapper, and bodies that are
none of them.

Every dependency is a tripwire and no target the strategies name is allowed. A 5xx would make
Pub/Sub deliver the event again, about once a second, for days: bad input must be acknowledged
(2xx) and logged naming what was wrong, or refused by the framework as no CloudEvent at all (400).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import example, given
from hypothesis import strategies as st

from tests import hostile
from tests.entry import MAIN
from tests.reliability import record
from tests.unit.conftest import Watched

CE_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
SOURCE = "//pubsub.googleapis.com/projects/p/topics/pod-rebalancer-schedule"


def stamp(age: timedelta = timedelta(seconds=5)) -> str:
    return (datetime.now(UTC) - age).isoformat().replace("+00:00", "Z")


class Events:
    """The app, the tripwires and the captured log; every invariant checked on each delivery."""

    def __init__(self, watched: Watched, capsys: pytest.CaptureFixture[str]) -> None:
        self.app: FlaskClient = create_app(
            "rebalance_pubsub", str(MAIN), "cloudevent"
        ).test_client()
        self.watched = watched
        self.capsys = capsys

    def deliver(self, body: bytes, headers: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
        self.capsys.readouterr()
        started = time.monotonic()
        response = self.app.post("/", data=body, headers=headers)
        elapsed = time.monotonic() - started
        output = self.capsys.readouterr()
        record(
            "fuzz",
            cases=1,
            server_errors_on_bad_input=int(response.status_code >= 500),
            dependency_contacts=self.watched.contacts,
        )
        # 2xx acknowledges; a 400 is the framework's "not a CloudEvent". Never a 5xx (a retry
        # loop), never a dependency asked, every log line one bounded JSON object.
        assert response.status_code in (200, 400), response.get_data(as_text=True)[:2000]
        assert self.watched.contacts == 0, "a dependency was contacted"
        assert hostile.log_problems(output.out) == []
        assert elapsed < 30, elapsed
        lines = [json.loads(line) for line in output.out.splitlines() if line.strip()]
        decisions = [line for line in lines if line.get("event") == "decision"]
        assert all(d["action"] == "skipped" and d["evicted"] == [] for d in decisions)
        record("fuzz", passed=1)
        return response.status_code, lines

    def binary(
        self, data: Any, *, raw: bytes | None = None, **ce: str
    ) -> tuple[int, list[dict[str, Any]]]:
        """A binary-mode CloudEvent, as Eventarc delivers Pub/Sub messages."""
        headers = {
            "ce-id": "42",
            "ce-source": SOURCE,
            "ce-type": CE_TYPE,
            "ce-specversion": "1.0",
            "ce-time": stamp(),
            "Content-Type": "application/json",
        }
        headers.update({f"ce-{k}": v for k, v in ce.items()})
        return self.deliver(raw if raw is not None else hostile.encode(data), headers)


@pytest.fixture
def events(watched: Watched, capsys: pytest.CaptureFixture[str]) -> Events:
    return Events(watched, capsys)


def dropped(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["message"].startswith("dropped")]


def message(data: Any, **extra: Any) -> dict[str, Any]:
    return {"message": {"data": data, "messageId": "42", "publishTime": stamp(), **extra}}


@hostile.budget()
@given(
    envelope=st.one_of(
        hostile.json_values(),
        st.builds(lambda m: {"message": m}, hostile.json_values()),
        st.builds(message, hostile.json_values()),
        st.builds(lambda raw: message(hostile.b64(raw)), hostile.raw_bodies()),
        st.builds(lambda value: message(hostile.b64(hostile.encode(value))), hostile.json_values()),
    ),
    mode=st.sampled_from(["binary", "structured", "push"]),
)
def test_any_delivery_is_acknowledged_or_refused_and_reaches_no_dependency(
    events: Events, envelope: Any, mode: str
) -> None:
    if mode == "binary":
        events.binary(envelope)
    elif mode == "structured":
        event = {
            "specversion": "1.0",
            "id": "42",
            "source": SOURCE,
            "type": CE_TYPE,
            "time": stamp(),
            "data": envelope,
        }
        events.deliver(hostile.encode(event), {"Content-Type": "application/cloudevents+json"})
    else:  # the Pub/Sub emulator's plain push wrapper, converted by the framework
        wrapper = envelope if isinstance(envelope, dict) else {"message": envelope}
        events.deliver(
            hostile.encode({"subscription": "projects/p/subscriptions/s", **wrapper}),
            {"Content-Type": "application/json"},
        )


@hostile.budget()
@given(body=st.one_of(hostile.raw_bodies(), hostile.deep_json()))
@example(body=hostile.Blob(b"[" * 100_000 + b"]" * 100_000))
def test_any_body_bytes_in_a_binary_cloud_event_are_never_a_5xx(
    events: Events, body: bytes
) -> None:
    events.binary(None, raw=body)


# The message's own fields with values of the wrong type: each drop names the field.
MESSAGE_WRONG: dict[str, list[Any]] = {
    "message": [None, 1, "text", [], True],
    "message.data": [1, 1.5, True, [], {}, ["e30="], {"data": "e30="}],
    "message.publishTime": [1, [], {}, "yesterday", "2026-13-45T99:99:99Z"],
}


@hostile.budget()
@given(
    case=st.sampled_from(sorted(MESSAGE_WRONG)).flatmap(
        lambda field: st.tuples(st.just(field), st.sampled_from(MESSAGE_WRONG[field]))
    )
)
def test_a_message_field_of_the_wrong_type_is_dropped_naming_it(
    events: Events, case: tuple[str, Any]
) -> None:
    field, value = case
    envelope = message(hostile.b64(b'{"namespace": "kube-system"}'))
    if field == "message":
        envelope["message"] = value
    else:
        envelope["message"][field.split(".")[1]] = value
    status, lines = events.binary(envelope, time="")
    assert status == 200
    (drop,) = dropped(lines)
    assert drop["field"] == field


@hostile.budget()
@given(broken=hostile.broken_manual())
def test_a_scheduler_body_with_a_wrong_field_is_dropped_naming_it(
    events: Events, broken: tuple[dict[str, Any], str]
) -> None:
    body, field = broken
    status, lines = events.binary(message(hostile.b64(hostile.encode(body))))
    assert status == 200
    (drop,) = dropped(lines)
    assert drop["field"] == field


@hostile.budget()
@given(name=hostile.names(), where=st.sampled_from(["namespace", "deployment"]))
def test_a_hostile_name_in_a_scheduler_body_is_dropped_naming_it_or_skipped(
    events: Events, name: str, where: str
) -> None:
    status, lines = events.binary(message(hostile.b64(hostile.encode({where: name}))))
    assert status == 200
    drops = dropped(lines)
    decisions = [line for line in lines if line.get("event") == "decision"]
    assert len(drops) + len(decisions) == 1
    if drops:
        assert drops[0]["field"] == where


@hostile.budget()
@given(
    case=st.one_of(
        hostile.duplicate_keys().filter(lambda c: not c[1].startswith("alerts")),
        hostile.non_finite_numbers().map(lambda body: (body, "message.data")),
        hostile.not_utf8().map(lambda body: (body, "message.data")),
    )
)
def test_strict_json_holds_for_scheduler_messages_too(
    events: Events, case: tuple[bytes, str]
) -> None:
    body, field = case
    status, lines = events.binary(message(hostile.b64(body)))
    assert status == 200
    (drop,) = dropped(lines)
    assert drop["field"] == field


@hostile.budget()
@given(
    identifier=st.one_of(
        st.text(max_size=50),
        st.integers(1_000, 400_000).map(lambda n: hostile.Text("i" * n)),
    )
)
def test_ids_a_sender_chooses_are_logged_bounded(events: Events, identifier: str) -> None:
    envelope = message(hostile.b64(b'{"namespace": "kube-system"}'))
    envelope["message"]["messageId"] = identifier
    events.binary(envelope, id=identifier.replace("\n", " ").replace("\r", " ")[:8000] or "x")
