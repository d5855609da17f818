"""Wiring: builds Settings, the adapters and the service once per instance, lazily.

Nothing is built at import time, so a cold start pays only for what a request uses; the settings
are validated before any client is built, so a refused call never reaches a cloud API.
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
from pod_rebalancer.adapters.secretsmanager import SecretsManagerToken
from pod_rebalancer.config import Settings, load_settings
from pod_rebalancer.ports import Clock
from pod_rebalancer.service import Rebalancer


def utc_now() -> datetime:
    return datetime.now(UTC)


def build(
    settings: Settings,
    clock: Clock = utc_now,
    log: logging.Logger | None = None,
    *,
    kube_timeout: float | None = None,
) -> Rebalancer:
    """The service with production adapters; `clock`, `log` and `kube_timeout` (seconds per
    Kubernetes API request, instead of the adapter's default) are for benchmarks and tests."""
    log = log if log is not None else logs.configure(settings.log_level)
    metrics = PrometheusClient(
        settings.prometheus_endpoint, settings.prometheus_timeout, token=settings.metrics_secret
    )
    timeout = {} if kube_timeout is None else {"timeout": kube_timeout}
    cluster = Cluster(
        api_client(settings), exclude_annotation=settings.exclude_annotation, **timeout
    )
    audit = AuditPublisher(settings.audit_topic) if settings.audit_topic else None
    pushgateway = None
    if settings.pushgateway_url:
        # prometheus-client costs about 0.1 s to import: only an instance that pushes pays it.
        from pod_rebalancer.adapters.pushgateway import Pushgateway  # noqa: PLC0415

        pushgateway = Pushgateway(settings.pushgateway_url)
    return Rebalancer(
        settings, metrics, cluster, clock=clock, log=log, audit=audit, pushgateway=pushgateway
    )


class Lazy:
    """The instance's runtime: settings and service built on first use, then kept.

    A failure to build (invalid configuration, a cloud API that did not answer) is raised to that
    call and tried again on the next one, so a transient outage at cold start does not stick.
    """

    def __init__(
        self,
        load: Callable[[], Settings] = load_settings,
        factory: Callable[[Settings], Rebalancer] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._load = load
        self._factory = factory or (lambda settings: build(settings, clock=clock))
        self._clock = clock
        self._settings: Settings | None = None
        self._service: Rebalancer | None = None
        self._stored_token: Callable[[], str | None] | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._clock()

    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = self._load()
            return self._settings

    def service(self) -> Rebalancer:
        settings = self.settings()
        with self._lock:
            if self._service is None:
                self._service = self._factory(settings)
            return self._service

    def webhook_token(self) -> str | None:
        """From the `_FILE` (re-read every call) or the value, or from Secrets Manager."""
        settings = self.settings()
        if settings.webhook_token_secret_arn is None:
            return settings.webhook_secret()
        with self._lock:
            if self._stored_token is None:
                self._stored_token = SecretsManagerToken(settings.webhook_token_secret_arn)
            read = self._stored_token
        return read()
