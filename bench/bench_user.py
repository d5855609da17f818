"""What a user sees, each figure next to a floor measured in the same run, alternating A/B:

  cold start   spawn of functions-framework serving `rebalance` -> the first HTTP 200 of a 12-pod
               dry run, vs a trivial function generated here that imports only functions_framework,
               kubernetes.client, httpx, numpy, pydantic and pydantic_settings and answers 200
               (both with PYTHONDONTWRITEBYTECODE=1: nothing compiled before is reused from disk
               that the other side could not reuse).
  warm         a 10,000-pod dry run through functions-framework over HTTP, vs the floor: one raw
               GET of the whole pod list, one raw POST of the function's PromQL, json.loads of both.
  peak RSS     the largest VmHWM in the serving process tree (the CLI and gunicorn's worker) after
               the 10,000-pod runs.
  scale        1,000 / 10,000 / 50,000 pods: the dry run, its floor and the serving tree's peak RSS,
               a fresh server per size.

The servers (VictoriaMetrics, the Kubernetes API simulator, the function) run on loopback from a
temporary directory. Benchmarks report: the exit status is non-zero only when a sanity check
fails, never because a goal was missed.
Run: PYTHONPATH=function:. .venv/bin/python bench/bench_user.py   (or `make bench`)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import FunctionServer, clean_env, free_port, venv_bin
from infra.stack.series import cpu_counters, skewed_loads
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.prometheus import cpu_query
from pod_rebalancer.core.model import Target
from tests.kube import TOKEN, deployment, kubeconfig, scenario

DEPLOYMENT = "bench-app"
CONTAINER = "app"
COLD_PODS = 12
WARM_PODS = 10_000
SIZES = (1_000, 10_000, 50_000)
WEBHOOK = "bench-webhook-token"
POD_AGE_S = 7 * 24 * 3600
HISTORY_MINUTES = 12
STEP_S = 15
SIM_TICK_S = 3600.0  # no controller pass during the timings: nothing here changes a pod
GOALS = {"cold": 1.25, "warm": 1.0, "rss_mib": 100.0}
FLOOR_APP = '''"""A cold start's floor: the imports no implementation of this function avoids."""
import functions_framework
import httpx
import kubernetes.client
import numpy
import pydantic
import pydantic_settings


@functions_framework.http
def floor(request):
    return "ok"
