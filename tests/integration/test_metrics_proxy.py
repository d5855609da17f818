"""The fault-injecting proxy in front of a real VictoriaMetrics: each kind of fault as seen by a
client, and everything else passed through unchanged."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.stack.metrics_proxy import MetricsProxy
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics

pytestmark = pytest.mark.integration

NS = "proxy"
LOADS = {"web-a": 1.0, "web-b": 0.5, "web-c": 0.25}
QUERY = f'sum by(pod)(rate(container_cpu_usage_seconds_total{{namespace="{NS}"}}[5m]))'


@pytest.fixture(scope="module")
def proxy(victoria: VictoriaMetrics) -> Iterator[MetricsProxy]:
    now_ms = int(time.time() * 1000)
    victoria.import_series(cpu_counters(NS, "web", LOADS, now_ms, minutes=10, noise=0.0))
    server = MetricsProxy(victoria.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def query(proxy: MetricsProxy) -> Iterator[Any]:
    client = httpx.Client(base_url=proxy.url, timeout=5.0)

    def run(promql: str = QUERY) -> httpx.Response:
        return client.post("/api/v1/query", data={"query": promql, "time": f"{time.time():.3f}"})

    yield run
    proxy.clear_faults()
    client.close()


def per_pod(response: httpx.Response) -> list[tuple[str, float]]:
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    return sorted((s["metric"]["pod"], float(s["value"][1])) for s in body["data"]["result"])


def test_passes_queries_through_unchanged(query: Any, victoria: VictoriaMetrics) -> None:
    answer = per_pod(query())
    assert [pod for pod, _ in answer] == sorted(LOADS)
    direct = victoria.query(QUERY, time.time())
    assert len(direct) == len(answer)


def test_rewrites_the_real_answer(proxy: MetricsProxy, query: Any) -> None:
    proxy.set_fault("nan", pods=["web-a"], count=1)
    nan = dict(per_pod(query()))
    assert math.isnan(nan["web-a"])
    assert nan["web-b"] > 0
    proxy.set_fault("duplicate", pods=["web-b"], count=1)
    assert [pod for pod, _ in per_pod(query())] == ["web-a", "web-b", "web-b", "web-c"]
    proxy.set_fault("missing", pods=["web-a", "web-c"], count=1)
    assert [pod for pod, _ in per_pod(query())] == ["web-b"]
    proxy.set_fault("wrong_type", count=1)
    matrix = query().json()["data"]
    assert matrix["resultType"] == "matrix"
    assert len(matrix["result"][0]["values"]) == 1


def test_error_answers(proxy: MetricsProxy, query: Any) -> None:
    proxy.set_fault("status", status=502, count=1)
    assert query().status_code == 502
    proxy.set_fault("error", count=1)
    failed = query()
    assert (failed.status_code, failed.json()["status"]) == (422, "error")
    proxy.set_fault("error", status=200, count=1)
    assert query().json()["status"] == "error"
    proxy.set_fault("malformed", count=1)
    with pytest.raises(json.JSONDecodeError):
        json.loads(query().content)
    proxy.set_fault("reset", count=1)
    with pytest.raises(httpx.TransportError):
        query()


def test_delay_and_match(proxy: MetricsProxy, query: Any) -> None:
    proxy.set_fault("status", match='namespace="elsewhere"')
    assert query().status_code == 200  # another query: passed through
    proxy.set_fault("pass", delay=0.5, count=1)
    started = time.monotonic()
    assert query().status_code == 200
    assert time.monotonic() - started >= 0.5
