"""`make demo`: the whole path on the local stack, with real servers on loopback.

VictoriaMetrics gets 20 minutes of skewed CPU history for a 12-pod consumer Deployment; the
function, served by functions-framework, is asked for a dry run; the decision is printed.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from infra.stack.processes import function_server
from infra.stack.series import cpu_counters, pod_names, skewed_loads
from infra.stack.victoria import victoria_metrics

NAMESPACE = "posthog"
DEPLOYMENT = "ingestion-consumer"


def render(result: dict[str, Any]) -> str:
    roles = {s["pod"]: s["role"] for s in result["selected"]}
    lines = [
        f"target      {result['target']['namespace']}/{result['target']['deployment']}",
        f"decision    {result['action']} ({result['reason']})"
        + ("  [dry run: nothing was evicted]" if result["dry_run"] else ""),
    ]
    if result["value"] is not None:
        lines.append(
            f"statistic   {result['statistic']} = {result['value']:.4f}"
            f"  (threshold {result['threshold']})"
        )
    expected = result.get("expected_after")
    if expected:
        lines.append(
            f"expected    {expected['value']:.4f} after removing the selection "
            f"({expected['improvement_percent']:.1f}% lower)"
        )
    return "\n".join(lines), roles  # type: ignore[return-value]


def table(loads: dict[str, float], measured: dict[str, float], roles: dict[str, str]) -> str:
    rows = [f"{'pod':<42} {'cpu (cores)':>11}  role", "-" * 64]
    for pod in sorted(measured, key=lambda p: -measured[p]):
        rows.append(f"{pod:<42} {measured[pod]:>11.3f}  {roles.get(pod, '')}")
    return "\n".join(rows)


def main() -> int:
    started = time.monotonic()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="pod-rebalancer-demo-") as tmp:
        workdir = Path(tmp)
        with victoria_metrics(workdir) as vm:
            pods = pod_names(DEPLOYMENT, 12)
            loads = dict(zip(pods, skewed_loads(len(pods)), strict=True))
            now_ms = int(time.time() * 1000)
            vm.import_series(cpu_counters(NAMESPACE, DEPLOYMENT, loads, now_ms, minutes=20))
            print(f"VictoriaMetrics at {vm.url}: 20 minutes of CPU history for {len(pods)} pods")
            env = {
                "PROMETHEUS_ENDPOINT": vm.url,
                "KUBE_NAMESPACE": NAMESPACE,
                "DEPLOYMENT_NAME": DEPLOYMENT,
                "WEBHOOK_TOKEN": token,
                "DRY_RUN": "true",
                "LOG_LEVEL": "warning",
            }
            with function_server("rebalance", env, workdir) as fn:
                print(f"function served by functions-framework at {fn.url}")
                print('POST / {"dry_run": true}\n')
                response = httpx.post(
                    fn.url,
                    json={"dry_run": True},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                if response.status_code != 200:
                    print(f"unexpected HTTP {response.status_code}: {response.text}")
                    return 1
                result = response.json()["results"][0]
                at = time.time() - 60
                query = (
                    f'sum by(pod)(rate(container_cpu_usage_seconds_total{{namespace="{NAMESPACE}",'
                    f'container="{DEPLOYMENT}"}}[5m]))'
                )
                measured = {
                    str(s["metric"]["pod"]): float(s["value"][1])  # type: ignore[index]
                    for s in vm.query(query, at)
                }
        summary, roles = render(result)
        print(table(loads, measured, roles))
        print()
        print(summary)
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
