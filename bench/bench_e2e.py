"""End-to-end dry run against VictoriaMetrics and the Kubernetes API simulator, next to its floor.

The script starts VictoriaMetrics and kubesim (one Deployment of 1,000 pods and one of 10,000, in
separate namespaces), imports 12 minutes of CPU counters (15 s steps, ending two minutes ago) for
the simulator's own pod names, with skewed loads, then measures, interleaved (A/B order
alternating every repetition), at one fixed evaluation time (end - 30 s):

  floor  what no implementation can avoid: the raw pod list (GET .../pods?labelSelector=...
         &limit=500, following metadata.continue, as the adapter pages) with a plain
         httpx.Client and json.loads of each page, plus a raw POST of the function's PromQL to
         /api/v1/query and json.loads of the body. Nothing else.
  e2e    Rebalancer.run() of one target as a dry run, wired like bootstrap.build() (KUBE_AUTH=
         kubeconfig) but with a fixed clock, plus json.dumps of the outcomes as the HTTP handler
         does. The plan selects two pods, so the run also sends their dry-run evictions.

The simulator's own cost of serving the list is in both. Targets: at 10,000 pods, e2e <= 1.5x
the floor (ratio of medians), and the peak RSS of one dry run <= 256 MiB, measured in a fresh
child process (bench/dry_run.py) that imports only the function.

Benchmarks report, they don't gate: the exit code is 0 whether or not a target is met, and
non-zero only when a sanity check fails (a wrong pod count, a failed run).
Run: PYTHONPATH=function:. .venv/bin/python bench/bench_e2e.py   (or `make bench`)
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from dry_run import (
    CONTAINER,
    DEPLOYMENT,
    MAX_DELETE,
    WINDOW,
    build_service,
    check_outcome,
    quiet_logger,
    request_for,
    response_body,
    settings_for,
)

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import REPO, setting_names
from infra.stack.series import cpu_counters, skewed_loads
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.kube import PAGE_SIZE
from pod_rebalancer.adapters.prometheus import cpu_query
from pod_rebalancer.core.model import Target
from pod_rebalancer.report import Outcome
from tests.kube import TOKEN, deployment, kubeconfig, scenario

SIZES = (1_000, 10_000)
HISTORY_MINUTES = 12
STEP_S = 15
CHUNK = 2_000  # series per import request
TARGET_RATIO = 1.5
TARGET_PODS = 10_000
RSS_LIMIT_MIB = 256  # Cloud Functions' common memory size
POD_AGE_S = 7 * 24 * 3600  # far older than MIN_POD_AGE (2 x the window)
# The controller loop walks every pod under the simulator's lock (about 0.1 s at 11,000 pods);
# nothing here needs it (pods start Ready, dry runs change nothing), so keep it out of the timings.
SIM_TICK_S = 3600.0
BENCH = Path(__file__).resolve().parent


def require(condition: object, problem: object) -> None:
    """A sanity check that survives `python -O`: a wrong answer makes the timing meaningless."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {problem}")


def namespace(pods: int) -> str:
    return f"bench{pods}"


def selector() -> str:
    """The Deployment's selector as the adapter sends it (tests.kube labels app=<name>)."""
    return f"app={DEPLOYMENT}"


