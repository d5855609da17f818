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
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

from pod_rebalancer import locking, telemetry
from pod_rebalancer.actuators import Actuator, DryRun, RealRun
from pod_rebalancer.budget import RunBudget
from pod_rebalancer.config import Settings
from pod_rebalancer.core import effect, planner, score
from pod_rebalancer.core.container import container_label
from pod_rebalancer.core.cooldown import lease_refusal
from pod_rebalancer.core.model import (
    Deployment,
    Effect,
    HpaTarget,
    LastRebalance,
    LeaseState,
    Plan,
    PodInfo,
    Reason,
    Target,
)
from pod_rebalancer.core.target_guards import (
    changed_since,
    first_refusal,
    pod_selector,
    pods_not_ready,
    target_not_allowed,
)
from pod_rebalancer.errors import AuditError, DependencyError, TelemetryError
from pod_rebalancer.eviction import Removals, outcome_of, remove_in_order
from pod_rebalancer.logs import get_logger
from pod_rebalancer.ports import (
    AuditSink,
    Clock,
    ClusterPort,
    EventNote,
    MetricsSink,
    MetricsSource,
)
from pod_rebalancer.records import (
    LogLine,
    audit_record,
    backoff_event,
    decision_lines,
    effect_event,
    run_log,
)
from pod_rebalancer.report import Action, Outcome
from pod_rebalancer.sweep import discover, in_parallel
from pod_rebalancer.triggers import RunRequest


@dataclass(frozen=True, slots=True)
class Decision:
    """A plan that acts, with the facts the actuator needs."""

    deployment: Deployment
    plan: Plan
    chosen: tuple[PodInfo, ...]  # the selected pods, in the plan's order
    last: LastRebalance | None = None  # the previous rebalance, as this run found or judged it
    judged: bool = False  # this run judged `last` and recorded it

    def expected(self) -> Effect | None:
        """What this rebalance expects, kept in the Lease to be measured later."""
        plan = self.plan
        if plan.value is None or plan.expected_after is None:
            return None
        return Effect(
            plan.measured_as or plan.statistic.value, plan.value, plan.expected_after.value
        )


