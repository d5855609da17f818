"""The chart of a grid's result (build/evaluate.png): where a reader would rather look than read.

Four panels, one bar or box per policy: evictions per hour (futile cases and the rest); the
improvement each rebalance achieved (box: p10-p90, line: median) against the median the plans
expected; the back-off in the futile cases (evictions per case-hour with it and without it); and
the outcome against the same case left alone.
"""

from __future__ import annotations

from pathlib import Path

from infra.evaluate.grid import Result
from infra.evaluate.summary import comparisons


def draw(result: Result, path: Path) -> Path:
    import matplotlib  # noqa: PLC0415  (a dev dependency, not the function's)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = [p.name for p in result.policies]
    items = comparisons(result)
    where = list(range(len(names)))
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))

    axis = axes[0][0]
    futile = [c.futile.evictions_per_hour if c.futile else 0.0 for c in items]
    helpable = [c.helpable.evictions_per_hour if c.helpable else 0.0 for c in items]
    axis.bar([x - 0.2 for x in where], futile, 0.4, label="futile cases", color="tab:gray")
    axis.bar([x + 0.2 for x in where], helpable, 0.4, label="cases that can be helped")
    axis.set_title("evictions per simulated hour")
    axis.set_xticks(where, names)
    axis.legend()

    axis = axes[0][1]
    achieved = [
        [
            r.achieved_percent
            for o in result.outcomes[name]
            for r in o.run.rebalances
            if r.achieved_percent is not None
        ]
        or [0.0]
        for name in names
    ]
    axis.boxplot(achieved, positions=where, whis=(10, 90), showfliers=False)
    expected = [c.all.expected_p50 or 0.0 for c in items]
    axis.scatter(where, expected, marker="v", color="tab:red", zorder=3, label="expected (median)")
    axis.axhline(0, color="gray", linewidth=1)
    axis.set_title("improvement achieved per rebalance, % (whiskers p10-p90)")
    axis.set_xticks(where, names)
    axis.legend(loc="lower right")

    axis = axes[1][0]
    with_backoff, without = [], []
    for item in items:
        row = item.futile
        hours = row.hours if row is not None else 0.0
        evictions = row.evictions if row is not None else 0
        prevented = row.prevented if row is not None else 0
        with_backoff.append(evictions / hours if hours else 0.0)
        without.append((evictions + prevented) / hours if hours else 0.0)
    axis.bar([x - 0.2 for x in where], without, 0.4, label="back-off off", color="tab:orange")
    axis.bar([x + 0.2 for x in where], with_backoff, 0.4, label="back-off on", color="tab:green")
    axis.set_title("futile cases: evictions per case-hour")
    axis.set_xticks(where, names)
    axis.legend()

    axis = axes[1][1]
    series = (
        (
            "CPU variance (can be helped)",
            [c.helpable.variance_change if c.helpable else 0 for c in items],
        ),
        ("total lag (cases with lag)", [c.all.lag_change for c in items]),
        ("peak CPU / mean", [c.all.peak_change for c in items]),
    )
    for offset, (label, values) in enumerate(series):
        heights = [v or 0.0 for v in values]
        axis.bar([x + (offset - 1) * 0.27 for x in where], heights, 0.27, label=label)
    axis.axhline(0, color="gray", linewidth=1)
    axis.set_title("vs left alone, % (time-averaged; lower is better)")
    axis.set_xticks(where, names)
    axis.legend(loc="best", fontsize="small")

    hours = result.grid.hours
    fig.suptitle(
        f"make evaluate: {len(next(iter(result.outcomes.values()), []))} cases "
        f"({result.grid.name} grid, seed {result.seed}), {hours:g} h each"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
