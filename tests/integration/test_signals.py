"""The README's LAG_QUERY and MEMORY_QUERY templates, verbatim, against a real VictoriaMetrics:
kafka-lag-exporter's group lag mapped to pods by member_host (through kube_pod_info) and by
consumer_id, an assignment metric joined with per-partition lag, and memory; then the whole
score decision on those answers.

Each test imports its own series (a Deployment name of its own, so consumer groups never mix),
ending two minutes in the past and queried 30 s before their end (VictoriaMetrics' latency offset).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.stack.series import cpu_counters, gauges, pod_names
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.prometheus import PrometheusClient
from pod_rebalancer.core.model import Reason, Target
from pod_rebalancer.core.planner import plan
from tests.builders import NOW, pod
from tests.unit.test_score import SCORE  # cv over cpu 0.4, lag 0.4, memory 0.2

pytestmark = pytest.mark.integration

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
CONTAINER = "consumer"
WINDOW = timedelta(minutes=5)
MINUTES = 10


def documented() -> dict[str, str]:
    """The ready-made queries as the README shows them (code blocks and the inline ones)."""
    start = README.index("### Kafka-aware signals: lag and memory\n")
    section = README[start : README.index("\n### ", start + 1)]
    member_host, assignment, memory = re.findall(r"```promql\n(.*?)```", section, re.S)
    inline = re.findall(r"`((?:or )?sum by\(pod\)\([^`]+)`", section)
    (consumer_id,) = [q for q in inline if "consumer_id" in q]
    (zero,) = [q for q in inline if q.startswith("or ")]
    return {
        "member_host": member_host.strip(),
        "consumer_id": consumer_id,
        "assignment": assignment.strip(),
        "memory": memory.strip(),
        "zero_fallback": zero,
    }


QUERIES = documented()


@dataclass(frozen=True)
class Group:
    """A consumer group's pods and where their series live."""

    target: Target
    pods: list[str]
    end_ms: int

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.end_ms / 1000 - 30, tz=UTC)

    @property
    def labels(self) -> dict[str, str]:
        return {"namespace": self.target.namespace}


def new_group(count: int = 4) -> Group:
    suffix = uuid.uuid4().hex[:8]
    deployment = f"consumer-{suffix}"
    target = Target(namespace=f"kafka-{suffix}", deployment=deployment)
    return Group(target, pod_names(deployment, count), (int(time.time()) - 120) * 1000)


# Partition → (owner index, lag): pod 0 owns the hot, lagging partitions; pod 3 owns none.
PARTITIONS = {0: (0, 5000.0), 1: (0, 7000.0), 2: (1, 40.0), 3: (1, 60.0), 4: (2, 100.0)}
EXPECTED = {0: 12000.0, 1: 100.0, 2: 100.0}


def import_lag_exporter(victoria: VictoriaMetrics, group: Group) -> None:
    """kafka-lag-exporter's series for the group, and kube-state-metrics' pod IPs (plus a pod of
    another namespace at an IP the group never uses, which the join must not pick up)."""
    ips = {index: f"10.0.{index}.7" for index in range(len(group.pods))}
    lag = [
        (
            {
                "cluster_name": "main",
                "group": group.target.deployment,
                "topic": "events",
                "partition": str(partition),
                "member_host": f"/{ips[owner]}",
                "consumer_id": f"{group.pods[owner]}-{uuid.uuid4()}",
                "client_id": group.pods[owner],
            },
            value,
        )
        for partition, (owner, value) in PARTITIONS.items()
    ]
    info = [
        ({**group.labels, "pod": name, "pod_ip": ips[i], "node": "n1"}, 1.0)
        for i, name in enumerate(group.pods)
    ]
    other = [({"namespace": "elsewhere", "pod": "x-1", "pod_ip": "10.9.9.9"}, 1.0)]
    victoria.import_series(
        [
            *gauges("kafka_consumergroup_group_lag", lag, group.end_ms, MINUTES),
            *gauges("kube_pod_info", [*info, *other], group.end_ms, MINUTES),
        ]
    )


