"""The five policies under evaluation, each a `Settings` built from the function's own defaults.

Only what names the policy is set (IMBALANCE_STATISTIC, IMBALANCE_SIGNAL, IMBALANCE_POLICY, and
the threshold where a statistic's units differ from the variance's); every other knob —
MIN_IMPROVEMENT_PERCENT, MAX_PODS_TO_DELETE, MIN_PODS_REQUIRED, MIN_POD_AGE, COOLDOWN,
METRICS_TIME_WINDOW, MAX_INEFFECTIVE_REBALANCES, INEFFECTIVE_BACKOFF, SCORE_WEIGHTS,
TOLERANCE_MULTIPLIER — is the default `Settings` holds. The environment is not read: a variable
set in the shell must not change the evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Policy

# The simulated workload runs each pod at this mean CPU (cores): the total load grows with the
# pod count, as a Deployment sized by its HPA does. It is also the scale at which the variance's
# threshold is translated into a CV (below).
MEAN_CPU_PER_POD = 1.0
# The HPA's CPU Utilization target (hpa_target). Each pod requests its mean CPU / target, so the
# group as a whole sits at the target, as an HPA in its steady state keeps it.
HPA_TARGET_PERCENT = 70
# IMBALANCE_SIGNAL=score needs a lag query to weigh lag; the simulation answers it itself, so the
# template is never sent anywhere (the README's kafka-lag-exporter form, for the record).
LAG_QUERY = 'sum by(pod)(kafka_consumergroup_group_lag{group="{deployment}"})'


class _Defaults(Settings):
    """Settings from the keyword arguments and the defaults only, never the environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings(**overrides: Any) -> Settings:
    """The function's defaults with `overrides` (field names), for a target nobody queries."""
    return _Defaults(
        prometheus_endpoint="http://metrics.invalid",  # never contacted
        kube_namespace="evaluate",
        deployment_name="consumer",
        **overrides,
    )


@dataclass(frozen=True)
class Evaluated:
    """One policy under evaluation: its name, its Settings (and the Policy they build), and
    what its threshold means."""

    name: str
    settings: Settings
    threshold_note: str
    policy: Policy = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", self.settings.policy())


def policies() -> tuple[Evaluated, ...]:
    """variance, stddev, cv, score and hpa_target, in that order."""
    default = settings()
    variance = default.imbalance_threshold
    # stddev = sqrt(variance), so sqrt of the variance's threshold draws the same line: the two
    # differ only in what MIN_IMPROVEMENT_PERCENT (and the closed loop's half of it) asks for.
    stddev = math.sqrt(variance)
    # cv = stddev / mean: the same line as the variance's for pods at MEAN_CPU_PER_POD.
    cv = stddev / MEAN_CPU_PER_POD
    score = settings(imbalance_signal="score", lag_query=LAG_QUERY)
    weights = ", ".join(f"{name}={weight:g}" for name, weight in score.policy().weights)
    return (
        Evaluated(
            "variance",
            default,
            f"CPU variance > {variance:g} cores² (CPU_VARIANCE_THRESHOLD's default)",
        ),
        Evaluated(
            "stddev",
            settings(imbalance_statistic="stddev", cpu_variance_threshold=stddev),
            f"CPU stddev > {stddev:.3f} cores (= √{variance:g}: the variance's line)",
        ),
        Evaluated(
            "cv",
            settings(imbalance_statistic="cv", cpu_variance_threshold=cv),
            f"CPU cv > {cv:.3f} (= √{variance:g} / {MEAN_CPU_PER_POD:g} core: the variance's "
            "line at the grid's mean CPU)",
        ),
        Evaluated(
            "score",
            score,
            f"variance of the score > {variance:g} (the default; SCORE_WEIGHTS without memory, "
            f"renormalised: {weights})",
        ),
        Evaluated(
            "hpa_target",
            settings(imbalance_policy="hpa_target"),
            f"a pod above {HPA_TARGET_PERCENT}% (the HPA's target) x "
            f"{default.tolerance_multiplier:g} (TOLERANCE_MULTIPLIER) of its request (its mean "
            f"CPU / {HPA_TARGET_PERCENT}%: the group at the HPA's target)",
        ),
    )


def without_backoff(settings: Settings) -> Settings:
    """The same policy with the closed loop's back-off off (INEFFECTIVE_BACKOFF=0): the
    counterfactual that counts the evictions the back-off prevented."""
    return settings.model_copy(update={"ineffective_backoff": timedelta(0)})
