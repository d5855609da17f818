"""What a grid's runs add up to, per policy and regime, and the tables `make evaluate` prints.

Improvements are percentages, positive when the statistic fell: `achieved` is what the closed
loop measured (core/effect.py) once the replacements were Ready a full window, `expected` what
the plan promised. Outcomes in the common currency compare each case's time averages with the
same case left alone, as the geometric mean over cases of policy ÷ alone, minus 1: negative is
better.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from infra.evaluate.cases import DOMINANT_SHARE, PARTITIONS, STICKY, Case
from infra.evaluate.grid import Outcome, Result
from infra.evaluate.policies import MEAN_CPU_PER_POD, Evaluated
from infra.evaluate.simulation import INTERVAL, READY_AFTER, SCRAPE_INTERVAL
from infra.kubesim.load import KafkaSpec

WORSE_MARGIN = 5.0  # percent: a case ends worse off than left alone when its outcome rose this much


def _zipf(case: Case) -> bool:
    """The main grid: Zipf topics, pods at MEAN_CPU_PER_POD."""
    return case.family == "zipf" and case.mean_cpu == MEAN_CPU_PER_POD


REGIMES: tuple[tuple[str, Callable[[Case], bool]], ...] = (
    ("range", lambda c: _zipf(c) and c.assignor == "range"),
    ("roundrobin", lambda c: _zipf(c) and c.assignor == "roundrobin"),
    ("sticky", lambda c: _zipf(c) and c.assignor == "sticky"),
    ("cooperative-sticky", lambda c: _zipf(c) and c.assignor == "cooperative-sticky"),
    ("sticky ones, drifted start", lambda c: _zipf(c) and c.start == "clustered"),
    (
        "sticky ones, fresh start",
        lambda c: _zipf(c) and c.start == "fresh" and c.assignor in STICKY,
    ),
    ("zipf, no CPU limit", lambda c: _zipf(c) and c.cpu_limit is None),
    ("zipf, CPU limit (lag)", lambda c: _zipf(c) and c.cpu_limit is not None),
    ("drifted, pods at 0.5 core", lambda c: c.family == "zipf" and c.mean_cpu == 0.5),
    ("drifted, pods at 2 cores", lambda c: c.family == "zipf" and c.mean_cpu == 2.0),
    ("one dominant partition", lambda c: c.family == "dominant"),
    ("fewer partitions than pods", lambda c: c.family == "sparse"),
    ("futile: nothing can help", lambda c: c.futile),
    ("sticky zipf: can help", lambda c: not c.futile),
    ("all", lambda c: True),
)


@dataclass(frozen=True)
class Row:
    """One regime under one policy."""

    label: str
    cases: int
    hours: float  # simulated, in all
    rebalances: int
    measured: int
    helped: float | None  # share of measured rebalances that lowered the statistic at all
    effective: float | None  # share judged effective (>= half of MIN_IMPROVEMENT_PERCENT)
    achieved_p50: float | None
    achieved_p10: float | None
    expected_p50: float | None
    evictions: int
    acted_cases: int  # cases with at least one rebalance
    backoff_cases: int  # cases where the back-off engaged
    counted: bool  # whether any of them had its run without the back-off (futile cases only)
    prevented: int  # evictions the back-off spared in those
    backoff_evictions: int  # evictions that still happened in those
    variance_change: float | None  # % vs left alone, time-averaged CPU variance
    peak_change: float | None  # % vs left alone, time-averaged peak CPU ÷ mean CPU
    lag_change: float | None  # % vs left alone, time-averaged total lag (cases with lag)
    lag_cases: int
    worse: int  # cases that ended worse off than left alone (lag where there is lag, else CPU var)

    @property
    def evictions_per_hour(self) -> float:
        return self.evictions / self.hours if self.hours else 0.0

    @property
    def prevented_share(self) -> float | None:
        """Of the evictions the cases counted would have seen without the back-off."""
        would = self.prevented + self.backoff_evictions
        return self.prevented / would if would else None


def _change(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Geometric mean of policy ÷ alone over the cases, minus 1, in percent."""
    if not pairs:
        return None
    logs = [math.log(max(run, 1e-12) / max(alone, 1e-12)) for run, alone in pairs]
    return (math.exp(math.fsum(logs) / len(logs)) - 1) * 100.0


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _worse(outcome: Outcome) -> bool:
    run, alone = outcome.run, outcome.baseline
    if alone.lag > 0:
        return run.lag > alone.lag * (1 + WORSE_MARGIN / 100)
    return run.variance > alone.variance * (1 + WORSE_MARGIN / 100)


