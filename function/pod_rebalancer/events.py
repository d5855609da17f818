"""The CloudEvent edge: Cloud Scheduler → Pub/Sub → `rebalance_pubsub`.

Raising makes Pub/Sub deliver the event again, so this raises only when a retry can help (a
dependency failed). Bad data, stale events and configuration errors are logged and acknowledged.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pod_rebalancer.errors import ConfigError, DependencyError, RequestError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import parse_manual

MAX_EVENT_AGE = timedelta(minutes=10)


class RetryableError(DependencyError):
    """Raised to the framework so that Pub/Sub redelivers the event later."""


def _when(event: Any, message: dict[str, Any]) -> datetime | None:
    for raw in (event.get("time") if hasattr(event, "get") else None, message.get("publishTime")):
        if isinstance(raw, str) and raw:
            try:
                stamp = datetime.fromisoformat(raw)
            except ValueError:
                continue
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
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
        return message, json.loads(text)
    except ValueError as exc:
        raise RequestError("message.data", f"is not JSON: {exc}") from exc


def handle_cloud_event(
    event: Any,
    service_of: Callable[[], Rebalancer],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Outcome]:
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
    if published is not None and now() - published > MAX_EVENT_AGE:
        log.warning(
            "dropped an event published %s ago (older than %s)",
            now() - published,
            MAX_EVENT_AGE,
            extra={"fields": fields},
        )
        return []
    try:
        service = service_of()
    except ConfigError as exc:
        log.critical("invalid configuration: %s", exc, extra={"fields": fields})
        return []
    try:
        request = parse_manual(body, {}, service.settings, source="scheduler")
    except RequestError as exc:
        log.error("dropped an invalid request: %s", exc, extra={"fields": fields})
        return []
    context = {"event_id": event_id, "message_id": fields["message_id"]}
    outcomes = service.run(dataclasses.replace(request, context=context))
    failed = [o for o in outcomes if o.retryable]
    if failed:
        raise RetryableError(
            "; ".join(f"{o.target}: {', '.join(o.errors.values())}" for o in failed)
        )
    return outcomes
