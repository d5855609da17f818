"""The service: the one place that calls both the ports (metrics, cluster, clock) and the core."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from pod_rebalancer.config import Settings
from pod_rebalancer.core import planner
from pod_rebalancer.core.guards import target_not_allowed
from pod_rebalancer.core.model import Plan, Target
from pod_rebalancer.errors import DependencyError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import DEPENDENCY_UNAVAILABLE, Action, Outcome
from pod_rebalancer.triggers import RunRequest


class MetricsSource(Protocol):
    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]: ...


Clock = Callable[[], datetime]


class Rebalancer:
    """Runs one invocation: for each target, measure, decide and (later) act, then report."""

    def __init__(
        self,
        settings: Settings,
        metrics: MetricsSource,
        clock: Clock,
        log: logging.Logger | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._log = log or get_logger()
        self._policy = settings.policy()

    @property
    def settings(self) -> Settings:
        return self._settings

    def run(self, request: RunRequest, context: dict[str, Any] | None = None) -> list[Outcome]:
        outcomes = []
        for target in dict.fromkeys(request.targets):  # duplicates processed once, order kept
            outcome = self._one(target, request)
            self._record(outcome, request, context or {})
            outcomes.append(outcome)
        return outcomes

    def container_for(self, target: Target) -> str:
        """The `container` label of the target's pods: CONTAINER_NAME for the default Deployment."""
        if target.deployment == self._settings.deployment_name:
            return self._settings.container
        return target.deployment

    def _one(self, target: Target, request: RunRequest) -> Outcome:
        # Until the cluster writer exists every run is a dry run, whatever was asked.
        dry_run = True
        refusal = target_not_allowed(target, self._settings.allow_list)
        if refusal is not None:
            return Outcome(target, dry_run, Action.SKIPPED, refusal.value)
        now = self._clock()
        try:
            samples = self._metrics.pod_cpu(
                target, self.container_for(target), self._settings.metrics_time_window, now
            )
        except DependencyError as exc:
            return Outcome(
                target,
                dry_run,
                Action.FAILED,
                DEPENDENCY_UNAVAILABLE,
                errors={exc.dependency: str(exc)},
                retryable=True,
            )
        plan = planner.plan(samples, None, self._policy, now)
        return self._decide(target, plan, dry_run)

    def _decide(self, target: Target, plan: Plan, dry_run: bool) -> Outcome:
        if not plan.acts:
            return Outcome(target, dry_run, Action.SKIPPED, plan.reason.value, plan)
        return Outcome(target, dry_run, Action.WOULD_REBALANCE, plan.reason.value, plan)

    def _record(self, outcome: Outcome, request: RunRequest, context: dict[str, Any]) -> None:
        plan = outcome.plan
        fields: dict[str, Any] = {
            "event": "decision",
            "source": request.source,
            "target": str(outcome.target),
            "action": outcome.action.value,
            "reason": outcome.reason,
            "dry_run": outcome.dry_run,
            **context,
        }
        if plan is not None:
            fields.update(
                statistic=plan.statistic.value,
                value=plan.value,
                threshold=plan.threshold,
                pods=plan.summary.count if plan.summary else 0,
                selected=[{"pod": s.pod, "cpu": s.cpu, "role": s.role} for s in plan.selected],
                ignored_pods=plan.ignored,
            )
        if outcome.errors:
            fields["errors"] = outcome.errors
        level = logging.ERROR if outcome.action is Action.FAILED else logging.INFO
        message = f"{outcome.target}: {outcome.action.value} ({outcome.reason})"
        self._log.log(level, message, extra={"fields": fields})
