"""Synthetic series: `container_cpu_usage_seconds_total` counters with a chosen rate, and gauges
(Kafka lag and assignments, memory, kube_pod_info) holding a chosen value."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping

CPU_METRIC = "container_cpu_usage_seconds_total"


def skewed_loads(pods: int, seed: int = 7, hot: int = 3) -> list[float]:
    """CPU cores per pod as an unevenly assigned consumer group looks: a few hot, some idle."""
    rng = random.Random(seed)
    loads = [rng.uniform(0.35, 0.65) for _ in range(pods)]
    for index in range(min(hot, pods)):
        loads[index] = rng.uniform(1.6, 2.2)
    for index in range(min(hot, pods), min(2 * hot, pods)):
        loads[index] = rng.uniform(0.03, 0.12)
    return loads


def pod_names(deployment: str, count: int, seed: int = 7) -> list[str]:
    """Names shaped like a ReplicaSet's pods: `<deployment>-<hash>-<5 chars>`."""
    rng = random.Random(seed)
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    template = "".join(rng.choice(alphabet) for _ in range(10))
    names: set[str] = set()
    while len(names) < count:
        names.add(f"{deployment}-{template}-{''.join(rng.choice(alphabet) for _ in range(5))}")
    return sorted(names)


def cpu_counters(
    namespace: str,
    container: str,
    loads: Mapping[str, float],
    end_ms: int,
    minutes: float,
    step_s: int = 15,
    noise: float = 0.05,
    seed: int = 11,
) -> Iterator[dict[str, object]]:
    """One import line per pod: a counter growing at `load` cores (± noise) every `step_s`."""
    rng = random.Random(seed)
    points = int(minutes * 60 // step_s) + 1
    start_ms = end_ms - (points - 1) * step_s * 1000
    timestamps = [start_ms + i * step_s * 1000 for i in range(points)]
    for pod, load in loads.items():
        total = rng.uniform(100.0, 5000.0)  # counters rarely start at zero
        values = []
        for _ in timestamps:
            values.append(round(total, 6))
            total += max(0.0, load * (1 + rng.uniform(-noise, noise))) * step_s
        yield {
            "metric": {
                "__name__": CPU_METRIC,
                "namespace": namespace,
                "pod": pod,
                "container": container,
                "job": "kubelet",
            },
            "values": values,
            "timestamps": timestamps,
        }


def gauges(
    metric: str,
    series: Iterable[tuple[Mapping[str, str], float]],
    end_ms: int,
    minutes: float,
    step_s: int = 15,
) -> Iterator[dict[str, object]]:
    """One import line per (labels, value): a gauge holding `value` every `step_s` — Kafka lag,
    an assignment (1), memory, kube-state-metrics' `kube_pod_info` (1)."""
    points = int(minutes * 60 // step_s) + 1
    start_ms = end_ms - (points - 1) * step_s * 1000
    timestamps = [start_ms + i * step_s * 1000 for i in range(points)]
    for labels, value in series:
        yield {
            "metric": {"__name__": metric, **labels},
            "values": [value] * points,
            "timestamps": timestamps,
        }
