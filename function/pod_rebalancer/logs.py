"""Structured logs: one JSON object per line, in the shape Cloud Logging parses from stdout.

Pass fields with `log.info("message", extra={"fields": {...}})`. Secrets never reach a record:
Settings keeps them as SecretStr and nothing here formats Settings.

On AWS Lambda the lines that carry metric samples (`extra={"samples": [...]}`, see telemetry.py)
are also CloudWatch embedded metric format, once the Lambda edge called `embed_metrics`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pod_rebalancer import telemetry

LOGGER_NAME = "pod_rebalancer"
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


# The CloudWatch namespace of the embedded metrics; None: samples are not written (not on Lambda).
_embedded: dict[str, str | None] = {"namespace": None}


def embed_metrics(namespace: str | None) -> None:
    """Write the samples of each line as CloudWatch embedded metrics in `namespace` (None: stop)."""
    _embedded["namespace"] = namespace


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        namespace = _embedded["namespace"]
        samples = getattr(record, "samples", None)
        if namespace is None or not samples:
            return _line(entry)
        stamp = round(record.created * 1000)
        first, *more = telemetry.embedded_documents(samples, namespace, stamp)
        lines = [_line({**entry, **first})]
        lines += [_line({"event": "metrics", "time": entry["time"], **doc}) for doc in more]
        return "\n".join(lines)


def _line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, default=str, separators=(",", ":"))


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to `sys.stdout` as it is when the line is written, not when the handler
    was made: whoever replaces stdout later (a runtime's log capture, a test's) still gets the
    lines."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stdout


def get_logger() -> logging.Logger:
    """The project's logger, writing JSON lines from the first call (INFO until configured)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not _has_json_handler(logger):
        configure("info")
    return logger


def _has_json_handler(logger: logging.Logger) -> bool:
    return any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers)


def configure(level: str = "info") -> logging.Logger:
    """Route the project's logger to stdout as JSON lines at `level`; idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    if not _has_json_handler(logger):
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = False
    return logger
