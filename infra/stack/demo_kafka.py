"""`make demo-kafka`: a consumer group that CPU alone misjudges, on the local stack.

VictoriaMetrics + the Kubernetes API simulator (six consumers limited to one core each, one of
them capped at its limit and falling behind while another runs at the same CPU and keeps up; the
simulator writes CPU, the per-partition lag and the assignment metric) + the function served by
functions-framework, asked three times: by CPU alone (the default), then by the composite score
with the README's assignment LAG_QUERY as a dry run, then for real. Last, the group after the
sticky assignor has spread the hot partitions: CPU and lag per pod again.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from infra.kubesim.launcher import KubeSim
from infra.stack.demo import (
    NAMESPACE,
    WINDOW,
    banner,
    function_env,
    invoke,
    per_pod,
    wait_settled,
)
from infra.stack.kafka import CPU_LIMIT, LAG_QUERY, REPLICAS, lagging_consumer
from infra.stack.kube import scenario
from infra.stack.processes import function_server
from infra.stack.victoria import VictoriaMetrics, victoria_metrics
from pod_rebalancer.adapters.prometheus import cpu_query, render_query
from pod_rebalancer.core import score
from pod_rebalancer.core.model import Target

DEPLOYMENT = "events-consumer"
TARGET = Target(NAMESPACE, DEPLOYMENT)
WINDOW_TD = timedelta(seconds=20)
TREND_S = 10.0  # lag growth is measured over this many seconds
WEIGHTS = score.effective_weights(score.DEFAULT_WEIGHTS, {"cpu", "lag"})


def measure(vm: VictoriaMetrics, current: set[str]) -> dict[str, dict[str, float]]:
    """CPU, lag and lag growth (messages a second) per pod now, as the function's queries see
    them; series of pods that are gone are left out."""
    at = time.time() - 1
    cpu = per_pod(vm, cpu_query(TARGET, DEPLOYMENT, WINDOW_TD), at)
    lag_promql = render_query(LAG_QUERY, TARGET, DEPLOYMENT, WINDOW_TD)
    lag = per_pod(vm, lag_promql, at)
    earlier = per_pod(vm, lag_promql, at - TREND_S)
    names = sorted(p for p in cpu if p in current)
    scores = score.per_pod({"cpu": cpu, "lag": lag}, WEIGHTS, names)
    return {
        pod: {
            "cpu": cpu[pod],
            "lag": lag.get(pod, 0.0),
            "growth": (lag.get(pod, 0.0) - earlier.get(pod, 0.0)) / TREND_S,
            "score": scores.get(pod, float("nan")),
        }
        for pod in names
    }


def roles(result: Mapping[str, Any]) -> dict[str, str]:
    return {s["pod"]: s["role"] for s in result.get("selected") or []}


def table(rows: Mapping[str, Mapping[str, float]], columns: Mapping[str, Mapping[str, str]]) -> str:
    extra = "".join(f"  {name:<9}" for name in columns)
    head = f"  {'pod':<34} {'cpu':>6} {'lag':>10} {'lag/s':>8} {'score':>6}{extra}"
    lines = [head, "  " + "-" * (len(head) - 2)]
    for pod in sorted(rows, key=lambda p: -rows[p]["score"]):
        row = rows[pod]
        marks = "".join(f"  {columns[name].get(pod, ''):<9}" for name in columns)
        lines.append(
            f"  {pod:<34} {row['cpu']:>6.3f} {row['lag']:>10.0f} {row['growth']:>+8.0f}"
            f" {row['score']:>6.2f}{marks}"
        )
    lines.append(f"  (cpu in cores of a {CPU_LIMIT}-core limit, {WINDOW} rate; lag in messages)")
    return "\n".join(lines)


def verdict(result: Mapping[str, Any], label: str = "decision") -> str:
    line = f"  {label:<14}{result['action']} ({result['reason']})"
    if result["value"] is not None and result["threshold"] is not None:
        line += f": {result['statistic']} {result['value']:.4f} vs threshold {result['threshold']}"
    if result["dry_run"]:
        line += "   [dry run]"
    return line


def current_pods(sim: KubeSim) -> set[str]:
    return {p["metadata"]["name"] for p in sim.pods(NAMESPACE, DEPLOYMENT)}


def main() -> int:
    started = time.monotonic()
    token = secrets.token_urlsafe(24)
    spec = scenario(
        [NAMESPACE],
        [lagging_consumer(NAMESPACE, DEPLOYMENT, startupSeconds=2.0)],
        metrics={"intervalSeconds": 1.0, "backfillMinutes": 2},
    )
    with tempfile.TemporaryDirectory(prefix="pod-rebalancer-demo-kafka-") as tmp:
        workdir = Path(tmp)
        with victoria_metrics(workdir, latency_offset="1s") as vm:
            sim = KubeSim(workdir, spec, tls=True, victoria_url=vm.url, tick=0.2)
            try:
                code = run(vm, sim, workdir, token)
            finally:
                sim.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
    return code


def run(vm: VictoriaMetrics, sim: KubeSim, workdir: Path, token: str) -> int:
    print(f"VictoriaMetrics   {vm.url}")
    print(
        f"Kubernetes API    {sim.url} (simulator; {REPLICAS} consumers limited to {CPU_LIMIT} "
        "core, 24 partitions)"
    )
    env = function_env(vm, sim, workdir, token, DEPLOYMENT)
    scored = {**env, "IMBALANCE_SIGNAL": "score", "LAG_QUERY": LAG_QUERY}
    time.sleep(TREND_S + 5)  # live samples for the lag trend, beyond the backfilled history

    banner("1. by CPU alone (the default), and by the score: two dry runs")
    print("  the score: IMBALANCE_SIGNAL=score with the README's assignment LAG_QUERY")
    with function_server("rebalance", env, workdir) as fn:
        by_cpu = invoke(fn.url, token, {"dry_run": True})
    with function_server("rebalance", scored, workdir) as fn:
        by_score = invoke(fn.url, token, {"dry_run": True})
    before = measure(vm, current_pods(sim))
    print(table(before, {"by cpu": roles(by_cpu), "by score": roles(by_score)}))
    print()
    print(verdict(by_cpu, "by cpu"))
    print(verdict(by_score, "by score"))
    lagging = max(before, key=lambda p: before[p]["lag"])
    print(
        f"\n  {lagging} runs at its limit and falls {before[lagging]['growth']:.0f} messages\n"
        "  a second further behind; by CPU alone it looks like the busiest pod that keeps up."
    )

    banner("2. real run by the score")
    print("  !!! DRY_RUN=false: the next call EVICTS pods from the simulated cluster !!!")
    with function_server("rebalance", {**scored, "DRY_RUN": "false"}, workdir) as fn:
        real = invoke(fn.url, token, {})
    print(verdict(real))
    if real["evicted"]:
        print(f"  {'evicted':<14}{', '.join(real['evicted'])}")
    if real["action"] != "rebalanced" or lagging not in real["evicted"]:
        print("\n  the lagging pod was not evicted, so there is nothing to compare")
        return 1

    banner("3. after the consumer group rebalanced")
    evicted_at = time.time()
    settled = wait_settled(sim, DEPLOYMENT, REPLICAS)
    print(f"  all {REPLICAS} replicas Ready again {settled - evicted_at:.1f}s after the evictions")
    time.sleep(22)  # a full window of samples from the new assignment
    after = measure(vm, current_pods(sim))
    print(table(after, {}))
    capped = [p for p, row in after.items() if row["growth"] > 0]
    total = sum(row["lag"] for row in after.values())
    draining = sum(row["growth"] for row in after.values())
    print(
        f"\n  total lag {sum(r['lag'] for r in before.values()):.0f} -> {total:.0f} messages, "
        f"changing by {draining:+.0f} a second; pods still falling behind: {len(capped)}"
    )
    by_cpu_ok = lagging not in roles(by_cpu)
    return 0 if by_cpu_ok and not capped and draining < 0 else 1


if __name__ == "__main__":
    sys.exit(main())
