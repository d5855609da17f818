"""The simulator's sticky assignor (infra/kubesim/load.py): the laws its docstring promises.

"Balanced by count (each member gets floor or ceil of P/N), moving as few partitions as possible;
freed partitions go to the least-loaded members. From scratch this is round-robin. The
cooperative variant ends in the same assignment." The group feeds it its own last assignment,
so `previous` here is always disjoint: no partition has two owners.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from infra.kubesim.load import ConsumerGroup, KafkaSpec, assign, sticky

POOL = [f"consumer-{i:02d}" for i in range(16)]

Assignment = dict[str, list[int]]

members_st = st.sets(st.sampled_from(POOL), min_size=1).map(sorted)
partitions_st = st.integers(min_value=1, max_value=64)


@st.composite
def previous_st(draw: st.DrawFn, partitions: int) -> Assignment:
    """Any disjoint earlier assignment: each partition (including some beyond a shrunk topic)
    owned by one member of the pool or by nobody."""
    owners = draw(
        st.lists(
            st.sampled_from([*POOL, None]),
            min_size=partitions + 4,
            max_size=partitions + 4,
        )
    )
    out: Assignment = {}
    for partition, owner in enumerate(owners):
        if owner is not None:
            out.setdefault(owner, []).append(partition)
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], int, Assignment]:
    partitions = draw(partitions_st)
    return draw(members_st), partitions, draw(previous_st(partitions))


def owners(assignment: Assignment) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for member, owned in assignment.items():
        for partition in owned:
            out.setdefault(partition, []).append(member)
    return out


def most_keepable(members: list[str], partitions: int, previous: Assignment) -> int:
    """How many earlier ownerships a balanced assignment can keep at best: each member at most
    floor(P/N) of its own, plus one more for at most P mod N members that had more than that."""
    low, extra = divmod(partitions, len(members))
    held = [len([p for p in previous.get(m, ()) if p < partitions]) for m in members]
    return sum(min(h, low) for h in held) + min(extra, sum(1 for h in held if h > low))


def kept(previous: Assignment, now: Assignment) -> int:
    return sum(len(set(previous.get(m, ())) & set(owned)) for m, owned in now.items())


@given(cases())
def test_every_partition_goes_to_exactly_one_current_member(
    case: tuple[list[str], int, Assignment],
) -> None:
    members, partitions, previous = case
    result = sticky(members, partitions, previous)
    assert sorted(result) == members
    assert {p: len(who) for p, who in owners(result).items()} == dict.fromkeys(range(partitions), 1)


@given(cases())
def test_counts_are_floor_or_ceil_with_the_remainder_at_ceil(
    case: tuple[list[str], int, Assignment],
) -> None:
    members, partitions, previous = case
    low, extra = divmod(partitions, len(members))
    counts = [len(owned) for owned in sticky(members, partitions, previous).values()]
    assert set(counts) <= {low, low + 1}
    assert counts.count(low + 1) == extra


@given(cases())
def test_moves_as_few_partitions_as_a_balanced_assignment_allows(
    case: tuple[list[str], int, Assignment],
) -> None:
    members, partitions, previous = case
    result = sticky(members, partitions, previous)
    assert kept(previous, result) == most_keepable(members, partitions, previous)
    for member in members:  # nobody keeps more than its share, nor gives up what it may keep
        mine = {p for p in previous.get(member, ()) if p < partitions}
        assert len(mine & set(result[member])) >= min(len(mine), partitions // len(members))


@given(cases(), st.data())
def test_when_the_group_only_shrinks_every_survivor_keeps_all_it_had(
    case: tuple[list[str], int, Assignment], data: st.DataObject
) -> None:
    before, partitions, history = case
    settled = sticky(before, partitions, history)
    after = sorted(data.draw(st.sets(st.sampled_from(before), min_size=1)))
    result = sticky(after, partitions, settled)
    for member in after:
        assert set(settled[member]) <= set(result[member])


@given(cases(), st.data())
def test_when_the_group_only_grows_old_members_only_give_partitions_away(
    case: tuple[list[str], int, Assignment], data: st.DataObject
) -> None:
    before, partitions, history = case
    settled = sticky(before, partitions, history)
    outside = [m for m in POOL if m not in before]
    newcomers = data.draw(st.sets(st.sampled_from(outside)) if outside else st.just(set()))
    after = sorted({*before, *newcomers})
    low = partitions // len(after)
    result = sticky(after, partitions, settled)
    for member in before:
        assert set(result[member]) <= set(settled[member])
        assert len(result[member]) >= min(len(settled[member]), low)
    assert kept(settled, result) == most_keepable(after, partitions, settled)


@given(cases())
def test_an_unchanged_group_keeps_its_assignment(case: tuple[list[str], int, Assignment]) -> None:
    members, partitions, previous = case
    settled = sticky(members, partitions, previous)
    assert sticky(members, partitions, settled) == settled


@given(members_st, partitions_st)
def test_from_scratch_it_is_round_robin(members: list[str], partitions: int) -> None:
    assert sticky(members, partitions, {}) == assign(members, partitions, "roundrobin")


@given(cases(), st.randoms(use_true_random=False))
def test_deterministic_whatever_the_order_of_members_and_history(
    case: tuple[list[str], int, Assignment], rng: random.Random
) -> None:
    members, partitions, previous = case
    expected = assign(members, partitions, "sticky", previous)
    shuffled = list(members)
    rng.shuffle(shuffled)
    reordered = dict(reversed(list(previous.items())))
    assert assign(shuffled, partitions, "sticky", reordered) == expected
    assert assign(members, partitions, "cooperative-sticky", previous) == expected


@given(cases(), st.data())
def test_a_partition_claimed_twice_still_gets_one_owner(
    case: tuple[list[str], int, Assignment], data: st.DataObject
) -> None:
    """Overlapping claims (two generations' views): the first claimant keeps it, and the
    outcome is still a balanced assignment of every partition once."""
    members, partitions, previous = case
    rival = data.draw(st.sampled_from(members))
    claimed = dict(previous)
    claimed[rival] = sorted({*previous.get(rival, ()), *data.draw(st.sets(st.integers(0, 70)))})
    result = sticky(members, partitions, claimed)
    low, extra = divmod(partitions, len(members))
    assert {p: len(who) for p, who in owners(result).items()} == dict.fromkeys(range(partitions), 1)
    assert sorted(len(owned) for owned in result.values()) == sorted(
        [low + 1] * extra + [low] * (len(members) - extra)
    )


def test_consumer_group_rebalances_stickily_as_pods_come_and_go() -> None:
    group = ConsumerGroup(KafkaSpec(partitions=12, assignor="sticky"))
    group.update(["a", "b", "c", "d"])
    first = {m: list(p) for m, p in group.assignment.items()}
    assert first == {"a": [0, 4, 8], "b": [1, 5, 9], "c": [2, 6, 10], "d": [3, 7, 11]}
    group.update(["a", "b", "c"])  # d left: only its partitions move
    assert all(set(first[m]) <= set(group.assignment[m]) for m in ("a", "b", "c"))
    assert sorted(p for owned in group.assignment.values() for p in owned) == list(range(12))
    generation = group.generation
    assert group.update(["c", "b", "a"]) is False  # the same members: no rebalance
    assert group.generation == generation
