"""A consumer group that CPU alone misjudges, for `make demo-kafka` and its tests.

Six consumers with a CPU limit of one core each, 24 partitions dealt the way a long-lived sticky
group drifts (the hottest piled together). One pod owns both hot partitions: its partitions need
1.33 cores, so it runs at its limit and falls 1,650 messages a second further behind. Another
owns four busy partitions and runs at 0.97 cores, keeping up. By CPU the two look alike and the
group's variance is far below the threshold; by lag one of them is in trouble.

The partition numbering is chosen so that the sticky assignor, once the lagging pod and the
idlest are replaced, leaves no member over its limit (checked by tests/integration/
test_kafka_load.py against the simulator itself).
"""

from __future__ import annotations

from typing import Any

from infra.stack.kube import deployment

CPU_LIMIT = "1"  # cores per pod
CPU_PER_MESSAGE = 0.0002
BASE_CPU = 0.05
# Messages a second per partition: two hot (2000), six busy (1150-1200), sixteen light.
RATES = (
    1150, 1200, 680, 660, 1200, 660, 700, 1150, 680, 700, 660, 680,
    2000, 720, 700, 660, 720, 2000, 1150, 1150, 720, 720, 680, 700,
)  # fmt: skip
REPLICAS = 6

KAFKA: dict[str, Any] = {
    "topic": "events",
    "partitionRates": list(RATES),
    "assignor": "sticky",
    "initialAssignment": "clustered",
    "cpuPerMessage": CPU_PER_MESSAGE,
    "baseCpu": BASE_CPU,
    "noise": 0.02,
    "seed": 7,
}

# The README's assignment mapping ("Kafka-aware signals"), which the simulator's series serve.
LAG_QUERY = """sum by(pod)(
  kafka_consumer_assignment{namespace="{namespace}", pod=~"{deployment}-.+"}
  * on(topic, partition) group_left()
  max by(topic, partition)(kafka_consumergroup_lag{consumergroup="{deployment}"})
)"""


def lagging_consumer(namespace: str, name: str, **extra: Any) -> dict[str, Any]:
    """The Deployment entry of a kubesim scenario: the group above, limited to CPU_LIMIT."""
    resources = {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": CPU_LIMIT, "memory": "1Gi"},
    }
    return deployment(namespace, name, REPLICAS, resources=resources, kafka=dict(KAFKA), **extra)
