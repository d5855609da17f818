"""The service: the one place that calls both the ports and the core. Orchestration only.

Per target, `_decide` gathers the facts and lets the core judge them: allowed → Deployment found
→ not cooling down or locked → not excluded, settled → pods all Ready → metrics → plan. Then `_act`
runs the plan through the actuator chosen once for the run (dry or real): lock, remove in order
(the Deployment read again before each removal after the first), unlock, announce. Each outcome
is logged and published as soon as it is decided.

The targets of one run share its budget of pods (budget.py): a target acts only if its selection
fits in what is left. A sweep finds its targets first and works on several at once (sweep.py).
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pod_rebalancer import locking
from pod_rebalancer.actuators import Actuator, DryRun, RealRun
from pod_rebalancer.budget import RunBudget
from pod_rebalancer.config import Settings
from pod_rebalancer.core import planner
from pod_rebalancer.core.container import container_label
from pod_rebalancer.core.model import Deployment, Plan, PodInfo, Reason, Target
from pod_rebalancer.core.target_guards import (
    changed_since,
    first_refusal,
    pod_selector,
    pods_not_ready,
    target_not_allowed,
)
from pod_rebalancer.errors import AuditError, DependencyError
from pod_rebalancer.eviction import Removals, outcome_of, remove_in_order
from pod_rebalancer.logs import get_logger
from pod_rebalancer.ports import AuditSink, Clock, ClusterPort, MetricsSource
from pod_rebalancer.records import audit_record, decision_log
from pod_rebalancer.report import Action, Outcome
from pod_rebalancer.sweep import discover, in_parallel
from pod_rebalancer.triggers import RunRequest


@dataclass(frozen=True, slots=True)
class Decision:
    """A plan that acts, with the facts the actuator needs."""

    deployment: Deployment
    plan: Plan
    chosen: tuple[PodInfo, ...]  # the selected pods, in the plan's order


class Rebalancer:
    """Runs one invocation: for each target, decide, act (or not), and report."""

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
        # For the read that overlaps another within one decision (one per target a sweep works
        # on at once); never a task that waits on one, so it cannot deadlock when all are busy.
        self._reads = ThreadPoolExecutor(
            max_workers=settings.sweep_concurrency, thread_name_prefix="rebalancer-read"
        )

    @property
    def settings(self) -> Settings:
        return self._settings

    def close(self) -> None:
        """Release the clients' connections (tests and scripts; an instance keeps them)."""
        self._reads.shutdown(wait=True)
        for port in (self._metrics, self._cluster):
            close = getattr(port, "close", None)
            if close is not None:
                close()

    def run(self, request: RunRequest) -> list[Outcome]:
        """Every target of the request (a sweep's found first), under one budget of pods.

        ConfigError when a sweep's allow-list names no namespace it can list, DependencyError
        when its Deployments cannot be listed: either way before anything is done.
        """
        instance = f"{socket.gethostname()}-{secrets.token_hex(4)}"
        actuator = self._actuator(self._settings.dry_run or request.dry_run, instance)
        budget = RunBudget(self._settings.run_pod_budget)

        def decided(outcome: Outcome) -> Outcome:
            self._record(outcome, request, instance)  # logged and published as each is decided
            self._publish(outcome, request, instance)
            return outcome

        return self._outcomes(request, actuator, instance, budget, decided)

    def _actuator(self, dry_run: bool, instance: str) -> Actuator:
        """The one dry-run/real choice of the run; a request never turns DRY_RUN off."""
        remover = self._cluster.remover(self._settings.eviction_mode, dry_run=dry_run)
        if dry_run:
            return DryRun(remover)
        return RealRun(
            self._cluster,
            remover,
            instance=instance,
            cooldown=self._settings.cooldown,
            clock=self._clock,
            log=self._log,
        )

    def _outcomes(
        self,
        request: RunRequest,
        actuator: Actuator,
        instance: str,
        budget: RunBudget,
        decided: Callable[[Outcome], Outcome],
    ) -> list[Outcome]:
        """A sweep's targets by namespace and name, SWEEP_CONCURRENCY at a time; a payload's
        one after the other, in its order (duplicates processed once)."""
        if request.sweep:
            targets = discover(self._cluster, self._settings.allow_list, self._log)
            concurrency = self._settings.sweep_concurrency
        else:
            targets = tuple(dict.fromkeys(request.targets))
            concurrency = 1
        outcomes = in_parallel(
            targets,
            lambda target: decided(self._rebalance(target, actuator, instance, budget)),
            concurrency,
        )
        for target in dict.fromkeys(request.resolved):
            resolved = Outcome(
                target, actuator.dry_run, Action.SKIPPED, Reason.ALERT_RESOLVED.value
            )
            outcomes.append(decided(resolved))
        return outcomes

    def _rebalance(
        self, target: Target, actuator: Actuator, instance: str, budget: RunBudget
    ) -> Outcome:
        try:
            decided = self._decide(target, instance, actuator.dry_run)
            if isinstance(decided, Outcome):
                return decided
            return self._act_within(budget, decided, actuator)
        except DependencyError as exc:
            return Outcome.unavailable(target, actuator.dry_run, exc)

    def _act_within(self, budget: RunBudget, decision: Decision, actuator: Actuator) -> Outcome:
        """Act only if the whole selection fits in what is left of the run's budget; give back
        what was not removed. Reserved before the lock, so targets acting at the same time can
        never remove more than MAX_PODS_PER_RUN between them."""
        planned = len(decision.chosen)
        if not budget.reserve(planned):
            limit = budget.limit
            return Outcome(
                decision.deployment.target,
                actuator.dry_run,
                Action.SKIPPED,
                Reason.RUN_BUDGET_EXHAUSTED.value,
                decision.plan,
                errors={
                    "budget": f"MAX_PODS_PER_RUN={limit}: {budget.left} of the run's {limit} pods "
                    f"left, {planned} planned here"
                },
            )
        used = planned  # a bug (any other exception) keeps the reservation: fail closed
        try:
            outcome = self._act(decision, actuator)
            used = outcome.disrupted
            return outcome
        except DependencyError:
            used = 0  # only taking the lock raises out of _act: before the first removal
            raise
        finally:
            budget.give_back(planned - used)

    def _decide(self, target: Target, instance: str, dry_run: bool) -> Decision | Outcome:
        """Guards → measure → plan: a Decision that acts, or the skip that says why not."""
        settings = self._settings

        def skipped(
            reason: Reason, plan: Plan | None = None, errors: dict[str, str] | None = None
        ) -> Outcome:
            return Outcome(target, dry_run, Action.SKIPPED, reason.value, plan, errors=errors or {})

        refusal = target_not_allowed(target, settings.allow_list)
        if refusal is not None:
            return skipped(refusal)
        deployment = self._cluster.deployment(target)
        if deployment is None:
            return skipped(Reason.TARGET_NOT_FOUND)
        # The Lease first: right after a rebalance the replacements are still starting, and a
        # duplicate delivery should hear "cooldown", not the rollout that the eviction caused.
        # It is read after the Deployment, not beside it: read earlier, a duplicate racing the
        # winner would miss its stamp and then list the pods it evicted (pods_not_ready).
        now = self._clock()
        refusal = locking.blocked_by_lease(self._cluster, target, instance, now, settings.cooldown)
        if refusal is not None:
            return skipped(refusal)
        refusal = first_refusal(deployment.state)
        if refusal is not None:
            return skipped(refusal)
        selector = pod_selector(
            deployment,
            default_deployment=settings.deployment_name,
            override=settings.kube_label_selector,
        )
        if selector is None:
            return skipped(
                Reason.UNSUPPORTED_SELECTOR, errors={"selector": deployment.selector_problem}
            )
        container = container_label(
            target,
            deployment.containers,
            default_deployment=settings.deployment_name,
            configured=settings.container_name,
        )
        if container is None:
            problem = (
                f"containers {', '.join(deployment.containers) or '(none)'}: none is named "
                f"{target.deployment!r}, so which one to measure is ambiguous"
            )
            return skipped(Reason.NO_METRICS, errors={"container": problem})
        # The metrics query runs while the pods are listed: independent reads, and the result is
        # looked at only where it was read before, so what a failure of either means is unchanged.
        measured = self._reads.submit(
            self._metrics.pod_cpu, target, container, settings.metrics_time_window, now
        )
        pods = self._cluster.pods(target.namespace, selector)
        refusal = pods_not_ready(pods)
        if refusal is not None:
            # Pods starting because another invocation just rebalanced (it took the Lease after
            # this one read it): that is the truer answer for a duplicate delivery.
            again = locking.blocked_by_lease(
                self._cluster, target, instance, self._clock(), settings.cooldown
            )
            return skipped(again or refusal)
        samples = measured.result()
        plan = planner.plan(samples, pods, self._policy, now)
        if not plan.acts:
            return skipped(plan.reason, plan)
        by_name = {pod.name: pod for pod in pods}
        return Decision(deployment, plan, tuple(by_name[s.pod] for s in plan.selected))

    def _act(self, decision: Decision, actuator: Actuator) -> Outcome:
        """Lock, remove in order, unlock, announce: the same path for dry and real runs."""
        plan, target = decision.plan, decision.deployment.target
        hold = actuator.lock(target, tuple(pod.name for pod in decision.chosen))
        if isinstance(hold, Reason):
            return Outcome(target, actuator.dry_run, Action.SKIPPED, hold.value, plan)
        removals = Removals()

        def recheck(disrupted: int) -> Reason | None:
            """The Deployment as it is now, against the one the plan was made for."""
            now = self._cluster.deployment(target)
            state = None if now is None else now.state
            return changed_since(decision.deployment.state, state, disrupted)

        try:
            removals = remove_in_order(actuator.remover, target.namespace, decision.chosen, recheck)
        finally:
            actuator.unlock(hold, target, acted=removals.acted)
        outcome = outcome_of(target, plan, removals, dry_run=actuator.dry_run)
        actuator.announce(decision.deployment, outcome)
        return outcome

    def _publish(self, outcome: Outcome, request: RunRequest, instance: str) -> None:
        """Send the report to the audit topic; a failure is logged and changes nothing."""
        if self._audit is None:
            return
        record, attributes = audit_record(outcome, request, instance, self._clock())
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
        level, message, fields = decision_log(outcome, request, instance)
        self._log.log(level, message, extra={"fields": fields})
