"""The load model: a Kafka topic whose skewed partitions are shared by a consumer group.

Pure and deterministic given its inputs; the cluster feeds it the group's members (the
Deployment's Ready, non-terminating pods) and the time, and asks for each pod's CPU and each
partition's lag.

Lag: a member can process `(cpu_limit - base_cpu) / cpu_per_message` messages a second (its
capacity; no limit, no cap). A member whose partitions bring more than that runs at its limit and
every one of its partitions falls behind in proportion to its rate; a member with spare capacity
drains the backlog of the partitions it owns (a partition keeps its lag when it moves) at the
rate its spare capacity allows, running at its limit until the backlog is gone. Partitions nobody
owns only fall behind. `ConsumerGroup.advance(now)` integrates this exactly between membership
changes, which always advance first.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")


@dataclass(frozen=True)
class KafkaSpec:
    topic: str = "events"
    partitions: int = 48
    skew: float = 1.2
    assignor: str = "range"
    cpu_per_message: float = 0.0002
    base_cpu: float = 0.05
    noise: float = 0.03
    messages_per_second: float = 20000.0
    seed: int = 7
    # "fresh": the group starts from the assignor's from-scratch assignment. "clustered" (sticky
    # assignors only): it starts the way a long-lived sticky group can drift, with the hottest
    # partitions piled on a few members, which is the imbalance evicting outliers undoes.
    initial: str = "fresh"
    # Explicit per-partition rates (messages/s) instead of the Zipf draw; their count is the
    # number of partitions.
    rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.rates:
            object.__setattr__(self, "partitions", len(self.rates))

    @classmethod
    def from_scenario(cls, spec: Mapping[str, Any]) -> KafkaSpec:
        out = cls(
            topic=str(spec.get("topic", cls.topic)),
            partitions=int(spec.get("partitions", cls.partitions)),
            skew=float(spec.get("skew", cls.skew)),
            assignor=str(spec.get("assignor", cls.assignor)).lower(),
            cpu_per_message=float(spec.get("cpuPerMessage", cls.cpu_per_message)),
            base_cpu=float(spec.get("baseCpu", cls.base_cpu)),
            noise=float(spec.get("noise", cls.noise)),
            messages_per_second=float(spec.get("messagesPerSecond", cls.messages_per_second)),
            seed=int(spec.get("seed", cls.seed)),
            initial=str(spec.get("initialAssignment", cls.initial)).lower(),
            rates=tuple(float(r) for r in spec.get("partitionRates") or ()),
        )
        if any(not (math.isfinite(r) and r >= 0) for r in out.rates):
            raise ValueError("kafka.partitionRates must be finite numbers >= 0")
        if out.initial not in ("fresh", "clustered"):
            raise ValueError("kafka.initialAssignment must be 'fresh' or 'clustered'")
        if out.assignor not in ASSIGNORS:
            raise ValueError(f"kafka.assignor must be one of {ASSIGNORS}, not {out.assignor!r}")
        if out.partitions < 1:
            raise ValueError("kafka.partitions must be at least 1")
        return out


def partition_rates(spec: KafkaSpec) -> list[float]:
    """Zipf-like rates (rank r gets 1/r^skew), ranks shuffled by `seed`, summing to the total;
    or the spec's explicit rates."""
    if spec.rates:
        return list(spec.rates)
    ranks = list(range(1, spec.partitions + 1))
    random.Random(spec.seed).shuffle(ranks)
    weights = [1.0 / rank**spec.skew for rank in ranks]
    total = sum(weights)
    return [spec.messages_per_second * w / total for w in weights]


def assign(
    members: Sequence[str],
    partitions: int,
    assignor: str,
    previous: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, list[int]]:
    """Kafka's Range, RoundRobin or Sticky assignor for one topic; members sorted by id."""
    ordered = sorted(members)
    out: dict[str, list[int]] = {m: [] for m in ordered}
    if not ordered:
        return out
    if assignor in ("sticky", "cooperative-sticky"):
        return sticky(ordered, partitions, previous or {})
    if assignor == "roundrobin":
        for p in range(partitions):
            out[ordered[p % len(ordered)]].append(p)
        return out
    per, extra = divmod(partitions, len(ordered))
    for i, member in enumerate(ordered):
        start = per * i + min(i, extra)
        length = per + (1 if i < extra else 0)
        out[member] = list(range(start, start + length))
    return out


def sticky(
    members: Sequence[str], partitions: int, previous: Mapping[str, Sequence[int]]
) -> dict[str, list[int]]:
    """StickyAssignor's outcome: balanced by count (each member gets floor or ceil of P/N),
    moving as few partitions as possible; freed partitions go to the least-loaded members.
    From scratch this is round-robin. The cooperative variant ends in the same assignment."""
    low, extra = divmod(partitions, len(members))
    high = low + (1 if extra else 0)
    out = {m: sorted(p for p in previous.get(m, ()) if p < partitions)[:high] for m in members}
    seen: set[int] = set()
    for member in members:  # a partition claimed twice stays with the first claimant
        out[member] = [p for p in out[member] if p not in seen]
        seen.update(out[member])
    at_high = [m for m in members if len(out[m]) == high and extra]
    for member in at_high[extra:] if extra else []:
        out[member] = out[member][:low]
    if not extra:
        for member in members:
            out[member] = out[member][:low]
    taken = {p for owned in out.values() for p in owned}
    for partition in (p for p in range(partitions) if p not in taken):
        target = min(members, key=lambda m: (len(out[m]), members.index(m)))
        out[target].append(partition)
    return {m: sorted(p) for m, p in out.items()}


