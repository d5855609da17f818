"""PrometheusClient against httpx.MockTransport: the request it sends, and how every answer maps.

The real VictoriaMetrics is exercised in tests/integration/test_victoria_metrics.py; here the
transport is scripted so each malformed or failing answer can be produced exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from pod_rebalancer.adapters.prometheus import (
    PrometheusClient,
    cpu_query,
    promql_duration,
    render_query,
)
from pod_rebalancer.core.model import Target
from pod_rebalancer.errors import DependencyError, MetricsError

ENDPOINT = "http://metrics.test:8428"
AT = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)  # 1795262400.123456
TARGET = Target(namespace="posthog", deployment="ingestion-consumer")
WINDOW = timedelta(minutes=5)

Handler = Callable[[httpx.Request], httpx.Response]


def vector(*series: dict[str, Any]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(series)}}


def sample(pod: str | None, value: Any) -> dict[str, Any]:
    metric = {} if pod is None else {"pod": pod}
    return {"metric": metric, "value": [1795262400.123, value]}


def answer(body: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


@pytest.fixture
def make_client(
    requests: list[httpx.Request],
) -> Iterator[Callable[..., PrometheusClient]]:
    """Build clients whose transport records each request and then runs `handler`."""
    clients: list[PrometheusClient] = []

    def make(
        handler: Handler,
        token: Callable[[], str | None] = lambda: None,
        endpoint: str = ENDPOINT,
    ) -> PrometheusClient:
        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            requests.append(request)
            return handler(request)

        client = PrometheusClient(
            endpoint, timedelta(seconds=5), token=token, transport=httpx.MockTransport(record)
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)


# --- the request ---------------------------------------------------------------------------------


def test_query_is_a_form_post_to_the_instant_query_api(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    client = make_client(answer(vector()))

    assert client.query("up", AT) == []

    (request,) = requests
    assert request.method == "POST"
    assert request.url == httpx.URL(f"{ENDPOINT}/api/v1/query")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request) == {"query": ["up"], "time": ["1795262400.123"]}


def test_time_is_sent_in_seconds_with_millisecond_precision(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    client = make_client(answer(vector()))

    client.query("up", datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC))
    client.query("up", datetime(2026, 11, 21, 12, 0, 0, 999600, tzinfo=UTC))  # rounds up
    # An aware datetime in another zone is the same instant.
    client.query("up", datetime(2026, 11, 21, 13, 0, 0, 5000, tzinfo=timezone(timedelta(hours=1))))

    assert [form(r)["time"] for r in requests] == [
        ["1795262400.000"],
        ["1795262401.000"],
        ["1795262400.005"],
    ]


def test_endpoint_path_prefix_and_trailing_slash_are_kept(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    # VictoriaMetrics cluster (vmselect) serves the API under a path prefix.
    client = make_client(answer(vector()), endpoint="http://vmselect.test/select/0/prometheus/")

    client.query("up", AT)

    assert requests[0].url == httpx.URL("http://vmselect.test/select/0/prometheus/api/v1/query")


def test_pod_cpu_sends_the_cpu_query_and_maps_pods_to_cores(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    client = make_client(
        answer(vector(sample("consumer-a", "2.25"), sample("consumer-b", "0.0625")))
    )

    cpu = client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)

    assert cpu == {"consumer-a": 2.25, "consumer-b": 0.0625}
    assert form(requests[0])["query"] == [cpu_query(TARGET, "ingestion-consumer", WINDOW)]


@pytest.mark.parametrize("token", ["s3cr3t", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"])
def test_bearer_token_is_sent_when_the_token_callable_returns_one(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request], token: str
) -> None:
    client = make_client(answer(vector()), token=lambda: token)

    client.query("up", AT)

    assert requests[0].headers["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize("token", [None, ""])
def test_no_authorization_header_without_a_token(
    make_client: Callable[..., PrometheusClient],
    requests: list[httpx.Request],
    token: str | None,
) -> None:
    client = make_client(answer(vector()), token=lambda: token)

    client.query("up", AT)

    assert "authorization" not in requests[0].headers


def test_token_is_read_again_for_every_query(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    # A token file rotated between invocations of a warm instance must take effect.
    tokens = iter(["first", "second"])
    client = make_client(answer(vector()), token=lambda: next(tokens))

    client.query("up", AT)
    client.query("up", AT)

    assert [r.headers["authorization"] for r in requests] == ["Bearer first", "Bearer second"]


# --- what comes back ------------------------------------------------------------------------------


def test_series_without_a_pod_label_are_ignored(
    make_client: Callable[..., PrometheusClient],
) -> None:
    client = make_client(
        answer(
            vector(
                sample(None, "9.5"),
                {"metric": {"pod": ""}, "value": [1795262400.123, "8.5"]},
                {"metric": {"namespace": "posthog"}, "value": [1795262400.123, "7.5"]},
                sample("consumer-a", "0.5"),
            )
        )
    )

    assert client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT) == {"consumer-a": 0.5}


def test_non_finite_values_are_returned_for_the_core_to_count(
    make_client: Callable[..., PrometheusClient],
) -> None:
    client = make_client(
        answer(
            vector(
                sample("pod-nan", "NaN"),
                sample("pod-inf", "+Inf"),
                sample("pod-neg-inf", "-Inf"),
                sample("pod-ok", "1.5"),
            )
        )
    )

    cpu = client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)

    assert set(cpu) == {"pod-nan", "pod-inf", "pod-neg-inf", "pod-ok"}
    assert math.isnan(cpu["pod-nan"])
    assert cpu["pod-inf"] == math.inf
    assert cpu["pod-neg-inf"] == -math.inf
    assert cpu["pod-ok"] == 1.5


def test_an_empty_vector_is_no_pods(make_client: Callable[..., PrometheusClient]) -> None:
    client = make_client(answer(vector()))

    assert client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT) == {}


# --- every failure is a MetricsError --------------------------------------------------------------


def test_metrics_error_is_a_dependency_error() -> None:
    assert issubclass(MetricsError, DependencyError)


def raw(content: bytes, status: int = 200, content_type: str = "application/json") -> Handler:
    return lambda request: httpx.Response(
        status, content=content, headers={"content-type": content_type}
    )


FAILURES: dict[str, tuple[Handler, str]] = {
    "http-500-prometheus-error": (
        answer({"status": "error", "errorType": "internal", "error": "boom in storage"}, 500),
        "HTTP 500: boom in storage",
    ),
    "http-400-bad-data": (
        answer(
            {
                "status": "error",
                "errorType": "bad_data",
                "error": 'invalid parameter "query": 1:5: parse error',
            },
            400,
        ),
        "HTTP 400: invalid parameter",
    ),
    "http-503-vector-body": (answer(vector(sample("a", "1")), 503), "HTTP 503"),
    "http-200-status-error": (
        answer({"status": "error", "errorType": "timeout", "error": "query timed out"}),
        "HTTP 200: query timed out",
    ),
    "http-200-no-status": (answer({"data": vector()["data"]}), "HTTP 200"),
    "not-json-html": (raw(b"<html>502 Bad Gateway</html>", 502, "text/html"), "not JSON"),
    "not-json-empty-200": (raw(b""), "not JSON"),
    "not-json-truncated": (raw(b'{"status":"success","data":{"resu'), "not JSON"),
    "redirect-not-followed": (
        lambda request: httpx.Response(302, headers={"location": "http://elsewhere.test/"}),
        "not JSON",
    ),
    "json-list": (answer([vector()]), "non-object"),
    "json-string": (answer("success"), "non-object"),
    "json-number": (answer(200), "non-object"),
    "json-null": (raw(b"null"), "non-object"),
    "result-type-matrix": (
        answer({"status": "success", "data": {"resultType": "matrix", "result": []}}),
        "'matrix'",
    ),
    "result-type-scalar": (
        answer({"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}),
        "'scalar'",
    ),
    "result-type-string": (
        answer({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}),
        "'string'",
    ),
    "data-missing": (answer({"status": "success"}), "instant vector was expected"),
    "data-not-object": (answer({"status": "success", "data": []}), "instant vector was expected"),
    "result-missing": (
        answer({"status": "success", "data": {"resultType": "vector"}}),
        "without a result list",
    ),
    "result-null": (
        answer({"status": "success", "data": {"resultType": "vector", "result": None}}),
        "without a result list",
    ),
    "result-object": (
        answer({"status": "success", "data": {"resultType": "vector", "result": {"a": 1}}}),
        "without a result list",
    ),
}


@pytest.mark.parametrize(("handler", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_bad_answers_raise_metrics_error(
    make_client: Callable[..., PrometheusClient], handler: Handler, message: str
) -> None:
    client = make_client(handler)

    with pytest.raises(MetricsError, match=message) as caught:
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)

    assert isinstance(caught.value, DependencyError)


MALFORMED: dict[str, Any] = {
    "value-missing": {"metric": {"pod": "a"}},
    "metric-missing": {"value": [1795262400.123, "1"]},
    "metric-not-object": {"metric": "a", "value": [1795262400.123, "1"]},
    "metric-null": {"metric": None, "value": [1795262400.123, "1"]},
    "series-not-object": ["a", [1795262400.123, "1"]],
    "value-a-number-not-a-pair": {"metric": {"pod": "a"}, "value": 1.5},
    "value-null": {"metric": {"pod": "a"}, "value": None},
    "value-empty-list": {"metric": {"pod": "a"}, "value": []},
    "value-one-element": {"metric": {"pod": "a"}, "value": [1795262400.123]},
    # "12"[1] is "2": a string in place of the pair must not read as 2 cores.
    "value-a-string-not-a-pair": {"metric": {"pod": "a"}, "value": "12"},
    "value-three-elements": {"metric": {"pod": "a"}, "value": [1795262400.123, "1", "2"]},
    "value-not-a-number-string": {"metric": {"pod": "a"}, "value": [1795262400.123, "abc"]},
    "value-empty-string": {"metric": {"pod": "a"}, "value": [1795262400.123, ""]},
    "value-null-number": {"metric": {"pod": "a"}, "value": [1795262400.123, None]},
    # float(True) is 1.0; a boolean is never a Prometheus sample value.
    "value-boolean": {"metric": {"pod": "a"}, "value": [1795262400.123, True]},
    "value-list": {"metric": {"pod": "a"}, "value": [1795262400.123, ["1"]]},
}


@pytest.mark.parametrize("series", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_sample_raises_metrics_error(
    make_client: Callable[..., PrometheusClient], series: Any
) -> None:
    client = make_client(answer(vector(sample("fine", "0.5"), series)))

    with pytest.raises(MetricsError, match="malformed sample"):
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)


def test_the_same_pod_twice_in_one_vector_is_refused(
    make_client: Callable[..., PrometheusClient],
) -> None:
    # `sum by(pod)` yields one series per pod; two (e.g. from a federation mix-up) cannot be
    # trusted, so the whole answer is refused rather than one of them silently kept.
    client = make_client(
        answer(
            vector(
                sample("consumer-a", "0.5"),
                {"metric": {"pod": "consumer-a", "cluster": "b"}, "value": [1, "0.7"]},
            )
        )
    )

    with pytest.raises(MetricsError, match="'consumer-a' twice"):
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)


def test_the_same_pod_twice_is_refused_even_with_equal_values(
    make_client: Callable[..., PrometheusClient],
) -> None:
    client = make_client(answer(vector(sample("consumer-a", "0.5"), sample("consumer-a", "0.5"))))

    with pytest.raises(MetricsError, match="twice"):
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)


def test_connection_refused_becomes_metrics_error(
    make_client: Callable[..., PrometheusClient],
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = make_client(refuse)

    with pytest.raises(MetricsError, match="unreachable") as caught:
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)

    assert ENDPOINT in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_read_timeout_becomes_metrics_error(
    make_client: Callable[..., PrometheusClient],
) -> None:
    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = make_client(stall)

    with pytest.raises(MetricsError, match="timed out") as caught:
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)

    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_other_transport_errors_become_metrics_error(
    make_client: Callable[..., PrometheusClient],
) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    client = make_client(drop)

    with pytest.raises(MetricsError, match="unreachable"):
        client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT)


# --- the query ------------------------------------------------------------------------------------


def test_cpu_query_for_a_normal_target() -> None:
    assert cpu_query(TARGET, "ingestion-consumer", WINDOW) == (
        "sum by(pod)(rate(container_cpu_usage_seconds_total"
        '{namespace="posthog",container="ingestion-consumer"}[300s]))'
    )


@pytest.mark.parametrize(
    ("window", "rendered"),
    [
        (timedelta(minutes=5), "300s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(seconds=30), "30s"),
        (timedelta(hours=1), "3600s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=90, microseconds=250_000), "90250ms"),
    ],
)
def test_window_is_rendered_as_a_promql_duration(window: timedelta, rendered: str) -> None:
    assert promql_duration(window) == rendered
    assert cpu_query(TARGET, "c", window).endswith(f"[{rendered}]))")


@pytest.mark.parametrize(
    "container",
    [
        "",
        "Ingestion",
        "has space",
        "trailing-",
        "a" * 64,
        'x"} or vector(1) #',
        'c",namespace=~".*',
        "c\\",
        "c\n",
    ],
)
def test_cpu_query_refuses_an_invalid_container(container: str) -> None:
    with pytest.raises(ValueError, match="container"):
        cpu_query(TARGET, container, WINDOW)


@pytest.mark.parametrize(
    "namespace", ['x"} or vector(1) #', 'x",pod=~".+', "x}", "x\\", "NS", "", "a" * 64]
)
def test_target_with_an_injecting_namespace_cannot_be_built(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Target(namespace=namespace, deployment="ingestion-consumer")


@pytest.mark.parametrize("deployment", ['x"} or vector(1) #', "x y", "X", ""])
def test_target_with_an_injecting_deployment_cannot_be_built(deployment: str) -> None:
    with pytest.raises(ValueError, match="deployment"):
        Target(namespace="posthog", deployment=deployment)


def test_body_is_decoded_as_json_whatever_the_content_type(
    make_client: Callable[..., PrometheusClient],
) -> None:
    # Some proxies relabel the content type; the body is what counts.
    body = json.dumps(vector(sample("consumer-a", "1"))).encode()
    client = make_client(raw(body, content_type="text/plain"))

    assert client.pod_cpu(TARGET, "ingestion-consumer", WINDOW, AT) == {"consumer-a": 1.0}


def test_credentials_in_the_endpoint_never_reach_an_error_message(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    # Hosted Prometheus services hand out URLs like https://user:key@host/api/prom; every
    # metrics error is logged, answered and published to the audit topic.
    endpoint = "http://reader:s3cr3t-key@metrics.test:8428/prom"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} as reader:s3cr3t-key")

    failures: list[str] = []
    for handler in (refuse, answer({"status": "error", "error": "bad"}, 422), answer([])):
        with pytest.raises(MetricsError) as caught:
            make_client(handler, endpoint=endpoint).pod_cpu(TARGET, "c", WINDOW, AT)
        failures.append(str(caught.value))
    assert all("s3cr3t-key" not in text and "reader" not in text for text in failures), failures
    assert all("http://***@metrics.test:8428/prom" in text for text in failures), failures
    assert requests[-1].headers["authorization"].startswith("Basic ")  # still sent, as asked


# --- LAG_QUERY / MEMORY_QUERY templates ---------------------------------------------------------


def test_a_template_is_filled_textually_and_keeps_promqls_own_braces() -> None:
    template = (
        'sum by(pod)(avg_over_time(container_memory_working_set_bytes{namespace="{namespace}",'
        'container="{container}",pod=~"{deployment}-.+"}[{window}])) > bool {not_a_placeholder}'
    )
    assert render_query(template, TARGET, "consumer", WINDOW) == (
        'sum by(pod)(avg_over_time(container_memory_working_set_bytes{namespace="posthog",'
        'container="consumer",pod=~"ingestion-consumer-.+"}[300s])) > bool {not_a_placeholder}'
    )


def test_a_regex_repetition_is_not_a_placeholder() -> None:
    template = '"({deployment}-[a-z0-9]+-[a-z0-9]{5})-.*"'
    assert render_query(template, TARGET, "c", WINDOW) == (
        '"(ingestion-consumer-[a-z0-9]+-[a-z0-9]{5})-.*"'
    )


def test_a_container_that_is_not_a_name_never_reaches_a_template() -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        render_query("{container}", TARGET, 'x"} or vector(1) #', WINDOW)


def test_a_signal_is_read_per_pod_from_the_filled_in_query(
    make_client: Callable[..., PrometheusClient], requests: list[httpx.Request]
) -> None:
    client = make_client(answer(vector(sample("a", "120"), sample("b", "0"))))
    lag = client.pod_signal('sum by(pod)(lag{group="{deployment}"})', TARGET, "c", WINDOW, AT)
    assert lag == {"a": 120.0, "b": 0.0}
    assert form(requests[0])["query"] == ['sum by(pod)(lag{group="ingestion-consumer"})']


def test_a_signal_reporting_a_pod_twice_is_refused(
    make_client: Callable[..., PrometheusClient],
) -> None:
    client = make_client(answer(vector(sample("a", "1"), sample("a", "2"))))
    with pytest.raises(MetricsError, match="twice"):
        client.pod_signal("lag", TARGET, "c", WINDOW, AT)
