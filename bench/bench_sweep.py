"""A dry-run sweep of 50 Deployments x 200 pods against VictoriaMetrics and the Kubernetes API
simulator: SWEEP_CONCURRENCY=1 (one target after the other) against the default 4.

The script starts VictoriaMetrics and kubesim (5 namespaces of 10 opted-in Deployments of 200
pods each, plus 5 Deployments that did not opt in; the function's identity bound with rbac.yaml
and rbac-sweep.yaml), imports 12 minutes of CPU counters (15 s steps, ending two minutes ago) for
the simulator's own pod names with skewed loads, then times `Rebalancer.run()` of
`{"sweep": true}` as a dry run, plus json.dumps of the outcomes as the HTTP handler does, at one
fixed evaluation time (end - 30 s). The threshold and the minimum improvement are 0 and
MAX_PODS_PER_RUN is 100, so every target selects two pods and sends their dry-run evictions: the
longest path a sweep can take. The concurrency settings are interleaved (the order rotates every
repetition); each is a service built once, as an instance keeps it.

Before timing, one run per setting is checked against the simulator's request log (one
Deployment list per namespace, one pod list per opted-in target, two dry-run evictions each, no
write); every timed run is checked outside the timed region (50 results in namespace/name order,
each `would_rebalance` over 200 pods with two selected).

Benchmarks report, they don't gate: the exit code is 0 whether sweeping concurrently helps or not,
and non-zero only when a sanity check fails.
Run: PYTHONPATH=function:. .venv/bin/python bench/bench_sweep.py   (or `make bench`)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench_e2e import chunks
from dry_run import quiet_logger, require, response_body

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import setting_names
from infra.stack.series import cpu_counters, skewed_loads
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.report import Action, Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest
from tests.kube import deployment, kubeconfig, scenario

NAMESPACES = tuple(f"sweep{i}" for i in range(5))
PER_NAMESPACE = 10
PODS = 200
SELECTED = 2  # MAX_PODS_TO_DELETE: two dry-run evictions per target
HISTORY_MINUTES = 12
STEP_S = 15
CHUNK = 2_000  # series per import request
POD_AGE_S = 7 * 24 * 3600
SIM_TICK_S = 3600.0  # no controller walk over 10,000 pods in the middle of a timing
ENABLED = {"pod-rebalancer.io/enabled": "true"}


def targets() -> list[tuple[str, str]]:
    """The opted-in Deployments, by namespace and name (the order a sweep reports them in).
    Names are unique across namespaces: kubesim counts ReplicaSet pods by ReplicaSet name."""
    return [
        (ns, f"app-{n * PER_NAMESPACE + i:02d}")
        for n, ns in enumerate(NAMESPACES)
        for i in range(PER_NAMESPACE)
    ]


def start_simulator(workdir: Path) -> KubeSim:
    deployments = [
        deployment(ns, name, PODS, podAgeSeconds=POD_AGE_S, annotations=ENABLED)
        for ns, name in targets()
    ]
    # Not opted in: listed by the sweep, never measured.
    deployments += [deployment(ns, f"idle-{ns}", 0) for ns in NAMESPACES]
    body = scenario(list(NAMESPACES), deployments, sweep=True)
    return KubeSim(workdir, body, tls=False, tick=SIM_TICK_S)


def load(vm: VictoriaMetrics, sim: KubeSim, end_ms: int) -> None:
    lines: list[dict[str, object]] = []
    for ns, name in targets():
        names = sorted(p["metadata"]["name"] for p in sim.pods(ns, name))
        require(len(names) == PODS, f"{ns}/{name} has {len(names)} pods, {PODS} expected")
        loads = dict(zip(names, skewed_loads(PODS), strict=True))
        lines.extend(cpu_counters(ns, name, loads, end_ms, minutes=HISTORY_MINUTES, step_s=STEP_S))
    for batch in chunks(lines, CHUNK):
        vm.import_series(batch)


def settings_for(prometheus_url: str, concurrency: int) -> Settings:
    return Settings(
        prometheus_endpoint=prometheus_url,
        kube_namespace=NAMESPACES[0],
        deployment_name=targets()[0][1],
        allowed_namespaces=NAMESPACES,
        kube_auth="kubeconfig",
        dry_run=True,
        max_pods_to_delete=SELECTED,
        max_pods_per_run=SELECTED * len(targets()),
        sweep_concurrency=concurrency,
        imbalance_threshold=0.0,
        min_improvement_percent=0.0,
    )


SWEEP = RunRequest(targets=(), dry_run=True, source="bench", sweep=True)


def check_outcomes(outcomes: list[Outcome]) -> None:
    got = [(o.target.namespace, o.target.deployment) for o in outcomes]
    require(got == targets(), f"results for {got[:3]}..., {len(got)} of {len(targets())}")
    for outcome in outcomes:
        plan = outcome.plan
        summary = plan.summary if plan else None
        require(outcome.action is Action.WOULD_REBALANCE, outcome)
        require(summary is not None and summary.count == PODS, outcome)
        require(plan is not None and len(plan.selected) == SELECTED and not plan.ignored, outcome)
        require(not outcome.errors, outcome.errors)


def check_requests(sim: KubeSim) -> None:
    calls = sim.requests()
    # No Lease yet (404) is the one answer besides success: a dry run never writes one.
    failed = [r for r in calls if r["status"] not in (200, 201) and r["route"] != "leases.get"]
    require(not failed, f"{len(failed)} failed requests, e.g. {failed[:1]}")
    routes = [r["route"] for r in calls]
    require(routes.count("deployments.list") == len(NAMESPACES), routes.count("deployments.list"))
    require(routes.count("pods.list") == len(targets()), routes.count("pods.list"))
    evictions = [r for r in calls if r["route"] == "pods.evict"]
    require(len(evictions) == SELECTED * len(targets()), len(evictions))
    require(all(r["query"].get("dryRun") == "All" for r in evictions), "a real eviction")
    writes = [r for r in calls if r["method"] != "GET" and r["route"] != "pods.evict"]
    require(not writes, f"a dry run wrote: {writes[:3]}")
    require(not [r for r in calls if "/idle-" in r["path"]], "a Deployment not opted in was read")


@dataclass
class Row:
    concurrency: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def measure(
    services: dict[int, Rebalancer], sim: KubeSim, warmup: int, reps: int
) -> dict[int, Row]:
    rows = {c: Row(c, []) for c in services}
    order = list(services)
    for rep in range(warmup + reps):
        for concurrency in order[rep % len(order) :] + order[: rep % len(order)]:
            sim.clear_requests()  # the log would grow by thousands of entries a run
            started = time.perf_counter()
            outcomes = services[concurrency].run(SWEEP)
            response_body(outcomes)
            elapsed = time.perf_counter() - started
            check_outcomes(outcomes)
            if rep >= warmup:
                rows[concurrency].seconds.append(elapsed)
    return rows


def report(rows: dict[int, Row]) -> None:
    base = rows[min(rows)].median
    count = len(targets())
    print(f"dry-run sweep: {count} Deployments x {PODS} pods (s; median of {len(rows[1].seconds)})")
    header = (
        f"{'SWEEP_CONCURRENCY':>17}  {'median':>7} {'min':>7} {'max':>7}  "
        f"{'per target':>10}  {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    for concurrency, row in sorted(rows.items()):
        print(
            f"{concurrency:>17}  {row.median:>7.2f} {min(row.seconds):>7.2f} "
            f"{max(row.seconds):>7.2f}  {row.median / count * 1e3:>8.0f}ms  "
            f"{base / row.median:>7.2f}x"
        )
    print("(per target: median / targets; speed-up: the sequential median / this one)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per setting")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--concurrency", default="1,4", help="comma-separated SWEEP_CONCURRENCY values"
    )
    args = parser.parse_args()
    reps = max(3, min(args.reps, 50))
    warmup = max(0, min(args.warmup, 10))
    levels = sorted({max(1, min(int(c), 32)) for c in args.concurrency.split(",")} | {1})

    for name in setting_names():  # the machine's own CONTAINER_NAME must not leak into Settings
        os.environ.pop(name, None)

    with tempfile.TemporaryDirectory(prefix="pod-rebalancer-bench-sweep-") as tmp:
        workdir = Path(tmp)
        vm = VictoriaMetrics(workdir)
        sim: KubeSim | None = None
        services: dict[int, Rebalancer] = {}
        try:
            started = time.perf_counter()
            sim = start_simulator(workdir / "kubesim")
            os.environ["KUBECONFIG"] = str(kubeconfig(sim, workdir / "kubeconfig"))
            end_ms = (int(time.time()) - 120) * 1000
            at = datetime.fromtimestamp(end_ms / 1000 - 30, UTC)
            load(vm, sim, end_ms)
            print(
                f"kubesim at {sim.url} (tick {SIM_TICK_S:g}s), VictoriaMetrics at {vm.url}: "
                f"{len(NAMESPACES)} namespaces, {len(targets())} opted-in Deployments of {PODS} "
                f"pods; ready in {time.perf_counter() - started:.1f}s"
            )
            print(f"evaluation time {at.isoformat()}; {warmup} warm-up(s), settings interleaved\n")
            log, decisions = quiet_logger()
            for level in levels:
                services[level] = build(settings_for(vm.url, level), clock=lambda: at, log=log)
                sim.clear_requests()
                check_outcomes(services[level].run(SWEEP))
                check_requests(sim)
            rows = measure(services, sim, warmup, reps)
            runs = len(levels) * (1 + warmup + reps)
            require(decisions.count == runs * len(targets()), f"{decisions.count} decision lines")
            require(not decisions.others(), f"unexpected log lines: {decisions.others()}")
            report(rows)
        finally:
            for service in services.values():
                service.close()
            if sim is not None:
                sim.stop()
            vm.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
