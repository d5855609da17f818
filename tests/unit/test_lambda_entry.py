"""`lambda_handler` with every server down: function URL requests answer exactly as the HTTP
entry point does; scheduled runs return a report or an error naming the field, and raise only
when a dependency failed (so the asynchronous invocation is retried)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from pod_rebalancer.errors import RetryableError
from tests.entry import MAIN, fresh_main
from tests.unit.conftest import TOKEN

CONTEXT = SimpleNamespace(aws_request_id="8f7e6d5c-0000-4000-8000-000000000001")
Handler = Callable[[Any, Any], dict[str, Any]]


def handler() -> Handler:
    """main.lambda_handler from a fresh import, as a new Lambda instance would load it."""
    lambda_handler: Handler = fresh_main().lambda_handler
    return lambda_handler


def url_event(
    body: str | bytes | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: str = "",
    encode: bool = False,
) -> dict[str, Any]:
    """A function URL request, payload format 2.0."""
    text = body if isinstance(body, str | None) else None
    if encode and body is not None:
        raw = body if isinstance(body, bytes) else body.encode()
        text = base64.b64encode(raw).decode()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {
            "authorization": f"Bearer {TOKEN}",
            "content-type": "application/json",
            **(headers or {}),
        },
        "requestContext": {"http": {"method": method, "path": "/", "sourceIp": "192.0.2.1"}},
        "body": text,
        "isBase64Encoded": encode,
    }


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    assert response["headers"]["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(response["body"])
    return response["statusCode"], body


def test_a_function_url_call_outside_the_allow_list_is_answered_without_a_query(
    env: pytest.MonkeyPatch,
) -> None:
    status, body = answer(handler()(url_event('{"namespace": "kube-system"}'), CONTEXT))
    assert status == 200
    (result,) = body["results"]
    assert (result["action"], result["reason"]) == ("skipped", "target_not_allowed")


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (url_event("{}", method="GET"), 405),
        (url_event("{}", headers={"authorization": "Bearer wrong"}), 401),
        (url_event("{}", headers={"authorization": ""}), 401),
        (url_event('{"namespace": "Bad"}'), 400),
        (url_event('{"namespace": "Bad"}', encode=True), 400),
        (url_event("%%%", encode=False), 400),
        (url_event('{"dry_run": true}', headers={"content-type": "text/plain"}), 415),
        (url_event('{"namespace": "' + "a" * (2 * 1024 * 1024) + '"}'), 413),
        (url_event("{}", query="dry_run=maybe"), 400),
        (url_event("{}", query="dryrun=true"), 400),
        (url_event("{}", query="dry_run=true&dry_run=false"), 400),
        (url_event('{"dry_run": true}'), 503),  # the Kubernetes API of `env` is down
    ],
    ids=[
        "get",
        "wrong-token",
        "no-token",
        "bad-field",
        "bad-field-base64",
        "not-json",
        "not-json-type",
        "too-large",
        "bad-query-flag",
        "unknown-query-parameter",
        "repeated-query-parameter",
        "api-down",
    ],
)
def test_function_url_calls_get_the_http_contracts_status_codes(
    env: pytest.MonkeyPatch, event: dict[str, Any], status: int
) -> None:
    assert answer(handler()(event, CONTEXT))[0] == status


def test_a_body_that_is_not_valid_base64_is_a_400_naming_the_body(
    env: pytest.MonkeyPatch,
) -> None:
    event = url_event("{}")
    event.update(body="not base64!", isBase64Encoded=True)
    status, body = answer(handler()(event, CONTEXT))
    assert (status, body["field"]) == (400, "body")


def test_invalid_utf8_in_a_base64_body_is_a_400(env: pytest.MonkeyPatch) -> None:
    status, body = answer(handler()(url_event(b'{"namespace": "\xff"}', encode=True), CONTEXT))
    assert (status, body["field"]) == (400, "body")


def test_a_wrong_token_is_answered_with_the_bearer_challenge(env: pytest.MonkeyPatch) -> None:
    response = handler()(url_event("{}", headers={"authorization": "Bearer x"}), CONTEXT)
    assert response["headers"]["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response["body"]


def test_a_scheduled_run_with_the_api_down_raises_so_lambda_retries(
    env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(RetryableError, match="kubernetes"):
        handler()({"namespace": "posthog", "deployment": "ingestion-consumer"}, CONTEXT)


def test_a_scheduled_run_outside_the_allow_list_returns_its_report(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = handler()({"namespace": "kube-system"}, CONTEXT)
    (result,) = report["results"]
    assert result["reason"] == "target_not_allowed"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    (decision,) = [line for line in lines if line.get("event") == "decision"]
    assert decision["source"] == "scheduler"
    assert decision["request_id"] == CONTEXT.aws_request_id


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"namespace": 'x"} or vector(1) #'}, "namespace"),
        ({"dryrun": True}, "dryrun"),
        ([1, 2], "body"),
        ("just a string", "body"),
    ],
    ids=["injection", "unknown-field", "list", "string"],
)
def test_bad_scheduled_input_is_an_error_result_never_a_raise(
    env: pytest.MonkeyPatch, event: Any, field: str
) -> None:
    report = handler()(event, CONTEXT)
    assert report["results"] == []
    assert report["field"] == field
    assert field in report["error"]


def scheduled_event(age: timedelta) -> dict[str, Any]:
    """An EventBridge rule's scheduled event."""
    at = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": at,
        "detail": {},
    }


