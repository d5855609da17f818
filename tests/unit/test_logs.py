"""The project's logger writes to stdout as it is when a line is written."""

from __future__ import annotations

import io
import json
import sys

import pytest

from pod_rebalancer.logs import configure, get_logger


def test_a_logger_made_before_stdout_was_replaced_still_reaches_the_new_stdout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = get_logger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    before = io.StringIO()
    monkeypatch.setattr(sys, "stdout", before)
    configure("info")  # the handler is made while `before` is stdout
    after = io.StringIO()
    monkeypatch.setattr(sys, "stdout", after)  # a runtime's (or a test's) capture, later

    get_logger().info("decided", extra={"fields": {"event": "decision"}})

    assert before.getvalue() == ""
    (line,) = after.getvalue().splitlines()
    assert json.loads(line)["event"] == "decision"
