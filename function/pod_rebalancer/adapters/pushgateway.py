"""A run's own metrics (telemetry.py) pushed to a Prometheus Pushgateway with prometheus-client.

A Pushgateway keeps what was pushed last, not a sum, and every run may be a new instance: so each
push reads what the gateway holds for the group and adds this run's counts to it (histograms
too; gauges are replaced). The groups are the job with each target's namespace and deployment,
and the job alone for the run's duration, never an instance: instances come and go, their groups
would stay. Two runs pushing the same group at the same moment can lose one's counts.

Every failure (refused, timeout, HTTP error, an answer that is not the gateway's JSON) becomes a
TelemetryError, which the service logs: a push never changes a run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pod_rebalancer import telemetry
from pod_rebalancer.config import split_credentials
from pod_rebalancer.errors import TelemetryError

JOB = "pod-rebalancer"
# What the gateway holds, per group: metric name → label values → value (or histogram).
Held = dict[str, dict[tuple[str, ...], Any]]


class Pushgateway:
    def __init__(
        self,
        url: str,
        timeout: timedelta = timedelta(seconds=2),
        job: str = JOB,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._shown, self._credentials = split_credentials(self._url)
        self._job = job
        self._timeout = timeout.total_seconds()
        self._client = httpx.Client(
            timeout=self._timeout, transport=transport, follow_redirects=False
        )

    def close(self) -> None:
        self._client.close()

    def push(self, samples: Sequence[telemetry.Sample]) -> None:
        """Add the samples to what the gateway holds, one group at a time; TelemetryError."""
        try:
            held = self._held()
            for group, grouped in telemetry.groups(samples).items():
                key = dict(group)
                registry = CollectorRegistry(auto_describe=False)
                registry.register(_Merged(grouped, held.get(_key({"job": self._job, **key}), {})))
                push_to_gateway(
                    self._url,
                    job=self._job,
                    registry=registry,
                    grouping_key=key,
                    timeout=self._timeout,
                    handler=self._handler,
                )
        except httpx.HTTPError as exc:
            raise TelemetryError(f"pushgateway at {self._shown}: {self._scrub(exc)}") from exc

    def _held(self) -> dict[tuple[tuple[str, str], ...], Held]:
        """Every group the gateway holds, by its grouping labels (GET /api/v1/metrics)."""
        response = self._client.get(f"{self._url}/api/v1/metrics")
        if response.status_code != 200:
            raise TelemetryError(
                f"pushgateway at {self._shown} answered HTTP {response.status_code}"
            )
        try:
            return _parse(json.loads(response.content))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TelemetryError(
                f"pushgateway at {self._shown} answered with something not its metrics JSON"
            ) from exc

    def _handler(
        self,
        url: str,
        method: str,
        timeout: float | None,
        headers: list[tuple[str, str]],
        data: bytes,
    ) -> Any:
        """prometheus-client's push, sent through this adapter's client (and its transport)."""

        def send() -> None:
            response = self._client.request(
                method, url, content=data, headers=dict(headers), timeout=timeout
            )
            if response.status_code >= 300:
                raise TelemetryError(
                    f"pushgateway at {self._shown} answered HTTP {response.status_code}: "
                    f"{response.text[:200]}"
                )

        return send

    def _scrub(self, exc: Exception) -> str:
        text = str(exc)
        return text.replace(self._credentials, "***") if self._credentials else text


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _parse(body: Mapping[str, Any]) -> dict[tuple[tuple[str, str], ...], Held]:
    if body.get("status") != "success":
        raise ValueError("not a success")
    found: dict[tuple[tuple[str, str], ...], Held] = {}
    by_name = {metric.name: metric for metric in telemetry.METRICS}
    for group in body["data"]:
        held: Held = {}
        for name, family in group.items():
            metric = by_name.get(name)
            if metric is None or not isinstance(family, dict):
                continue  # the gateway's own (push_time_seconds), or not ours
            for series in family["metrics"]:
                values = tuple(str(series["labels"].get(label, "")) for label in metric.labels)
                if metric.kind is telemetry.Kind.HISTOGRAM:
                    buckets = {float(le): float(n) for le, n in series["buckets"].items()}
                    value: Any = (buckets, float(series["count"]), float(series["sum"]))
                else:
                    value = float(series["value"])
                held.setdefault(name, {})[values] = value
        found[_key(group["labels"])] = held
    return found


class _Merged(Collector):
    """One group's families: what the gateway held plus this run's samples."""

    def __init__(self, samples: Sequence[telemetry.Sample], held: Held) -> None:
        self._samples = samples
        self._held = held

    def collect(self) -> Iterator[Metric]:
        for metric in telemetry.METRICS:
            series = dict(self._held.get(metric.name, {}))
            mine = [s for s in self._samples if s.metric is metric]
            if not series and not mine:
                continue
            for sample in mine:
                values = tuple(value for _, value in sample.labels)
                series[values] = _add(metric, series.get(values), sample.value)
            yield _family(metric, series)


def _add(metric: telemetry.Metric, held: Any, value: float) -> Any:
    if metric.kind is telemetry.Kind.GAUGE:
        return value
    if metric.kind is telemetry.Kind.COUNTER:
        return (held or 0.0) + value
    empty: tuple[dict[float, float], float, float] = ({}, 0.0, 0.0)
    buckets, count, total = held or empty
    bounds = (*telemetry.DURATION_BUCKETS, math.inf)
    added = {le: buckets.get(le, 0.0) + (1.0 if value <= le else 0.0) for le in bounds}
    return added, count + 1, total + value


def _family(metric: telemetry.Metric, series: Mapping[tuple[str, ...], Any]) -> Metric:
    labels = list(metric.labels)
    if metric.kind is telemetry.Kind.COUNTER:
        counter = CounterMetricFamily(metric.name, metric.help, labels=labels)
        for values, value in sorted(series.items()):
            counter.add_metric(list(values), value)
        return counter
    if metric.kind is telemetry.Kind.GAUGE:
        gauge = GaugeMetricFamily(metric.name, metric.help, labels=labels)
        for values, value in sorted(series.items()):
            gauge.add_metric(list(values), value)
        return gauge
    histogram = HistogramMetricFamily(metric.name, metric.help, labels=labels)
    for values, (buckets, _count, total) in sorted(series.items()):
        pairs = [("+Inf" if math.isinf(le) else repr(le), n) for le, n in sorted(buckets.items())]
        histogram.add_metric(list(values), pairs, total)
    return histogram