'''


def require(condition: object, problem: object) -> None:
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {problem}")


def namespace(pods: int) -> str:
    return f"bench-{pods}"


def start_stack(workdir: Path, sizes: tuple[int, ...]) -> tuple[VictoriaMetrics, KubeSim]:
    vm = VictoriaMetrics(workdir)
    body = scenario(
        [namespace(n) for n in sizes],
        [
            deployment(namespace(n), DEPLOYMENT, n, container=CONTAINER, podAgeSeconds=POD_AGE_S)
            for n in sizes
        ],
    )
    sim = KubeSim(workdir / "kubesim", body, tls=False, tick=SIM_TICK_S)
    end_ms = int(time.time() * 1000)
    for pods in sizes:
        names = sorted(p["metadata"]["name"] for p in sim.pods(namespace(pods), DEPLOYMENT))
        require(len(names) == pods, f"{len(names)} pods in {namespace(pods)}, {pods} expected")
        loads = dict(zip(names, skewed_loads(pods), strict=True))
        lines = list(
            cpu_counters(
                namespace(pods), CONTAINER, loads, end_ms, minutes=HISTORY_MINUTES, step_s=STEP_S
            )
        )
        for start in range(0, len(lines), 2000):
            vm.import_series(lines[start : start + 2000])
    return vm, sim


def function_env(vm: VictoriaMetrics, config: Path) -> dict[str, str]:
    """A dry run that always selects two pods: the longest path a dry run takes."""
    return {
        "PROMETHEUS_ENDPOINT": vm.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(config),
        "KUBE_NAMESPACE": namespace(COLD_PODS),
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "CONTAINER_NAME": CONTAINER,
        "ALLOWED_NAMESPACES": "bench-*",
        "WEBHOOK_TOKEN": WEBHOOK,
        "DRY_RUN": "true",
        "CPU_VARIANCE_THRESHOLD": "0",
        "MIN_IMPROVEMENT_PERCENT": "0",
        "LOG_LEVEL": "warning",
    }


def dry_run(client: httpx.Client, pods: int) -> dict[str, Any]:
    response = client.post(
        "/",
        json={"namespace": namespace(pods), "deployment": DEPLOYMENT, "dry_run": True},
        headers={"Authorization": f"Bearer {WEBHOOK}"},
    )
    require(response.status_code == 200, response.text[:500])
    (result,) = response.json()["results"]
    require(result["action"] == "would_rebalance", result)
    require(result["statistics"]["count"] == pods, result["statistics"])
    return dict(result)


class Floor:
    """The raw reads: the whole pod list in one GET, the metrics query, json.loads of both."""

    def __init__(self, sim: KubeSim, vm: VictoriaMetrics, pods: int) -> None:
        self.kube = httpx.Client(
            base_url=sim.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
        )
        self.metrics = httpx.Client(base_url=vm.url, timeout=120)
        self.pods = pods
        self.path = f"/api/v1/namespaces/{namespace(pods)}/pods"
        self.promql = cpu_query(
            Target(namespace(pods), DEPLOYMENT), CONTAINER, timedelta(minutes=5)
        )

    def __call__(self) -> None:
        answer = self.kube.get(self.path, params={"labelSelector": f"app={DEPLOYMENT}"})
        listed = json.loads(answer.content)
        response = self.metrics.post(
            "/api/v1/query", data={"query": self.promql, "time": f"{time.time():.3f}"}
        )
        body = json.loads(response.content)
        require(len(listed["items"]) == self.pods, len(listed["items"]))
        require(len(body["data"]["result"]) == self.pods, len(body["data"]["result"]))

    def close(self) -> None:
        self.kube.close()
        self.metrics.close()


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def pairs(
    a: Callable[[], Any], b: Callable[[], Any], count: int
) -> tuple[list[float], list[float]]:
    """A then B, then B then A, ...: drift in the machine's speed falls on both alike."""
    times_a, times_b = [], []
    for index in range(count):
        if index % 2 == 0:
            times_a.append(timed(a))
            times_b.append(timed(b))
        else:
            times_b.append(timed(b))
            times_a.append(timed(a))
    return times_a, times_b


def tree_vmhwm_mib(root: int) -> float:
    """The largest VmHWM (peak resident set) of `root` and its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    peak, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


@contextmanager
def served(env: Mapping[str, str], workdir: Path, name: str) -> Iterator[FunctionServer]:
    directory = workdir / name
    directory.mkdir(exist_ok=True)
    server = FunctionServer("rebalance", env, directory)
    try:
        yield server
    finally:
        server.stop()


def cold_start(argv: list[str], env: dict[str, str], url: str, body: Any) -> float:
    """Spawn to the first 200, polling every 10 ms (bounded: 60 s)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 60
        while time.perf_counter() < deadline:
            try:
                answer = httpx.post(
                    url, json=body, headers={"Authorization": f"Bearer {WEBHOOK}"}, timeout=30
                )
            except httpx.TransportError:
                time.sleep(0.01)
                continue
            require(answer.status_code == 200, answer.text[:300])
            return time.perf_counter() - started
        raise RuntimeError(f"{argv} did not answer within 60 s")
    finally:
        process.terminate()
        process.wait(10)


def measure_cold(workdir: Path, env: dict[str, str], pairs_count: int) -> tuple[float, float]:
    floor_dir = workdir / "floor-app"
    floor_dir.mkdir(exist_ok=True)
    (floor_dir / "main.py").write_text(FLOOR_APP)
    base = {**clean_env(), **env, "PYTHONDONTWRITEBYTECODE": "1"}
    function_dir = Path(__file__).resolve().parents[1] / "function"

    def spawn(source: Path, target: str, body: Any) -> float:
        port = free_port()
        argv = [
            venv_bin("functions-framework"),
            f"--target={target}",
            f"--source={source / 'main.py'}",
            "--host=127.0.0.1",
            f"--port={port}",
        ]
        return cold_start(
            argv, {**base, "PYTHONPATH": str(source)}, f"http://127.0.0.1:{port}/", body
        )

    request = {"namespace": namespace(COLD_PODS), "deployment": DEPLOYMENT, "dry_run": True}
    ours, floors = pairs(
        lambda: spawn(function_dir, "rebalance", request),
        lambda: spawn(floor_dir, "floor", {}),
        pairs_count,
    )
    return statistics.median(ours), statistics.median(floors)


def measure_size(
    env: dict[str, str], sim: KubeSim, vm: VictoriaMetrics, workdir: Path, pods: int, reps: int
) -> tuple[float, float, float]:
    """The warm dry run and its floor (medians of alternating pairs) and the tree's peak RSS."""
    floor = Floor(sim, vm, pods)
    try:
        with served(env, workdir, f"function-{pods}") as server:
            client = httpx.Client(base_url=server.url, timeout=300)
            try:
                dry_run(client, pods)  # the first call builds the clients: not a warm run
                floor()
                ours, floors = pairs(lambda: dry_run(client, pods), floor, reps)
            finally:
                client.close()
            rss = tree_vmhwm_mib(server.server.process.pid)
    finally:
        floor.close()
    return statistics.median(ours), statistics.median(floors), rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs per figure (3..50)")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    count = max(3, min(args.pairs, 50))
    sizes = tuple(sorted({*args.sizes, WARM_PODS}))
    with tempfile.TemporaryDirectory(prefix="bench-user-") as tmp:
        workdir = Path(tmp)
        vm, sim = start_stack(workdir, (COLD_PODS, *sizes))
        try:
            env = function_env(vm, kubeconfig(sim, workdir / "kubeconfig"))
            cold, cold_floor = measure_cold(workdir, env, count)
            scale = {pods: measure_size(env, sim, vm, workdir, pods, count) for pods in sizes}
        finally:
            sim.stop()
            vm.stop()
    warm, warm_floor, rss = scale[WARM_PODS]
    rows = [
        ("cold start, 12-pod dry run (s)", cold, cold_floor, cold / cold_floor, GOALS["cold"]),
        ("warm 10,000-pod dry run (s)", warm, warm_floor, warm / warm_floor, GOALS["warm"]),
    ]
    print(f"\nwhat a user sees: medians of {count} alternating pairs each\n")
    print("| figure | ours | floor | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    for name, ours, floor, ratio, goal in rows:
        met = "yes" if ratio <= goal else "NO"
        print(f"| {name} | {ours:.3f} | {floor:.3f} | {ratio:.2f}x | <= {goal:.2f}x | {met} |")
    met = "yes" if rss <= GOALS["rss_mib"] else "NO"
    print(
        f"| peak RSS after the 10,000-pod runs (MiB) | {rss:.1f} | — | — | "
        f"<= {GOALS['rss_mib']:.0f} | {met} |"
    )
    print("\n| pods | dry run (s) | floor (s) | ratio | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for pods in sizes:
        ours, floor, peak = scale[pods]
        print(f"| {pods:,} | {ours:.3f} | {floor:.3f} | {ours / floor:.2f}x | {peak:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
