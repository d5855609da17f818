"""`python -m infra.evaluate [--quick] [--seed N] [--chart PATH | --no-chart]` (`make evaluate`).

Prints one table per policy and a comparison, and draws the chart. The same seed prints the same
tables; the run time, measured on this machine's clock, is the only line that changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from infra.evaluate.cases import FULL, QUICK
from infra.evaluate.grid import run_grid
from infra.evaluate.summary import report

CHART = Path(__file__).resolve().parents[2] / "build" / "evaluate.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.evaluate", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small grid `make test` runs")
    parser.add_argument("--seed", type=int, default=0, help="the first of the grid's seeds")
    parser.add_argument("--chart", type=Path, default=CHART, help=f"default {CHART}")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes to simulate on (the tables do not depend on it; default %(default)s)",
    )
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    started = time.perf_counter()
    result = run_grid(grid, args.seed, jobs=args.jobs)
    elapsed = time.perf_counter() - started
    print(report(result))
    if not args.no_chart:
        from infra.evaluate.chart import draw  # noqa: PLC0415  (matplotlib only when drawing)

        print(f"\nchart: {draw(result, args.chart)}")
    print(f"simulated in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
