"""The CloudEvent edge: Cloud Scheduler → Pub/Sub → `rebalance_pubsub`.

Raising makes Pub/Sub deliver the event again, so this raises only when a retry can help (a
dependency failed). Bad data, stale events and configuration errors are logged and acknowledged.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any

from pod_rebalancer.core.times import parse_time
from pod_rebalancer.errors import ConfigError, RequestError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import Outcome
from pod_rebalancer.runtime import Runtime
from pod_rebalancer.scheduled import run_scheduled
from pod_rebalancer.triggers import decode_json

MAX_EVENT_AGE = timedelta(minutes=10)


def _when(event: Any, message: dict[str, Any]) -> datetime | None:
    for raw in (event.get("time") if hasattr(event, "get") else None, message.get("publishTime")):
        stamp = parse_time(raw)
        if stamp is not None:
            return stamp
    return None


def decode_message(data: Any) -> tuple[dict[str, Any], Any]:
    """The Pub/Sub message and its JSON body (None when empty); RequestError when unreadable."""
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise RequestError("message", "the event carries no Pub/Sub message")
    message: dict[str, Any] = data["message"]
    raw = message.get("data") or ""
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8") if raw else ""
    except (binascii.Error, ValueError) as exc:
        raise RequestError("message.data", "is not base64-encoded UTF-8") from exc
    if not text.strip():
        return message, None
    try:
        return message, decode_json(text)
    except RequestError as exc:
        raise RequestError("message.data", exc.problem) from exc


def handle_cloud_event(event: Any, runtime: Runtime) -> list[Outcome]:
    log = get_logger()
    event_id = event.get("id") if hasattr(event, "get") else None
    fields: dict[str, Any] = {"event": "cloud_event", "event_id": event_id}
    try:
        message, body = decode_message(getattr(event, "data", None))
    except RequestError as exc:
        log.error("dropped an unreadable event: %s", exc, extra={"fields": fields})
        return []
    fields["message_id"] = message.get("messageId") or message.get("message_id")
    published = _when(event, message)
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
        log.error("dropped an invalid request: %s", exc, extra={"fields": fields})
    return []
