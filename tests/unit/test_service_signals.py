"""The service under IMBALANCE_SIGNAL=score and IMBALANCE_POLICY=hpa_target, with fakes of its
ports: the signals are queried at the same time, the HPA is read by the name the Deployment gives,
and the Lease remembers what a score-based rebalance measured."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pod_rebalancer.core.model import Deployment, HpaTarget, Target
from pod_rebalancer.errors import MetricsError
from pod_rebalancer.locking import lease_name
from tests.fakes import FakeCluster, FakeMetrics
from tests.unit.test_service import NAMES, cluster_of, metrics_of, run, service

LAG = 'sum by(pod)(lag{group="{deployment}"})'
MEMORY = 'sum by(pod)(memory{namespace="{namespace}"})'


@dataclass
class SignalMetrics(FakeMetrics):
    """CPU, lag and memory; with `together`, each query waits until all three have started."""

    lag: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    together: threading.Barrier | None = None
    templates: list[str] = field(default_factory=list)

    def pod_cpu(
        self, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        self._meet()
        return super().pod_cpu(target, container, window, at)

    def pod_signal(
        self, template: str, target: Target, container: str, window: timedelta, at: datetime
    ) -> dict[str, float]:
        self.templates.append(template)
        self._meet()
        return dict(self.lag if template == LAG else self.memory)

    def _meet(self) -> None:
        if self.together is not None:
            try:
                self.together.wait()
            except threading.BrokenBarrierError as exc:
                raise MetricsError("the queries were not in flight together") from exc


@dataclass
class HpaCluster(FakeCluster):
    hpas: dict[str, HpaTarget] = field(default_factory=dict)
    hpa_reads: list[str] = field(default_factory=list)
    hpa_name: str = ""

    def hpa(self, target: Target, name: str) -> HpaTarget | None:
        self.hpa_reads.append(name)
        return self.hpas.get(name)

    def record(self, target: Target) -> Deployment:
        return replace(super().record(target), hpa=self.hpa_name)


def lagging() -> SignalMetrics:
    base = metrics_of()
    cpu = dict.fromkeys(base.samples, 1.0)  # CPU alone sees no imbalance
    lag = dict.fromkeys(NAMES, 100.0) | {NAMES[3]: 20000.0, NAMES[7]: 0.0}
    return SignalMetrics(cpu, lag=lag, memory=dict.fromkeys(NAMES, 1e9))


SCORE = {"imbalance_signal": "score", "lag_query": LAG, "memory_query": MEMORY}


def test_cpu_lag_and_memory_are_queried_at_the_same_time() -> None:
    metrics = lagging()
    metrics.together = threading.Barrier(3, timeout=10)
    outcome = run(service(cluster_of(), metrics, **SCORE), dry_run=True)
    assert outcome.reason == "imbalance_confirmed", outcome.errors
    assert sorted(metrics.templates) == sorted([LAG, MEMORY])


def test_the_score_finds_the_lagging_pod_that_cpu_alone_misses() -> None:
    assert run(service(cluster_of(), lagging()), dry_run=True).reason == "below_threshold"
    outcome = run(service(cluster_of(), lagging(), **SCORE), dry_run=True)
    selected = outcome.to_json()["selected"]
    assert [(s["pod"], s["role"]) for s in selected] == [
        (NAMES[3], "busiest"),
        (NAMES[7], "idlest"),
    ]
    assert selected[0]["signals"] == {"cpu": 1.0, "lag": 20000.0, "memory": 1e9}
    assert selected[0]["score"] > 1.0


def test_a_score_based_rebalance_is_remembered_as_one() -> None:
    cluster = cluster_of()
    outcome = run(service(cluster, lagging(), **SCORE))
    assert outcome.action.value == "rebalanced"
    lease = cluster.leases[lease_name(Target("posthog", "ingestion-consumer"))]
    assert lease.state.effect is not None
    assert lease.state.effect.statistic == "score:variance"


def test_the_default_queries_nothing_but_cpu() -> None:
    metrics = lagging()
    run(service(cluster_of(), metrics, lag_query=LAG), dry_run=True)
    assert metrics.templates == []


def test_the_hpa_is_read_by_the_deployments_name_unless_it_names_another() -> None:
    hot = metrics_of()
    hpa = HpaTarget("ingestion-consumer", 70)
    cluster = HpaCluster(**vars(cluster_of()), hpas={"ingestion-consumer": hpa})
    cluster.pods_ = [replace(p, cpu_request=1.0) for p in cluster.pods_]
    outcome = run(service(cluster, hot, imbalance_policy="hpa_target"), dry_run=True)
    assert cluster.hpa_reads == ["ingestion-consumer"]
    assert outcome.reason == "imbalance_confirmed", outcome.to_json()
    assert outcome.to_json()["hpa"]["hot_pods"] == 2  # 2.3 and 2.0 cores > 1.05

    cluster.hpa_name = "consumers"
    outcome = run(service(cluster, hot, imbalance_policy="hpa_target"), dry_run=True)
    assert cluster.hpa_reads[-1] == "consumers"
    assert outcome.reason == "no_hpa_target"


def test_the_default_policy_never_reads_an_hpa() -> None:
    cluster = HpaCluster(**vars(cluster_of()))
    run(service(cluster, metrics_of()), dry_run=True)
    assert cluster.hpa_reads == []
