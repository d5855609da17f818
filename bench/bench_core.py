"""Core cost at 100,000 and 10,000 pods: summarize() and planner.plan(), next to their floor.

The floor is what any implementation must pay before it can compute anything: turning the
samples dict's values into a numpy array (np.fromiter). Every case runs in the same loop,
interleaved (the order rotates each repetition), after a warm-up; medians of perf_counter.

The policy has threshold 0, so plan() always takes its longest path: statistics, the outlier
selection and the statistics of what remains. Benchmarks report; the exit code is always 0.

Run: PYTHONPATH=function:. .venv/bin/python bench/bench_core.py   (or `make bench`)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from infra.stack.series import pod_names, skewed_loads
from pod_rebalancer.core import planner
from pod_rebalancer.core.model import PodInfo, Policy
from pod_rebalancer.core.stats import Statistic, summarize

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# The function's defaults but threshold 0: always over it, the full path, selection included.
POLICY = Policy(Statistic.VARIANCE, 0.0, 3, 2, 10.0, timedelta(minutes=10))
PLAN = "plan(samples, pods)"
FLOOR = "floor: np.fromiter(values)"


def require(condition: object, problem: object) -> None:
    """A sanity check that survives `python -O`: a wrong answer makes the timing meaningless."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {problem}")


def p90(times: list[float]) -> float:
    return statistics.quantiles(times, n=10, method="inclusive")[-1]


def interleaved(
    cases: dict[str, Callable[[], Any]], warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds per call of each case; the order rotates every repetition."""
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(warmup + repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            call = cases[name]
            started = time.perf_counter()
            call()
            elapsed = time.perf_counter() - started
            if rep >= warmup:
                times[name].append(elapsed)
    return times


def bench_size(pods: int, warmup: int, repeats: int) -> list[tuple[str, float, float, str]]:
    names = pod_names("bench-app", pods)
    samples = dict(zip(names, skewed_loads(pods), strict=True))
    started = NOW - timedelta(hours=1)  # older than any min_pod_age
    inventory = [
        PodInfo(name=name, uid=f"uid-{i}", ready=True, started_at=started)
        for i, name in enumerate(names)
    ]
    array = np.fromiter(samples.values(), dtype=np.float64, count=len(samples))

    # Sanity, outside the timing: the plan measures every pod and reaches a decision.
    result = planner.plan(samples, inventory, POLICY, NOW)
    require((result.summary.count if result.summary else 0) == pods, result)
    require(result.selected, result)
    reasons = {PLAN: result.reason.value}
    require(summarize(array).count == pods, "summarize count")

    cases: dict[str, Callable[[], Any]] = {
        FLOOR: lambda: np.fromiter(samples.values(), dtype=np.float64, count=len(samples)),
        "summarize(array)": lambda: summarize(array),
        PLAN: lambda: planner.plan(samples, inventory, POLICY, NOW),
    }
    gc.collect()
    times = interleaved(cases, warmup, repeats)
    return [
        (name, statistics.median(ts), p90(ts), reasons.get(name, "")) for name, ts in times.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31, help="timed repetitions per case")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    repeats = max(5, min(args.repeats, 1000))  # bounded
    warmup = max(1, min(args.warmup, 100))

    print(f"core benchmark: median of {repeats} interleaved repetitions after {warmup} warm-ups")
    print(f"policy: {POLICY.statistic.value}, threshold {POLICY.threshold} (full plan path)\n")
    header = f"{'pods':>7}  {'case':<31} {'median ms':>10} {'p90 ms':>9} {'x floor':>8}  decision"
    print(header)
    print("-" * len(header))
    for pods in (100_000, 10_000):
        rows = bench_size(pods, warmup, repeats)
        floor = next(median for name, median, _, _ in rows if name == FLOOR)
        for name, median, tail, reason in rows:
            print(
                f"{pods:>7}  {name:<31} {median * 1e3:>10.3f} {tail * 1e3:>9.3f} "
                f"{median / floor:>7.1f}x  {reason}"
            )
        per_pod = next(m for n, m, _, _ in rows if n == PLAN)
        print(f"{'':>7}  plan: {per_pod / pods * 1e9:.0f} ns per pod\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
