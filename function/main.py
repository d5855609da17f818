"""Cloud Functions entry points. A routing table: parse, call the service, map the result."""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from pod_rebalancer.bootstrap import Lazy
from pod_rebalancer.events import handle_cloud_event
from pod_rebalancer.web import handle_http

service = Lazy()


@functions_framework.http
def rebalance(request: flask.Request) -> flask.Response:
    """Alertmanager webhooks, Cloud Scheduler HTTP targets and manual calls."""
    return handle_http(request, service)


@functions_framework.cloud_event
def rebalance_pubsub(cloud_event: Any) -> None:
    """Cloud Scheduler → Pub/Sub. Raises (so Pub/Sub retries) only when a dependency failed."""
    handle_cloud_event(cloud_event, service)