def import_assignment(victoria: VictoriaMetrics, group: Group) -> None:
    owned = [
        ({**group.labels, "pod": group.pods[owner], "topic": "events", "partition": str(p)}, 1.0)
        for p, (owner, _) in PARTITIONS.items()
    ]
    lag = [
        (
            {"consumergroup": group.target.deployment, "topic": "events", "partition": str(p)},
            value,
        )
        for p, (_, value) in PARTITIONS.items()
    ]
    victoria.import_series(
        [
            *gauges("kafka_consumer_assignment", owned, group.end_ms, MINUTES),
            *gauges("kafka_consumergroup_lag", lag, group.end_ms, MINUTES),
        ]
    )


def by_pod(group: Group, values: dict[int, float]) -> dict[str, float]:
    return {group.pods[index]: value for index, value in values.items()}


@pytest.mark.parametrize("mapping", ["member_host", "consumer_id"])
def test_kafka_lag_exporter_group_lag_maps_to_pods(
    victoria: VictoriaMetrics, client: PrometheusClient, mapping: str
) -> None:
    group = new_group()
    import_lag_exporter(victoria, group)
    lag = client.pod_signal(QUERIES[mapping], group.target, CONTAINER, WINDOW, group.at)
    assert lag == by_pod(group, EXPECTED)  # pod 3 owns no partition: no series


def test_an_assignment_metric_joined_with_partition_lag_maps_to_pods(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    group = new_group()
    import_assignment(victoria, group)
    lag = client.pod_signal(QUERIES["assignment"], group.target, CONTAINER, WINDOW, group.at)
    assert lag == by_pod(group, EXPECTED)


def test_the_zero_fallback_gives_a_pod_without_partitions_lag_zero(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    group = new_group()
    import_assignment(victoria, group)
    loads = dict.fromkeys(group.pods, 0.5)
    victoria.import_series(
        cpu_counters(group.target.namespace, CONTAINER, loads, group.end_ms, MINUTES, noise=0.0)
    )
    template = f"{QUERIES['assignment']}\n{QUERIES['zero_fallback']}"
    lag = client.pod_signal(template, group.target, CONTAINER, WINDOW, group.at)
    assert lag == by_pod(group, {**EXPECTED, 3: 0.0})


def test_the_memory_query_reads_each_pods_working_set(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    group = new_group()
    sizes = {i: (i + 1) * 256 * 2**20 for i in range(len(group.pods))}
    series = [
        ({**group.labels, "pod": group.pods[i], "container": CONTAINER}, float(size))
        for i, size in sizes.items()
    ]
    # Another container of the same pods, which the query must leave out.
    sidecar = [({**labels, "container": "istio-proxy"}, 1e6) for labels, _ in series]
    victoria.import_series(
        gauges("container_memory_working_set_bytes", [*series, *sidecar], group.end_ms, MINUTES)
    )
    memory = client.pod_signal(QUERIES["memory"], group.target, CONTAINER, WINDOW, group.at)
    assert memory == by_pod(group, {i: float(size) for i, size in sizes.items()})


def test_the_score_decides_on_what_the_documented_queries_return(
    victoria: VictoriaMetrics, client: PrometheusClient
) -> None:
    """Equal CPU everywhere: CPU alone sees nothing; the score picks the lagging pod."""
    group = new_group(6)
    import_lag_exporter(victoria, group)
    loads = dict.fromkeys(group.pods, 0.8)
    memory = [({**group.labels, "pod": name, "container": CONTAINER}, 5e8) for name in group.pods]
    victoria.import_series(
        [
            *cpu_counters(
                group.target.namespace, CONTAINER, loads, group.end_ms, MINUTES, noise=0.0
            ),
            *gauges("container_memory_working_set_bytes", memory, group.end_ms, MINUTES),
        ]
    )
    target, at = group.target, group.at
    cpu = client.pod_cpu(target, CONTAINER, WINDOW, at)
    template = f"{QUERIES['member_host']}\n{QUERIES['zero_fallback']}"
    signals = {
        "lag": client.pod_signal(template, target, CONTAINER, WINDOW, at),
        "memory": client.pod_signal(QUERIES["memory"], target, CONTAINER, WINDOW, at),
    }
    result = plan(cpu, [pod(name) for name in group.pods], SCORE, NOW, signals=signals)
    assert result.reason is Reason.IMBALANCE_CONFIRMED
    busiest = result.selected[0]
    assert (busiest.pod, busiest.role) == (group.pods[0], "busiest")
    assert busiest.signals == {"cpu": pytest.approx(0.8), "lag": 12000.0, "memory": 5e8}
    assert result.ignored == {}  # pods 3-5 own no partition: lag 0 through the fallback
