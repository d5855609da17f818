"""Per-pod CPU from Prometheus or VictoriaMetrics over HTTP.

Every failure (refused, timeout, HTTP error, `"status": "error"`, malformed JSON, a result that is
not an instant vector, a pod reported twice) becomes a MetricsError: the run stops, nothing is done.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from pod_rebalancer.config import split_credentials
from pod_rebalancer.core.model import Target
from pod_rebalancer.core.names import label_problem
from pod_rebalancer.errors import MetricsError

CPU_METRIC = "container_cpu_usage_seconds_total"
_PLACEHOLDER = re.compile(r"\{(?:namespace|deployment|container|window)\}")


def promql_duration(window: timedelta) -> str:
    milliseconds = round(window.total_seconds() * 1000)
    if milliseconds % 1000 == 0:
        return f"{milliseconds // 1000}s"
    return f"{milliseconds}ms"


def cpu_query(target: Target, container: str, window: timedelta) -> str:
    """The per-pod CPU query. Values are DNS-1123 names (checked again here), so never escaped."""
    problem = label_problem(container)
    if problem:
        raise ValueError(f"container {container!r} {problem}")
    # Target validated its own names on construction; a DNS-1123 name holds no quote or backslash.
    return (
        f'sum by(pod)(rate({CPU_METRIC}{{namespace="{target.namespace}",'
        f'container="{container}"}}[{promql_duration(window)}]))'
    )


def render_query(template: str, target: Target, container: str, window: timedelta) -> str:
    """A LAG_QUERY or MEMORY_QUERY template with its placeholders filled in, textually: PromQL's
    own braces stay as written. Only validated names and the window go in (checked again here)."""
    problem = label_problem(container)
    if problem:
        raise ValueError(f"container {container!r} {problem}")
    values = {
        "{namespace}": target.namespace,
        "{deployment}": target.deployment,
        "{container}": container,
        "{window}": promql_duration(window),
    }
    # One pass, so a value can never be read as a placeholder (names hold no braces anyway).
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), template)


class PrometheusClient:
    """Instant queries against a Prometheus-compatible HTTP API."""

    def __init__(
        self,
        endpoint: str,
        timeout: timedelta,
        token: Callable[[], str | None] = lambda: None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        # What messages show: credentials in the URL (https://user:key@host) never leave here.
        self._shown, self._credentials = split_credentials(self._endpoint)
        self._token = token
        self._client = httpx.Client(
            base_url=self._endpoint,
            timeout=timeout.total_seconds(),
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        """CPU cores used per pod, averaged over `window` ending at `at`."""
        result = self.query(cpu_query(target, container, window), at)
        return _per_pod(result)

    def pod_signal(
        self, template: str, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        """A LAG_QUERY or MEMORY_QUERY per pod (messages, bytes), as pod_cpu is read."""
        return _per_pod(self.query(render_query(template, target, container, window), at))

    def query(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        """Run an instant query and return its vector result, or raise MetricsError."""
        headers = {}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        params = {"query": promql, "time": f"{at.timestamp():.3f}"}
        try:
            response = self._client.post("/api/v1/query", data=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise MetricsError(
                f"metrics server at {self._shown} timed out: {self._scrub(exc)}"
            ) from exc
        except httpx.HTTPError as exc:
            raise MetricsError(
                f"metrics server at {self._shown} unreachable: {self._scrub(exc)}"
            ) from exc
        return _vector(response, self._shown)

    def _scrub(self, exc: Exception) -> str:
        """The library's message, with the URL's credentials (if any) taken out."""
        text = str(exc)
        return text.replace(self._credentials, "***") if self._credentials else text


def _vector(response: httpx.Response, endpoint: str) -> list[dict[str, Any]]:
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise MetricsError(
            f"metrics server at {endpoint} answered HTTP {response.status_code} "
            f"with a body that is not JSON"
        ) from exc
    if not isinstance(body, dict):
        raise MetricsError(f"metrics server at {endpoint} answered with a non-object JSON body")
    if response.status_code != 200 or body.get("status") != "success":
        detail = body.get("error") or body.get("errorType") or "no detail"
        raise MetricsError(
            f"metrics server at {endpoint} answered HTTP {response.status_code}: {detail}"
        )
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise MetricsError(f"metrics server returned {kind!r} where an instant vector was expected")
    result = data.get("result")
    if not isinstance(result, list):
        raise MetricsError("metrics server returned a vector without a result list")
    return result


def _per_pod(result: list[dict[str, Any]]) -> dict[str, float]:
    """Map pod name to CPU. NaN and Inf are kept for the core to count; duplicates are refused."""
    cpu: dict[str, float] = {}
    for series in result:
        try:
            pod = series["metric"].get("pod")
            sample = series["value"]
            # The API's sample is always [timestamp, "value as a string"]; refuse anything else.
            if not isinstance(sample, list) or len(sample) != 2 or not isinstance(sample[1], str):
                raise TypeError("a sample must be [timestamp, string]")
            value = float(sample[1])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise MetricsError(
                f"metrics server returned a malformed sample: {series!r:.200}"
            ) from exc
        if not pod:
            continue  # series without a pod label carry no per-pod information
        if pod in cpu:
            # `sum by(pod)` yields one series per pod; two means the answer cannot be trusted.
            raise MetricsError(f"metrics server returned pod {pod!r} twice in one vector")
        cpu[pod] = value
    return cpu
