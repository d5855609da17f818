"""What one invocation did, per target, and its JSON form (HTTP response and audit record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pod_rebalancer.core.model import LastRebalance, Plan, Target
from pod_rebalancer.errors import DependencyError


class Action(StrEnum):
    REBALANCED = "rebalanced"
    WOULD_REBALANCE = "would_rebalance"
    SKIPPED = "skipped"
    FAILED = "failed"


# A reason outside the core's vocabulary: a dependency failed, so no decision could be made.
DEPENDENCY_UNAVAILABLE = "dependency_unavailable"


@dataclass(frozen=True, slots=True)
class Outcome:
    target: Target
    dry_run: bool
    action: Action
    reason: str
    plan: Plan | None = None
    evicted: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    retryable: bool = False  # a dependency failed: the caller should retry later
    # Pods removed or perhaps removed (an answer lost); in a dry run, those the API accepted. What
    # the run's budget (MAX_PODS_PER_RUN) is charged for this target.
    disrupted: int = 0
    # The previous rebalance of this target and what it achieved (the closed loop), if any.
    last_rebalance: LastRebalance | None = None
    # This invocation judged last_rebalance and recorded the judgement in the Lease: the one
    # result, of all that report it, that counts it (the logs and metrics, not the response).
    judged: bool = False

    @classmethod
    def unavailable(cls, target: Target, dry_run: bool, exc: DependencyError) -> Outcome:
        """No decision could be made: a dependency failed before anything was done."""
        return cls(
            target,
            dry_run,
            Action.FAILED,
            DEPENDENCY_UNAVAILABLE,
            errors={exc.dependency: str(exc)},
            retryable=True,
        )

    def record_json(self) -> dict[str, Any]:
        """The result as the logs and the metric set read it: the response plus `judged`."""
        return {**self.to_json(), "judged": self.judged}

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        summary = plan.summary if plan else None
        expected = plan.expected_after if plan else None
        return {
            "target": {"namespace": self.target.namespace, "deployment": self.target.deployment},
            "dry_run": self.dry_run,
            "action": self.action.value,
            "reason": self.reason,
            "statistic": plan.statistic.value if plan else None,
            "value": plan.value if plan else None,
            "threshold": plan.threshold if plan else None,
            "statistics": None
            if summary is None
            else {
                "count": summary.count,
                "mean": summary.mean,
                "stddev": summary.stddev,
                "variance": summary.variance,
                "cv": summary.cv,
                "min": summary.min,
                "max": summary.max,
            },
            "expected_after": None
            if expected is None
            else {"value": expected.value, "improvement_percent": expected.improvement_percent},
            "selected": selected_json(plan),
            "evicted": list(self.evicted),
            "ignored_pods": dict(plan.ignored) if plan else {},
            "errors": dict(self.errors),
            "last_rebalance": last_rebalance_json(self.last_rebalance),
            **hpa_json(plan),
        }


def hpa_json(plan: Plan | None) -> dict[str, Any]:
    """`hpa` under IMBALANCE_POLICY=hpa_target once the HPA was read; nothing otherwise."""
    judged = plan.hpa if plan else None
    if judged is None:
        return {}
    return {
        "hpa": {
            "name": judged.name,
            "target_utilization_percent": judged.target_percent,
            "hot_line_percent": judged.hot_line_percent,
            "hot_pods": judged.hot_pods,
            "peak_utilization_percent": judged.peak_percent,
        }
    }


def last_rebalance_json(last: LastRebalance | None) -> dict[str, Any] | None:
    """`last_rebalance` as the response, the decision log and the audit record all show it."""
    if last is None:
        return None
    effect = last.effect
    return {
        "at": last.at.isoformat(),
        "before": effect.before,
        "expected_after": effect.expected_after,
        "achieved": effect.achieved,
        "improvement_percent": effect.improvement_percent,
        "effective": effect.effective,
        "note": last.note,
    }


def selected_json(plan: Plan | None) -> list[dict[str, Any]]:
    """The selection as the response, the decision log and the audit record all show it."""
    selected: list[dict[str, Any]] = []
    for s in plan.selected if plan else ():
        entry: dict[str, Any] = {"pod": s.pod, "cpu": s.cpu, "role": s.role}
        if s.signals is not None:
            entry.update(signals=dict(s.signals), score=s.score)
        selected.append(entry)
    return selected
