"""Cloud Functions entry points. A routing table: parse, call the service, map the result."""

from __future__ import annotations

import flask
import functions_framework

from pod_rebalancer.bootstrap import Lazy
from pod_rebalancer.web import handle_http

service = Lazy()


@functions_framework.http
def rebalance(request: flask.Request) -> flask.Response:
    """Alertmanager webhooks, Cloud Scheduler HTTP targets and manual calls."""
    return handle_http(request, service)