def clustered(members: Sequence[str], rates: Sequence[float], seed: int) -> dict[str, list[int]]:
    """Balanced by count like sticky, but with partitions dealt hottest-first in blocks, so a
    few members own the hot partitions (members in a seeded order, not by name)."""
    order = list(members)
    random.Random(seed).shuffle(order)
    hottest = sorted(range(len(rates)), key=lambda p: -rates[p])
    low, extra = divmod(len(rates), len(order))
    out: dict[str, list[int]] = {}
    start = 0
    for index, member in enumerate(order):
        size = low + (1 if index < extra else 0)
        out[member] = sorted(hottest[start : start + size])
        start += size
    return out


@dataclass
class ConsumerGroup:
    """Membership, assignment and lag; a membership change reassigns everything (eager
    rebalance). `cpu_limit` is the cores each member may use (its container's CPU limit)."""

    spec: KafkaSpec
    rates: list[float] = field(default_factory=list)
    members: tuple[str, ...] = ()
    assignment: dict[str, list[int]] = field(default_factory=dict)
    generation: int = 0
    cpu_limit: float | None = None
    lag: list[float] = field(default_factory=list)  # messages behind, per partition
    processed: dict[str, float] = field(default_factory=dict)  # msg/s over the last step
    at: float | None = None  # the time the lag is integrated to
    since: float | None = None  # when the integration began, every partition caught up

    def __post_init__(self) -> None:
        if not self.rates:
            self.rates = partition_rates(self.spec)
        if not self.lag:
            self.lag = [0.0] * len(self.rates)

    def start(self, at: float) -> None:
        """Begin integrating at `at`, every partition caught up."""
        self.at = self.since = at
        self.lag = [0.0] * len(self.rates)
        self.processed = {}

    def update(self, members: Sequence[str], now: float | None = None) -> bool:
        if now is not None and self.generation > 0:
            self.advance(now)  # the first assignment holds from the start (the steady history)
        ordered = tuple(sorted(members))
        if ordered == self.members and self.generation > 0:
            return False
        self.members = ordered
        if self.generation == 0 and self.spec.initial == "clustered" and ordered:
            self.assignment = clustered(ordered, self.rates, self.spec.seed)
        else:
            self.assignment = assign(
                ordered, self.spec.partitions, self.spec.assignor, self.assignment
            )
        self.processed = {}
        self.generation += 1
        return True

    def messages(self, pod: str) -> float:
        """The messages a second arriving on the pod's partitions."""
        return sum(self.rates[p] for p in self.assignment.get(pod, ()))

    def capacity(self) -> float:
        """Messages a second one member can process within its CPU limit."""
        if self.cpu_limit is None:
            return math.inf
        return max(0.0, (self.cpu_limit - self.spec.base_cpu) / self.spec.cpu_per_message)

    def rate(self, pod: str) -> float:
        """Messages a second the pod processes: over the last step, or (before one, or right
        after a reassignment) what it can keep up with."""
        if pod in self.processed:
            return self.processed[pod]
        capacity = self.capacity()
        if math.isfinite(capacity) and any(self.lag[p] > 0 for p in self.assignment.get(pod, ())):
            return capacity  # catching up, at its limit
        return min(self.messages(pod), capacity)

    def mean_cpu(self, pod: str) -> float:
        """The noiseless CPU (cores) of a member; non-members (not Ready) idle at baseCpu."""
        if pod not in self.assignment:
            return self.spec.base_cpu
        return self.spec.base_cpu + self.spec.cpu_per_message * self.rate(pod)

    def pod_lag(self, pod: str) -> float:
        return sum(self.lag[p] for p in self.assignment.get(pod, ()))

    def advance(self, now: float) -> None:
        """Integrate the lag from `at` to `now` under the current assignment."""
        if self.at is None:
            self.start(now)
            return
        dt = now - self.at
        if dt <= 0:
            return
        capacity = self.capacity()
        owned_any = set()
        for member, owned in self.assignment.items():
            owned_any.update(owned)
            self.processed[member] = _step(self.rates, self.lag, owned, capacity, dt)
        for partition in range(len(self.rates)):
            if partition not in owned_any:
                self.lag[partition] += self.rates[partition] * dt
        self.at = now


def _step(
    rates: Sequence[float], lag: list[float], owned: Sequence[int], capacity: float, dt: float
) -> float:
    """One member over `dt` seconds: updates `lag` of its partitions in place and returns the
    messages a second it processed (see the module's docstring)."""
    inflow = sum(rates[p] for p in owned)
    backlog = sum(lag[p] for p in owned)
    if inflow >= capacity:  # capped: everything it owns falls behind in proportion to its rate
        share = capacity / inflow if inflow > 0 else 0.0
        for p in owned:
            lag[p] += rates[p] * (1.0 - share) * dt
        return capacity
    if backlog <= 0:
        return inflow
    spare = capacity - inflow
    drained = min(backlog, spare * dt)
    keep = 1.0 - drained / backlog
    for p in owned:
        lag[p] = lag[p] * keep if keep > 1e-12 else 0.0
    return inflow + drained / dt


def population_variance(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)
