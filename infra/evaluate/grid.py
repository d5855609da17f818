"""Runs a grid: every case without the rebalancer (the baseline), under each policy, and — in a
futile case where the back-off engaged — once more with the back-off off, to count the evictions
it prevented there."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from infra.evaluate.cases import Case, Grid
from infra.evaluate.policies import Evaluated, policies, without_backoff
from infra.evaluate.simulation import Run, simulate


@dataclass(frozen=True)
class Outcome:
    """One case under one policy, next to the same case left alone."""

    run: Run
    baseline: Run
    without_backoff: Run | None  # only for futile cases where the back-off engaged

    @property
    def case(self) -> Case:
        return self.run.case

    @property
    def prevented(self) -> int:
        """Evictions the back-off spared: those of the same run without it, minus its own."""
        if self.without_backoff is None:
            return 0
        return self.without_backoff.evictions - self.run.evictions


@dataclass(frozen=True)
class Result:
    grid: Grid
    seed: int
    policies: tuple[Evaluated, ...]
    outcomes: dict[str, list[Outcome]]  # by policy name, in the grid's case order


def run_case(case: Case, hours: float, names: Sequence[str]) -> list[Outcome]:
    """The case left alone, then under each policy named (in that order)."""
    baseline = simulate(case, None, hours)
    out = []
    for policy in (p for p in policies() if p.name in names):
        run = simulate(case, policy.settings, hours, policy.name)
        counterfactual = None
        if run.backoff_at is not None and case.futile:
            counterfactual = simulate(case, without_backoff(policy.settings), hours, policy.name)
        out.append(Outcome(run, baseline, counterfactual))
    return out


def run_grid(grid: Grid, seed: int, names: Sequence[str] | None = None, jobs: int = 1) -> Result:
    """Every case of the grid under the policies named (all by default), on `jobs` processes;
    the result does not depend on how many."""
    chosen = tuple(p for p in policies() if names is None or p.name in names)
    picked = [p.name for p in chosen]
    cases = list(grid.cases(seed))
    work = functools.partial(run_case, hours=grid.hours, names=picked)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            per_case = list(pool.map(work, cases, chunksize=max(1, len(cases) // (jobs * 8))))
    else:
        per_case = [work(case) for case in cases]
    outcomes: dict[str, list[Outcome]] = {name: [] for name in picked}
    for case_outcomes in per_case:
        for outcome in case_outcomes:
            assert outcome.run.policy is not None
            outcomes[outcome.run.policy].append(outcome)
    return Result(grid, seed, chosen, outcomes)
