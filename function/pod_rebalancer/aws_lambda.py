"""The AWS Lambda edge: a function URL request (payload format 2.0) goes through the same HTTP
edge as the Cloud Functions one; anything else is a scheduled run (EventBridge Scheduler's input
is the manual body itself; an EventBridge rule's "Scheduled Event" means the defaults).

A scheduled run returns the report, or `{"results": [], "error", "field"}` for bad input, and
raises only when a dependency failed: the asynchronous invocation is then retried, and after
that lands in the dead-letter queue.
"""

from __future__ import annotations

import base64
import binascii
import io
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from pod_rebalancer.core.times import parse_time
from pod_rebalancer.errors import ConfigError, RequestError
from pod_rebalancer.logs import embed_metrics, get_logger
from pod_rebalancer.runtime import Runtime
from pod_rebalancer.scheduled import run_scheduled
from pod_rebalancer.triggers import clip
from pod_rebalancer.web import HttpRequest, HttpResponse, error, handle

MAX_EVENT_AGE = timedelta(minutes=10)  # as on the Pub/Sub path; the module caps retries the same
# Where the embedded metrics land in CloudWatch; terraform/aws's alarms read this namespace.
METRICS_NAMESPACE = "PodRebalancer"


def handle_lambda(event: Any, context: Any, runtime: Runtime) -> dict[str, Any]:
    embed_metrics(METRICS_NAMESPACE)  # on Lambda, the log lines with samples are metrics too
    if is_function_url(event):
        return function_url_response(function_url(event, runtime))
    return scheduled(event, context, runtime)


def is_function_url(event: Any) -> bool:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(context, dict) and isinstance(context.get("http"), dict)


def function_url(event: dict[str, Any], runtime: Runtime) -> HttpResponse:
    try:
        request = http_request(event)
    except RequestError as exc:
        return error(400, str(exc), field=exc.field)
    return handle(request, runtime)


def _part(event: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """A part of the event, of the type payload format 2.0 gives it; absent or null means
    `default`. Lambda itself never sends other types, but a direct Invoke can."""
    value = event.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise RequestError(name, f"must be {_KINDS[kind]}")
    return value


_KINDS = {str: "a string", bool: "true or false", dict: "an object"}


def http_request(event: dict[str, Any]) -> HttpRequest:
    """The function URL request as the HTTP edge reads it; RequestError naming a malformed part."""
    method = event["requestContext"]["http"].get("method")
    if not isinstance(method, str):
        raise RequestError("requestContext.http.method", "must be a string")
    raw: str = _part(event, "body", str, "")
    if _part(event, "isBase64Encoded", bool, False):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RequestError("body", "is not valid base64") from exc
    else:
        # Lone surrogates survive, so that the JSON decoder refuses them by name (a 400).
        data = raw.encode("utf-8", "surrogatepass")
    headers: dict[str, str] = {}
    for name, value in _part(event, "headers", dict, {}).items():
        if not isinstance(value, str):
            raise RequestError(f"headers.{clip(str(name))}", "must be a string")
        headers[str(name).lower()] = value
    query = parse_qsl(_part(event, "rawQueryString", str, ""), keep_blank_values=True)
    return HttpRequest(
        method=method,
        headers=headers,
        query=query,
        read=io.BytesIO(data).read,
        content_length=len(data),
    )


def function_url_response(answer: HttpResponse) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return {
        "statusCode": answer.status,
        "headers": {"content-type": "application/json", **headers},
        "body": answer.text(),
    }


def scheduled(event: Any, context: Any, runtime: Runtime) -> dict[str, Any]:
    log = get_logger()
    request_id = getattr(context, "aws_request_id", None)
    fields: dict[str, Any] = {"event": "scheduled", "request_id": request_id}
    body = event
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        body = None  # an EventBridge rule: the configured defaults
        when = event.get("time")
        published = parse_time(when)
        if published is None and when not in (None, ""):
            # An event that cannot be dated cannot be judged by the age guard: not run.
            log.error("dropped a scheduled event with an unreadable time", extra={"fields": fields})
            return {"results": [], "error": "time: is not an RFC 3339 time", "field": "time"}
        if published is not None and runtime.now() - published > MAX_EVENT_AGE:
            log.warning("dropped a scheduled event from %s", published, extra={"fields": fields})
            return {"results": [], "error": f"event older than {MAX_EVENT_AGE}", "field": "time"}
    try:
        outcomes = run_scheduled(body, runtime, {"request_id": request_id})
    except ConfigError as exc:
        log.critical("invalid configuration: %s", exc, extra={"fields": fields})
        return {"results": [], "error": f"invalid configuration: {exc}", "field": exc.variable}
    except RequestError as exc:
        log.error("dropped an invalid request: %s", exc, extra={"fields": fields})
        return {"results": [], "error": str(exc), "field": exc.field}
    return {"results": [o.to_json() for o in outcomes]}