def chunks(items: Iterable[dict[str, object]], size: int) -> Iterator[list[dict[str, object]]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def start_simulator(workdir: Path) -> KubeSim:
    body = scenario(
        [namespace(n) for n in SIZES],
        [
            deployment(
                namespace(n),
                DEPLOYMENT,
                n,
                container=CONTAINER,
                podAgeSeconds=POD_AGE_S,
            )
            for n in SIZES
        ],
    )  # no "kafka" and no "metrics": the CPU history comes from load() below
    return KubeSim(workdir, body, tls=False, tick=SIM_TICK_S)


def load(vm: VictoriaMetrics, sim: KubeSim, pods: int, end_ms: int) -> None:
    """CPU history for the simulator's pods, read once through its control API."""
    names = sorted(p["metadata"]["name"] for p in sim.pods(namespace(pods), DEPLOYMENT))
    require(len(names) == pods, f"the simulator has {len(names)} pods, {pods} expected")
    loads = dict(zip(names, skewed_loads(pods), strict=True))
    lines = cpu_counters(
        namespace(pods), CONTAINER, loads, end_ms, minutes=HISTORY_MINUTES, step_s=STEP_S
    )
    for batch in chunks(lines, CHUNK):
        vm.import_series(batch)  # flushes, so the samples are visible at once


@dataclass
class Stats:
    median: float
    p90: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        tail = statistics.quantiles(seconds, n=10, method="inclusive")[-1]
        return cls(statistics.median(seconds), tail)


def ab(
    a: Callable[[], Any],
    b: Callable[[], Any],
    check_a: Callable[[Any], None],
    check_b: Callable[[Any], None],
    warmup: int,
    reps: int,
) -> tuple[list[float], list[float]]:
    """Time a and b alternately (A/B, then B/A, ...); checks run outside the timed region."""
    times: dict[str, list[float]] = {"a": [], "b": []}
    for rep in range(warmup + reps):
        order = (("a", a, check_a), ("b", b, check_b))
        for key, call, check in order if rep % 2 == 0 else reversed(order):
            started = time.perf_counter()
            result = call()
            elapsed = time.perf_counter() - started
            check(result)
            if rep >= warmup:
                times[key].append(elapsed)
    return times["a"], times["b"]


class Floor:
    """The raw calls: pod list pages and the metrics query, each body parsed with json.loads."""

    def __init__(self, kube: httpx.Client, metrics: httpx.Client, pods: int, at_s: float) -> None:
        self.kube = kube
        self.metrics = metrics
        self.ns = namespace(pods)
        self.path = f"/api/v1/namespaces/{self.ns}/pods"
        self.promql = cpu_query(Target(self.ns, DEPLOYMENT), CONTAINER, WINDOW)
        self.at = f"{at_s:.3f}"
        self.parts: list[tuple[float, float]] = []  # (pod list, metrics) seconds of every call

    def __call__(self) -> tuple[int, int, Any]:
        started = time.perf_counter()
        listed, pages, token = 0, 0, ""
        while True:
            params = {"labelSelector": selector(), "limit": str(PAGE_SIZE)}
            if token:
                params["continue"] = token
            page = json.loads(self.kube.get(self.path, params=params).content)
            listed += len(page["items"])
            pages += 1
            token = page["metadata"].get("continue") or ""
            if not token:
                break
        listed_at = time.perf_counter()
        response = self.metrics.post("/api/v1/query", data={"query": self.promql, "time": self.at})
        body = json.loads(response.content)
        self.parts.append((listed_at - started, time.perf_counter() - listed_at))
        return listed, pages, body


def check_floor(pods: int) -> Callable[[tuple[int, int, Any]], None]:
    def check(result: tuple[int, int, Any]) -> None:
        listed, _, body = result
        require(listed == pods, f"listed {listed} pods, {pods} expected")
        require(body["status"] == "success", body)
        require(len(body["data"]["result"]) == pods, len(body["data"]["result"]))

    return check


def mean_cpu(body: Any) -> float:
    return math.fsum(float(s["value"][1]) for s in body["data"]["result"]) / len(
        body["data"]["result"]
    )


def check_requests(sim: KubeSim, ns: str, pages: int) -> None:
    """One run's API calls, from the simulator's log: the floor's paging, dry-run evictions."""
    calls = [r for r in sim.requests() if r["path"].startswith(f"/api/v1/namespaces/{ns}/")]
    require(all(r["status"] in (200, 201) for r in calls), calls)
    lists = [r["query"] for r in calls if r["route"] == "pods.list"]
    require(len(lists) == pages, f"the adapter read {len(lists)} pages, the floor {pages}")
    for query in lists:
        require(query.get("labelSelector") == selector(), query)
        require(query.get("limit") == str(PAGE_SIZE), query)
    evictions = [r for r in calls if r["route"] == "pods.evict"]
    require(len(evictions) == MAX_DELETE, f"{len(evictions)} evictions: {calls}")
    require(all(r["query"].get("dryRun") == "All" for r in evictions), evictions)
    writes = [r for r in calls if r["method"] != "GET" and r["route"] != "pods.evict"]
    require(not writes, f"a dry run wrote: {writes}")


@dataclass
class Row:
    pods: int
    floor: Stats
    e2e: Stats
    paired: float  # median over repetitions of e2e - floor
    pods_part: float  # median of the floor's pod list
    metrics_part: float  # median of the floor's metrics query
    pages: int
    reasons: str


def measure(
    vm: VictoriaMetrics, sim: KubeSim, pods: int, at: datetime, warmup: int, reps: int
) -> Row:
    ns = namespace(pods)
    log, decisions = quiet_logger()
    service = build_service(settings_for(vm.url, ns), lambda: at, log)
    request = request_for(ns)
    reasons: set[str] = set()
    headers = {"Accept": "application/json"}
    with (
        httpx.Client(
            base_url=sim.url, timeout=60.0, headers={**headers, "Authorization": f"Bearer {TOKEN}"}
        ) as kube,
        httpx.Client(base_url=vm.url, timeout=60.0, headers=headers) as metrics,
    ):
        floor = Floor(kube, metrics, pods, at.timestamp())

        # Outside the timings: the floor's data, and one run checked against it and against the
        # simulator's request log (same paging and selector; evictions only as dry runs).
        listed, pages, body = floor()
        check_floor(pods)((listed, pages, body))
        expected_mean = mean_cpu(body)
        sim.clear_requests()
        first = service.run(request)
        check_requests(sim, ns, pages)

        def e2e() -> list[Outcome]:
            outcomes = service.run(request)
            response_body(outcomes)
            return outcomes

        def check_e2e(outcomes: list[Outcome]) -> None:
            outcome = check_outcome(outcomes, pods)
            summary = outcome.plan.summary if outcome.plan else None
            # The same samples as the floor's: the fixed clock reached the metrics query.
            require(
                summary is not None and math.isclose(summary.mean, expected_mean, rel_tol=1e-9),
                f"mean {summary.mean if summary else None} != floor's {expected_mean}",
            )
            reasons.add(outcome.reason)

        check_e2e(first)
        floor.parts.clear()
        floor_times, e2e_times = ab(floor, e2e, check_floor(pods), check_e2e, warmup, reps)
    service.close()
    runs = 1 + warmup + reps
    require(decisions.count == runs, f"{decisions.count} decision lines for {runs} runs")
    require(decisions.events["run"] == runs, f"{decisions.events['run']} run lines for {runs}")
    require(not decisions.others(), f"unexpected log lines: {decisions.others()}")
    parts = floor.parts[warmup:]
    paired = statistics.median(b - a for a, b in zip(floor_times, e2e_times, strict=True))
    return Row(
        pods,
        Stats.of(floor_times),
        Stats.of(e2e_times),
        paired,
        statistics.median(p for p, _ in parts),
        statistics.median(m for _, m in parts),
        pages,
        ",".join(sorted(reasons)),
    )


def ms(seconds: float, width: int = 8) -> str:
    return f"{seconds * 1e3:{width}.1f}"


def report_timings(vm: VictoriaMetrics, sim: KubeSim, at: datetime, warmup: int, reps: int) -> bool:
    """Print the table and the verdict; True when the target is missed."""
    print("dry run: Rebalancer.run() + json.dumps vs raw pod list + raw query + json.loads (ms)")
    header = (
        f"{'pods':>7} {'pages':>5}  {'floor med':>9} {'floor p90':>9}  {'(list':>7} "
        f"{'+ query)':>8}  {'e2e med':>8} {'e2e p90':>8}  {'e2e/floor':>9}  "
        f"{'paired +ms':>10} {'paired x':>8}  decision"
    )
    print(header)
    print("-" * len(header))
    missed = False
    verdict = ""
    for pods in SIZES:
        row = measure(vm, sim, pods, at, warmup, reps)
        ratio = row.e2e.median / row.floor.median
        print(
            f"{pods:>7} {row.pages:>5}  {ms(row.floor.median):>9} {ms(row.floor.p90):>9}  "
            f"{ms(row.pods_part, 7)} {ms(row.metrics_part):>8}  {ms(row.e2e.median)} "
            f"{ms(row.e2e.p90)}  {ratio:>8.2f}x  {ms(row.paired):>10} "
            f"{1 + row.paired / row.floor.median:>7.2f}x  {row.reasons}"
        )
        if pods == TARGET_PODS:
            missed = ratio > TARGET_RATIO
            verdict = (
                f"VERDICT time: {'TARGET MISSED' if missed else 'target met'}: {ratio:.2f}x "
                f"{'>' if missed else '<='} {TARGET_RATIO}x at {pods:,} pods "
                f"(e2e median / floor median)"
            )
    print("(list + query: medians of the floor's two parts; paired: median over repetitions")
    print(" of e2e - floor, and 1 + that / floor median, steadier when the servers drift)")
    print(f"\n{verdict}")
    return missed


def child_rss(
    vm: VictoriaMetrics, config: Path, pods: int, at: datetime, entry_point: bool
) -> dict[str, Any]:
    """Run bench/dry_run.py once in a fresh process; its JSON line of RSS numbers."""
    argv = [
        sys.executable,
        str(BENCH / "dry_run.py"),
        "--prometheus",
        vm.url,
        "--namespace",
        namespace(pods),
        "--pods",
        str(pods),
        "--at",
        f"{at.timestamp():.3f}",
    ]
    if entry_point:
        argv.append("--entry-point")
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["PYTHONPATH"] = f"{REPO / 'function'}{os.pathsep}{REPO}"
    env["KUBECONFIG"] = str(config)
    # Through sh, which forks the child: Linux would hand this process's ru_maxrss to a program
    # it exec()s directly (see dry_run.py).
    done = subprocess.run(
        ["/bin/sh", "-c", '"$@"; exit $?', "sh", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    require(done.returncode == 0, f"dry_run.py failed ({done.returncode}): {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report_rss(vm: VictoriaMetrics, config: Path, at: datetime) -> bool:
    """Print peak RSS of one 10,000-pod dry run in a fresh process; True when over the limit."""
    print(f"\npeak RSS: one {TARGET_PODS:,}-pod dry run in a fresh process (MiB)")
    header = (
        f"{'imports':<34} {'after imports':>13} {'built':>7} {'after run':>9} "
        f"{'peak':>7} {'(VmHWM)':>8} {'run s':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for entry_point, label in (
        (False, "pod_rebalancer (the package)"),
        (True, "main.py (+ functions-framework)"),
    ):
        r = child_rss(vm, config, TARGET_PODS, at, entry_point)
        rows.append((label, r))
        print(
            f"{label:<34} {r['imports_rss_mib']:>13.1f} {r['built_rss_mib']:>7.1f} "
            f"{r['after_run_rss_mib']:>9.1f} {r['peak_maxrss_mib']:>7.1f} "
            f"{r['peak_vmhwm_mib']:>8.1f} {r['run_seconds']:>6.2f}"
        )
        if abs(r["peak_maxrss_mib"] - r["peak_vmhwm_mib"]) > 2:
            print("  WARNING: ru_maxrss and VmHWM disagree: the peak may include another process")
    print("(peak: getrusage ru_maxrss; the run adds peak - after imports)")
    missed = False
    for label, r in rows:
        peak = r["peak_maxrss_mib"]
        over = peak > RSS_LIMIT_MIB
        missed = missed or over
        print(
            f"\nVERDICT memory, {label}: {'TARGET MISSED' if over else 'target met'}: "
            f"{peak:.1f} MiB {'>' if over else '<='} {RSS_LIMIT_MIB} MiB "
            f"(the run adds {peak - r['imports_rss_mib']:.1f} MiB to the imports)"
        )
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=21, help="timed repetitions (>= 9)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-rss", action="store_true", help="skip the peak RSS measurement")
    args = parser.parse_args()
    reps = max(9, min(args.reps, 500))  # bounded
    warmup = max(1, min(args.warmup, 50))

    for name in setting_names():  # the machine's own CONTAINER_NAME must not leak into Settings
        os.environ.pop(name, None)

    missed = False
    with tempfile.TemporaryDirectory(prefix="pod-rebalancer-bench-") as tmp:
        workdir = Path(tmp)
        vm = VictoriaMetrics(workdir)  # both stopped before the directory goes
        sim: KubeSim | None = None
        try:
            started = time.perf_counter()
            sim = start_simulator(workdir / "kubesim")
            config = kubeconfig(sim, workdir / "kubeconfig")
            os.environ["KUBECONFIG"] = str(config)  # KUBE_AUTH=kubeconfig reads it at build
            end_ms = (int(time.time()) - 120) * 1000
            at = datetime.fromtimestamp(end_ms / 1000 - 30, UTC)
            for pods in SIZES:
                load(vm, sim, pods, end_ms)
            print(
                f"kubesim at {sim.url} (tick {SIM_TICK_S:g}s), VictoriaMetrics at {vm.url}: "
                f"{' + '.join(f'{n:,}' for n in SIZES)} pods, {HISTORY_MINUTES} min of "
                f"{STEP_S}s counters each; ready in {time.perf_counter() - started:.1f}s"
            )
            print(
                f"evaluation time {at.isoformat()} (end - 30s) for every call; median/p90 of "
                f"{reps} A/B-interleaved reps after {warmup} warm-ups\n"
            )
            missed = report_timings(vm, sim, at, warmup, reps)
            if args.no_rss:
                print("\npeak RSS: skipped (--no-rss)")
            else:
                missed = report_rss(vm, config, at) or missed
        finally:
            if sim is not None:
                sim.stop()
            vm.stop()
    if missed:
        print("\nNOTE: a target was missed; see bench/README.md for how to profile.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