def row(label: str, outcomes: Sequence[Outcome]) -> Row:
    rebalances = [r for o in outcomes for r in o.run.rebalances]
    achieved = [r.achieved_percent for r in rebalances if r.achieved_percent is not None]
    judged = [r for r in rebalances if r.effective is not None]
    backoff = [o for o in outcomes if o.run.backoff_at is not None]
    counted = [o for o in backoff if o.without_backoff is not None]
    with_lag = [o for o in outcomes if o.baseline.lag > 0]
    return Row(
        label=label,
        cases=len(outcomes),
        hours=sum(o.run.hours for o in outcomes),
        rebalances=len(rebalances),
        measured=len(achieved),
        helped=sum(a > 0 for a in achieved) / len(achieved) if achieved else None,
        effective=sum(bool(r.effective) for r in judged) / len(judged) if judged else None,
        achieved_p50=_percentile(achieved, 50),
        achieved_p10=_percentile(achieved, 10),
        expected_p50=_percentile([r.expected_percent for r in rebalances], 50),
        evictions=sum(o.run.evictions for o in outcomes),
        acted_cases=sum(bool(o.run.rebalances) for o in outcomes),
        backoff_cases=len(backoff),
        prevented=sum(o.prevented for o in counted),
        counted=bool(counted),
        backoff_evictions=sum(o.run.evictions for o in counted),
        variance_change=_change([(o.run.variance, o.baseline.variance) for o in outcomes]),
        peak_change=_change([(o.run.peak_ratio, o.baseline.peak_ratio) for o in outcomes]),
        lag_change=_change([(o.run.lag, o.baseline.lag) for o in with_lag]),
        lag_cases=len(with_lag),
        worse=sum(_worse(o) for o in outcomes),
    )


def rows(outcomes: Sequence[Outcome]) -> list[Row]:
    """One row per regime that has cases."""
    out = []
    for label, belongs in REGIMES:
        chosen = [o for o in outcomes if belongs(o.case)]
        if chosen:
            out.append(row(label, chosen))
    return out


# Formatting -------------------------------------------------------------------------------------


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if round(value) == 0:
        return "0%"  # neither +0% nor -0%: nothing changed to the percent
    return f"{value:+.0f}%" if signed else f"{value:.0f}%"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


Column = tuple[str, int, Callable[[Row], str]]

POLICY_COLUMNS: tuple[Column, ...] = (
    ("cases", 5, lambda r: str(r.cases)),
    ("rebal.", 6, lambda r: str(r.rebalances)),
    ("helped", 6, lambda r: _share(r.helped)),
    ("effect.", 7, lambda r: _share(r.effective)),
    ("ach.p50", 7, lambda r: _pct(r.achieved_p50)),
    ("ach.p10", 7, lambda r: _pct(r.achieved_p10)),
    ("exp.p50", 7, lambda r: _pct(r.expected_p50)),
    ("evict/h", 7, lambda r: f"{r.evictions_per_hour:.2f}"),
    ("backoff", 7, lambda r: f"{r.backoff_cases}/{r.acted_cases}"),
    ("prevented", 9, lambda r: f"{r.prevented} {_share(r.prevented_share)}" if r.counted else "-"),
    ("ΔCPUvar", 7, lambda r: _pct(r.variance_change, signed=True)),
    ("Δpeak", 6, lambda r: _pct(r.peak_change, signed=True)),
    ("Δlag", 6, lambda r: _pct(r.lag_change, signed=True)),
    ("worse", 6, lambda r: f"{r.worse}/{r.cases}"),
)


