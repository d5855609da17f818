"""PrometheusClient against a real VictoriaMetrics, and against tiny real HTTP servers on loopback.

Every test imports its own series under a namespace of its own, ending two minutes in the past
and queried 30 s before their end: VictoriaMetrics stamps instant queries near "now" about 30 s
in the past (its latency offset), which would otherwise move the window under the test.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest

from infra.stack.processes import free_port
from infra.stack.series import CPU_METRIC, cpu_counters, pod_names, skewed_loads
from infra.stack.victoria import VictoriaMetrics, scalar
from pod_rebalancer.adapters.prometheus import PrometheusClient, _per_pod, cpu_query
from pod_rebalancer.core.model import Plan, PodSkip, Policy, Reason, Target
from pod_rebalancer.core.planner import plan
from pod_rebalancer.core.stats import Statistic, summarize
from pod_rebalancer.errors import MetricsError
from tests.builders import pod

pytestmark = pytest.mark.integration

CONTAINER = "consumer"
WINDOW = timedelta(minutes=5)
HISTORY_MINUTES = 10
STEP_S = 15


@dataclass(frozen=True)
class History:
    """Where a test's series live and the instant to query them at."""

    target: Target
    end_ms: int

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.end_ms / 1000 - 30, tz=UTC)

    @property
    def query(self) -> str:
        return cpu_query(self.target, CONTAINER, WINDOW)


def new_history(prefix: str) -> History:
    namespace = f"{prefix}-{uuid.uuid4().hex[:10]}"
    end_ms = (int(time.time()) - 120) * 1000
    return History(Target(namespace=namespace, deployment=CONTAINER), end_ms)


def import_loads(
    victoria: VictoriaMetrics, prefix: str, loads: Mapping[str, float], noise: float = 0.05
) -> History:
    history = new_history(prefix)
    victoria.import_series(
        cpu_counters(
            history.target.namespace,
            CONTAINER,
            loads,
            end_ms=history.end_ms,
            minutes=HISTORY_MINUTES,
            step_s=STEP_S,
            noise=noise,
        )
    )
    return history


# --- exactness: the core's statistics equal the server's aggregations -----------------------------


def _skewed_12() -> dict[str, float]:
    return dict(zip(pod_names("ingest", 12), skewed_loads(12), strict=True))


def _random_1000() -> dict[str, float]:
    rng = random.Random(1000)
    return {name: rng.uniform(0.05, 2.0) for name in pod_names("wide", 1000)}


def _three_orders_of_magnitude() -> dict[str, float]:
    rng = random.Random(3)
    return {name: 10 ** rng.uniform(-3.0, 0.0) for name in pod_names("orders", 60)}


def _two_equal_groups() -> dict[str, float]:
    names = pod_names("groups", 12)
    return {name: (0.2 if index % 2 else 1.8) for index, name in enumerate(names)}


SHAPES: dict[str, tuple[Callable[[], dict[str, float]], float]] = {
    "skewed-12-pods": (_skewed_12, 0.05),
    "random-1000-pods": (_random_1000, 0.05),
    "three-orders-of-magnitude": (_three_orders_of_magnitude, 0.05),
    "two-equal-groups": (_two_equal_groups, 0.0),
}


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize(("shape", "noise"), SHAPES.values(), ids=SHAPES.keys())
def test_core_statistics_equal_the_servers_aggregations(
    victoria: VictoriaMetrics,
    client: PrometheusClient,
    shape: Callable[[], dict[str, float]],
    noise: float,
) -> None:
    loads = shape()
    history = import_loads(victoria, "exact", loads, noise=noise)

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)
    assert set(cpu) == set(loads)
    summary = summarize(np.fromiter(cpu.values(), dtype=np.float64, count=len(cpu)))

    at = history.at.timestamp()
    server = {
        name: scalar(victoria, f"{name}({history.query})", at)
        for name in ("stdvar", "stddev", "avg", "min", "max", "count")
    }
    ours = {
        "stdvar": summary.variance,
        "stddev": summary.stddev,
        "avg": summary.mean,
        "min": summary.min,
        "max": summary.max,
        "count": float(summary.count),
    }
    mismatched = {n: (ours[n], server[n]) for n in server if not close(ours[n], server[n])}
    assert not mismatched, f"core vs server (ours, theirs): {mismatched}"
    assert summary.count == len(loads)


