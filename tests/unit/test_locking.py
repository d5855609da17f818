"""The Lease as a lock when the API loses answers: a write carried out but not acknowledged is
recognised by reading the Lease back, so the lock is neither left held nor taken twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pod_rebalancer import locking
from pod_rebalancer.core.model import LeaseState, Reason, Target
from pod_rebalancer.errors import KubernetesError
from tests.builders import NOW
from tests.fakes import FakeCluster

TARGET = Target("posthog", "ingestion-consumer")
NAME = locking.lease_name(TARGET)
COOLDOWN = timedelta(minutes=15)
OLD = LeaseState(None, NOW - timedelta(hours=2), locking.LOCK_TTL, NOW - timedelta(hours=2))


def acquire(cluster: FakeCluster, me: str = "me") -> locking.Held | Reason:
    return locking.acquire(cluster, TARGET, me=me, now=NOW, cooldown=COOLDOWN, selection=("a", "b"))


def cluster_with(previous: LeaseState | None = None, **changes: object) -> FakeCluster:
    cluster = FakeCluster(**changes)  # type: ignore[arg-type]
    if previous is not None:
        cluster.put_lease(TARGET.namespace, NAME, previous)
    return cluster


@pytest.mark.parametrize("previous", [None, OLD], ids=["create", "replace"])
@pytest.mark.parametrize("retried", [False, True], ids=["timed-out", "retry-conflicted"])
def test_a_lock_written_but_not_acknowledged_is_held(
    previous: LeaseState | None, retried: bool
) -> None:
    """The client retries a timed-out PUT itself (and hears 409 for its own write); a create
    could be retried so only by something in between."""
    write = "create" if previous is None else "replace"
    cluster = cluster_with(previous, lost_answers=[write], retried=retried)
    held = acquire(cluster)
    assert isinstance(held, locking.Held)
    assert held.lease.state.holder == "me"
    assert held.previous == previous
    assert locking.release(cluster, held, NOW) is True
    after = cluster.leases[NAME].state
    assert after.holder is None
    assert after.last_rebalance == (previous.last_rebalance if previous else None)


def test_a_lost_write_that_did_not_happen_is_a_failure() -> None:
    cluster = cluster_with(None)

    def refuse(namespace: str, name: str, state: LeaseState) -> None:
        raise KubernetesError("Kubernetes API answered HTTP 503", 503)

    cluster.create_lease = refuse  # type: ignore[method-assign, assignment]
    with pytest.raises(KubernetesError, match="503"):
        acquire(cluster)
    assert cluster.leases == {}


def test_losing_the_race_to_another_invocation_is_still_the_cooldown() -> None:
    cluster = cluster_with(None)
    assert isinstance(acquire(cluster, me="other"), locking.Held)
    assert acquire(cluster) is Reason.COOLDOWN


@pytest.mark.parametrize("retried", [False, True], ids=["timed-out", "retry-conflicted"])
def test_a_release_whose_answer_was_lost_is_done(retried: bool) -> None:
    cluster = cluster_with(OLD)
    held = acquire(cluster)
    assert isinstance(held, locking.Held)
    cluster.lost_answers.append("replace")
    cluster.retried = retried
    assert locking.release(cluster, held, NOW, ("p-1",)) is True
    after = cluster.leases[NAME].state
    assert (after.holder, after.last_rebalance) == (None, NOW)


def test_a_release_that_cannot_be_confirmed_raises() -> None:
    cluster = cluster_with(OLD)
    held = acquire(cluster)
    assert isinstance(held, locking.Held)
    cluster.lost_answers.append("replace")
    cluster.lease_reads_fail = True
    with pytest.raises(KubernetesError):
        locking.release(cluster, held, NOW, ("p-1",))