class _Labelled(Protocol):
    @property
    def label(self) -> str: ...


_L = TypeVar("_L", bound=_Labelled)


def _table(
    first: str,
    width: int,
    columns: Sequence[tuple[str, int, Callable[[_L], str]]],
    items: Sequence[_L],
) -> str:
    header = f"{first:<{width}}" + "".join(f" {name:>{w}}" for name, w, _ in columns)
    lines = [header, "-" * len(header)]
    for item in items:
        cells = "".join(f" {cell(item):>{w}}" for _, w, cell in columns)
        lines.append(f"{item.label:<{width}}{cells}")
    return "\n".join(lines)


def policy_table(policy: Evaluated, outcomes: Sequence[Outcome]) -> str:
    measured = policy.settings.imbalance_statistic.value
    if policy.policy.signal == "score" and policy.policy.kind == "variance":
        terms = f"achieved and expected on the score's {measured}"
    elif policy.policy.kind == "hpa_target":
        terms = (
            "expected: the hot pods' CPU drop the plan promises; achieved: the CPU "
            f"{measured} the closed loop judges"
        )
    else:
        terms = f"achieved and expected on the CPU {measured}"
    title = f"{policy.name}: {policy.threshold_note}\n  ({terms})"
    return title + "\n" + _table("regime", 27, POLICY_COLUMNS, rows(outcomes))


@dataclass(frozen=True)
class Comparison:
    """One line per policy over the whole grid."""

    label: str
    all: Row
    futile: Row | None
    helpable: Row | None


COMPARISON_COLUMNS: tuple[tuple[str, int, Callable[[Comparison], str]], ...] = (
    ("evict/h", 7, lambda c: f"{c.all.evictions_per_hour:.2f}"),
    ("helped", 6, lambda c: _share(c.all.helped)),
    ("effect.", 7, lambda c: _share(c.all.effective)),
    ("ach/exp p50", 11, lambda c: f"{_pct(c.all.achieved_p50)}/{_pct(c.all.expected_p50)}"),
    ("ach.p10", 7, lambda c: _pct(c.all.achieved_p10)),
    (
        "futile:backoff",
        14,
        lambda c: "-" if c.futile is None else f"{c.futile.backoff_cases}/{c.futile.acted_cases}",
    ),
    ("prevented", 9, lambda c: "-" if c.futile is None else _share(c.futile.prevented_share)),
    (
        "can help:backoff",
        16,
        lambda c: (
            "-" if c.helpable is None else f"{c.helpable.backoff_cases}/{c.helpable.acted_cases}"
        ),
    ),
    (
        "ΔCPUvar",
        7,
        lambda c: "-" if c.helpable is None else _pct(c.helpable.variance_change, signed=True),
    ),
    ("Δlag", 6, lambda c: _pct(c.all.lag_change, signed=True)),
    ("Δpeak", 6, lambda c: _pct(c.all.peak_change, signed=True)),
    ("worse", 7, lambda c: f"{c.all.worse}/{c.all.cases}"),
)


def comparisons(result: Result) -> list[Comparison]:
    out = []
    for policy in result.policies:
        outcomes = result.outcomes[policy.name]
        futile = [o for o in outcomes if o.case.futile]
        helpable = [o for o in outcomes if not o.case.futile]
        out.append(
            Comparison(
                policy.name,
                row("all", outcomes),
                row("futile", futile) if futile else None,
                row("helpable", helpable) if helpable else None,
            )
        )
    return out