def test_rate_per_pod_is_the_load_that_was_written(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    # Guards the query itself: the counters grow at `load` cores ± 5 % noise.
    loads = _skewed_12()
    history = import_loads(victoria, "load", loads)

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)

    assert cpu.keys() == loads.keys()
    off = {pod: (cpu[pod], load) for pod, load in loads.items() if abs(cpu[pod] / load - 1) > 0.05}
    assert not off, f"rate far from the written load: {off}"


def test_exact_rates_with_no_noise(victoria: VictoriaMetrics, client: PrometheusClient) -> None:
    history = import_loads(victoria, "flat", {"flat-a": 0.25, "flat-b": 1.5}, noise=0.0)

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)

    assert cpu.keys() == {"flat-a", "flat-b"}
    assert math.isclose(cpu["flat-a"], 0.25, rel_tol=1e-9)
    assert math.isclose(cpu["flat-b"], 1.5, rel_tol=1e-9)


def test_a_thousand_pod_query_returns_a_thousand_pods(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    names = pod_names("thousand", 1000, seed=1000)
    history = import_loads(victoria, "thousand", dict.fromkeys(names, 0.5))

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)

    assert len(cpu) == 1000
    assert sorted(cpu) == names
    assert all(math.isfinite(value) for value in cpu.values())


def test_other_namespaces_and_containers_are_not_counted(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    history = import_loads(victoria, "mine", {"mine-a": 1.0, "mine-b": 0.5})
    other = list(
        cpu_counters(
            history.target.namespace, "sidecar", {"mine-a": 9.0, "mine-c": 9.0}, history.end_ms, 10
        )
    )
    victoria.import_series(other)

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)

    assert cpu.keys() == {"mine-a", "mine-b"}
    assert cpu["mine-a"] < 2.0


def test_a_namespace_with_no_series_is_an_empty_answer(client: PrometheusClient) -> None:
    history = new_history("empty")

    assert client.pod_cpu(history.target, CONTAINER, WINDOW, history.at) == {}


def test_an_invalid_query_is_a_metrics_error(client: PrometheusClient) -> None:
    with pytest.raises(MetricsError, match=r"HTTP (400|422)"):
        client.query("sum by(pod)(rate(", datetime.now(tz=UTC) - timedelta(minutes=5))


