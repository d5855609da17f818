"""Cloud Functions entry points. A routing table: parse, call the service, map the result."""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from pod_rebalancer import web
from pod_rebalancer.bootstrap import Lazy
from pod_rebalancer.cloudevent import handle_cloud_event

runtime = Lazy()


@functions_framework.http
def rebalance(request: flask.Request) -> flask.Response:
    """Alertmanager webhooks, Cloud Scheduler HTTP targets and manual calls."""
    answer = web.handle(
        web.HttpRequest(
            method=request.method,
            headers={name.lower(): value for name, value in request.headers.items()},
            query={name: request.args[name] for name in request.args},
            read=request.stream.read,
            content_length=request.content_length,
        ),
        runtime,
    )
    return flask.Response(
        answer.text(), status=answer.status, mimetype="application/json", headers=answer.headers
    )


@functions_framework.cloud_event
def rebalance_pubsub(cloud_event: Any) -> None:
    """Cloud Scheduler → Pub/Sub. Raises (so Pub/Sub retries) only when a dependency failed."""
    handle_cloud_event(cloud_event, runtime)
