"""What each decision leaves behind, as pure functions of the Outcome: the decision log line, the
audit record and the Kubernetes Event. The service sends them; nothing here does I/O."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pod_rebalancer import telemetry
from pod_rebalancer.core.model import LastRebalance
from pod_rebalancer.ports import EventNote
from pod_rebalancer.report import Action, Outcome, last_rebalance_json, selected_json
from pod_rebalancer.triggers import RunRequest

# A log line: level, message, fields, and the metric samples it carries (telemetry.py).
LogLine = tuple[int, str, dict[str, Any], list[telemetry.Sample]]


def decision_log(
    outcome: Outcome, request: RunRequest, instance: str
) -> tuple[int, str, dict[str, Any]]:
    """Level, message and fields of the one structured log line per decision."""
    plan = outcome.plan
    fields: dict[str, Any] = {
        "event": "decision",
        "source": request.source,
        "instance": instance,
        "target": str(outcome.target),
        # Separately too: what the log-based metrics and the embedded metrics take as labels.
        "namespace": outcome.target.namespace,
        "deployment": outcome.target.deployment,
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
            selected=selected_json(plan),
            ignored_pods=plan.ignored,
        )
        if plan.expected_after is not None:
            fields["expected_after"] = plan.expected_after.value
    dependencies = telemetry.failed_dependencies(outcome.to_json())
    if dependencies:
        fields["dependency"] = ",".join(dependencies)
    if outcome.errors:
        fields["errors"] = outcome.errors
    if outcome.last_rebalance is not None:
        fields["last_rebalance"] = last_rebalance_json(outcome.last_rebalance)
        fields["judged"] = outcome.judged  # this invocation judged it (counted once)
    level = logging.ERROR if outcome.action is Action.FAILED else logging.INFO
    message = f"{outcome.target}: {outcome.action.value} ({outcome.reason})"
    return level, message, fields


def decision_lines(outcome: Outcome, request: RunRequest, instance: str) -> list[LogLine]:
    """The decision line with its samples, then one line per pod removed for real (its role)."""
    level, message, fields = decision_log(outcome, request, instance)
    result = outcome.record_json()
    samples = telemetry.target_samples(result)
    removed = [s for s in samples if s.metric is telemetry.PODS_DELETED]
    kept = [s for s in samples if s.metric is not telemetry.PODS_DELETED]
    lines: list[LogLine] = [(level, message, fields, kept)]
    for (pod, role), sample in zip(telemetry.removed_pods(result), removed, strict=True):
        pod_fields = {
            "event": "pod_removed",
            "source": request.source,
            "instance": instance,
            "namespace": outcome.target.namespace,
            "deployment": outcome.target.deployment,
            "pod": pod,
            "role": role,
        }
        lines.append(
            (logging.INFO, f"{outcome.target}: removed {pod} ({role})", pod_fields, [sample])
        )
    return lines


def run_log(request: RunRequest, instance: str, results: int, duration_seconds: float) -> LogLine:
    """The line that closes an invocation: how long it took, all its targets included."""
    fields = {
        "event": "run",
        "source": request.source,
        "instance": instance,
        "results": results,
        "duration_seconds": duration_seconds,
        **request.context,
    }
    samples = [telemetry.duration_sample(duration_seconds, request.source)]
    message = f"run of {results} target(s) took {duration_seconds:.3f}s"
    return logging.INFO, message, fields, samples


def audit_record(
    outcome: Outcome, request: RunRequest, instance: str, at: datetime
) -> tuple[dict[str, Any], dict[str, str]]:
    """The report as published to the audit topic, and the message's attributes."""
    record = {
        **outcome.to_json(),
        "source": request.source,
        "instance": instance,
        "time": at.isoformat(),
        **request.context,
    }
    attributes = {
        "namespace": outcome.target.namespace,
        "deployment": outcome.target.deployment,
        "action": outcome.action.value,
        "reason": outcome.reason,
    }
    return record, attributes


def effect_event(last: LastRebalance) -> EventNote | None:
    """The Event for a measurement just made of the previous rebalance; None if not judged."""
    if last.effect.effective is None or last.effect.measured_at is None:
        return None
    effect = last.effect
    message = (
        f"rebalance of {last.at.isoformat()}: {effect.statistic} {effect.before:.4g} before, "
        f"{effect.expected_after:.4g} expected, {effect.achieved:.4g} achieved "
        f"({effect.improvement_percent:.1f}% better)"
    )
    if effect.effective:
        return EventNote("RebalanceEffective", message, warning=False)
    return EventNote("RebalanceIneffective", message, warning=True)


def backoff_event(advice: str, backoff: str) -> EventNote:
    """The Warning of a target left alone because rebalancing it did not help."""
    return EventNote(
        "RebalanceNotEffective",
        f"not rebalanced for {backoff} after rebalances that did not help: {advice}",
        warning=True,
    )


def kube_event(outcome: Outcome) -> EventNote:
    """The Event for a run that took the lock: what was evicted, or why nothing was."""
    plan = outcome.plan
    if outcome.action is Action.REBALANCED:
        value = ""
        if plan is not None and plan.hpa is not None:
            hpa = plan.hpa
            value = (
                f" (the hottest pod at {hpa.peak_percent:.0f}% of its CPU request > "
                f"{hpa.hot_line_percent:g}%: HPA {hpa.name} target {hpa.target_percent}% "
                "x TOLERANCE_MULTIPLIER)"
            )
        elif plan is not None and plan.value is not None and plan.threshold is not None:
            value = f" ({plan.statistic.value} {plan.value:.4g} > {plan.threshold:g})"
        message = f"evicted {', '.join(outcome.evicted)}{value}"
        if outcome.errors:
            message += f"; not evicted: {', '.join(outcome.errors)}"
        return EventNote("Rebalanced", message, warning=bool(outcome.errors))
    details = "; ".join(f"{name}: {problem}" for name, problem in outcome.errors.items())
    return EventNote("RebalanceBlocked", f"{outcome.reason}: {details}", warning=True)
