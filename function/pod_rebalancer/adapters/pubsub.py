"""The audit trail: every report published to a Pub/Sub topic. The client is built on first use."""

from __future__ import annotations

import json
import threading
from typing import Any

from pod_rebalancer.errors import AuditError


class AuditPublisher:
    def __init__(self, topic: str, timeout: float = 10.0) -> None:
        self._topic = topic
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def topic(self) -> str:
        return self._topic

    def _publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                # Imported here: the Pub/Sub client costs ~0.45 s to import, paid only when used.
                from google.cloud import pubsub_v1  # noqa: PLC0415

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, record: dict[str, Any], attributes: dict[str, str]) -> str:
        """Publish one JSON record and wait for the server's message id, or raise AuditError."""
        data = json.dumps(record, separators=(",", ":"), default=str).encode()
        try:
            future = self._publisher().publish(self._topic, data, **attributes)
            return str(future.result(timeout=self._timeout))
        except Exception as exc:  # every client failure is the same to us: the record was lost
            raise AuditError(f"could not publish to {self._topic}: {exc}") from exc
