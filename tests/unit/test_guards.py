"""Safety guards: each is a small named constraint that returns its reason, or None."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pod_rebalancer.core.cooldown import held_by_other, in_cooldown, lease_refusal
from pod_rebalancer.core.model import (
    AllowList,
    DeploymentState,
    LeaseState,
    PodInfo,
    PodSkip,
    Reason,
    Target,
)
from pod_rebalancer.core.pod_guards import (
    POD_GUARDS,
    not_ready,
    pod_excluded,
    pod_skip,
    terminating,
    too_young,
)
from pod_rebalancer.core.target_guards import (
    changed_since,
    deployment_excluded,
    first_refusal,
    matches_any,
    rollout_in_progress,
    target_not_allowed,
)
from tests.builders import NOW, pod, settled

MIN_AGE = timedelta(minutes=10)
TARGET = Target("posthog", "ingestion-consumer")


# --- patterns and the allow-list -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "patterns"),
    [
        ("posthog", ["posthog"]),
        ("posthog", ["post*"]),
        ("posthog-prod", ["*-prod"]),
        ("posthog", ["p*g"]),
        ("posthog", ["*"]),
        ("posthog", ["other", "post*"]),
        ("post", ["post*"]),  # `*` also matches nothing
        ("a.b", ["a.b"]),
    ],
)
def test_matches_exact_names_and_star_wildcards(value: str, patterns: list[str]) -> None:
    assert matches_any(value, patterns)


@pytest.mark.parametrize(
    ("value", "patterns"),
    [
        ("posthog", []),
        ("posthog", ["post"]),  # whole name, not a prefix
        ("my-posthog", ["post*"]),  # anchored at the start
        ("posthog-x", ["*hog"]),  # anchored at the end
        ("posthog", ["posthog?"]),
        ("posthog", ["posth?g"]),  # `?` is a literal, not one character
        ("posthog", ["[p]osthog"]),  # `[` is a literal, not a character class
        ("axb", ["a.b"]),  # `.` is a literal, not any character
        ("posthog", [""]),
    ],
)
def test_does_not_match_other_names(value: str, patterns: list[str]) -> None:
    assert not matches_any(value, patterns)


def test_question_mark_and_bracket_match_only_themselves() -> None:
    assert matches_any("a?b", ["a?b"])
    assert matches_any("[x]", ["[x]"])
    assert not matches_any("ab", ["a?b"])


def test_allows_a_target_whose_namespace_and_deployment_both_match() -> None:
    allow = AllowList(namespaces=("posthog", "team-*"), deployments=("ingestion-*",))

    assert target_not_allowed(TARGET, allow) is None
    assert target_not_allowed(Target("team-a", "ingestion-x"), allow) is None


@pytest.mark.parametrize(
    "allow",
    [
        AllowList(namespaces=("other",), deployments=("*",)),
        AllowList(namespaces=("posthog",), deployments=("plugin-*",)),
        AllowList(namespaces=(), deployments=("*",)),
        AllowList(namespaces=("*",), deployments=()),
    ],
)
def test_refuses_a_target_outside_the_allow_list(allow: AllowList) -> None:
    assert target_not_allowed(TARGET, allow) is Reason.TARGET_NOT_ALLOWED


# --- deployment guards -----------------------------------------------------------------------


def test_settled_deployment_passes_every_deployment_guard() -> None:
    state = settled()

    assert rollout_in_progress(state) is None
    assert deployment_excluded(state) is None
    assert first_refusal(state) is None


@pytest.mark.parametrize(
    "state",
    [
        settled(generation=8),  # the controller has not seen the latest spec yet
        settled(updated_replicas=4),
        settled(updated_replicas=7),  # surge during a rollout
        settled(unavailable_replicas=1),
    ],
    ids=["observed_generation_behind", "updated_short", "updated_over", "unavailable"],
)
def test_reports_rollout_in_progress(state: DeploymentState) -> None:
    assert rollout_in_progress(state) is Reason.ROLLOUT_IN_PROGRESS
    assert first_refusal(state) is Reason.ROLLOUT_IN_PROGRESS


@pytest.mark.parametrize(
    ("now", "disrupted", "reason"),
    [
        (None, 1, Reason.TARGET_NOT_FOUND),
        (settled(excluded=True), 1, Reason.EXCLUDED),
        (settled(generation=8, observed_generation=8), 1, Reason.ROLLOUT_IN_PROGRESS),
        (settled(generation=8), 1, Reason.ROLLOUT_IN_PROGRESS),  # not observed yet
        (settled(replicas=4, updated_replicas=4), 1, Reason.ROLLOUT_IN_PROGRESS),  # scaled
        (settled(updated_replicas=4), 1, Reason.ROLLOUT_IN_PROGRESS),  # more than we took
        (settled(updated_replicas=7), 1, Reason.ROLLOUT_IN_PROGRESS),  # a surge
        (settled(unavailable_replicas=2), 1, Reason.ROLLOUT_IN_PROGRESS),  # more than we took
        (settled(updated_replicas=5, unavailable_replicas=1), 1, None),  # our own eviction
        (settled(updated_replicas=4, unavailable_replicas=2), 2, None),
        (settled(), 1, None),  # already replaced and Ready
    ],
    ids=[
        "vanished",
        "excluded",
        "new_generation",
        "generation_not_observed",
        "scaled",
        "updated_short",
        "updated_over",
        "unavailable",
        "own_eviction",
        "own_two_evictions",
        "replaced",
    ],
)
def test_changed_since_the_first_removal(
    now: DeploymentState | None, disrupted: int, reason: Reason | None
) -> None:
    assert changed_since(settled(), now, disrupted) is reason


def test_observed_generation_ahead_of_generation_counts_as_settled() -> None:
    assert rollout_in_progress(settled(observed_generation=8)) is None


def test_reports_an_excluded_deployment() -> None:
    assert deployment_excluded(settled(excluded=True)) is Reason.EXCLUDED


def test_exclusion_is_reported_before_a_rollout() -> None:
    state = settled(excluded=True, generation=9)

    assert first_refusal(state) is Reason.EXCLUDED


# --- cooldown --------------------------------------------------------------------------------


def test_is_in_cooldown_inside_the_window() -> None:
    last = NOW - timedelta(minutes=14, seconds=59)

    assert in_cooldown(last, NOW, timedelta(minutes=15)) is Reason.COOLDOWN


def test_is_not_in_cooldown_exactly_at_the_boundary() -> None:
    last = NOW - timedelta(minutes=15)

    assert in_cooldown(last, NOW, timedelta(minutes=15)) is None


def test_is_not_in_cooldown_after_the_window() -> None:
    assert in_cooldown(NOW - timedelta(hours=1), NOW, timedelta(minutes=15)) is None


def test_is_not_in_cooldown_without_a_previous_rebalance() -> None:
    assert in_cooldown(None, NOW, timedelta(minutes=15)) is None


def test_zero_cooldown_never_blocks() -> None:
    assert in_cooldown(NOW, NOW, timedelta(0)) is None


def lease(holder: str | None, renewed_ago: timedelta, last: timedelta | None = None) -> LeaseState:
    return LeaseState(
        holder, NOW - renewed_ago, timedelta(minutes=5), None if last is None else NOW - last
    )


def test_a_live_lock_of_another_invocation_is_locked() -> None:
    assert lease_refusal(lease("other", timedelta(minutes=1)), "me", NOW, timedelta(0)) is (
        Reason.LOCKED
    )


@pytest.mark.parametrize(
    "state",
    [
        lease("me", timedelta(minutes=1)),
        lease(None, timedelta(minutes=1)),
        lease("other", timedelta(minutes=5)),  # expired exactly now: a crashed holder's lapses
        lease("other", timedelta(hours=1)),
    ],
    ids=["mine", "free", "expired_at_the_boundary", "expired_long_ago"],
)
def test_my_own_a_free_or_an_expired_lock_does_not_block(state: LeaseState) -> None:
    assert held_by_other(state, "me", NOW) is False
    assert lease_refusal(state, "me", NOW, timedelta(minutes=15)) is None


def test_cooldown_is_reported_before_a_live_lock() -> None:
    state = lease("other", timedelta(minutes=1), last=timedelta(minutes=1))

    assert lease_refusal(state, "me", NOW, timedelta(minutes=15)) is Reason.COOLDOWN


def test_no_lease_never_blocks() -> None:
    assert lease_refusal(None, "me", NOW, timedelta(minutes=15)) is None


# --- pod guards ------------------------------------------------------------------------------


def test_healthy_old_pod_passes_every_pod_guard() -> None:
    healthy = pod()

    assert all(guard(healthy, NOW, MIN_AGE) is None for guard in POD_GUARDS)
    assert pod_skip(healthy, NOW, MIN_AGE) is None


def test_skips_terminating_pods() -> None:
    assert terminating(pod(terminating=True), NOW, MIN_AGE) is PodSkip.TERMINATING


def test_skips_pods_that_are_not_ready() -> None:
    assert not_ready(pod(ready=False), NOW, MIN_AGE) is PodSkip.NOT_READY


def test_skips_pods_younger_than_min_age() -> None:
    young = pod(age=MIN_AGE - timedelta(microseconds=1))

    assert too_young(young, NOW, MIN_AGE) is PodSkip.TOO_YOUNG


def test_keeps_pods_exactly_min_age_old() -> None:
    assert too_young(pod(age=MIN_AGE), NOW, MIN_AGE) is None


def test_age_counts_from_the_start_not_from_the_creation() -> None:
    # Created an hour ago but Pending until a minute ago: one minute of metrics, not sixty.
    late = PodInfo("late-starter", "uid", ready=True, started_at=NOW - timedelta(minutes=1))

    assert too_young(late, NOW, MIN_AGE) is PodSkip.TOO_YOUNG


def test_skips_pods_whose_start_time_is_unknown() -> None:
    assert too_young(pod(age=None), NOW, MIN_AGE) is PodSkip.TOO_YOUNG


def test_skips_pods_created_in_the_future() -> None:
    # Clock skew: a pod stamped after `now` has no complete rate() window either.
    assert too_young(pod(age=-timedelta(minutes=1)), NOW, MIN_AGE) is PodSkip.TOO_YOUNG


def test_skips_excluded_pods() -> None:
    assert pod_excluded(pod(excluded=True), NOW, MIN_AGE) is PodSkip.EXCLUDED


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (pod(terminating=True, ready=False, age=None, excluded=True), PodSkip.TERMINATING),
        (pod(terminating=True, ready=False), PodSkip.TERMINATING),
        (pod(ready=False, age=None, excluded=True), PodSkip.NOT_READY),
        (pod(age=timedelta(0), excluded=True), PodSkip.TOO_YOUNG),
        (pod(excluded=True), PodSkip.EXCLUDED),
    ],
    ids=[
        "terminating_first",
        "terminating_before_not_ready",
        "not_ready_before_too_young",
        "too_young_before_excluded",
        "excluded_alone",
    ],
)
def test_reports_the_first_pod_guard_in_order(candidate: PodInfo, expected: PodSkip) -> None:
    assert pod_skip(candidate, NOW, MIN_AGE) is expected
