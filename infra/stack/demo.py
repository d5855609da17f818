"""`make demo`: the whole path on the local stack, with real servers on loopback.

VictoriaMetrics + the Kubernetes API simulator (an `ingestion-consumer` Deployment of 12 pods
consuming 48 skewed Kafka partitions, CPU counters written by the simulator's load model) + the
function served by functions-framework. First a dry run, then a real run with DRY_RUN=false, then
per-pod CPU and the statistic before and after the consumer group rebalanced, as a table and as a
PNG chart; then the function measures its own rebalance (expected vs achieved). Last, a second
consumer whose topic has one dominant partition: rebalancing cannot spread it, two rebalances are
judged ineffective and the target is left alone (`not_effective`).

The function runs with a 20 s METRICS_TIME_WINDOW (and MIN_POD_AGE) and a 10 s COOLDOWN, so that
the loop closes within the demo's minutes; production uses 5m and 15m.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from infra.kubesim.launcher import KubeSim
from infra.stack.kube import deployment, kubeconfig, scenario
from infra.stack.processes import REPO, function_server, wait_until
from infra.stack.victoria import VictoriaMetrics, victoria_metrics

NAMESPACE = "posthog"
DEPLOYMENT = "ingestion-consumer"
REPLICAS = 12
WINDOW = "20s"  # the window used to show CPU before and after, and the function's in the demo
WINDOW_S = 20
DOMINANT = "replay-consumer"  # a topic with one partition carrying most of the traffic
DOMINANT_REPLICAS = 6
CHART = REPO / "build" / "demo-rebalance.png"

KAFKA = {
    "topic": "events",
    "partitions": 48,
    "skew": 0.8,
    "assignor": "sticky",
    "initialAssignment": "clustered",
    "cpuPerMessage": 0.0004,
    "baseCpu": 0.05,
    "noise": 0.03,
    "messagesPerSecond": 20000,
    "seed": 7,
}


# One partition per pod, Zipf exponent 3: the first carries about 84% of the messages. Whatever the
# assignment, the pods carry the same loads, so no rebalance can change the statistic.
# Little noise: the variance is nearly the hot pod's load squared, so 3% noise on that one pod
# would move it by 6% either way, across the effectiveness boundary.
DOMINANT_KAFKA = {
    **KAFKA,
    "topic": "replays",
    "partitions": DOMINANT_REPLICAS,
    "skew": 3.0,
    "noise": 0.003,
}


def consumer_group(backfill_minutes: int, dominant: bool = False) -> dict[str, Any]:
    """The demos' cluster: the consumer Deployment with its load model and a PDB allowing 2;
    with `dominant`, also a consumer of a topic with one dominant partition."""
    deployments = [deployment(NAMESPACE, DEPLOYMENT, REPLICAS, startupSeconds=2.0, kafka=KAFKA)]
    if dominant:
        deployments.append(
            deployment(
                NAMESPACE, DOMINANT, DOMINANT_REPLICAS, startupSeconds=2.0, kafka=DOMINANT_KAFKA
            )
        )
    return scenario(
        [NAMESPACE],
        deployments,
        pdbs=[
            {
                "namespace": NAMESPACE,
                "name": DEPLOYMENT,
                "selector": {"app": DEPLOYMENT},
                "maxUnavailable": 2,
            }
        ],
        metrics={"intervalSeconds": 1.0, "backfillMinutes": backfill_minutes},
    )


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)))


def per_pod(vm: VictoriaMetrics, promql: str, at: float) -> dict[str, float]:
    """A `sum by(pod)` query's answer at `at`: pod -> value."""
    out = {}
    for series in vm.query(promql, at):
        metric, value = series["metric"], series["value"]
        assert isinstance(metric, Mapping)
        assert isinstance(value, list)
        out[str(metric["pod"])] = float(value[1])
    return out


def per_pod_cpu(vm: VictoriaMetrics, at: float) -> dict[str, float]:
    query = (
        f'sum by(pod)(rate(container_cpu_usage_seconds_total{{namespace="{NAMESPACE}",'
        f'container="{DEPLOYMENT}"}}[{WINDOW}]))'
    )
    return per_pod(vm, query, at)


def variance(values: Mapping[str, float]) -> float:
    data = list(values.values())
    mean = sum(data) / len(data)
    return sum((v - mean) ** 2 for v in data) / len(data)


