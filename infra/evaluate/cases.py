"""The cases of the grid: a consumer group (assignor, skew, pods, CPU limit, seed) and the grids
`make evaluate` and its test subset run.

Three families of topics:
- `zipf`: 48 partitions of Zipf-skewed throughput (the load model's own draw);
- `dominant`: one partition carries DOMINANT_SHARE of the messages, the rest share the remainder;
- `sparse`: fewer partitions than pods, Zipf-skewed (some pods own nothing).

Sticky and cooperative-sticky groups start either `clustered`, the way a long-lived sticky group
drifts (the hot partitions piled on a few members: what evicting outliers undoes), or `fresh`
(the assignor's from-scratch assignment, round-robin); range and round-robin start from their own
assignment, the only one they have. (The load model's cooperative-sticky ends in the same
assignment as sticky, so the two differ here only by the seeds drawn from their names.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from infra.evaluate.policies import HPA_TARGET_PERCENT, MEAN_CPU_PER_POD
from infra.kubesim.load import ASSIGNORS, KafkaSpec

Family = Literal["zipf", "dominant", "sparse"]
Start = Literal["fresh", "clustered"]
STICKY = ("sticky", "cooperative-sticky")

PARTITIONS = 48
DOMINANT_SHARE = 0.5  # of the topic's messages, on its one dominant partition
# The CPU limit of the capped cases, as a multiple of the pods' mean CPU: the hottest members of
# a skewed group hit it and fall behind (lag), the others have room to drain a backlog.
CPU_LIMIT_FACTOR = 2.0
_SPEC = KafkaSpec()  # the load model's defaults: cpu per message, base CPU, noise


@dataclass(frozen=True)
class Case:
    """One consumer group, simulated once per policy (and once without the rebalancer)."""

    family: Family
    assignor: str
    skew: float
    pods: int
    cpu_limit: float | None  # cores per pod; None: no limit, so no lag
    seed: int
    partitions: int = PARTITIONS
    start: Start = "fresh"  # clustered: sticky assignors only
    mean_cpu: float = MEAN_CPU_PER_POD  # cores a pod uses on average

    @property
    def cpu_request(self) -> float:
        """Each pod's CPU request: the group as a whole at the HPA's target (hpa_target)."""
        return self.mean_cpu * 100 / HPA_TARGET_PERCENT

    @property
    def futile(self) -> bool:
        """No eviction can spread this load for good. Range and round-robin deal the same
        partitions to any N members (range in blocks of the sorted members, round-robin p mod
        N), so once the replacements join, the loads are those before, on other pods; one
        dominant partition, or fewer partitions than pods, leave the same loads whoever owns
        them."""
        return self.family != "zipf" or self.assignor in ("range", "roundrobin")

    @property
    def label(self) -> str:
        limit = "none" if self.cpu_limit is None else f"{self.cpu_limit:g}"
        return (
            f"{self.family} {self.assignor} start={self.start} skew={self.skew:g} "
            f"pods={self.pods} partitions={self.partitions} mean={self.mean_cpu:g} "
            f"limit={limit} seed={self.seed}"
        )

    def spec(self) -> KafkaSpec:
        """The load model's spec: `mean_cpu` a pod on average, whatever the pod count."""
        total = self.pods * (self.mean_cpu - _SPEC.base_cpu) / _SPEC.cpu_per_message
        spec = dataclasses.replace(
            _SPEC,
            partitions=self.partitions,
            skew=self.skew,
            assignor=self.assignor,
            messages_per_second=total,
            seed=self.seed,
            initial=self.start,
        )
        if self.family == "dominant":
            rest = total * (1 - DOMINANT_SHARE) / (self.partitions - 1)
            rates = [rest] * self.partitions
            rates[self.seed % self.partitions] = total * DOMINANT_SHARE
            spec = dataclasses.replace(spec, rates=tuple(rates))
        return spec


@dataclass(frozen=True)
class Grid:
    """Seeds x assignors (x starts, for the sticky ones) x skews x pod counts x CPU limits of
    Zipf topics with pods at MEAN_CPU_PER_POD; the futile families (one dominant partition;
    fewer partitions than pods) for each assignor, seed and limit; and drifted sticky groups
    whose pods use other mean CPUs (`scales`, at `scale_skews`), where an absolute statistic
    draws another line.
    Each case is simulated for `hours`."""

    name: str
    seeds: int
    assignors: Sequence[str]
    skews: Sequence[float]
    pods: Sequence[int]
    limits: Sequence[float | None]  # CPU limits in multiples of the mean CPU; None: no limit
    futile_pods: int  # the pod count of the dominant, sparse and scaled cases
    scales: Sequence[float]  # other mean CPUs (cores a pod)
    scale_skews: Sequence[float]  # the skews of those
    hours: float

    def cases(self, seed: int) -> Iterator[Case]:
        seeds = [seed + i for i in range(self.seeds)]
        n = self.futile_pods
        for s in seeds:
            for assignor in self.assignors:
                sticky = assignor in STICKY
                starts: tuple[Start, ...] = ("clustered", "fresh") if sticky else ("fresh",)
                for factor in self.limits:
                    limit = None if factor is None else factor * MEAN_CPU_PER_POD
                    for start in starts:
                        for skew in self.skews:
                            for pods in self.pods:
                                yield Case("zipf", assignor, skew, pods, limit, s, start=start)
                    first = starts[0]
                    yield Case("dominant", assignor, 1.0, n, limit, s, start=first)
                    yield Case(
                        "sparse", assignor, 1.0, n, limit, s, partitions=n * 2 // 3, start=first
                    )
                    for mean in self.scales if sticky else ():
                        scaled = None if factor is None else factor * mean
                        for skew in self.scale_skews:
                            yield Case(
                                "zipf",
                                assignor,
                                skew,
                                n,
                                scaled,
                                s,
                                start="clustered",
                                mean_cpu=mean,
                            )


FULL = Grid(
    name="full",
    seeds=2,
    assignors=ASSIGNORS,
    skews=(0.6, 1.0, 1.4),
    pods=(6, 12, 24),
    limits=(None, CPU_LIMIT_FACTOR),
    futile_pods=12,
    scales=(0.5, 2.0),
    scale_skews=(0.6, 1.0),
    hours=12.0,
)
QUICK = Grid(
    name="quick",
    seeds=1,
    assignors=("range", "cooperative-sticky"),
    skews=(1.0,),
    pods=(12,),
    limits=(None, CPU_LIMIT_FACTOR),
    futile_pods=12,
    scales=(),
    scale_skews=(),
    hours=4.0,
)
