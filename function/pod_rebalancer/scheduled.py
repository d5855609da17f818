"""A scheduled run, whatever carried it (a Pub/Sub message, an EventBridge Scheduler input): the
manual body, no token. Raises only when a retry helps, so the platform delivers it again."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pod_rebalancer.errors import DependencyError, RetryableError
from pod_rebalancer.report import Outcome
from pod_rebalancer.runtime import Runtime
from pod_rebalancer.triggers import parse_manual


def run_scheduled(body: Any, runtime: Runtime, context: Mapping[str, Any]) -> list[Outcome]:
    """Run the body's target; RequestError/ConfigError for a permanent problem (the caller logs
    it and acknowledges), RetryableError when a dependency failed."""
    request = parse_manual(body, {}, runtime.settings(), source="scheduler")
    try:
        outcomes = runtime.service().run(dataclasses.replace(request, context=dict(context)))
    except DependencyError as exc:  # the service could not be built (GKE/EKS lookup)
        raise RetryableError(f"{exc.dependency} unavailable: {exc}") from exc
    raise_if_retryable(outcomes)
    return outcomes


def raise_if_retryable(outcomes: Sequence[Outcome]) -> None:
    """A dependency failed for some target: raise, so that the platform delivers the event again."""
    failed = [o for o in outcomes if o.retryable]
    if failed:
        raise RetryableError(
            "; ".join(
                f"{o.target}: " + ", ".join(f"{dep} {problem}" for dep, problem in o.errors.items())
                for o in failed
            )
        )
