"""The simulator's Kafka series in a real VictoriaMetrics, read through the README's lag queries:
the consumer group of `make demo-kafka` (infra/stack/kafka.py), where one pod is capped at its CPU
limit and falls behind while another runs at the same CPU and keeps up.

The cluster runs in this process on a fake clock that ends ten minutes in the past (clear of
VictoriaMetrics' latency offset); the writer puts its samples into the session's VictoriaMetrics,
and every query is made at the time of a written sample, so the model's numbers are exact there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.kubesim.cluster import Cluster
from infra.kubesim.metrics import VictoriaWriter
from infra.stack.kafka import CPU_PER_MESSAGE, LAG_QUERY, lagging_consumer
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.prometheus import PrometheusClient
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Reason, Target
from pod_rebalancer.core.planner import plan
from tests.builders import NOW, pod
from tests.integration.test_signals import QUERIES
from tests.kube import FakeClock, scenario

pytestmark = pytest.mark.integration

WINDOW = timedelta(seconds=60)
STEP = 5.0
CAPACITY = (1.0 - 0.05) / CPU_PER_MESSAGE  # messages a second within one core


@dataclass
class Group:
    cluster: Cluster
    clock: FakeClock
    writer: VictoriaWriter
    target: Target

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def model(self) -> dict[str, dict[str, float]]:
        pods: dict[str, dict[str, float]] = self.cluster.cpu(
            self.target.namespace, self.target.deployment
        )["pods"]
        return pods

    def play(self, seconds: float) -> None:
        """Let time pass in steps, the controllers ticking and the writer writing each."""
        for _ in range(round(seconds / STEP)):
            self.clock.advance(STEP)
            self.cluster.tick()
            self.writer.write_once()

    def evict(self, *names: str) -> None:
        """Through the Eviction API, as the function evicts: Terminating, out of the group."""
        namespace = self.target.namespace
        for name in names:
            body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
            self.cluster.evict_pod(namespace, name, {**body, "namespace": namespace}, [])

    def lag(self, client: PrometheusClient, template: str = LAG_QUERY) -> dict[str, float]:
        return client.pod_signal(template, self.target, self.target.deployment, WINDOW, self.at)


@pytest.fixture
def group(victoria: VictoriaMetrics) -> Iterator[Group]:
    suffix = uuid.uuid4().hex[:8]
    target = Target(f"kafka-load-{suffix}", f"lagging-{suffix}")
    spec = scenario(
        [target.namespace],
        [lagging_consumer(target.namespace, target.deployment)],
        metrics={"intervalSeconds": STEP, "backfillMinutes": 2},
    )
    clock = FakeClock(time.time() - 600)
    cluster = Cluster(spec, clock=clock)
    writer = VictoriaWriter(victoria.url, cluster, clock=clock, seed=7)
    try:
        writer.backfill(cluster.backfill_minutes)
        out = Group(cluster, clock, writer, target)
        out.play(WINDOW.total_seconds())
        yield out
    finally:
        writer.stop()


def test_one_pod_is_capped_and_falls_behind_while_another_at_the_same_cpu_keeps_up(
    group: Group, client: PrometheusClient
) -> None:
    model = group.model()
    cpu = client.pod_cpu(group.target, group.target.deployment, WINDOW, group.at)
    assert set(cpu) == set(model)
    lagging = max(model, key=lambda p: model[p]["lag"])
    keeping_up = max((p for p in model if p != lagging), key=lambda p: cpu[p])
    assert cpu[lagging] == pytest.approx(1.0, abs=0.005)  # at its limit: never above
    assert cpu[keeping_up] == pytest.approx(0.97, abs=0.03)
    assert model[keeping_up]["lag"] == 0.0
    assert all(model[p]["lag"] == 0.0 for p in model if p != lagging)
    # 2000 + 2000 + 1200 + 1200 messages a second against a capacity of 4750.
    assert model[lagging]["messagesPerSecond"] == 6400.0
    before = group.lag(client)[lagging]
    group.play(15)
    assert group.lag(client)[lagging] == pytest.approx(before + (6400 - CAPACITY) * 15, rel=1e-6)


@pytest.mark.parametrize("mapping", ["assignment", "member_host", "consumer_id"])
def test_each_documented_lag_query_reads_the_models_lag_per_pod(
    group: Group, client: PrometheusClient, mapping: str
) -> None:
    model = group.model()
    owning = {p for p, v in model.items() if v["partitions"]}
    lag = group.lag(client, QUERIES[mapping])
    assert set(lag) == owning
    for name in owning:
        assert lag[name] == pytest.approx(model[name]["lag"], rel=1e-6, abs=0.01)


def test_after_partitions_move_each_is_counted_once_under_its_new_owner(
    group: Group, client: PrometheusClient
) -> None:
    """A pod that loses a partition exports 0 for it while it lives: the join never counts a
    partition twice, though the old series is still inside the lookback."""
    model = group.model()
    lagging = max(model, key=lambda p: model[p]["lag"])
    idlest = min(model, key=lambda p: model[p]["cpu"])
    group.evict(lagging, idlest)
    group.play(10)  # replacements Ready (0.5 s) and the group settled
    now = group.cluster.cpu(group.target.namespace, group.target.deployment)
    assert lagging not in now["members"]
    assert len(now["members"]) == 6
    lag = group.lag(client)
    assert set(lag) <= set(now["members"]) | {lagging, idlest}
    assert sum(lag.get(m, 0.0) for m in now["members"]) == pytest.approx(
        sum(now["partitionLag"]), rel=1e-6
    )
    for member in now["members"]:
        assert lag.get(member, 0.0) == pytest.approx(now["pods"][member]["lag"], abs=0.01)


def test_after_the_lagging_and_the_idlest_pods_are_replaced_nobody_is_capped(
    group: Group,
) -> None:
    """What `make demo-kafka` shows: the sticky assignor spreads the two hot partitions, and the
    backlog drains where it lands."""
    model = group.model()
    lagging = max(model, key=lambda p: model[p]["lag"])
    idlest = min(model, key=lambda p: model[p]["cpu"])
    group.evict(lagging, idlest)
    group.play(10)
    after = group.cluster.cpu(group.target.namespace, group.target.deployment)
    assert all(after["pods"][m]["messagesPerSecond"] < CAPACITY for m in after["members"])
    backlog = sum(after["partitionLag"])
    group.play(60)
    assert (
        sum(group.cluster.cpu(group.target.namespace, group.target.deployment)["partitionLag"])
        < backlog
    )


def test_cpu_alone_sees_nothing_and_the_score_picks_the_lagging_pod(
    group: Group, client: PrometheusClient
) -> None:
    target, at = group.target, group.at
    cpu = client.pod_cpu(target, target.deployment, WINDOW, at)
    lag = group.lag(client)
    pods = [pod(name) for name in cpu]
    by_cpu = plan(cpu, pods, settings(target).policy(), NOW)
    assert by_cpu.reason is Reason.BELOW_THRESHOLD
    scored = settings(target, imbalance_signal="score", lag_query=LAG_QUERY).policy()
    by_score = plan(cpu, pods, scored, NOW, signals={"lag": lag})
    assert by_score.reason is Reason.IMBALANCE_CONFIRMED
    lagging = max(lag, key=lambda p: lag[p])
    assert (by_score.selected[0].pod, by_score.selected[0].role) == (lagging, "busiest")


def settings(target: Target, **extra: Any) -> Settings:
    """The defaults, with `extra` changed."""
    return Settings(
        prometheus_endpoint="http://127.0.0.1:9",
        kube_namespace=target.namespace,
        deployment_name=target.deployment,
        container_name=target.deployment,
        kube_auth="kubeconfig",
        **extra,
    )
