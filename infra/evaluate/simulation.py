"""One case under one policy: the scheduled invocations of the function, decided by the pure core
exactly as the service orders it, against the load model, on a simulated clock.

Every INTERVAL the function runs: cooldown → back-off → pods all Ready → measure the previous
rebalance (and back off if that was the last straw) → plan → evict. An evicted pod leaves the
consumer group at once; its replacement (a new name) starts then and joins the group when it is
Ready, READY_AFTER later. CPU per pod is the load model's mean over METRICS_TIME_WINDOW (exact:
the model integrates between events) with the noise of the window's readings on top (`noisy`,
the simulator's writer's formula); lag per pod is the model's at the invocation (a pod that owns
nothing has lag 0, the README's `or ... 0` form of the lag query). Nothing here reads the wall
clock or opens a socket; the noise comes from `random.Random` seeded by the case and the time.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from infra.evaluate.cases import Case
from infra.evaluate.policies import HPA_TARGET_PERCENT
from infra.kubesim.load import ConsumerGroup
from pod_rebalancer import locking
from pod_rebalancer.config import Settings
from pod_rebalancer.core import effect, planner, score
from pod_rebalancer.core.cooldown import lease_refusal
from pod_rebalancer.core.model import Effect, HpaTarget, LeaseState, PodInfo, Policy, Reason
from pod_rebalancer.core.target_guards import pods_not_ready

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # simulated time 0
INTERVAL = timedelta(minutes=5)  # the schedule: a Cloud Scheduler cron, */5 * * * *
READY_AFTER = timedelta(seconds=60)  # a replacement's start to Ready (and joining the group)
POD_AGE = timedelta(days=7)  # how long the first pods have been running at time 0
NOISE_CLIP = 3.0  # standard deviations, as the simulator's metrics writer clips them
# The simulator's writer draws one noisy reading per pod every 15 s; rate() over the window
# averages them, so the noise of a window's CPU is one reading's over the square root of their
# number.
SCRAPE_INTERVAL = timedelta(seconds=15)
INSTANCE = "evaluate"  # the invocation's name as a Lease holder (it never holds one here)
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # the ReplicaSet controller's pod-name alphabet
_HPA = HpaTarget(name="consumer", cpu_utilization=HPA_TARGET_PERCENT)


def noisy(
    mean: float,
    base: float,
    noise: float,
    limit: float | None,
    rng: random.Random,
    readings: int = 1,
) -> float:
    """The mean of `readings` readings of a pod's CPU, each base + busy * (1 + noise * N(0,1))
    with N clipped to ±3 and the result capped at the limit (infra/kubesim/metrics.py,
    draw_cpu): drawn as one such reading whose N is divided by sqrt(readings). A pod at its
    limit reads the limit (the simulator's load samples carry no noise for it)."""
    draw = max(-NOISE_CLIP, min(NOISE_CLIP, rng.gauss(0.0, 1.0))) / math.sqrt(readings)
    if limit is not None and mean >= limit:
        return limit  # throttled to its quota all along: the simulator reads it without noise
    busy = (mean - base) * (1 + noise * draw)
    cpu = max(0.0, base + max(0.0, busy))
    return cpu if limit is None else min(limit, cpu)


@dataclass
class _Pod:
    name: str
    started: float  # seconds of simulated time
    ready_at: float


class World:
    """The Deployment's pods and their consumer group, moved forward by `run_to`.

    Each pod keeps a CPU counter (core-seconds since it started), as cAdvisor does; the CPU over
    a window is the counter's increase over it, read at the invocations, as rate() reads it.
    """

    def __init__(self, case: Case) -> None:
        self.case = case
        self.spec = case.spec()
        self.group = ConsumerGroup(self.spec, cpu_limit=case.cpu_limit)
        self.at = 0.0
        self._names = random.Random(f"{case.label}/names")
        self._seed = zlib.crc32(case.label.encode())
        self.pods: dict[str, _Pod] = {}
        start = -POD_AGE.total_seconds()
        for _ in range(case.pods):
            pod = _Pod(self._new_name(), start, start)
            self.pods[pod.name] = pod
        self._counters = dict.fromkeys(self.pods, 0.0)
        self._snapshots: dict[float, dict[str, float]] = {0.0: dict(self._counters)}
        self._joins: list[float] = []
        self._infos: list[PodInfo] | None = None  # the pod list and the Ready pods, until
        self._ready: list[str] | None = None  # the next eviction or join changes them
        self.group.update(list(self.pods))
        self.group.advance(0.0)  # the lag is integrated from time 0, every partition caught up

    def _new_name(self) -> str:
        while True:
            suffix = "".join(self._names.choice(_SUFFIX) for _ in range(5))
            name = f"consumer-7d9f8c6b5-{suffix}"
            if name not in self.pods:
                return name

    def ready(self, t: float) -> list[str]:
        """The Ready pods at `t`, the time of the last `run_to` (or of the join it handles)."""
        if self._ready is None:
            self._ready = [p.name for p in self.pods.values() if p.ready_at <= t]
        return self._ready

    def run_to(self, t: float) -> None:
        """Advance to `t`, replacements joining the group as they become Ready."""
        while self._joins and self._joins[0] <= t:
            at = self._joins.pop(0)
            self._step(at)
            self._ready = self._infos = None
            self.group.update(self.ready(at), at)
        self._step(t)

    def _step(self, t: float) -> None:
        if t <= self.at:
            return
        self.group.advance(t)  # `rate` is now the mean over [at, t]: exact, the model is linear
        dt = t - self.at
        for name in self.pods:
            self._counters[name] += self.group.mean_cpu(name) * dt
        self.at = t

    def _steady_rates(self) -> dict[str, float] | None:
        """Each member's messages a second while nothing changes, or None when something will:
        a replacement still to join, or a member draining a backlog (its CPU drops when done).
        A member caught up with room to spare, or capped at its limit, stays as it is; its lag
        stays 0, or grows at a constant rate."""
        if self._joins:
            return None
        group, capacity = self.group, self.group.capacity()
        out = {}
        for member, owned in group.assignment.items():
            inflow = math.fsum(group.rates[p] for p in owned)
            if inflow >= capacity:
                out[member] = capacity
            elif any(group.lag[p] > 0 for p in owned):
                return None
            else:
                out[member] = inflow
        return out

    def settled(self) -> bool:
        """Steady, and steady over the last step (each member processed what it will go on
        processing), so the last window's CPU is the CPU of every window to come."""
        steady = self._steady_rates()
        if steady is None or set(steady) != set(self.pods):
            return False
        done = self.group.processed
        return all(
            member in done and math.isclose(done[member], rate, rel_tol=1e-9, abs_tol=1e-9)
            for member, rate in steady.items()
        )

    def jump(self, t: float) -> None:
        """Advance a settled world to `t` in one step of the model (exact: the model integrates
        the lag exactly), as if `window_cpu` had been read at `t`."""
        steady = self._steady_rates()
        assert steady is not None, "jump() is for a settled world"
        self._step(t)
        for member, rate in steady.items():  # the world stayed as settled() said it would
            done = self.group.processed[member]
            assert math.isclose(done, rate, rel_tol=1e-9, abs_tol=1e-9), (member, done, rate)
        self._snapshots = {t: dict(self._counters)}

    def window_cpu(self, t: float, window: float) -> dict[str, float]:
        """Each pod's mean CPU over [t - window, t] (over the part it existed in), noiseless.
        Called at `t` after `run_to(t)`; `t - window` must be an earlier call's time or 0."""
        self._snapshots[t] = dict(self._counters)
        since = max(0.0, t - window)
        past = self._snapshots[since]
        for old in [at for at in self._snapshots if at < since]:
            del self._snapshots[old]
        out: dict[str, float] = {}
        for name, counter in self._counters.items():
            if name in past:
                out[name] = (counter - past[name]) / (t - since)
            else:
                started = self.pods[name].started
                if t > started:
                    out[name] = counter / (t - started)
        return out

    def readings(self, means: Mapping[str, float], window: float, t: float) -> dict[str, float]:
        """What rate() over `window` reads at `t` for `means`, noise included. The draws come
        from the case and the time alone, in name order: every policy reads the same noise at
        the same time as long as its pods are the same, whatever it did before."""
        rng = random.Random(self._seed * 1_000_003 + round(t))
        spec, limit = self.spec, self.case.cpu_limit
        count = max(1, round(window / SCRAPE_INTERVAL.total_seconds()))
        base, noise = spec.base_cpu, spec.noise
        return {name: noisy(means[name], base, noise, limit, rng, count) for name in sorted(means)}

    def lags(self) -> dict[str, float]:
        return {name: self.group.pod_lag(name) for name in self.pods}

    def pod_infos(self, t: float) -> list[PodInfo]:
        """The pods as the function lists them (they change only at evictions and joins)."""
        if self._infos is None:
            self._infos = [
                PodInfo(
                    name=pod.name,
                    uid=pod.name,
                    ready=pod.ready_at <= t,
                    started_at=EPOCH + timedelta(seconds=pod.started),
                    ready_since=EPOCH + timedelta(seconds=pod.ready_at)
                    if pod.ready_at <= t
                    else None,
                    cpu_request=self.case.cpu_request,
                )
                for pod in self.pods.values()
            ]
        return self._infos

    def evict(self, names: tuple[str, ...], t: float) -> None:
        """The pods leave the group now; as many replacements start now and join when Ready."""
        for name in names:
            del self.pods[name]
            del self._counters[name]
        self._ready = self._infos = None
        self.group.update(self.ready(t), t)
        ready_at = t + READY_AFTER.total_seconds()
        for _ in names:
            pod = _Pod(self._new_name(), t, ready_at)
            self.pods[pod.name] = pod
            self._counters[pod.name] = 0.0
        self._joins.append(ready_at)
        self._ready = self._infos = None


@dataclass
class Rebalance:
    """One rebalance: what the plan promised, and what the closed loop measured."""

    at: float  # seconds of simulated time
    evicted: int
    before: float  # the statistic the closed loop judges on (Policy.measured_as)
    expected_after: float
    expected_percent: float  # the plan's own promise (hpa_target: the hot pods' CPU)
    achieved_percent: float | None = None  # on `before`'s statistic; None: never measured
    effective: bool | None = None


@dataclass
class Run:
    """A case under a policy (None: no rebalancer), invocation by invocation, summed up."""

    case: Case
    policy: str | None
    hours: float
    invocations: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rebalances: list[Rebalance] = field(default_factory=list)
    backoff_at: float | None = None  # the first not_effective skip
    # The common currency, time-averaged over the invocations (noiseless, Ready pods): CPU
    # variance, peak CPU over mean CPU, and the group's total lag (messages).
    variance: float = 0.0
    peak_ratio: float = 0.0
    lag: float = 0.0

    @property
    def evictions(self) -> int:
        return sum(r.evicted for r in self.rebalances)


def simulate(
    case: Case,
    settings: Settings | None,
    hours: float,
    name: str | None = None,
    *,
    fast: bool = True,
) -> Run:
    """Run `case` for `hours` of invocations every INTERVAL under `settings` (None: nobody
    rebalances, the baseline every outcome is compared with).

    `fast`: where nothing can act (nobody rebalances, or the target is backing off) and the
    world is settled, the invocations in between are summed up in one step of the model instead
    of one by one; the outcome is the same (to rounding), only sooner."""
    interval = INTERVAL.total_seconds()
    window = (settings.metrics_time_window if settings else INTERVAL).total_seconds()
    if window % interval:
        raise ValueError(f"METRICS_TIME_WINDOW must be a multiple of {INTERVAL}, not {window}s")
    world = World(case)
    run = Run(case, name, hours)
    policy = settings.policy() if settings is not None else None
    lease: LeaseState | None = None
    steps = round(hours * 3600 / interval)
    sums = [0.0, 0.0, 0.0]  # CPU variance, peak ÷ mean, total lag, over the invocations
    means: dict[str, float] = {}
    step = 1
    while step <= steps:
        idle = _idle_steps(settings, lease, step, steps, interval) if fast and means else 0
        if idle > 1 and window == interval and world.settled():
            # Every one of the `idle` invocations sees `means` again; the lag grows linearly.
            last = (step + idle - 1) * interval
            lag0 = math.fsum(world.group.lag)
            world.jump(last)
            lag1 = math.fsum(world.group.lag)
            variance, peak = _spread(world, means, last)
            sums[0] += idle * variance
            sums[1] += idle * peak
            sums[2] += idle * lag0 + (lag1 - lag0) * (idle + 1) / 2
            run.invocations += idle
            if settings is not None:
                run.reasons[Reason.NOT_EFFECTIVE] += idle
            step += idle
            continue
        t = step * interval
        world.run_to(t)
        means = world.window_cpu(t, window)
        variance, peak = _spread(world, means, t)
        sums[0] += variance
        sums[1] += peak
        sums[2] += math.fsum(world.group.lag)
        run.invocations += 1
        if settings is not None and policy is not None:
            lease = _invoke(world, settings, policy, lease, means, t, run)
        step += 1
    run.variance, run.peak_ratio, run.lag = (x / run.invocations for x in sums)
    return run


def _spread(world: World, means: Mapping[str, float], t: float) -> tuple[float, float]:
    """CPU variance and peak CPU ÷ mean CPU of the Ready pods (noiseless)."""
    ready = [means[n] for n in world.ready(t) if n in means]
    mean = math.fsum(ready) / len(ready)
    variance = math.fsum((v - mean) ** 2 for v in ready) / len(ready)
    return variance, max(ready) / mean if mean > 0 else 1.0


def _idle_steps(
    settings: Settings | None, lease: LeaseState | None, step: int, steps: int, interval: float
) -> int:
    """How many invocations from `step` on are sure to do nothing but skip: all that are left
    without a rebalancer; those of a back-off that has engaged (past the cooldown), until it
    ends."""
    if settings is None:
        return steps - step + 1
    now = EPOCH + timedelta(seconds=step * interval)
    backoff = settings.ineffective_backoff
    if lease is None or lease.last_ineffective is None:
        return 0
    if lease_refusal(lease, INSTANCE, now, settings.cooldown) is not None:
        return 0
    if not effect.backing_off(lease, now, settings.max_ineffective_rebalances, backoff):
        return 0
    until = (lease.last_ineffective + backoff - EPOCH).total_seconds()  # skips while t < until
    last = min(steps, math.ceil(until / interval) - 1)
    return max(0, last - step + 1)


def _invoke(
    world: World,
    settings: Settings,
    policy: Policy,
    lease: LeaseState | None,
    means: dict[str, float],
    t: float,
    run: Run,
) -> LeaseState | None:
    """One invocation, in the service's order (service.Rebalancer._decide); the Lease after it.
    `means` is each pod's noiseless CPU over the window; the function reads it with noise."""
    now = EPOCH + timedelta(seconds=t)
    if lease_refusal(lease, INSTANCE, now, settings.cooldown) is not None:
        run.reasons[Reason.COOLDOWN] += 1
        return lease
    if _backing_off(settings, lease, now, run, t):
        return lease
    pods = world.pod_infos(t)
    refusal = pods_not_ready(pods)
    if refusal is not None:
        run.reasons[refusal] += 1
        return lease
    cpu = world.readings(means, settings.metrics_time_window.total_seconds(), t)
    by_score = policy.signal == "score" and policy.kind == "variance"
    signals = {"lag": world.lags()} if by_score else {}
    last = None if lease is None else lease.effect
    if lease is not None and last is not None and lease.last_rebalance and not last.measured:
        lease = _measure(settings, policy, lease, pods, cpu, signals, now, run)
        if _backing_off(settings, lease, now, run, t):
            return lease
    plan = planner.plan(
        cpu, pods, policy, now, signals=signals, hpa=_HPA if policy.kind == "hpa_target" else None
    )
    run.reasons[plan.reason] += 1
    if not plan.acts or plan.value is None or plan.expected_after is None:
        return lease
    evicted = tuple(s.pod for s in plan.selected)
    expected = Effect(
        plan.measured_as or plan.statistic.value, plan.value, plan.expected_after.value, evicted
    )
    run.rebalances.append(
        Rebalance(
            at=t,
            evicted=len(evicted),
            before=plan.value,
            expected_after=plan.expected_after.value,
            expected_percent=plan.expected_after.improvement_percent,
        )
    )
    world.evict(evicted, t)
    # What locking.acquire and release leave in the Lease: the stamp, the promise, the count.
    return locking.released(locking.stamped(lease, INSTANCE, now, evicted, expected), now, evicted)


def _backing_off(
    settings: Settings, lease: LeaseState | None, now: datetime, run: Run, t: float
) -> bool:
    if not effect.backing_off(
        lease, now, settings.max_ineffective_rebalances, settings.ineffective_backoff
    ):
        return False
    run.reasons[Reason.NOT_EFFECTIVE] += 1
    if run.backoff_at is None:
        run.backoff_at = t
    return True


def _measure(
    settings: Settings,
    policy: Policy,
    lease: LeaseState,
    pods: list[PodInfo],
    cpu: dict[str, float],
    signals: dict[str, dict[str, float]],
    now: datetime,
    run: Run,
) -> LeaseState:
    """The previous rebalance judged, as service.Rebalancer._measure judges it (on the score when
    the score decides); the Lease as it is after the judgement."""
    assert lease.effect is not None
    assert lease.last_rebalance is not None
    samples: Mapping[str, float] = cpu
    if policy.measured_as != policy.statistic.value:
        live = [pod.name for pod in pods if pod.ready and not pod.terminating]
        samples = score.per_pod({"cpu": cpu, **signals}, policy.weights, live)
    window = settings.metrics_time_window
    if effect.too_early(lease.effect, lease.last_rebalance, pods, window, now) is not None:
        return lease
    achieved = effect.achieved_value(samples, pods, settings.imbalance_statistic)
    if achieved is None:
        return lease
    judged = effect.judge(lease, achieved, settings.min_improvement_percent, now)
    if judged is None:
        return lease
    last = run.rebalances[-1]
    last.achieved_percent = judged.effect.improvement_percent
    last.effective = judged.effect.effective
    return replace(
        lease,
        effect=judged.effect,
        ineffective=judged.ineffective,
        last_ineffective=judged.last_ineffective,
    )
