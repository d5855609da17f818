"""Hostile input to the scheduled paths with every dependency healthy: the CloudEvent entry point
(through functions-framework's app) and the Lambda handler (scheduled inputs and function URL
events), against the simulated cluster and real VictoriaMetrics, with DRY_RUN=true.

Nothing is down, so a raise (Pub/Sub or Lambda would deliver again) or a 5xx is a bug; and
whatever the input, the cluster sees no write but a server-side dry run and no request outside the
allowed namespace.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import example, given
from hypothesis import strategies as st

from tests import hostile
from tests.entry import MAIN, fresh_main
from tests.integration.conftest import (
    ALLOWED,
    FORBIDDEN,
    TIMEOUT,
    FuzzStack,
    deployments,
    namespaces,
    outside,
    writes,
)
from tests.reliability import record

TOKEN = "fuzz-token"
CONTEXT = SimpleNamespace(aws_request_id="8f7e6d5c-0000-4000-8000-00000000f022")


def check_cluster(stack: FuzzStack, failed: bool, elapsed: float) -> None:
    requests = stack.requests()
    changed, strays = writes(requests), outside(requests)
    record(
        "fuzz",
        cases=1,
        server_errors_on_bad_input=int(failed),
        cluster_writes=len(changed),
        requests_outside_allow_list=len(strays),
    )
    assert not failed
    assert changed == [], changed
    assert strays == [], strays
    assert elapsed < TIMEOUT, elapsed


def check_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        assert result["action"] in ("would_rebalance", "skipped"), result
        assert result["dry_run"] is True
        assert result["evicted"] == []


@pytest.fixture
def configured(fuzz_stack: FuzzStack, monkeypatch: pytest.MonkeyPatch) -> FuzzStack:
    for name, value in fuzz_stack.env(WEBHOOK_TOKEN=TOKEN).items():
        monkeypatch.setenv(name, value)
    fuzz_stack.requests()
    return fuzz_stack


def close(module: ModuleType) -> None:
    """Close the clients a loaded main.py built (their connections to the stack)."""
    module.runtime.service().close()


# ---------------------------------------------------------------------- CloudEvent


class Subscriber:
    def __init__(self, stack: FuzzStack) -> None:
        self.app: FlaskClient = create_app(
            "rebalance_pubsub", str(MAIN), "cloudevent"
        ).test_client()
        self.module = sys.modules[MAIN.stem]
        self.stack = stack

    def deliver(self, data: bytes) -> int:
        published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        envelope = {
            "message": {"data": base64.b64encode(data).decode(), "messageId": "7"},
            "subscription": "projects/p/subscriptions/s",
        }
        headers = {
            "ce-id": "7",
            "ce-source": "//pubsub.googleapis.com/projects/p/topics/schedule",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-specversion": "1.0",
            "ce-time": published,
            "Content-Type": "application/json",
        }
        started = time.monotonic()
        response = self.app.post("/", data=json.dumps(envelope), headers=headers)
        check_cluster(self.stack, response.status_code >= 500, time.monotonic() - started)
        assert response.status_code == 200
        record("fuzz", passed=1)
        return response.status_code


@pytest.fixture
def subscriber(configured: FuzzStack) -> Iterator[Subscriber]:
    subscriber = Subscriber(configured)
    yield subscriber
    close(subscriber.module)


@st.composite
def scheduler_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["targets", "raw"]))
    if kind == "raw":
        return draw(st.one_of(hostile.raw_bodies(), hostile.duplicate_keys().map(lambda c: c[0])))
    body = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "namespace": namespaces(),
                "deployment": deployments(),
                "dry_run": st.one_of(st.booleans(), hostile.json_values(max_leaves=2)),
            },
        )
    )
    return hostile.encode(body)


@hostile.budget(0.3)
@given(data=scheduler_bodies())
@example(data=hostile.encode({"deployment": "skewed", "dry_run": False}))
@example(data=hostile.encode({"namespace": FORBIDDEN, "deployment": "skewed"}))
@example(data=b'{"namespace": "fuzz-forbidden", "namespace": "fuzz-allowed"}')
def test_a_hostile_scheduler_message_is_acknowledged_and_never_writes(
    subscriber: Subscriber, data: bytes
) -> None:
    subscriber.deliver(data)


# ---------------------------------------------------------------------- Lambda


class Lambda:
    def __init__(self, stack: FuzzStack) -> None:
        self.module = fresh_main()
        self.handler: Callable[[Any, Any], dict[str, Any]] = self.module.lambda_handler
        self.stack = stack

    def invoke(self, event: Any) -> dict[str, Any]:
        started = time.monotonic()
        try:
            answer = self.handler(event, CONTEXT)
        except Exception:
            check_cluster(self.stack, True, time.monotonic() - started)
            raise
        status = answer.get("statusCode", 200)
        check_cluster(self.stack, status >= 500, time.monotonic() - started)
        if "statusCode" in answer:
            body = json.loads(answer["body"])
            if status == 200:
                check_results(body["results"])
            else:
                hostile.check_refusal(status, body)
        elif "error" in answer:
            assert answer["results"] == [], answer
            assert answer["field"], answer
        else:
            check_results(answer["results"])
        record("fuzz", passed=1)
        return answer


@pytest.fixture
def function(configured: FuzzStack) -> Iterator[Lambda]:
    handler = Lambda(configured)
    yield handler
    close(handler.module)


@hostile.budget(0.3)
@given(data=scheduler_bodies())
@example(data=hostile.encode({"deployment": "skewed", "dry_run": False}))
def test_a_hostile_scheduled_input_is_reported_and_never_writes(
    function: Lambda, data: bytes
) -> None:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):  # not JSON Lambda can parse: it cannot deliver it
        event = data.decode("utf-8", "replace")
    function.invoke(event)


@hostile.budget(0.3)
@given(
    data=scheduler_bodies(),
    query=st.sampled_from(["", "dry_run=false", "dry_run=true", "dryrun=false"]),
    encoded=st.booleans(),
)
def test_a_hostile_function_url_request_is_answered_and_never_writes(
    function: Lambda, data: bytes, query: str, encoded: bool
) -> None:
    event = {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64.b64encode(data).decode() if encoded else data.decode("utf-8", "replace"),
        "isBase64Encoded": encoded,
    }
    function.invoke(event)


def test_a_scheduled_dry_run_is_still_decided_by_the_fuzzed_handler(function: Lambda) -> None:
    answer = function.invoke({"namespace": ALLOWED, "deployment": "skewed"})
    (result,) = answer["results"]
    assert (result["action"], result["reason"]) == ("would_rebalance", "imbalance_confirmed")
