"""The run's budget: MAX_PODS_PER_RUN pods, shared by every target of one run (a sweep, or an
Alertmanager payload naming several), whichever thread each target runs on.

A target reserves its whole selection before it takes its lock, and gives back what it did not
remove once it is done; so targets working at the same time can never remove more than the
budget between them, and a target whose selection no longer fits is skipped
(`run_budget_exhausted`) rather than cut short: its plan was judged for the whole selection.
"""

from __future__ import annotations

import threading


class RunBudget:
    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a budget of {limit} pods")
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        with self._lock:
            return self._left

    def reserve(self, pods: int) -> bool:
        """Take `pods` from the budget, all or none; False (nothing taken) when they don't fit."""
        if pods < 0:
            raise ValueError(f"cannot reserve {pods} pods")
        with self._lock:
            if pods > self._left:
                return False
            self._left -= pods
            return True

    def give_back(self, pods: int) -> None:
        """Return reserved pods that were not removed after all (nothing sent, refused, gone)."""
        if pods < 0:
            raise ValueError(f"cannot give back {pods} pods")
        with self._lock:
            if self._left + pods > self.limit:
                raise ValueError(f"giving back {pods} pods would exceed the budget of {self.limit}")
            self._left += pods