def test_a_range_vector_is_refused_as_not_an_instant_vector(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    history = import_loads(victoria, "matrix", {"matrix-a": 1.0})
    selector = f'{CPU_METRIC}{{namespace="{history.target.namespace}"}}[1m]'

    with pytest.raises(MetricsError, match="'matrix'"):
        client.query(selector, history.at)


# --- NaN and Inf ----------------------------------------------------------------------------------
#
# Observed with VictoriaMetrics 1.79.5 (Debian 1.79.5+ds1-2+b5):
#   - /api/v1/import (JSON lines) answers 204 but stores no NaN: `null` and `"NaN"` make it log
#     "cannot unmarshal json line" and skip the whole line; a bare `NaN` token (what Python's
#     json.dumps writes) is parsed, then the sample is dropped.
#   - /api/v1/import/prometheus (text format) accepts `NaN` and `+Inf`; NaN samples are dropped,
#     +Inf samples are stored.
#   - Query results never contain NaN: `x * NaN`, `x / 0 * 0`, `vector(NaN)` all answer with an
#     empty vector (the series are removed), while `x / 0` answers "+Inf" and `-x / 0` "-Inf".
#   - A counter with one +Inf sample inside the window makes `rate()` +Inf for that pod.
# So from VictoriaMetrics the adapter can receive ±Inf but never NaN. Prometheus keeps NaN in
# results (0/0, rate over NaN samples), so NaN is shown through a tiny real HTTP server instead.


def _text_import(victoria: VictoriaMetrics, lines: list[str]) -> None:
    response = httpx.post(
        f"{victoria.url}/api/v1/import/prometheus", content="\n".join(lines).encode(), timeout=10
    )
    response.raise_for_status()
    victoria.flush()


def _text_counter(history: History, pod: str, value: Callable[[int], str]) -> list[str]:
    points = HISTORY_MINUTES * 60 // STEP_S + 1
    labels = (
        f'namespace="{history.target.namespace}",container="{CONTAINER}",pod="{pod}",job="kubelet"'
    )
    return [
        f"{CPU_METRIC}{{{labels}}} {value(i)} {history.end_ms - (points - 1 - i) * STEP_S * 1000}"
        for i in range(points)
    ]


def test_victoria_metrics_drops_nan_samples_so_the_adapter_never_sees_nan(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    history = import_loads(victoria, "nan", {"nan-steady": 0.5})
    lines = _text_counter(history, "nan-all", lambda i: "NaN")
    # Every other sample NaN: only the finite ones are stored, so the rate is still 1 core.
    lines += _text_counter(history, "nan-half", lambda i: "NaN" if i % 2 else str(i * STEP_S))
    _text_import(victoria, lines)
    nan_json = {
        "metric": {
            "__name__": CPU_METRIC,
            "namespace": history.target.namespace,
            "container": CONTAINER,
            "pod": "nan-json",
        },
        "values": [math.nan] * 3,  # json.dumps writes the bare NaN token
        "timestamps": [history.end_ms - 30_000, history.end_ms - 15_000, history.end_ms],
    }
    victoria.import_series([nan_json])

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)

    assert cpu.keys() == {"nan-steady", "nan-half"}
    assert math.isclose(cpu["nan-half"], 1.0, rel_tol=1e-9)
    # Arithmetic that yields NaN in Prometheus removes the series in VictoriaMetrics.
    assert client.query(f"({history.query}) / 0 * 0", history.at) == []
    assert client.query(f"({history.query}) * NaN", history.at) == []
    assert _per_pod(client.query(f"({history.query}) / 0", history.at)) == {
        "nan-steady": math.inf,
        "nan-half": math.inf,
    }


# The function's defaults, with a low threshold so that the skew below is confirmed.
POLICY = Policy(Statistic.VARIANCE, 0.1, 3, 2, 10.0, timedelta(minutes=10))


def plan_for(cpu: Mapping[str, float]) -> Plan:
    """The decision when every series belongs to a healthy, listed pod."""
    now = datetime.now(tz=UTC)
    return plan(cpu, [pod(name, now=now) for name in cpu], POLICY, now)


def test_an_infinite_rate_is_returned_and_never_selected(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    loads = _skewed_12()
    history = import_loads(victoria, "inf", loads)
    # A counter that read +Inf once inside the window: its rate is +Inf, bigger than any pod's.
    _text_import(
        victoria, _text_counter(history, "inf-pod", lambda i: "+Inf" if i == 30 else str(i * 30))
    )

    cpu = client.pod_cpu(history.target, CONTAINER, WINDOW, history.at)
    decision = plan_for(cpu)

    assert cpu["inf-pod"] == math.inf
    assert cpu.keys() == {*loads, "inf-pod"}
    assert decision.ignored == {PodSkip.NON_FINITE: 1}
    assert decision.reason is Reason.IMBALANCE_CONFIRMED
    assert decision.summary is not None
    assert decision.summary.count == len(loads)
    assert "inf-pod" not in {s.pod for s in decision.selected}
    busiest = max(loads, key=loads.__getitem__)
    assert decision.selected[0].pod == busiest


def test_nan_from_a_prometheus_shaped_answer_is_counted_and_never_selected(
    tiny_server: Callable[..., TinyServer],
) -> None:
    loads = _skewed_12()
    series = [{"metric": {"pod": p}, "value": [1, repr(v)]} for p, v in loads.items()]
    series.append({"metric": {"pod": "nan-pod"}, "value": [1, "NaN"]})
    series.append({"metric": {"pod": "neg-inf-pod"}, "value": [1, "-Inf"]})
    server = tiny_server(body=_vector_body(series))
    target = Target(namespace="posthog", deployment="ingestion")

    with contextlib.closing(PrometheusClient(server.url, timedelta(seconds=5))) as client:
        cpu = client.pod_cpu(target, "ingestion", WINDOW, datetime.now(tz=UTC))
    decision = plan_for(cpu)

    assert math.isnan(cpu["nan-pod"])
    assert cpu["neg-inf-pod"] == -math.inf
    assert {p: cpu[p] for p in loads} == loads
    assert decision.ignored == {PodSkip.NON_FINITE: 2}
    assert decision.reason is Reason.IMBALANCE_CONFIRMED
    assert {s.pod for s in decision.selected}.isdisjoint({"nan-pod", "neg-inf-pod"})
    assert decision.summary is not None
    assert decision.summary.count == len(loads)


# --- failures of the server -----------------------------------------------------------------------


def test_nothing_listening_is_a_quick_metrics_error() -> None:
    port = free_port()  # bound then released: nothing listens there now
    started = time.monotonic()

    with (
        contextlib.closing(
            PrometheusClient(f"http://127.0.0.1:{port}", timedelta(seconds=5))
        ) as client,
        pytest.raises(MetricsError, match="unreachable") as caught,
    ):
        client.pod_cpu(Target("posthog", "ingestion"), "ingestion", WINDOW, datetime.now(tz=UTC))

    assert time.monotonic() - started < 1.0
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_a_server_slower_than_the_timeout_is_a_metrics_error(
    tiny_server: Callable[..., TinyServer],
) -> None:
    server = tiny_server(delay=2.0)
    started = time.monotonic()

    with (
        contextlib.closing(PrometheusClient(server.url, timedelta(seconds=0.3))) as client,
        pytest.raises(MetricsError, match="timed out"),
    ):
        client.pod_cpu(Target("posthog", "ingestion"), "ingestion", WINDOW, datetime.now(tz=UTC))

    elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 1.5, f"gave up after {elapsed:.2f}s with a 0.3s timeout"
    assert len(server.requests) == 1  # the request did reach the server: it was slow, not down


def test_the_bearer_token_reaches_the_server(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server()
    target = Target("posthog", "ingestion")
    at = datetime(2026, 11, 21, 12, 0, 0, 250_000, tzinfo=UTC)

    with contextlib.closing(
        PrometheusClient(server.url, timedelta(seconds=5), token=lambda: "t0k3n")
    ) as c:
        assert c.pod_cpu(target, "ingestion", WINDOW, at) == {}
    with contextlib.closing(PrometheusClient(server.url, timedelta(seconds=5))) as c:
        assert c.pod_cpu(target, "ingestion", WINDOW, at) == {}

    with_token, without_token = server.requests
    assert with_token.headers.get("authorization") == "Bearer t0k3n"
    assert "authorization" not in without_token.headers
    assert with_token.method == "POST"
    assert with_token.path == "/api/v1/query"
    assert with_token.form == {
        "query": [cpu_query(target, "ingestion", WINDOW)],
        "time": ["1795262400.250"],
    }


# --- tiny real HTTP servers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class TinyServer:
    url: str
    requests: list[Received] = field(default_factory=list)


def _vector_body(series: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": series}}
    ).encode()


@pytest.fixture
def tiny_server() -> Iterator[Callable[..., TinyServer]]:
    """Start loopback HTTP servers that record each request and answer `body` after `delay`."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
    release = threading.Event()  # set at teardown so a delayed handler stops waiting

    def start(delay: float = 0.0, body: bytes = _vector_body([])) -> TinyServer:
        server_info = TinyServer(url="")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                content = self.rfile.read(length).decode()
                server_info.requests.append(
                    Received(
                        method="POST",
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        form=parse_qs(content, keep_blank_values=True),
                    )
                )
                if delay and release.wait(delay):
                    return  # torn down while waiting; the client is long gone
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        running.append((server, thread))
        server_info.url = f"http://127.0.0.1:{server.server_address[1]}"
        return server_info

    yield start
    release.set()
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
