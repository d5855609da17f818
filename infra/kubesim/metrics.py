"""Writes the load model's CPU counters into VictoriaMetrics, as cAdvisor via the kubelet would.

At start-up, `backfill()` writes `backfillMinutes` of history (a sample every 15 s ending now)
computed from the same model and the initial assignment, so a full rate() window exists at
once; after that only live samples are written, one per pod every interval, stamped with the
wall clock. A pod's counter starts at 0 at its creation time and grows by cpu * elapsed.
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
    N clipped to +-3 (the formula of the load model, README.md)."""
    noise = max(-NOISE_CLIP, min(NOISE_CLIP, rng.gauss(0.0, 1.0)))
    busy = float(sample["busy"]) * (1 + float(sample["noise"]) * noise)
    return max(0.0, float(sample["base"]) + max(0.0, busy))


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
        self._push(lines)
        return len(lines)

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
        self._push(lines)
        return len(lines)

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
