"""The CloudEvent edge: Cloud Scheduler → Pub/Sub → `rebalance_pubsub`.

Raising makes Pub/Sub deliver the event again, so this raises only when a retry can help (a
dependency failed). Bad data, stale events and configuration errors are logged and acknowledged.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from pod_rebalancer.core.times import parse_time
from pod_rebalancer.errors import ConfigError, RequestError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import Outcome
from pod_rebalancer.runtime import Runtime
from pod_rebalancer.scheduled import run_scheduled
from pod_rebalancer.triggers import clip, decode_json

MAX_EVENT_AGE = timedelta(minutes=10)


def _when(event: Any, message: dict[str, Any]) -> datetime | None:
    """The event's time, else the message's publish time, else None (the age is unknown).

    A time that is there but unreadable is a RequestError naming it: the age guard cannot judge
    an event it cannot date, so such an event is dropped rather than run.
    """
    event_time = event.get("time") if hasattr(event, "get") else None
    for name, raw in (("time", event_time), ("message.publishTime", message.get("publishTime"))):
        if raw is None or raw == "":
            continue
        stamp = parse_time(raw)
        if stamp is None:
            raise RequestError(name, "is not an RFC 3339 time")
        return stamp
    return None


def decode_message(data: Any) -> tuple[dict[str, Any], Any]:
    """The Pub/Sub message and its JSON body (None when empty); RequestError when unreadable."""
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise RequestError("message", "the event carries no Pub/Sub message")
    message: dict[str, Any] = data["message"]
    raw = message.get("data")
    if raw is None or raw == "":
        return message, None
    if not isinstance(raw, str):
        raise RequestError("message.data", "must be a base64-encoded string")
    try:
        body = base64.b64decode(raw, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not ASCII
        raise RequestError("message.data", "is not base64-encoded") from exc
    if not body.strip():
        return message, None
    try:
        return message, decode_json(body)
    except RequestError as exc:
        # A duplicated key is named by its own path; anything else is the data's problem.
        raise RequestError(
            "message.data" if exc.field == "body" else exc.field, exc.problem
        ) from exc


def _identifier(value: Any) -> str | None:
    """An id the sender chose, as logged: text, and short enough for a log line."""
    return None if value is None or value == "" else clip(str(value), 128)


def handle_cloud_event(event: Any, runtime: Runtime) -> list[Outcome]:
    log = get_logger()
    event_id = _identifier(event.get("id") if hasattr(event, "get") else None)
    fields: dict[str, Any] = {"event": "cloud_event", "event_id": event_id}
    try:
        message, body = decode_message(getattr(event, "data", None))
        fields["message_id"] = _identifier(message.get("messageId") or message.get("message_id"))
        published = _when(event, message)
    except RequestError as exc:
        fields["field"] = exc.field
        log.error("dropped an unreadable event: %s", exc, extra={"fields": fields})
        return []
    age = runtime.now() - published if published is not None else None
    if age is not None and age > MAX_EVENT_AGE:
        log.warning(
            "dropped an event published %s ago (older than %s)",
            age,
            MAX_EVENT_AGE,
            extra={"fields": fields},
        )
        return []
    context = {"event_id": event_id, "message_id": fields["message_id"]}
    try:
        return run_scheduled(body, runtime, context)
    except ConfigError as exc:
        log.critical("invalid configuration: %s", exc, extra={"fields": fields})
    except RequestError as exc:
        fields["field"] = exc.field
        log.error("dropped an invalid request: %s", exc, extra={"fields": fields})
    return []


def unreadable_envelope(problem: str) -> str:
    """Log a request the framework could not read as a CloudEvent, and the answer to give it.

    `problem` must not quote the request: its headers may carry a caller's bearer token.
    """
    get_logger().error(
        "dropped an unreadable event: %s",
        problem,
        extra={"fields": {"event": "cloud_event", "field": "body"}},
    )
    return f"the request is not a readable CloudEvent: {problem}"
