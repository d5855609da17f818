"""Figures the reliability suites report for `make reliability`'s summary table.

Under `make test` nothing is written. `make reliability` sets RELIABILITY_REPORT_DIR and a longer
hypothesis profile (HYPOTHESIS_PROFILE=reliability); each suite then leaves one JSON file there,
and infra/scripts/reliability.py prints the table from them.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from tests.shared import exclusive

REPORT_DIR = "RELIABILITY_REPORT_DIR"
_lock = threading.Lock()


def record(suite: str, **figures: Any) -> None:
    """Add `figures` to the suite's report (numbers add up across calls, lists are extended)."""
    directory = os.environ.get(REPORT_DIR)
    if not directory:
        return
    path = Path(directory) / f"{suite}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Threads of one process, and the xdist workers of one run, add to the same file.
    with _lock, exclusive(path.with_suffix(".lock")):
        current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        for key, value in figures.items():
            if isinstance(value, bool) or not isinstance(value, int | float | list):
                current[key] = value
            elif isinstance(value, list):
                current[key] = [*current.get(key, []), *value]
            else:
                current[key] = current.get(key, 0) + value
        path.write_text(json.dumps(current, indent=1))  # rows keep their column order
