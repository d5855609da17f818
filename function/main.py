"""Entry points. A routing table: hand the platform's request to its edge, return the answer.

`rebalance` and `rebalance_pubsub` are the Cloud Functions targets (functions-framework);
`lambda_handler` is the AWS Lambda handler. The Lambda package has no functions-framework and no
Flask: they are imported only where the Cloud Functions targets are registered and called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pod_rebalancer import gcf
from pod_rebalancer.aws_lambda import handle_lambda
from pod_rebalancer.bootstrap import Lazy
from pod_rebalancer.cloudevent import handle_cloud_event

if TYPE_CHECKING:
    import flask

runtime = Lazy()


def rebalance(request: flask.Request) -> flask.Response:
    """Alertmanager webhooks, Cloud Scheduler HTTP targets and manual calls."""
    return gcf.http(request, runtime)


def rebalance_pubsub(cloud_event: Any) -> None:
    """Cloud Scheduler → Pub/Sub. Raises (so Pub/Sub retries) only when a dependency failed."""
    handle_cloud_event(cloud_event, runtime)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """AWS Lambda: function URL requests and scheduled runs (EventBridge)."""
    return handle_lambda(event, context, runtime)


try:
    import functions_framework  # noqa: F401  (only: is this Cloud Functions?)
except ModuleNotFoundError:  # the Lambda package: nothing to register with
    pass
else:
    gcf.register(rebalance, rebalance_pubsub)