def decision_table(result: dict[str, Any], cpu: Mapping[str, float]) -> str:
    roles = {s["pod"]: s["role"] for s in result["selected"]}
    rows = [f"  {'pod':<40} {'cpu (cores)':>11}  role", "  " + "-" * 62]
    for pod in sorted(cpu, key=lambda p: -cpu[p]):
        rows.append(f"  {pod:<40} {cpu[pod]:>11.3f}  {roles.get(pod, '')}")
    rows.append("")
    rows.append(
        f"  decision  {result['action']} ({result['reason']})"
        + ("   [dry run: nothing evicted]" if result["dry_run"] else "")
    )
    if result["value"] is not None:
        rows.append(
            f"  {result['statistic']} {result['value']:.4f} > threshold {result['threshold']}"
        )
    if result.get("expected_after"):
        expected = result["expected_after"]
        rows.append(
            f"  expected after removing the selection: {expected['value']:.4f} "
            f"({expected['improvement_percent']:.1f}% lower)"
        )
    if result["evicted"]:
        rows.append(f"  evicted   {', '.join(result['evicted'])}")
    return "\n".join(rows)


def before_after_table(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    rows = [f"  {'before':<40} {'cores':>6}    {'after':<40} {'cores':>6}", "  " + "-" * 98]
    left = sorted(before.items(), key=lambda kv: -kv[1])
    right = sorted(after.items(), key=lambda kv: -kv[1])
    for index in range(max(len(left), len(right))):
        a = f"{left[index][0]:<40} {left[index][1]:>6.3f}" if index < len(left) else " " * 47
        b = f"{right[index][0]:<40} {right[index][1]:>6.3f}" if index < len(right) else ""
        rows.append(f"  {a}    {b}")
    rows.append("  " + "-" * 98)
    rows.append(
        f"  {'variance':<40} {variance(before):>6.4f}    {'variance':<40} {variance(after):>6.4f}"
    )
    return "\n".join(rows)


def chart(before: Mapping[str, float], after: Mapping[str, float], evicted: list[str]) -> Path:
    import matplotlib  # noqa: PLC0415  (a demo dependency, not the function's)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    CHART.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    panels = (
        ("before", before, "red: evicted"),
        ("after the rebalance", after, "green: replacements"),
    )
    for axis, (title, values, legend) in zip(axes, panels, strict=True):
        ordered = sorted(values.items(), key=lambda kv: -kv[1])
        colors = [
            "tab:red" if pod in evicted else "tab:green" if pod not in before else "tab:blue"
            for pod, _ in ordered
        ]
        axis.bar(range(len(ordered)), [v for _, v in ordered], color=colors)
        mean = sum(values.values()) / len(values)
        axis.axhline(mean, color="gray", linestyle="--", linewidth=1, label=f"mean {mean:.2f}")
        axis.set_title(f"{title}: variance {variance(values):.3f}")
        axis.set_xlabel(f"pods, busiest first ({legend})")
        axis.set_xticks([])
        axis.legend(loc="upper right")
    axes[0].set_ylabel("CPU (cores)")
    fig.suptitle(f"{NAMESPACE}/{DEPLOYMENT}: per-pod CPU ({WINDOW} rate)")
    fig.tight_layout()
    fig.savefig(CHART, dpi=100)
    plt.close(fig)
    return CHART


def wait_settled(
    sim: KubeSim, name: str = DEPLOYMENT, replicas: int = REPLICAS, timeout: float = 60.0
) -> float:
    """Wait until every replica is Ready again and nothing is terminating; return that time."""
    wait_until(lambda: sim.settled(NAMESPACE, name, replicas), timeout, f"{name} settled")
    return time.time()


def effect_line(result: dict[str, Any]) -> str:
    """The function's own measurement of the previous rebalance, next to what it expected."""
    last = result.get("last_rebalance")
    if not last:
        return "  no previous rebalance reported"
    expected = (last["before"] - last["expected_after"]) / last["before"] * 100
    if last["effective"] is None:
        return f"  not judged yet: {last['note']}"
    verdict = "effective" if last["effective"] else "NOT effective"
    achieved = last["improvement_percent"]
    change = f"{achieved:.1f}% lower" if achieved >= 0 else f"{-achieved:.1f}% higher"
    return (
        f"  {result['statistic'] or 'statistic'} before {last['before']:.4f} | expected after "
        f"{last['expected_after']:.4f} ({expected:.1f}% lower) | achieved {last['achieved']:.4f} "
        f"({change}) -> {verdict}"
    )


def function_env(
    vm: VictoriaMetrics, sim: KubeSim, workdir: Path, token: str, deployment: str, **extra: str
) -> dict[str, str]:
    """The demos' function configuration: the local stack, a dry run by default, and the demo's
    short window (also the pods' minimum age)."""
    return {
        "PROMETHEUS_ENDPOINT": vm.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": deployment,
        "WEBHOOK_TOKEN": token,
        "LOG_LEVEL": "warning",
        "DRY_RUN": "true",
        "METRICS_TIME_WINDOW": WINDOW,
        "MIN_POD_AGE": WINDOW,
        **extra,
    }


