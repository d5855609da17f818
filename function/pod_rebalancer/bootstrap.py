"""Wiring: builds Settings, the adapters and the service once per instance, lazily.

Nothing is built at import time, so a cold start pays only for what a request uses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from pod_rebalancer import logs
from pod_rebalancer.adapters.kube import Cluster
from pod_rebalancer.adapters.kube_auth import api_client
from pod_rebalancer.adapters.prometheus import PrometheusClient
from pod_rebalancer.adapters.pubsub import AuditPublisher
from pod_rebalancer.config import Settings, load_settings
from pod_rebalancer.service import Rebalancer


def utc_now() -> datetime:
    return datetime.now(UTC)


def build(
    settings: Settings | None = None,
    clock: Callable[[], datetime] = utc_now,
    log: logging.Logger | None = None,
) -> Rebalancer:
    """The service with production adapters; `clock` and `log` are for benchmarks and tests."""
    settings = settings if settings is not None else load_settings()
    log = log if log is not None else logs.configure(settings.log_level)
    metrics = PrometheusClient(
        settings.prometheus_endpoint, settings.prometheus_timeout, token=settings.metrics_secret
    )
    cluster = Cluster(api_client(settings), exclude_annotation=settings.exclude_annotation)
    audit = AuditPublisher(settings.audit_topic) if settings.audit_topic else None
    return Rebalancer(settings, metrics, cluster, clock=clock, log=log, audit=audit)


class Lazy:
    """Builds the service on first use; a configuration error is raised again on every call."""

    def __init__(self, factory: Callable[[], Rebalancer] = build) -> None:
        self._factory = factory
        self._built: Rebalancer | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Rebalancer:
        built = self._built
        if built is None:
            with self._lock:
                if self._built is None:
                    self._built = self._factory()
                built = self._built
        return built