def remembered(lease: LeaseState | None) -> LastRebalance | None:
    """The previous rebalance as the Lease remembers it, for the report."""
    if lease is None or lease.effect is None or lease.last_rebalance is None:
        return None
    note = "" if lease.effect.measured else "not measured yet"
    return LastRebalance(lease.last_rebalance, lease.effect, note)


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
        pushgateway: MetricsSink | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._cluster = cluster
        self._clock = clock
        self._log = log or get_logger()
        self._audit = audit
        self._pushgateway = pushgateway
        self._timer = timer
        self._policy = settings.policy()
        # For the reads that overlap the pod list within one decision (the CPU query, the other
        # signals' queries, the HPA read under hpa_target), for each target a sweep works on at
        # once; never a task that waits on one, so it cannot deadlock when all are busy.
        reads = 1 + len(settings.signal_queries) + (settings.imbalance_policy == "hpa_target")
        self._reads = ThreadPoolExecutor(
            max_workers=settings.sweep_concurrency * reads, thread_name_prefix="rebalancer-read"
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
        started = self._timer()
        instance = f"{socket.gethostname()}-{secrets.token_hex(4)}"
        actuator = self._actuator(self._settings.dry_run or request.dry_run, instance)
        budget = RunBudget(self._settings.run_pod_budget)

        def decided(outcome: Outcome) -> Outcome:
            self._record(outcome, request, instance)  # logged and published as each is decided
            self._publish(outcome, request, instance)
            return outcome

        outcomes = self._outcomes(request, actuator, instance, budget, decided)
        duration = round(self._timer() - started, 6)  # a microsecond is precise enough
        self._write(run_log(request, instance, len(outcomes), duration))
        self._push(outcomes, duration, request.source)
        return outcomes

    def _push(self, outcomes: list[Outcome], duration: float, source: str) -> None:
        """The run's own metrics to the Pushgateway; a failure is logged and changes nothing."""
        if self._pushgateway is None:
            return
        samples = telemetry.run_samples([o.record_json() for o in outcomes], duration, source)
        try:
            self._pushgateway.push(samples)
        except TelemetryError as exc:
            self._log.warning(
                "metrics not pushed: %s", exc, extra={"fields": {"event": "push_failed"}}
            )

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
        """Guards → measure → judge the last rebalance → plan: a Decision that acts, or the skip
        that says why not."""
        settings = self._settings
        last: LastRebalance | None = None  # reported on every result once the Lease is read
        judged = False  # this invocation judged `last` and recorded it

        def skipped(
            reason: Reason, plan: Plan | None = None, errors: dict[str, str] | None = None
        ) -> Outcome:
            return Outcome(
                target,
                dry_run,
                Action.SKIPPED,
                reason.value,
                plan,
                errors=errors or {},
                last_rebalance=last,
                judged=judged,
            )

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
        lease = locking.read(self._cluster, target)
        last = remembered(lease)
        refusal = lease_refusal(lease, instance, now, settings.cooldown)
        if refusal is not None:
            return skipped(refusal)
        if self._backing_off(lease, now):
            return self._not_effective(deployment, skipped(Reason.NOT_EFFECTIVE), dry_run, instance)
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
        gathered = self._start_reads(deployment, container, now)
        pods = self._cluster.pods(target.namespace, selector)
        refusal = pods_not_ready(pods)
        if refusal is not None:
            # Pods starting because another invocation just rebalanced (it took the Lease after
            # this one read it): that is the truer answer for a duplicate delivery.
            again = locking.blocked_by_lease(
                self._cluster, target, instance, self._clock(), settings.cooldown
            )
            return skipped(again or refusal)
        samples, signals, hpa = gathered()
        if lease is not None and last is not None and not last.effect.measured:
            judged_on = self._judged(samples, signals, pods)
            last, after = self._measure(lease, last, pods, judged_on, now)
            if last.effect.measured and not dry_run:
                judged = self._remember(deployment, last, after, instance)
            if self._backing_off(after, now):
                return self._not_effective(
                    deployment, skipped(Reason.NOT_EFFECTIVE), dry_run, instance
                )
        plan = planner.plan(samples, pods, self._policy, now, signals=signals, hpa=hpa)
        if not plan.acts:
            return skipped(plan.reason, plan)
        by_name = {pod.name: pod for pod in pods}
        chosen = tuple(by_name[s.pod] for s in plan.selected)
        return Decision(deployment, plan, chosen, last, judged)

    def _start_reads(
        self, deployment: Deployment, container: str, now: datetime
    ) -> Callable[[], tuple[dict[str, float], dict[str, dict[str, float]], HpaTarget | None]]:
        """The CPU query, the other signals' queries and (hpa_target) the HPA read, started on
        the read pool; the answer waits for them all (and raises what any of them raised)."""
        settings, target = self._settings, deployment.target
        window = settings.metrics_time_window
        cpu = self._reads.submit(self._metrics.pod_cpu, target, container, window, now)
        others = {
            name: self._reads.submit(
                self._metrics.pod_signal, template, target, container, window, now
            )
            for name, template in settings.signal_queries.items()
        }
        hpa: Future[HpaTarget | None] | None = None
        if settings.imbalance_policy == "hpa_target":
            name = deployment.hpa or target.deployment
            hpa = self._reads.submit(self._cluster.hpa, target, name)

        def gathered() -> tuple[dict[str, float], dict[str, dict[str, float]], HpaTarget | None]:
            samples = cpu.result()
            signals = {signal: future.result() for signal, future in others.items()}
            return samples, signals, hpa.result() if hpa is not None else None

        return gathered

    # The closed loop (core/effect.py): measure the previous rebalance, remember, back off.

    def _judged(
        self,
        samples: Mapping[str, float],
        signals: Mapping[str, Mapping[str, float]],
        pods: list[PodInfo],
    ) -> Mapping[str, float]:
        """Per pod, what the last rebalance is judged on: CPU, or the score when it decides."""
        policy = self._policy
        if policy.measured_as == policy.statistic.value:
            return samples
        live = [pod.name for pod in pods if pod.ready and not pod.terminating]
        return score.per_pod({"cpu": samples, **signals}, policy.weights, live)

    def _backing_off(self, lease: LeaseState | None, now: datetime) -> bool:
        settings = self._settings
        return effect.backing_off(
            lease, now, settings.max_ineffective_rebalances, settings.ineffective_backoff
        )

    def _measure(
        self,
        lease: LeaseState,
        last: LastRebalance,
        pods: list[PodInfo],
        samples: Mapping[str, float],
        now: datetime,
    ) -> tuple[LastRebalance, LeaseState]:
        """The previous rebalance judged now if it can be (else a note why not), and the Lease's
        state as it is after the judgement."""
        settings = self._settings
        statistic = settings.imbalance_statistic
        measured_as = self._policy.measured_as
        note = effect.too_early(last.effect, last.at, pods, settings.metrics_time_window, now)
        if note is None and last.effect.statistic != measured_as:
            note = (
                f"not judged: measured with {last.effect.statistic or 'another statistic'}, "
                f"now {measured_as}"
            )
        achieved = None if note is not None else effect.achieved_value(samples, pods, statistic)
        if note is None and achieved is None:
            note = "not judged: fewer than two Ready pods with metrics"
        judged = None
        if achieved is not None:
            judged = effect.judge(lease, achieved, settings.min_improvement_percent, now)
            if judged is None:
                note = "not judged: the statistic before was 0, so no improvement can be computed"
        if judged is None:
            return replace(last, note=note or ""), lease
        after = replace(
            lease,
            effect=judged.effect,
            ineffective=judged.ineffective,
            last_ineffective=judged.last_ineffective,
        )
        return LastRebalance(last.at, judged.effect), after

    def _remember(
        self, deployment: Deployment, last: LastRebalance, after: LeaseState, instance: str
    ) -> bool:
        """Write the measurement into the Lease and announce it; a lost race changes nothing.
        True when this invocation recorded it (and so is the one that counts it)."""
        judged = effect.Judged(last.effect, after.ineffective, after.last_ineffective)
        target = deployment.target
        if not locking.record_effect(self._cluster, target, judged, instance):
            self._log.info("%s: the Lease changed meanwhile; measurement not recorded", target)
            return False
        note = effect_event(last)
        if note is not None:
            self._event(deployment, note, instance)
        return True

    def _not_effective(
        self, deployment: Deployment, outcome: Outcome, dry_run: bool, instance: str
    ) -> Outcome:
        """Left alone: the result says what to look at, and a real run leaves a Warning Event."""
        advice = effect.ADVICE
        last = outcome.last_rebalance
        if last is not None:
            last = replace(last, note=f"{last.note}; {advice}" if last.note else advice)
        outcome = replace(outcome, last_rebalance=last)
        if not dry_run:
            hours = self._settings.ineffective_backoff.total_seconds() / 3600
            self._event(deployment, backoff_event(advice, f"{hours:g}h"), instance)
        return outcome

    def _event(self, deployment: Deployment, note: EventNote, instance: str) -> None:
        """An Event on the Deployment; best effort, as every Event is."""
        try:
            self._cluster.event(deployment, note, now=self._clock(), instance=instance)
        except DependencyError as exc:
            self._log.warning("could not record an Event on %s: %s", deployment.target, exc)

    def _act(self, decision: Decision, actuator: Actuator) -> Outcome:
        """Lock, remove in order, unlock, announce: the same path for dry and real runs."""
        plan, target = decision.plan, decision.deployment.target
        selection = tuple(pod.name for pod in decision.chosen)
        hold = actuator.lock(target, selection, decision.expected())
        if isinstance(hold, Reason):
            return Outcome(
                target,
                actuator.dry_run,
                Action.SKIPPED,
                hold.value,
                plan,
                last_rebalance=decision.last,
                judged=decision.judged,
            )
        removals = Removals()

        def recheck(disrupted: int) -> Reason | None:
            """The Deployment as it is now, against the one the plan was made for."""
            now = self._cluster.deployment(target)
            state = None if now is None else now.state
            return changed_since(decision.deployment.state, state, disrupted)

        try:
            removals = remove_in_order(actuator.remover, target.namespace, decision.chosen, recheck)
        finally:
            actuator.unlock(hold, target, evicted=(*removals.removed, *removals.unsure))
        outcome = outcome_of(target, plan, removals, dry_run=actuator.dry_run)
        outcome = replace(outcome, last_rebalance=decision.last, judged=decision.judged)
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
        for line in decision_lines(outcome, request, instance):
            self._write(line)

    def _write(self, line: LogLine) -> None:
        level, message, fields, samples = line
        self._log.log(level, message, extra={"fields": fields, "samples": samples})