def test_an_eventbridge_rule_event_means_the_defaults(env: pytest.MonkeyPatch) -> None:
    # The default target's API is down in `env`: it was tried, so a retry is asked for.
    with pytest.raises(RetryableError):
        handler()(scheduled_event(timedelta(seconds=5)), CONTEXT)


def test_an_eventbridge_rule_event_older_than_ten_minutes_is_dropped(
    env: pytest.MonkeyPatch,
) -> None:
    report = handler()(scheduled_event(timedelta(minutes=11)), CONTEXT)
    assert report["results"] == []
    assert report["field"] == "time"


def test_invalid_configuration_is_an_error_result_naming_the_variable(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("MAX_PODS_TO_DELETE", "0")
    report = handler()({}, CONTEXT)
    assert report["results"] == []
    assert report["field"] == "MAX_PODS_TO_DELETE"


def test_main_imports_and_answers_without_functions_framework_flask_or_pubsub(
    env: pytest.MonkeyPatch,
) -> None:
    # As in the Lambda package: those modules are absent. Blocking them proves main needs none.
    script = f"""
import json, sys
for name in ("functions_framework", "flask", "werkzeug", "google.cloud.pubsub_v1"):
    sys.modules[name] = None
sys.path.insert(0, {str(MAIN.parent)!r})
import main
event = json.loads({json.dumps(json.dumps(url_event("{}", headers={"authorization": "Bearer x"})))})
print(json.dumps(main.lambda_handler(event, None)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["statusCode"] == 401


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("headers", [["authorization", f"Bearer {TOKEN}"]]),
        ("headers", {"authorization": f"Bearer {TOKEN}", "content-type": ["application/json"]}),
        ("rawQueryString", ["dry_run=true"]),
        ("isBase64Encoded", "false"),
        ("body", {"namespace": "kube-system"}),
        ("method", None),
    ],
    ids=["headers-list", "header-list", "query-list", "base64-flag-text", "body-object", "method"],
)
def test_a_function_url_event_with_a_malformed_part_is_a_400_naming_it(
    env: pytest.MonkeyPatch, part: str, value: Any
) -> None:
    # Headers given as a list raised an AttributeError (a 502 from the function URL); the
    # other parts were turned into text and read as something they were not.
    event = url_event('{"namespace": "kube-system"}')
    if part == "method":
        event["requestContext"]["http"]["method"] = value
    else:
        event[part] = value
    status, body = answer(handler()(event, CONTEXT))
    assert status == 400
    assert body["field"].startswith(part if part != "method" else "requestContext.http.method")


@pytest.mark.parametrize("when", ["yesterday", "2026-13-45T00:00:00Z", 1_700_000_000, ["x"]])
def test_an_eventbridge_rule_event_with_an_unreadable_time_is_not_run(
    env: pytest.MonkeyPatch, when: Any
) -> None:
    # It cannot be dated, so the age guard cannot judge it: an error result, nothing run.
    event = scheduled_event(timedelta(0))
    event["time"] = when
    report = handler()(event, CONTEXT)
    assert (report["results"], report["field"]) == ([], "time")
