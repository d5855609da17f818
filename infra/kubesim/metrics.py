"""Writes the load model's CPU counters into VictoriaMetrics, as cAdvisor via the kubelet would,
and its consumer groups' lag and assignment as the Kafka exporters and the consumers would.

At start-up, `backfill()` writes `backfillMinutes` of history (a sample every 15 s ending now)
computed from the same model and the initial assignment, so a full rate() window exists at
once; after that only live samples are written, one per pod every interval, stamped with the
wall clock. A pod's counter starts at 0 at its creation time and grows by cpu * elapsed.

The Kafka series of each Deployment with a load model (its consumer group is named like it):
- `kafka_consumergroup_lag{consumergroup, topic, partition}`: every partition's lag (messages),
  as kafka_exporter reports it;
- `kafka_consumergroup_group_lag{group, topic, partition, member_host, consumer_id}`: the lag of
  every owned partition with its member, as kafka-lag-exporter reports it (`member_host` is
  `/` and the pod's IP, `consumer_id` the pod's name, `-` and a UUID);
- `kafka_consumer_assignment{namespace, pod, topic, partition}`: 1 for each partition a pod owns,
  0 for one it owned and lost while it lives, as the consumers export it;
- `kube_pod_info{namespace, pod, pod_ip}` 1, as kube-state-metrics does, for the `member_host`
  mapping.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from infra.kubesim.cluster import Cluster

CPU_METRIC = "container_cpu_usage_seconds_total"
BACKFILL_STEP = 15.0
NOISE_CLIP = 3.0  # standard deviations
log = logging.getLogger("kubesim.metrics")


def draw_cpu(sample: Mapping[str, Any], rng: random.Random) -> float:
    """One reading of a pod's CPU from its load sample: base + busy * (1 + noise * N(0,1)), with
    N clipped to +-3 and the result to the pod's CPU limit (the formula of the load model,
    README.md)."""
    noise = max(-NOISE_CLIP, min(NOISE_CLIP, rng.gauss(0.0, 1.0)))
    busy = float(sample["busy"]) * (1 + float(sample["noise"]) * noise)
    cpu = max(0.0, float(sample["base"]) + max(0.0, busy))
    limit = sample.get("limit")
    return cpu if limit is None else min(float(limit), cpu)


def kafka_series(group: Mapping[str, Any]) -> list[tuple[dict[str, str], float]]:
    """The Kafka series of one consumer group's sample (`control.kafka_samples`), as
    (labels, value) pairs; assignment series of revoked partitions are added by the writer."""
    topic, name = str(group["topic"]), str(group["group"])
    out: list[tuple[dict[str, str], float]] = []
    for part in group["partitions"]:
        partition, lag, owner = str(part["partition"]), float(part["lag"]), part["owner"]
        out.append(
            (
                {
                    "__name__": "kafka_consumergroup_lag",
                    "consumergroup": name,
                    "topic": topic,
                    "partition": partition,
                    "job": "kafka-exporter",
                },
                lag,
            )
        )
        if owner is None:
            continue
        out.append(
            (
                {
                    "__name__": "kafka_consumergroup_group_lag",
                    "group": name,
                    "topic": topic,
                    "partition": partition,
                    "member_host": f"/{part['ip']}",
                    "consumer_id": f"{owner}-{part['uid']}",
                    "job": "kafka-lag-exporter",
                },
                lag,
            )
        )
        out.append((assignment_labels(group, str(owner), partition), 1.0))
    return out


def assignment_labels(group: Mapping[str, Any], pod: str, partition: str) -> dict[str, str]:
    return {
        "__name__": "kafka_consumer_assignment",
        "namespace": str(group["namespace"]),
        "pod": pod,
        "topic": str(group["topic"]),
        "partition": partition,
        "job": "consumer",
    }


def labels(sample: Mapping[str, Any]) -> dict[str, str]:
    return {
        "__name__": CPU_METRIC,
        "namespace": str(sample["namespace"]),
        "pod": str(sample["pod"]),
        "container": str(sample["container"]),
        "job": "kubelet",
    }


class VictoriaWriter:
    def __init__(
        self,
        url: str,
        cluster: Cluster,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.rng = random.Random(seed)
        self.counters: dict[str, tuple[float, float]] = {}  # uid -> (value, at)
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=10.0)
        # (namespace, group, pod, partition) -> labels: the partitions each pod owned when last
        # written, so that one it loses is written as 0 while it lives.
        self.owned: dict[tuple[str, str, str, str], dict[str, str]] = {}
        self.writes = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backfill(self, minutes: float) -> int:
        """History for every pod alive now, from max(creation, now - minutes) to now."""
        now = self.clock()
        start = now - minutes * 60
        lines = []
        for sample in self.cluster.load_samples():
            created = float(sample["created"])
            first = max(created, start)
            # The counter has grown since creation at the model's mean rate.
            mean = float(sample["base"]) + float(sample["busy"])
            value = mean * (first - created)
            stamps, values = [first], [value]
            at = first
            while at + BACKFILL_STEP <= now:
                value += draw_cpu(sample, self.rng) * BACKFILL_STEP
                at += BACKFILL_STEP
                stamps.append(at)
                values.append(value)
            if at < now:
                value += draw_cpu(sample, self.rng) * (now - at)
                stamps.append(now)
                values.append(value)
            self.counters[str(sample["uid"])] = (value, now)
            lines.append(self._line(sample, stamps, values))
        lines.extend(self._kafka_backfill(start, now))
        self._push(lines)
        return len(lines)

    def _kafka_backfill(self, start: float, now: float) -> list[str]:
        """Lag history from the model's start: the lag grew linearly from 0 (the load was steady
        under the initial assignment), sampled every BACKFILL_STEP up to now."""
        lines = []
        for group in self.cluster.kafka_samples():
            since = float(group["since"])
            stamps = [now]
            while stamps[-1] - BACKFILL_STEP >= max(start, since):
                stamps.append(stamps[-1] - BACKFILL_STEP)
            stamps.reverse()
            span = now - since
            for metric, value in self._kafka_now(group):
                is_lag = metric["__name__"].endswith("_lag")
                values = [
                    value * ((at - since) / span if span > 0 else 1.0) if is_lag else value
                    for at in stamps
                ]
                lines.append(self._gauge(metric, stamps, values))
        return lines

    def _kafka_now(self, group: Mapping[str, Any]) -> list[tuple[dict[str, str], float]]:
        """The group's series now, with 0 for partitions its live pods have lost."""
        series = kafka_series(group)
        key = (str(group["namespace"]), str(group["group"]))
        alive = {str(pod["name"]) for pod in group["pods"]}
        owned = {
            (*key, m["pod"], m["partition"]): m
            for m, _ in series
            if m["__name__"] == "kafka_consumer_assignment"
        }
        for held, metric in list(self.owned.items()):
            if held[:2] != key:
                continue
            if held in owned:
                continue
            if held[2] in alive:
                series.append((metric, 0.0))
            else:
                del self.owned[held]
        self.owned.update(owned)
        for pod in group["pods"]:
            info = {
                "__name__": "kube_pod_info",
                "namespace": key[0],
                "pod": str(pod["name"]),
                "pod_ip": str(pod["ip"]),
                "job": "kube-state-metrics",
            }
            series.append((info, 1.0))
        return series

    def write_once(self) -> int:
        now = self.clock()
        lines = []
        alive = set()
        for sample in self.cluster.load_samples():
            uid = str(sample["uid"])
            alive.add(uid)
            stamps: list[float] = []
            values: list[float] = []
            if uid not in self.counters:
                created = min(float(sample["created"]), now)
                self.counters[uid] = (0.0, created)
                if created < now:
                    stamps.append(created)
                    values.append(0.0)
            value, at = self.counters[uid]
            value += draw_cpu(sample, self.rng) * max(0.0, now - at)
            self.counters[uid] = (value, now)
            stamps.append(now)
            values.append(value)
            lines.append(self._line(sample, stamps, values))
        for uid in set(self.counters) - alive:
            del self.counters[uid]
        for group in self.cluster.kafka_samples():
            lines.extend(self._gauge(m, [now], [v]) for m, v in self._kafka_now(group))
        self._push(lines)
        return len(lines)

    @staticmethod
    def _gauge(metric: Mapping[str, str], stamps: list[float], values: list[float]) -> str:
        return json.dumps(
            {
                "metric": dict(metric),
                "values": [round(v, 3) for v in values],
                "timestamps": [int(t * 1000) for t in stamps],
            },
            separators=(",", ":"),
        )

    @staticmethod
    def _line(sample: Mapping[str, Any], stamps: list[float], values: list[float]) -> str:
        return json.dumps(
            {
                "metric": labels(sample),
                "values": [round(v, 6) for v in values],
                "timestamps": [int(t * 1000) for t in stamps],
            },
            separators=(",", ":"),
        )

    def _push(self, lines: list[str]) -> None:
        if not lines:
            return
        response = self.http.post("/api/v1/import", content="\n".join(lines).encode())
        response.raise_for_status()
        self.http.get("/internal/force_flush").raise_for_status()
        self.writes += 1

    def start(self, interval: float) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.write_once()
                except Exception:  # keep writing through a VictoriaMetrics restart
                    self.errors += 1
                    log.exception("writing CPU samples to VictoriaMetrics failed")

        self._thread = threading.Thread(target=loop, name="kubesim-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.http.close()
