"""The load model's CPU counters in Prometheus text format, served as the kubelet serves cAdvisor's.

`GET /metrics/cadvisor`: one `container_cpu_usage_seconds_total{namespace, pod, container}` counter
per pod of every Deployment with a load model (scrape it with `honor_labels: true`; the scrape job
adds `job` and `instance`). When the simulator also writes to VictoriaMetrics these are the very
counters it writes there, each stamped with the time of that write, so Prometheus and
VictoriaMetrics hold the same samples. Without VictoriaMetrics each scrape advances the counters by
the model's CPU since the previous scrape, as cAdvisor's grow between scrapes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from infra.kubesim.cluster import Cluster
from infra.kubesim.metrics import CPU_METRIC, VictoriaWriter, draw_cpu

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEADER = (
    f"# HELP {CPU_METRIC} Cumulative cpu time consumed in seconds.\n# TYPE {CPU_METRIC} counter\n"
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(sample: Mapping[str, Any], value: float, at: float | None) -> str:
    labels = ",".join(
        f'{name}="{_escape(str(sample[name]))}"' for name in ("namespace", "pod", "container")
    )
    stamp = f" {int(at * 1000)}" if at is not None else ""
    return f"{CPU_METRIC}{{{labels}}} {value!r}{stamp}\n"


class Exposition:
    def __init__(
        self,
        cluster: Cluster,
        writer: VictoriaWriter | None = None,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.writer = writer
        self.clock = clock
        self.rng = random.Random(seed)
        self.counters: dict[str, tuple[float, float]] = {}  # uid -> (value, at), scrape-driven
        self._lock = threading.Lock()

    def render(self) -> str:
        samples = self.cluster.load_samples()
        if self.writer is not None:
            written = dict(self.writer.counters)  # a copy: the writer's thread keeps adding
            body = (_line(s, *written[str(s["uid"])]) for s in samples if str(s["uid"]) in written)
        else:
            body = (_line(s, value, None) for s, value in self._advance(samples))
        return HEADER + "".join(body)

    def _advance(
        self, samples: Iterable[Mapping[str, Any]]
    ) -> list[tuple[Mapping[str, Any], float]]:
        """Grow each pod's counter by its CPU since the last scrape (from 0 at its creation)."""
        now = self.clock()
        out = []
        with self._lock:
            alive = set()
            for sample in samples:
                uid = str(sample["uid"])
                alive.add(uid)
                value, at = self.counters.get(uid, (0.0, min(float(sample["created"]), now)))
                value += draw_cpu(sample, self.rng) * max(0.0, now - at)
                self.counters[uid] = (value, now)
                out.append((sample, value))
            for uid in set(self.counters) - alive:
                del self.counters[uid]
        return out
