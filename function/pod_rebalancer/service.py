"""The service: the one place that calls both the ports (metrics, cluster, clock) and the core.

Per target: allowed → Deployment found, not excluded, settled → not cooling down or locked →
pods all Ready → metrics → plan → (dry run: the same evictions sent with dryRun=All) or
(lock, evict with UID preconditions, stop at the first PDB refusal, unlock) → Event → report.
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pod_rebalancer import locking
from pod_rebalancer.adapters.kube import Deployment, EvictionResult, EvictionStatus
from pod_rebalancer.config import Settings
from pod_rebalancer.core import planner
from pod_rebalancer.core.guards import first_refusal, pods_not_ready, target_not_allowed
from pod_rebalancer.core.model import Plan, PodInfo, Reason, Target
from pod_rebalancer.errors import AuditError, DependencyError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import DEPENDENCY_UNAVAILABLE, Action, Outcome
from pod_rebalancer.triggers import RunRequest


class MetricsSource(Protocol):
    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]: ...


class ClusterPort(locking.LeaseStore, Protocol):
    def deployment(self, target: Target) -> Deployment | None: ...
    def pods(self, namespace: str, selector: str) -> list[PodInfo]: ...
    def evict(self, namespace: str, pod: str, uid: str, dry_run: bool) -> EvictionResult: ...
    def delete(self, namespace: str, pod: str, uid: str, dry_run: bool) -> EvictionResult: ...
    def event(
        self,
        deployment: Deployment,
        reason: str,
        message: str,
        *,
        warning: bool,
        now: datetime,
        instance: str,
    ) -> None: ...


class AuditSink(Protocol):
    @property
    def topic(self) -> str: ...
    def publish(self, record: dict[str, Any], attributes: dict[str, str]) -> str: ...


Clock = Callable[[], datetime]


class Writer:
    """Removes pods: by eviction or deletion, for real or as a server-side dry run (dryRun=All).

    A dry run is a different writer, not a flag threaded through the service: it sends the same
    requests, so RBAC, admission and PodDisruptionBudgets are still exercised, and changes nothing.
    """

    def __init__(self, cluster: ClusterPort, mode: str, dry_run: bool) -> None:
        self._remove = cluster.evict if mode == "evict" else cluster.delete
        self.dry_run = dry_run

    def remove(self, namespace: str, pod: PodInfo) -> EvictionResult:
        return self._remove(namespace, pod.name, pod.uid, self.dry_run)


@dataclass
class _Removal:
    evicted: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    blocked: bool = False
    failure: DependencyError | None = None


class Rebalancer:
    """Runs one invocation: for each target, measure, decide, act (or not), and report."""

    def __init__(
        self,
        settings: Settings,
        metrics: MetricsSource,
        cluster: ClusterPort,
        *,
        clock: Clock,
        log: logging.Logger | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._cluster = cluster
        self._clock = clock
        self._log = log or get_logger()
        self._audit = audit
        self._policy = settings.policy()

    @property
    def settings(self) -> Settings:
        return self._settings

    def close(self) -> None:
        """Release the clients' connections (tests and scripts; an instance keeps them)."""
        for port in (self._metrics, self._cluster):
            close = getattr(port, "close", None)
            if close is not None:
                close()

    def run(self, request: RunRequest) -> list[Outcome]:
        instance = f"{socket.gethostname()}-{secrets.token_hex(4)}"
        dry_run = self._settings.dry_run or request.dry_run  # a request never turns it off
        outcomes = []
        for outcome in self._outcomes(request, dry_run, instance):
            self._record(outcome, request, instance)  # logged and published as each is decided
            self._publish(outcome, request, instance)
            outcomes.append(outcome)
        return outcomes

    def _outcomes(self, request: RunRequest, dry_run: bool, instance: str) -> Iterator[Outcome]:
        for target in dict.fromkeys(request.targets):  # duplicates processed once, order kept
            try:
                yield self._one(target, dry_run, instance)
            except DependencyError as exc:
                yield Outcome(
                    target,
                    dry_run,
                    Action.FAILED,
                    DEPENDENCY_UNAVAILABLE,
                    errors={exc.dependency: str(exc)},
                    retryable=True,
                )
        for target in dict.fromkeys(request.resolved):
            yield Outcome(target, dry_run, Action.SKIPPED, Reason.ALERT_RESOLVED.value)

    def container_for(self, target: Target, deployment: Deployment | None = None) -> str:
        """The `container` label of the target's pods: CONTAINER_NAME for the default Deployment."""
        if target.deployment == self._settings.deployment_name:
            return self._settings.container
        containers = deployment.containers if deployment else ()
        if target.deployment not in containers and len(containers) == 1:
            return containers[0]
        return target.deployment

    def _one(self, target: Target, dry_run: bool, instance: str) -> Outcome:
        def skipped(reason: Reason, plan: Plan | None = None) -> Outcome:
            return Outcome(target, dry_run, Action.SKIPPED, reason.value, plan)

        refusal = target_not_allowed(target, self._settings.allow_list)
        if refusal is not None:
            return skipped(refusal)
        deployment = self._cluster.deployment(target)
        if deployment is None:
            return skipped(Reason.TARGET_NOT_FOUND)
        # The Lease first: right after a rebalance the replacements are still starting, and a
        # duplicate delivery should hear "cooldown", not the rollout that the eviction caused.
        now = self._clock()
        refusal = locking.check(self._cluster, target, instance, now, self._settings.cooldown)
        if refusal is not None:
            return skipped(refusal)
        refusal = first_refusal(deployment.state)
        if refusal is not None:
            return skipped(refusal)
        selector = self._selector(target, deployment)
        pods = self._cluster.pods(target.namespace, selector)
        refusal = pods_not_ready(pods)
        if refusal is not None:
            return skipped(refusal)
        samples = self._metrics.pod_cpu(
            target,
            self.container_for(target, deployment),
            self._settings.metrics_time_window,
            now,
        )
        plan = planner.plan(samples, pods, self._policy, now)
        if not plan.acts:
            return skipped(plan.reason, plan)
        by_name = {pod.name: pod for pod in pods}
        chosen = [by_name[s.pod] for s in plan.selected]
        writer = Writer(self._cluster, self._settings.eviction_mode, dry_run)
        if dry_run:
            removal = self._remove(writer, target, chosen)
            return self._dry_outcome(target, plan, removal)
        selection = ",".join(pod.name for pod in chosen)
        held = locking.acquire(
            self._cluster,
            target,
            me=instance,
            now=now,
            cooldown=self._settings.cooldown,
            selection=selection,
        )
        if isinstance(held, Reason):
            return skipped(held, plan)
        removal = _Removal()
        try:
            removal = self._remove(writer, target, chosen)
        finally:
            self._unlock(held, target, acted=bool(removal.evicted))
        outcome = self._real_outcome(target, plan, removal)
        self._announce(deployment, outcome, instance)
        return outcome

    def _selector(self, target: Target, deployment: Deployment) -> str:
        override = self._settings.kube_label_selector
        if override and target.deployment == self._settings.deployment_name:
            return override
        return deployment.selector

    def _remove(self, writer: Writer, target: Target, chosen: list[PodInfo]) -> _Removal:
        removal = _Removal()
        for pod in chosen:
            try:
                result = writer.remove(target.namespace, pod)
            except DependencyError as exc:
                # Fail closed: nothing more is removed once the API misbehaves.
                removal.errors[pod.name] = str(exc)
                removal.failure = exc
                break
            if result.status is EvictionStatus.EVICTED:
                removal.evicted.append(pod.name)
                continue
            removal.errors[pod.name] = f"{result.status.value}: {result.message}".rstrip(": ")
            if result.status is EvictionStatus.BLOCKED:
                # A PDB said no: the group cannot take more disruption now. Never retry in a loop.
                removal.blocked = True
                break
        return removal

    def _dry_outcome(self, target: Target, plan: Plan, removal: _Removal) -> Outcome:
        if removal.failure is not None:
            raise removal.failure
        if removal.blocked:
            return Outcome(
                target,
                True,
                Action.SKIPPED,
                Reason.EVICTION_BLOCKED.value,
                plan,
                errors=removal.errors,
            )
        return Outcome(
            target, True, Action.WOULD_REBALANCE, plan.reason.value, plan, errors=removal.errors
        )

    def _real_outcome(self, target: Target, plan: Plan, removal: _Removal) -> Outcome:
        evicted = tuple(removal.evicted)
        if not evicted:
            if removal.failure is not None:
                return Outcome(
                    target,
                    False,
                    Action.FAILED,
                    DEPENDENCY_UNAVAILABLE,
                    plan,
                    errors=removal.errors,
                    retryable=True,
                )
            reason = Reason.EVICTION_BLOCKED if removal.blocked else Reason.PARTIAL
            return Outcome(target, False, Action.SKIPPED, reason.value, plan, errors=removal.errors)
        reason = Reason.PARTIAL if removal.errors else plan.reason
        return Outcome(
            target, False, Action.REBALANCED, reason.value, plan, evicted, errors=removal.errors
        )

    def _unlock(self, held: locking.Held, target: Target, acted: bool) -> None:
        try:
            released = locking.release(self._cluster, held, self._clock(), acted)
        except DependencyError as exc:
            released = False
            self._log.warning("could not release the lock of %s: %s", target, exc)
        if not released:
            self._log.warning(
                "lock of %s left to expire after %s",
                target,
                locking.LOCK_TTL,
                extra={"fields": {"event": "lock_not_released", "target": str(target)}},
            )

    def _announce(self, deployment: Deployment, outcome: Outcome, instance: str) -> None:
        """An Event on the Deployment for every decision that acted or was blocked; best effort."""
        plan = outcome.plan
        value = ""
        if plan is not None and plan.value is not None:
            value = f"{plan.statistic.value} {plan.value:.4g} > {plan.threshold:g}"
        if outcome.action is Action.REBALANCED:
            reason, warning = "Rebalanced", bool(outcome.errors)
            message = f"evicted {', '.join(outcome.evicted)} ({value})"
        else:
            reason, warning = "RebalanceBlocked", True
            message = (
                f"{outcome.reason}: {'; '.join(f'{k}: {v}' for k, v in outcome.errors.items())}"
            )
        if outcome.errors and outcome.action is Action.REBALANCED:
            message += f"; not evicted: {', '.join(outcome.errors)}"
        try:
            self._cluster.event(
                deployment, reason, message, warning=warning, now=self._clock(), instance=instance
            )
        except DependencyError as exc:
            self._log.warning("could not record an Event on %s: %s", deployment.target, exc)

    def _publish(self, outcome: Outcome, request: RunRequest, instance: str) -> None:
        """Send the report to the audit topic; a failure is logged and changes nothing."""
        if self._audit is None:
            return
        record = {
            **outcome.to_json(),
            "source": request.source,
            "instance": instance,
            "time": self._clock().isoformat(),
            **request.context,
        }
        attributes = {
            "namespace": outcome.target.namespace,
            "deployment": outcome.target.deployment,
            "action": outcome.action.value,
            "reason": outcome.reason,
        }
        try:
            message_id = self._audit.publish(record, attributes)
        except AuditError as exc:
            self._log.error(
                "audit record lost: %s",
                exc,
                extra={"fields": {"event": "audit_failed", "target": str(outcome.target)}},
            )
            return
        self._log.debug("audit record %s published to %s", message_id, self._audit.topic)

    def _record(self, outcome: Outcome, request: RunRequest, instance: str) -> None:
        plan = outcome.plan
        fields: dict[str, Any] = {
            "event": "decision",
            "source": request.source,
            "instance": instance,
            "target": str(outcome.target),
            "action": outcome.action.value,
            "reason": outcome.reason,
            "dry_run": outcome.dry_run,
            "evicted": list(outcome.evicted),
            **request.context,
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
            if plan.expected_after is not None:
                fields["expected_after"] = plan.expected_after.value
        if outcome.errors:
            fields["errors"] = outcome.errors
        level = logging.ERROR if outcome.action is Action.FAILED else logging.INFO
        message = f"{outcome.target}: {outcome.action.value} ({outcome.reason})"
        self._log.log(level, message, extra={"fields": fields})