def invoke(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text}")
    result: dict[str, Any] = response.json()["results"][0]
    return result


def main() -> int:
    started = time.monotonic()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="pod-rebalancer-demo-") as tmp:
        workdir = Path(tmp)
        with victoria_metrics(workdir, latency_offset="1s") as vm:
            sim = KubeSim(
                workdir, consumer_group(20, dominant=True), tls=True, victoria_url=vm.url, tick=0.2
            )
            try:
                return run(vm, sim, workdir, token, started)
            finally:
                sim.stop()


def run(vm: VictoriaMetrics, sim: KubeSim, workdir: Path, token: str, started: float) -> int:
    print(f"VictoriaMetrics   {vm.url}")
    print(f"Kubernetes API    {sim.url} (simulator, TLS; {REPLICAS} pods, 48 skewed partitions)")
    print("history           20 minutes backfilled by the load model, then a sample a second")
    env = function_env(vm, sim, workdir, token, DEPLOYMENT, COOLDOWN="10s")

    banner("1. dry run (DRY_RUN=true)")
    with function_server("rebalance", env, workdir) as fn:
        dry = invoke(fn.url, token, {"dry_run": True})
    print(decision_table(dry, per_pod_cpu(vm, time.time() - 1)))

    banner("2. real run")
    print("  !!! DRY_RUN=false: the next call EVICTS pods from the simulated cluster !!!")
    with function_server("rebalance", {**env, "DRY_RUN": "false"}, workdir) as fn:
        before = per_pod_cpu(vm, time.time() - 1)
        real = invoke(fn.url, token, {})
    print(decision_table(real, before))
    if real["action"] != "rebalanced":
        print("\n  nothing was evicted, so there is nothing to compare")
        return 1

    banner("3. the consumer group rebalances")
    evicted_at = time.time()
    settled = wait_settled(sim)
    print(
        f"  all {REPLICAS} replicas Ready again {settled - evicted_at:.1f}s after the evictions; "
        f"waiting for a full {WINDOW} of samples from the new assignment"
    )
    time.sleep(22)
    current = {p["metadata"]["name"] for p in sim.pods(NAMESPACE, DEPLOYMENT)}
    # Series of the evicted pods linger inside the window; only the pods that exist now count.
    after = {pod: cpu for pod, cpu in per_pod_cpu(vm, time.time() - 1).items() if pod in current}
    print(before_after_table(before, after))
    drop = (1 - variance(after) / variance(before)) * 100
    print(f"\n  variance {variance(before):.4f} -> {variance(after):.4f} ({drop:.0f}% lower)")
    path = chart(before, after, real["evicted"])
    print(f"  chart: {path}")

    real_env = {**env, "DRY_RUN": "false"}
    banner("4. did it help? the next run measures the last rebalance")
    with function_server("rebalance", real_env, workdir) as fn:
        measured = invoke(fn.url, token, {})
    print(effect_line(measured))
    print(f"  this run: {measured['action']} ({measured['reason']})")

    banner(f"5. one dominant partition: {DOMINANT}")
    print(
        f"  {DOMINANT_REPLICAS} partitions, one per pod, the first carrying ~84% of the "
        "messages: whoever owns it is hot"
    )
    outcome = dominant_partition(sim, real_env, workdir, token)
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
    return 0 if measured["last_rebalance"] and outcome == "not_effective" else 1


def dominant_partition(sim: KubeSim, env: dict[str, str], workdir: Path, token: str) -> str:
    """Rebalance until the function gives up: two ineffective rebalances, then not_effective."""
    body = {"namespace": NAMESPACE, "deployment": DOMINANT}
    with function_server("rebalance", env, workdir) as fn:
        for attempt in range(1, 5):  # bounded: two rebalances and the skip take three calls
            result = invoke(fn.url, token, body)
            line = f"  call {attempt}: {result['action']} ({result['reason']})"
            if result["evicted"]:
                line += f", evicted {', '.join(result['evicted'])}"
            print(line)
            if result.get("last_rebalance"):
                print(f"  {effect_line(result).strip()}   [the previous rebalance]")
            if result["action"] != "rebalanced":
                if result["reason"] == "not_effective":
                    print(f"  left alone: {result['last_rebalance']['note']}")
                return str(result["reason"])
            wait_settled(sim, DOMINANT, DOMINANT_REPLICAS)
            time.sleep(WINDOW_S + 5)  # the replacements Ready for a full window, and some
    return "rebalanced"


if __name__ == "__main__":
    sys.exit(main())
