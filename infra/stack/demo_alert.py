"""`make demo-alert`: the alert-driven path end to end on the local stack, every hop a real process.

The simulator's load model (an `ingestion-consumer` Deployment of 12 pods on 48 skewed Kafka
partitions) writes CPU counters to VictoriaMetrics; Prometheus starts with that history, scrapes
the same counters from the simulator and evaluates infra/prometheus/rules.yml (`for` shortened to
5s); Alertmanager routes with infra/alertmanager/alertmanager.yml to the function (DRY_RUN=false),
which reads its metrics from Prometheus and evicts in the simulator. Each hop is printed as it
happens, then per-pod CPU and the variance before and after the consumer group rebalanced.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.kubesim.launcher import KubeSim
from infra.stack.alerting import AlertPath, alert_path
from infra.stack.demo import (
    DEPLOYMENT,
    NAMESPACE,
    REPLICAS,
    WINDOW,
    banner,
    before_after_table,
    consumer_group,
    variance,
    wait_settled,
)
from infra.stack.kube import kubeconfig
from infra.stack.prometheus import Prometheus
from infra.stack.victoria import victoria_metrics

HOLD = "5s"  # the rule's `for` (10m in rules.yml)
REPEAT = "10s"  # Alertmanager's repeat_interval (30m in alertmanager.yml)
TARGET = f"{NAMESPACE}/{DEPLOYMENT}"


class Hops:
    """Prints each hop once, stamped with the seconds since the stack started."""

    def __init__(self, path: AlertPath, started: float) -> None:
        self.path = path
        self.started = started
        self.alert_state = ""
        self.routed = False
        self.seen = 0
        self.decisions: list[dict[str, Any]] = []

    def say(self, hop: str, text: str) -> None:
        print(f"  {time.monotonic() - self.started:6.1f}s  {hop:<13} {text}")

    def poll(self) -> None:
        alerts = self.path.prometheus.alerts("PodCPUImbalance")
        state = alerts[0]["state"] if alerts else "inactive"
        if state != self.alert_state:
            value = f" (stdvar {float(alerts[0]['value']):.3f} > 0.3)" if alerts else ""
            self.say("Prometheus", f"PodCPUImbalance {state}{value}")
            self.alert_state = state
        if not self.routed:
            active = [
                a for a in self.path.alertmanager.alerts() if a["status"]["state"] == "active"
            ]
            if active:
                receivers = ", ".join(r["name"] for r in active[0]["receivers"])
                self.say("Alertmanager", f"alert received, routed to {receivers}")
                self.routed = True
        decisions = [d for d in self.path.function.decisions() if d["target"] == TARGET]
        for decision in decisions[self.seen :]:
            self.say(
                "function",
                f"webhook from Alertmanager (alert {decision.get('alert_status')}) → "
                f"{decision['action']} ({decision['reason']})",
            )
            if decision["evicted"]:
                self.say("simulator", f"evicted {', '.join(decision['evicted'])}")
            self.decisions.append(decision)
        self.seen = len(decisions)

    def watch(self, seconds: float, until_rebalanced: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            if until_rebalanced and any(d["action"] == "rebalanced" for d in self.decisions):
                return
            time.sleep(0.2)
        if until_rebalanced:
            raise RuntimeError(f"no rebalance within {seconds:.0f}s")


def per_pod_cpu(prometheus: Prometheus, at: float | None = None) -> dict[str, float]:
    query = (
        f'sum by(pod)(rate(container_cpu_usage_seconds_total{{namespace="{NAMESPACE}",'
        f'container="{DEPLOYMENT}"}}[{WINDOW}]))'
    )
    return {str(s["metric"]["pod"]): float(s["value"][1]) for s in prometheus.query(query, at)}


def decision_table(decision: Mapping[str, Any]) -> str:
    rows = [
        f"  decision  {decision['action']} ({decision['reason']}), dry_run={decision['dry_run']}"
    ]
    if decision.get("value") is not None:
        rows.append(
            f"  {decision['statistic']} {decision['value']:.4f} > threshold {decision['threshold']}"
            f" over {decision['pods']} pods (5m rate, from Prometheus)"
        )
    if decision.get("expected_after") is not None:
        rows.append(f"  expected after removing the selection: {decision['expected_after']:.4f}")
    for selected in decision.get("selected", []):
        rows.append(f"  {selected['role']:<8}  {selected['pod']}  {selected['cpu']:.3f} cores")
    return "\n".join(rows)


def main() -> int:
    started = time.monotonic()
    token = secrets.token_urlsafe(24)
    with (
        tempfile.TemporaryDirectory(prefix="pod-rebalancer-demo-alert-") as tmp,
        victoria_metrics(Path(tmp)) as vm,
    ):
        workdir = Path(tmp)
        sim = KubeSim(workdir, consumer_group(10), tls=True, victoria_url=vm.url, tick=0.2)
        env = {
            "KUBE_AUTH": "kubeconfig",
            "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
            "KUBE_NAMESPACE": NAMESPACE,
            "DEPLOYMENT_NAME": DEPLOYMENT,
            "LOG_LEVEL": "info",
            "DRY_RUN": "false",
        }
        try:
            with alert_path(
                workdir, vm, sim, NAMESPACE, env, token, hold=HOLD, repeat_interval=REPEAT
            ) as path:
                return run(sim, path, started)
        finally:
            sim.stop()


def run(sim: KubeSim, path: AlertPath, started: float) -> int:
    print(f"VictoriaMetrics   history of the load model ({REPLICAS} pods, 48 skewed partitions)")
    print(f"Kubernetes API    {sim.url} (simulator; counters at /metrics/cadvisor)")
    print(f"Prometheus        {path.prometheus.url} (infra/prometheus/rules.yml, for: {HOLD})")
    print(f"Alertmanager      {path.alertmanager.url} (infra/alertmanager/alertmanager.yml)")
    print(f"function          {path.function.url} (rebalance, DRY_RUN=false)")
    print("  !!! DRY_RUN=false: the alert EVICTS pods from the simulated cluster !!!")

    banner("1. the alert, hop by hop")
    hops = Hops(path, started)
    hops.watch(60, until_rebalanced=True)
    acted = next(d for d in hops.decisions if d["action"] == "rebalanced")
    # The WINDOW up to the end of the history Prometheus started with: every sample is there
    # (scraping, which begins seconds later, keeps only the latest); the same assignment as when
    # the function decided.
    before = per_pod_cpu(path.prometheus, at=path.history_end)

    banner("2. the decision")
    print(decision_table(acted))

    banner("3. the consumer group rebalances")
    evicted_at = time.time()
    settled = wait_settled(sim)
    print(
        f"  all {REPLICAS} replicas Ready again {settled - evicted_at:.1f}s after the evictions; "
        f"waiting for a full {WINDOW} of samples from the new assignment "
        f"(Alertmanager repeats every {REPEAT}: the function must answer cooldown)"
    )
    hops.watch(22)
    current = {p["metadata"]["name"] for p in sim.pods(NAMESPACE, DEPLOYMENT)}
    # Series of the evicted pods linger inside the window; only the pods that exist now count.
    after = {pod: cpu for pod, cpu in per_pod_cpu(path.prometheus).items() if pod in current}
    print(before_after_table(before, after))
    drop = (1 - variance(after) / variance(before)) * 100
    change = f"{drop:.0f}% lower" if drop >= 0 else f"{-drop:.0f}% higher"
    print(f"\n  variance {variance(before):.4f} -> {variance(after):.4f} ({change})")
    rebalances = sum(1 for d in hops.decisions if d["action"] == "rebalanced")
    repeats = sum(1 for d in hops.decisions if d["reason"] == "cooldown")
    print(f"  {len(hops.decisions)} webhooks: {rebalances} rebalance, {repeats} answered cooldown")
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s; stopping every server")
    return 0 if rebalances == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
