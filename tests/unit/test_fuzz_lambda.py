"""Hostile input to `lambda_handler`: function URL events (payload format 2.0) with every part
broken, and scheduled inputs of any JSON shape.

Every dependency is a tripwire and no target the strategies name is allowed. A raise would make
Lambda answer a function URL call with 502, and retry a scheduled one until it lands in the
dead-letter queue: bad input must be answered (a 4xx, the field named) or returned as an error
result naming the field, never raised.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests import hostile
from tests.entry import fresh_main
from tests.reliability import record
from tests.unit.conftest import TOKEN, Watched

CONTEXT = SimpleNamespace(aws_request_id="8f7e6d5c-0000-4000-8000-000000000001")
SKIPS = {"target_not_allowed", "alert_resolved"}


class Handler:
    """One Lambda instance (a module imported once, as Lambda keeps it warm between events)."""

    def __init__(self, watched: Watched, capsys: pytest.CaptureFixture[str]) -> None:
        self.handler: Callable[[Any, Any], dict[str, Any]] = fresh_main().lambda_handler
        self.watched = watched
        self.capsys = capsys

    def invoke(self, event: Any) -> dict[str, Any]:
        self.capsys.readouterr()
        started = time.monotonic()
        try:
            answer = self.handler(event, CONTEXT)
        except Exception:
            # Lambda answers a function URL call that raised with a 502, and retries a
            # scheduled one: for bad input, both are server errors.
            record("fuzz", cases=1, server_errors_on_bad_input=1)
            raise
        elapsed = time.monotonic() - started
        output = self.capsys.readouterr()
        status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
        record(
            "fuzz",
            cases=1,
            server_errors_on_bad_input=int(status >= 500),
            dependency_contacts=self.watched.contacts,
        )
        assert self.watched.contacts == 0, "a dependency was contacted"
        assert hostile.log_problems(output.out) == []
        assert elapsed < 30, elapsed
        json.dumps(answer)  # what Lambda serialises must be JSON
        record("fuzz", passed=1)
        return answer

    def url(self, event: dict[str, Any]) -> tuple[int, Any]:
        answer = self.invoke(event)
        status = answer["statusCode"]
        assert answer["headers"]["content-type"] == "application/json"
        body = json.loads(answer["body"])
        assert status < 500, answer
        if status == 200:
            assert all(
                r["action"] == "skipped" and r["reason"] in SKIPS for r in body["results"]
            ), body
        else:
            hostile.check_refusal(status, body)
        return status, body

    def scheduled(self, event: Any) -> dict[str, Any]:
        answer = self.invoke(event)
        assert isinstance(answer.get("results"), list), answer
        if "error" in answer:
            assert answer["results"] == []
            assert isinstance(answer["field"], str), answer
            assert answer["field"], answer
            assert answer["field"] in answer["error"] or answer["field"] == "time", answer
        else:
            assert all(r["action"] == "skipped" and r["reason"] in SKIPS for r in answer["results"])
        return answer


@pytest.fixture
def handler(watched: Watched, capsys: pytest.CaptureFixture[str]) -> Handler:
    return Handler(watched, capsys)


def url_event(
    body: str | None = "{}",
    *,
    method: Any = "POST",
    headers: Any = None,
    query: Any = "",
    encoded: Any = False,
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        if headers is None
        else headers,
        "requestContext": {"http": {"method": method, "path": "/", "sourceIp": "192.0.2.1"}},
        "body": body,
        "isBase64Encoded": encoded,
    }


GOOD_HEADERS = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}


@hostile.budget()
@given(
    raw=st.one_of(hostile.raw_bodies(), hostile.huge_alertmanager()),
    encoded=st.booleans(),
    method=st.one_of(st.just("POST"), st.sampled_from(hostile.METHODS), st.just("post")),
    content_type=st.sampled_from(hostile.CONTENT_TYPES),
    encoding=st.one_of(st.none(), st.sampled_from(hostile.CONTENT_ENCODINGS)),
    query=hostile.query_strings(),
)
def test_any_function_url_request_is_refused_or_skipped(
    handler: Handler,
    raw: bytes,
    encoded: bool,
    method: str,
    content_type: str,
    encoding: str | None,
    query: str,
) -> None:
    headers = {**GOOD_HEADERS, "content-type": content_type}
    if encoding is not None:
        headers["content-encoding"] = encoding
    # A function URL passes text bodies as they are and anything else base64-encoded.
    body = hostile.b64(raw) if encoded else raw.decode("utf-8", "surrogateescape")
    status, _ = handler.url(
        url_event(body, method=method, headers=headers, query=query, encoded=encoded)
    )
    if method.upper() != "POST":
        assert status == 405


# Each part of a function URL event with values of the wrong type, and the field named for it.
EVENT_WRONG: dict[str, list[Any]] = {
    "headers": [[1, 2], "authorization: Bearer x", 1, True],
    "rawQueryString": [["dry_run=true"], {"dry_run": "true"}, 1, True],
    "body": [1, ["{}"], {"namespace": "x"}, True],
    "isBase64Encoded": ["false", "true", 1, [], {}],
    "requestContext.http.method": [None, 1, ["POST"], {"POST": 1}],
}


@hostile.budget()
@given(
    case=st.sampled_from(sorted(EVENT_WRONG)).flatmap(
        lambda field: st.tuples(st.just(field), st.sampled_from(EVENT_WRONG[field]))
    )
)
@example(case=("headers", [1, 2]))
def test_a_function_url_event_with_a_part_of_the_wrong_type_is_a_400_naming_it(
    handler: Handler, case: tuple[str, Any]
) -> None:
    field, value = case
    event = url_event('{"namespace": "kube-system"}')
    if field == "requestContext.http.method":
        event["requestContext"]["http"]["method"] = value
    else:
        event[field] = value
    status, body = handler.url(event)
    assert (status, body["field"]) == (400, field)


@hostile.budget()
@given(
    name=st.text(max_size=20),
    value=st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=2)),
)
def test_a_header_value_that_is_not_text_is_a_400_naming_it(
    handler: Handler, name: str, value: Any
) -> None:
    headers = {**GOOD_HEADERS, name or "x": value}
    status, body = handler.url(url_event('{"namespace": "kube-system"}', headers=headers))
    assert status == 400
    assert body["field"].startswith("headers")


@hostile.budget()
@given(
    event=st.one_of(
        hostile.json_values(),
        st.builds(lambda value: {"requestContext": value}, hostile.json_values()),
        st.builds(lambda value: {"requestContext": {"http": value}}, hostile.json_values()),
        st.builds(
            lambda value: {"detail-type": "Scheduled Event", "time": value},
            hostile.json_values(),
        ),
    )
)
def test_any_scheduled_input_is_reported_never_raised(handler: Handler, event: Any) -> None:
    # An event with requestContext.http is a function URL request, and answered as one.
    context = event.get("requestContext") if isinstance(event, dict) else None
    if isinstance(context, dict) and isinstance(context.get("http"), dict):
        handler.url(event)
    else:
        handler.scheduled(event)


@hostile.budget()
@given(broken=hostile.broken_manual())
def test_a_scheduled_input_with_a_wrong_field_returns_an_error_naming_it(
    handler: Handler, broken: tuple[dict[str, Any], str]
) -> None:
    body, field = broken
    answer = handler.scheduled(body)
    assert answer["field"] == field


@hostile.budget()
@given(name=hostile.names(), where=st.sampled_from(["namespace", "deployment"]))
def test_a_hostile_name_in_a_scheduled_input_is_an_error_naming_it_or_skipped(
    handler: Handler, name: str, where: str
) -> None:
    answer = handler.scheduled({where: name})
    if "error" in answer:
        assert answer["field"] == where
    else:
        (result,) = answer["results"]
        assert result["reason"] == "target_not_allowed"


@hostile.budget()
@given(
    when=st.one_of(
        st.sampled_from(["yesterday", "2026-13-45T99:99:99Z", "now", " "]),
        st.integers(),
        st.lists(st.text(max_size=3), max_size=2),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    )
)
def test_an_eventbridge_event_whose_time_cannot_be_read_is_an_error_naming_time(
    handler: Handler, when: Any
) -> None:
    answer = handler.scheduled({"detail-type": "Scheduled Event", "time": when, "detail": {}})
    assert (answer["results"], answer["field"]) == ([], "time")


@hostile.budget()
@given(age=st.integers(0, 10_000))
def test_an_eventbridge_event_runs_only_when_fresh(handler: Handler, age: int) -> None:
    at = (datetime.now(UTC) - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = handler.scheduled({"detail-type": "Scheduled Event", "time": at, "detail": {}})
    if age > 11 * 60:
        assert answer["field"] == "time"
    elif age < 9 * 60:
        (result,) = answer["results"]
        assert result["reason"] == "target_not_allowed"