def comparison_table(result: Result) -> str:
    return _table("policy", 11, COMPARISON_COLUMNS, comparisons(result))


def preamble(result: Result) -> str:
    grid = result.grid
    cases = next(iter(result.outcomes.values()), [])
    settings = result.policies[0].settings if result.policies else None
    n = grid.futile_pods
    limits = ", ".join("none" if x is None else f"{x:g}x the mean" for x in grid.limits)
    noise = KafkaSpec().noise
    lines = [
        f"grid {grid.name}, seed {result.seed}: {len(cases)} cases, {grid.hours:g} h each, an "
        f"invocation every {int(INTERVAL.total_seconds() // 60)} min",
        f"  Zipf topics of {PARTITIONS} partitions, pods at {MEAN_CPU_PER_POD:g} core: "
        f"{grid.seeds} seed(s) x {len(grid.assignors)} assignors (the sticky ones from a "
        f"drifted and a fresh start) x skews {', '.join(f'{s:g}' for s in grid.skews)} x pods "
        f"{', '.join(map(str, grid.pods))} x CPU limit {limits}",
        f"  futile at {n} pods, each assignor and limit: one partition with "
        f"{DOMINANT_SHARE:.0%} of the messages; {n * 2 // 3} partitions",
    ]
    if grid.scales:
        lines.append(
            f"  drifted sticky groups at {n} pods, skews "
            + ", ".join(f"{k:g}" for k in grid.scale_skews)
            + ", each limit, whose pods use "
            + ", ".join(f"{m:g}" for m in grid.scales)
            + " cores"
        )
    lines.append(
        f"  replacements Ready {int(READY_AFTER.total_seconds())} s after the eviction; CPU "
        f"noise {noise:.0%} a {int(SCRAPE_INTERVAL.total_seconds())} s reading (the simulator's), "
        "averaged by rate() over the window"
    )
    if settings is not None:
        lines.append(
            f"defaults: MIN_IMPROVEMENT_PERCENT={settings.min_improvement_percent:g} "
            f"MAX_PODS_TO_DELETE={settings.max_pods_to_delete} "
            f"MIN_PODS_REQUIRED={settings.min_pods_required} "
            f"METRICS_TIME_WINDOW={_duration(settings.metrics_time_window.total_seconds())} "
            f"MIN_POD_AGE={_duration(settings.pod_age_minimum.total_seconds())} "
            f"COOLDOWN={_duration(settings.cooldown.total_seconds())} "
            f"MAX_INEFFECTIVE_REBALANCES={settings.max_ineffective_rebalances} "
            f"INEFFECTIVE_BACKOFF={_duration(settings.ineffective_backoff.total_seconds())}"
        )
    lines += [
        "columns:",
        "  rebal.          rebalances (each evicts up to MAX_PODS_TO_DELETE pods)",
        "  helped effect.  of the measured ones: share that lowered the statistic at all / was "
        "judged effective",
        "  ach. exp.       improvement achieved (median, p10) and expected (median), in percent "
        "of the statistic",
        "  evict/h         evictions per simulated hour",
        "  backoff         cases where the back-off engaged / cases with a rebalance",
        "  prevented       futile cases: evictions the back-off spared, and their share of those "
        "without it",
        "  ΔCPUvar Δpeak Δlag  time-averaged CPU variance, peak CPU ÷ mean CPU, total lag, vs "
        "the same case left alone",
        "                  (geometric mean over the cases; Δlag over the cases with lag; "
        "negative is better)",
        f"  worse           cases left worse off than alone (> {WORSE_MARGIN:g}%: lag where "
        "there is lag, else CPU variance)",
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def report(result: Result) -> str:
    parts = [preamble(result)]
    for policy in result.policies:
        parts.append(policy_table(policy, result.outcomes[policy.name]))
    parts.append("comparison (the whole grid)\n" + comparison_table(result))
    return "\n\n".join(parts)
