"""Pushgateway against httpx.MockTransport: the read, the pushes it sends, and how failures map.

The real Pushgateway is exercised in tests/integration/test_pushgateway.py; here the transport
is scripted so each failing answer can be produced exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pod_rebalancer import telemetry
from pod_rebalancer.adapters.pushgateway import Pushgateway
from pod_rebalancer.errors import TelemetryError

URL = "http://pgw.test:9091"
Handler = Callable[[httpx.Request], httpx.Response]
RESULT = {
    "target": {"namespace": "posthog", "deployment": "ingestion-consumer"},
    "dry_run": False,
    "action": "failed",
    "reason": "dependency_unavailable",
    "value": None,
    "errors": {"metrics": "down"},
}
GROUP = {"job": "pod-rebalancer", "namespace": "posthog", "deployment": "ingestion-consumer"}


def held(*groups: dict[str, Any]) -> Handler:
    """A gateway that holds `groups` and accepts every push."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"status": "success", "data": list(groups)})
        return httpx.Response(200)

    return handle


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


@pytest.fixture
def make(requests: list[httpx.Request]) -> Iterator[Callable[..., Pushgateway]]:
    made: list[Pushgateway] = []

    def build(handler: Handler, url: str = URL) -> Pushgateway:
        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            requests.append(request)
            return handler(request)

        gateway = Pushgateway(url, transport=httpx.MockTransport(record))
        made.append(gateway)
        return gateway

    yield build
    for gateway in made:
        gateway.close()


def pushed(request: httpx.Request) -> list[str]:
    return [line for line in request.content.decode().splitlines() if not line.startswith("#")]


def test_reads_then_replaces_each_target_group_and_the_run_group(
    make: Callable[..., Pushgateway], requests: list[httpx.Request]
) -> None:
    make(held()).push(telemetry.run_samples([RESULT], 0.3, "scheduler"))
    read, target, run = requests
    assert (read.method, read.url.path) == ("GET", "/api/v1/metrics")
    # Grouped by job and target, never by instance; the run's own group is the job alone.
    assert (target.method, target.url.path) == (
        "PUT",
        "/metrics/job/pod-rebalancer/deployment/ingestion-consumer/namespace/posthog",
    )
    assert pushed(target) == [
        'rebalancer_executions_total{action="failed",deployment="ingestion-consumer",'
        'namespace="posthog",reason="dependency_unavailable"} 1.0',
        'rebalancer_dependency_failures_total{dependency="metrics",deployment="ingestion-consumer",'
        'namespace="posthog"} 1.0',
    ]
    assert run.url.path == "/metrics/job/pod-rebalancer"
    lines = pushed(run)
    assert 'rebalancer_execution_duration_seconds_bucket{le="0.25",source="scheduler"} 0.0' in lines
    assert 'rebalancer_execution_duration_seconds_bucket{le="0.5",source="scheduler"} 1.0' in lines
    assert 'rebalancer_execution_duration_seconds_count{source="scheduler"} 1.0' in lines


def test_adds_to_what_the_gateway_holds_and_keeps_series_this_run_did_not_touch(
    make: Callable[..., Pushgateway], requests: list[httpx.Request]
) -> None:
    def counter(value: str, **labels: str) -> dict[str, Any]:
        return {"labels": {**GROUP, "instance": "", **labels}, "value": value}

    group = {
        "labels": GROUP,
        "rebalancer_executions_total": {
            "type": "COUNTER",
            "metrics": [
                counter("2", action="failed", reason="dependency_unavailable"),
                counter("5", action="skipped", reason="cooldown"),
            ],
        },
        "rebalancer_load_variance_current": {
            "type": "GAUGE",
            "metrics": [counter("0.41", statistic="variance")],
        },
        "push_time_seconds": {"type": "GAUGE", "metrics": [counter("1795262400")]},
    }
    make(held(group)).push(telemetry.run_samples([RESULT], 0.3, "scheduler"))
    lines = pushed(requests[1])
    assert (
        'rebalancer_executions_total{action="failed",deployment="ingestion-consumer",'
        'namespace="posthog",reason="dependency_unavailable"} 3.0'
    ) in lines
    assert (
        'rebalancer_executions_total{action="skipped",deployment="ingestion-consumer",'
        'namespace="posthog",reason="cooldown"} 5.0'
    ) in lines
    # A run that measured nothing leaves the last measured value standing.
    assert (
        'rebalancer_load_variance_current{deployment="ingestion-consumer",namespace="posthog",'
        'statistic="variance"} 0.41'
    ) in lines
    assert not [line for line in lines if line.startswith("push_time_seconds")]


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda r: httpx.Response(503), "answered HTTP 503"),
        (lambda r: httpx.Response(200, text="<html>"), "not its metrics JSON"),
        (
            lambda r: (
                httpx.Response(200, json={"status": "success", "data": []})
                if r.method == "GET"
                else httpx.Response(400, text="pushed metrics are invalid")
            ),
            "answered HTTP 400: pushed metrics are invalid",
        ),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")), "refused"),
    ],
    ids=["read-5xx", "read-not-json", "push-refused", "unreachable"],
)
def test_every_failure_is_a_telemetry_error(
    make: Callable[..., Pushgateway], handler: Handler, message: str
) -> None:
    with pytest.raises(TelemetryError, match=message):
        make(handler).push(telemetry.run_samples([RESULT], 0.3, "manual"))


def test_credentials_in_the_url_never_reach_a_message(
    make: Callable[..., Pushgateway], requests: list[httpx.Request]
) -> None:
    gateway = make(lambda r: httpx.Response(502), url="http://user:hunter2@pgw.test:9091")
    with pytest.raises(TelemetryError) as raised:
        gateway.push(telemetry.run_samples([RESULT], 0.3, "manual"))
    assert "hunter2" not in str(raised.value)
    assert "***@pgw.test:9091" in str(raised.value)
    assert requests[0].headers["authorization"].startswith("Basic ")
