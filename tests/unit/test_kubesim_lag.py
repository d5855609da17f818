"""The load model's consumer lag (infra/kubesim/load.py), against the laws its docstring states.

A member processes at most `(cpu_limit - base_cpu) / cpu_per_message` messages a second. Capped,
it runs at its limit and each of its partitions falls behind in proportion to its rate; with spare
capacity it drains the backlog of what it owns, at its limit until the backlog is gone; a
partition keeps its lag when it moves, and one nobody owns only falls behind. Integration is exact:
how the time is cut into steps does not change the result.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.kubesim.cluster import cpu_limit
from infra.kubesim.load import ConsumerGroup, KafkaSpec

CPM = 0.0002  # cores per message a second
BASE = 0.05


def group(rates: list[float], limit: float | None, assignor: str = "roundrobin") -> ConsumerGroup:
    spec = KafkaSpec(rates=tuple(rates), assignor=assignor, cpu_per_message=CPM, base_cpu=BASE)
    out = ConsumerGroup(spec, cpu_limit=limit)
    out.start(0.0)
    return out


def test_a_member_over_its_limit_runs_at_the_limit_and_its_partitions_fall_behind() -> None:
    # Capacity (1.0 - 0.05) / 0.0002 = 4750 msg/s; a owns 4000 + 3000 = 7000 msg/s.
    g = group([4000.0, 1000.0, 3000.0, 1000.0], limit=1.0)
    g.update(["a", "b"], 0.0)
    assert g.assignment == {"a": [0, 2], "b": [1, 3]}
    g.advance(10.0)
    assert g.mean_cpu("a") == pytest.approx(1.0)
    assert g.mean_cpu("b") == pytest.approx(BASE + CPM * 2000.0)
    behind = 7000.0 - 4750.0  # messages a second
    assert g.pod_lag("a") == pytest.approx(behind * 10.0)
    # In proportion to each partition's rate: 4000 : 3000.
    assert g.lag[0] / g.lag[2] == pytest.approx(4000.0 / 3000.0)
    assert g.pod_lag("b") == 0.0


def test_without_a_limit_nobody_falls_behind() -> None:
    g = group([9000.0, 1.0], limit=None)
    g.update(["a", "b"], 0.0)
    g.advance(60.0)
    assert g.lag == [0.0, 0.0]
    assert g.mean_cpu("a") == pytest.approx(BASE + CPM * 9000.0)


def test_a_partition_keeps_its_lag_when_it_moves_and_its_new_owner_drains_it() -> None:
    g = group([4000.0, 1000.0, 3000.0, 1000.0], limit=1.0)
    g.update(["a", "b"], 0.0)
    g.update(["a", "b", "c", "d"], 10.0)  # partition 2 moves from a to c
    assert g.assignment["c"] == [2]
    backlog = g.lag[2]
    assert backlog == pytest.approx(2250.0 * 10.0 * 3 / 7)
    assert g.mean_cpu("c") == pytest.approx(1.0)  # catching up, at its limit
    g.advance(11.0)
    spare = 4750.0 - 3000.0
    assert g.lag[2] == pytest.approx(backlog - spare * 1.0)
    assert g.mean_cpu("c") == pytest.approx(1.0)
    drained_at = 10.0 + backlog / spare
    g.advance(drained_at + 5.0)
    assert g.lag[2] == 0.0
    # The last step mixed the drain's end with the steady state; the next is steady.
    g.advance(drained_at + 6.0)
    assert g.mean_cpu("c") == pytest.approx(BASE + CPM * 3000.0)


def test_partitions_nobody_owns_only_fall_behind() -> None:
    g = group([10.0, 20.0], limit=1.0)
    g.update([], 0.0)
    g.advance(3.0)
    assert g.lag == [30.0, 60.0]


def test_a_pod_with_no_partitions_idles_at_its_base() -> None:
    g = group([100.0], limit=1.0)
    g.update(["a", "b"], 0.0)
    g.advance(1.0)
    assert g.mean_cpu("b") == BASE
    assert g.mean_cpu("gone") == BASE  # not a member at all


rates_st = st.lists(st.floats(0.0, 6000.0), min_size=1, max_size=12)
steps_st = st.lists(st.floats(0.01, 30.0), min_size=1, max_size=8)


def history(
    rates: list[float], limit: float | None, members: list[list[str]], steps: list[float]
) -> ConsumerGroup:
    """Membership `members[i]` from the i-th step on (the last one for the remaining steps)."""
    g = group(rates, limit, assignor="sticky")
    at = 0.0
    for index, dt in enumerate(steps):
        g.update(members[min(index, len(members) - 1)], at)
        at += dt
        g.advance(at)
    return g


members_st = st.lists(st.sets(st.sampled_from("abcde")).map(sorted), min_size=1, max_size=4)


@given(rates_st, st.one_of(st.none(), st.floats(0.1, 2.0)), members_st, steps_st)
def test_messages_are_conserved(
    rates: list[float], limit: float | None, members: list[list[str]], steps: list[float]
) -> None:
    """Whatever arrived was processed or is still lag."""
    g = group(rates, limit, assignor="sticky")
    at, processed = 0.0, 0.0
    for index, dt in enumerate(steps):
        g.update(members[min(index, len(members) - 1)], at)
        at += dt
        g.advance(at)
        processed += sum(g.rate(m) for m in g.members) * dt
    arrived = sum(rates) * at
    assert processed + sum(g.lag) == pytest.approx(arrived, rel=1e-9, abs=1e-6)
    assert all(lag >= 0 for lag in g.lag)


@given(rates_st, st.floats(0.1, 2.0), st.sets(st.sampled_from("abcde"), min_size=1), steps_st)
def test_how_time_is_cut_into_steps_does_not_change_the_lag(
    rates: list[float], limit: float, members: set[str], steps: list[float]
) -> None:
    stepped = group(rates, limit)
    stepped.update(sorted(members), 0.0)
    at = 0.0
    for dt in steps:
        at += dt
        stepped.advance(at)
    once = group(rates, limit)
    once.update(sorted(members), 0.0)
    once.advance(at)
    assert stepped.lag == pytest.approx(once.lag, rel=1e-9, abs=1e-6)


@given(rates_st, st.floats(0.1, 2.0), members_st, steps_st)
def test_a_member_never_uses_more_than_its_limit(
    rates: list[float], limit: float, members: list[list[str]], steps: list[float]
) -> None:
    g = history(rates, limit, members, steps)
    for member in g.members:
        assert g.mean_cpu(member) <= max(limit, BASE) + 1e-9


@given(rates_st, members_st, steps_st)
def test_without_a_limit_the_lag_stays_zero_while_someone_is_there(
    rates: list[float], members: list[list[str]], steps: list[float]
) -> None:
    nonempty = [m for m in members if m] or [["a"]]
    g = history(rates, None, nonempty, steps)
    assert g.lag == [0.0] * len(rates)


def test_explicit_rates_set_the_partition_count_and_are_checked() -> None:
    spec = KafkaSpec.from_scenario({"partitionRates": [5, 1, 2]})
    assert (spec.partitions, spec.rates) == (3, (5.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="partitionRates"):
        KafkaSpec.from_scenario({"partitionRates": [1, -1]})
    with pytest.raises(ValueError, match="partitionRates"):
        KafkaSpec.from_scenario({"partitionRates": [math.inf]})


def template(*limits: str | None) -> dict[str, object]:
    containers = [
        {"name": f"c{i}", "resources": {"limits": {"cpu": v}} if v else {}}
        for i, v in enumerate(limits)
    ]
    return {"spec": {"template": {"spec": {"containers": containers}}}}


@pytest.mark.parametrize(
    ("limits", "cores"),
    [
        (("1",), 1.0),
        (("500m",), 0.5),
        (("1500m", "0.25"), 1.75),
        (("1", None), None),
        ((None,), None),
    ],
)
def test_a_pods_cpu_limit_is_the_sum_of_its_containers(
    limits: tuple[str | None, ...], cores: float | None
) -> None:
    assert cpu_limit(template(*limits)) == cores
