"""The Kubernetes adapter's translation between the API's JSON and the domain records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from pod_rebalancer.adapters.kube import (
    HPA_ANNOTATION,
    INEFFECTIVE,
    LAST_EFFECT,
    LAST_INEFFECTIVE,
    LAST_REBALANCE,
    LAST_SELECTION,
    cpu_cores,
    lease_body,
    parse_deployment,
    parse_hpa,
    parse_lease,
    pod_page,
)
from pod_rebalancer.core.model import Effect, HpaTarget, LeaseState, PodInfo, Target
from pod_rebalancer.errors import KubernetesError

EXCLUDE = "pod-rebalancer.io/exclude"
TARGET = Target("posthog", "ingestion-consumer")


def deployment_json(selector: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "ingestion-consumer", "uid": "u", "generation": 2},
        "spec": {
            "replicas": 3,
            "selector": selector,
            "template": {"spec": {"containers": [{"name": "consumer"}, {"name": "sidecar"}]}},
        },
        "status": {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3},
    }


def test_a_deployment_is_read_with_its_selector_and_containers() -> None:
    selector = {
        "matchLabels": {"app": "ingestion", "tier": "consumer"},
        "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary", "b"]}],
    }
    found = parse_deployment(TARGET, deployment_json(selector), EXCLUDE)

    assert found.selector == "app=ingestion,tier=consumer,track notin (b,canary)"
    assert found.selector_problem == ""
    assert found.containers == ("consumer", "sidecar")
    assert (found.state.generation, found.state.unavailable_replicas) == (2, 0)


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ({}, "empty selector"),
        ({"matchLabels": {}}, "empty selector"),
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, "'Gt'"),
    ],
    ids=["empty", "empty_labels", "unknown_operator"],
)
def test_an_unusable_selector_is_reported_not_raised(
    selector: dict[str, Any], problem: str
) -> None:
    # A permanent property of the Deployment: the service skips it, nothing retries it.
    found = parse_deployment(TARGET, deployment_json(selector), EXCLUDE)

    assert found.selector is None
    assert problem in found.selector_problem


def pod_json(created: str, started: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    if started is not None:
        status["startTime"] = started
    return {
        "metadata": {"name": "p", "uid": "u", "creationTimestamp": created},
        "status": status,
    }


def parse_pod(item: dict[str, Any], exclude: str) -> PodInfo:
    """One pod through the decoder the pod list goes through."""
    (pod,), token = pod_page(json.dumps({"items": [item]}).encode(), exclude)
    assert token == ""
    return pod


def test_a_pods_age_counts_from_its_start_not_its_creation() -> None:
    # Pending for ten minutes, running for one: one minute of metrics.
    found = parse_pod(pod_json("2026-11-22T02:50:00Z", "2026-11-22T02:59:00Z"), EXCLUDE)

    assert found.started_at == datetime(2026, 11, 22, 2, 59, tzinfo=UTC)


def test_a_pod_without_a_start_time_falls_back_to_its_creation() -> None:
    found = parse_pod(pod_json("2026-11-22T02:50:00Z", None), EXCLUDE)

    assert found.started_at == datetime(2026, 11, 22, 2, 50, tzinfo=UTC)


def test_a_pod_carrying_the_exclude_annotation_is_excluded_unless_false() -> None:
    item = pod_json("2026-11-22T02:50:00Z", None)
    item["metadata"]["annotations"] = {EXCLUDE: "yes"}
    assert parse_pod(item, EXCLUDE).excluded is True
    item["metadata"]["annotations"] = {EXCLUDE: "False "}
    assert parse_pod(item, EXCLUDE).excluded is False


def test_a_lease_round_trips_and_keeps_what_others_put_on_it() -> None:
    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    state = LeaseState("me", now, timedelta(minutes=5), now, ("pod-a", "pod-b"))
    read = parse_lease(
        {
            "metadata": {
                "name": "pod-rebalancer.x",
                "namespace": "posthog",
                "resourceVersion": "41",
                "labels": {"team": "data"},
                "annotations": {"note": "kept", LAST_SELECTION: "old"},
            },
            "spec": {},
        }
    )

    body = lease_body("posthog", "pod-rebalancer.x", state, read)
    again = parse_lease({**body, "metadata": {**body["metadata"], "resourceVersion": "42"}})

    assert body["metadata"]["resourceVersion"] == "41"  # the write fails if anyone wrote since
    assert body["metadata"]["annotations"]["note"] == "kept"
    assert body["metadata"]["annotations"][LAST_SELECTION] == "pod-a,pod-b"
    assert body["metadata"]["labels"]["team"] == "data"
    assert again.state == state


def test_a_pod_is_ready_since_its_ready_condition_last_changed() -> None:
    item = pod_json("2026-11-22T02:50:00Z", "2026-11-22T02:51:00Z")
    item["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-22T02:52:30Z"
    assert parse_pod(item, EXCLUDE).ready_since == datetime(2026, 11, 22, 2, 52, 30, tzinfo=UTC)
    item["status"]["conditions"][0]["status"] = "False"
    assert parse_pod(item, EXCLUDE).ready_since is None  # not Ready: since when is moot


MEASURED = Effect(
    "variance",
    before=0.41,
    expected_after=0.03,
    evicted=("pod-a", "pod-b"),
    achieved=0.39,
    improvement_percent=4.878,
    effective=False,
    measured_at=datetime(2026, 11, 22, 3, 20, tzinfo=UTC),
)


def lease_json(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "pod-rebalancer.x",
            "namespace": "posthog",
            "resourceVersion": "7",
            "annotations": annotations,
        },
        "spec": {},
    }


@pytest.mark.parametrize(
    "effect",
    [MEASURED, Effect("cv", before=1.5, expected_after=0.2, evicted=("pod-a",))],
    ids=["measured", "expected"],
)
def test_the_closed_loops_memory_round_trips(effect: Effect) -> None:
    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    state = LeaseState(None, now, timedelta(minutes=5), now, ("pod-a",), effect, 2, now)
    body = lease_body("posthog", "pod-rebalancer.x", state)
    annotations = body["metadata"]["annotations"]
    assert annotations[INEFFECTIVE] == "2"
    assert json.loads(annotations[LAST_EFFECT])["before"] == effect.before

    again = parse_lease({**body, "metadata": {**body["metadata"], "resourceVersion": "8"}})

    assert again.state == state


def test_no_ineffective_rebalance_leaves_no_count_behind() -> None:
    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    state = LeaseState(None, now, timedelta(minutes=5), now, (), MEASURED, 0, None)
    annotations = lease_body("posthog", "x", state)["metadata"]["annotations"]
    assert INEFFECTIVE not in annotations
    assert LAST_INEFFECTIVE not in annotations
    assert parse_lease(lease_json({})).state.ineffective == 0  # removed by hand: a reset


@pytest.mark.parametrize(
    "annotations",
    [
        {INEFFECTIVE: "two"},
        {INEFFECTIVE: "-1"},
        {LAST_EFFECT: "{not json"},
        {LAST_EFFECT: "[1, 2]"},
        {LAST_EFFECT: '{"before": "0.4", "expected_after": 0.1}'},
        {LAST_EFFECT: '{"before": 0.4}'},
        {LAST_EFFECT: '{"before": 0.4, "expected_after": 0.1, "evicted": "pod-a"}'},
        {LAST_EFFECT: '{"before": 0.4, "expected_after": 0.1, "effective": "yes"}'},
    ],
    ids=[
        "count-word",
        "count-negative",
        "not-json",
        "not-object",
        "text-number",
        "no-expected",
        "evicted-text",
        "effective-text",
    ],
)
def test_a_memory_edited_into_nonsense_makes_the_lease_unreadable(
    annotations: dict[str, str],
) -> None:
    with pytest.raises(KubernetesError, match="unreadable Lease"):
        parse_lease(lease_json(annotations))


def test_releasing_without_a_rebalance_removes_our_annotations() -> None:
    state = LeaseState(None, None, timedelta(minutes=5), None)
    body = lease_body("posthog", "pod-rebalancer.x", state)

    assert LAST_REBALANCE not in body["metadata"]["annotations"]
    assert LAST_SELECTION not in body["metadata"]["annotations"]
    assert body["spec"] == {"holderIdentity": None, "leaseDurationSeconds": 300}


def test_a_page_keeps_only_what_the_decision_reads_and_its_continue_token() -> None:
    item = pod_json("2026-11-22T02:50:00Z", "2026-11-22T02:51:00Z")
    item["metadata"]["labels"] = {"app": "x"}
    item["spec"] = {"containers": [{"name": "c", "image": "i"}]}
    item["metadata"]["deletionTimestamp"] = "2026-11-22T03:00:00Z"
    body = {"kind": "PodList", "metadata": {"continue": "next", "resourceVersion": "9"}}
    (pod,), token = pod_page(json.dumps({**body, "items": [item]}).encode(), EXCLUDE)
    assert (pod.name, pod.uid, pod.ready, pod.terminating) == ("p", "u", True, True)
    assert token == "next"


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"items": [{"metadata": {}}]}', b'{"items": [{"metadata": {"name": 7}}]}', b"{"],
    ids=["not-an-object", "no-name", "name-not-a-string", "truncated"],
)
def test_a_page_that_is_not_a_pod_list_is_refused(body: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        pod_page(body, EXCLUDE)


def test_a_pods_cpu_request_is_the_sum_of_its_containers_requests() -> None:
    item = pod_json("2026-11-22T02:50:00Z", "2026-11-22T02:51:00Z")
    item["spec"] = {
        "containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"name": "sidecar", "resources": {"requests": {"cpu": "0.25"}}},
        ]
    }
    (pod,), _ = pod_page(json.dumps({"items": [item]}).encode(), EXCLUDE)
    assert pod.cpu_request == pytest.approx(0.75)


@pytest.mark.parametrize(
    "containers",
    [
        [{"name": "app"}],
        [{"name": "app", "resources": {"requests": {"cpu": "1"}}}, {"name": "s", "resources": {}}],
        [{"name": "app", "resources": {"requests": {"cpu": "lots"}}}],
        [],
    ],
    ids=["no-resources", "a-container-without-one", "unreadable", "no-containers"],
)
def test_a_pod_with_a_container_requesting_no_cpu_has_no_request(
    containers: list[dict[str, Any]],
) -> None:
    item = pod_json("2026-11-22T02:50:00Z", "2026-11-22T02:51:00Z")
    item["spec"] = {"containers": containers}
    (pod,), _ = pod_page(json.dumps({"items": [item]}).encode(), EXCLUDE)
    assert pod.cpu_request is None
    assert pod.ready  # the rest of the pod is read as before


@pytest.mark.parametrize(
    ("quantity", "cores"),
    [("500m", 0.5), ("2", 2.0), ("0.25", 0.25), ("1500000u", 1.5), ("250000000n", 0.25)],
)
def test_cpu_quantities_are_read_in_cores(quantity: str, cores: float) -> None:
    assert cpu_cores(quantity) == pytest.approx(cores)


def utilization(resource: str, percent: int) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": percent}
    return {"type": "Resource", "resource": {"name": resource, "target": target}}


def hpa_json(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": TARGET.deployment,
        },
        "minReplicas": 2,
        "maxReplicas": 20,
        "metrics": [utilization("memory", 90), utilization("cpu", 70)],
    }
    body.update(spec)
    return {"metadata": {"name": "consumers"}, "spec": body}


def test_an_hpa_yields_its_cpu_utilization_target() -> None:
    assert parse_hpa(TARGET, hpa_json()) == HpaTarget("consumers", 70)


def test_an_hpa_without_a_cpu_utilization_target_has_none() -> None:
    average_value = {"type": "AverageValue", "averageValue": "500m"}
    metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": average_value}}]
    assert parse_hpa(TARGET, hpa_json(metrics=metrics)) == HpaTarget("consumers", None)
    assert parse_hpa(TARGET, hpa_json(metrics=None)) == HpaTarget("consumers", None)


@pytest.mark.parametrize(
    "ref",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": TARGET.deployment},
        {"apiVersion": "example.com/v1", "kind": "Deployment", "name": TARGET.deployment},
    ],
    ids=["another-deployment", "another-kind", "another-group"],
)
def test_an_hpa_scaling_something_else_is_not_the_targets(ref: dict[str, str]) -> None:
    assert parse_hpa(TARGET, hpa_json(scaleTargetRef=ref)) is None


def test_the_deployment_may_name_its_hpa() -> None:
    body = deployment_json({"matchLabels": {"app": "x"}})
    body["metadata"]["annotations"] = {HPA_ANNOTATION: " consumers "}
    assert parse_deployment(TARGET, body, EXCLUDE).hpa == "consumers"
    assert (
        parse_deployment(TARGET, deployment_json({"matchLabels": {"app": "x"}}), EXCLUDE).hpa == ""
    )
