"""Invocations started at the same moment, as simultaneous deliveries reach separate instances."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pod_rebalancer.core.model import Target
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest


def at_once(services: Sequence[Rebalancer], target: Target, timeout: float = 60) -> list[Outcome]:
    """One real run of `target` per service, all released by one barrier; every outcome."""
    start = threading.Barrier(len(services))
    outcomes: list[Outcome] = []
    guard = threading.Lock()

    def invoke(service: Rebalancer) -> None:
        start.wait(timeout=30)
        result = service.run(RunRequest((target,), False, "test"))
        with guard:
            outcomes.extend(result)

    threads = [threading.Thread(target=invoke, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return outcomes
