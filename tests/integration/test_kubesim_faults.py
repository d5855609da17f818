"""The simulator's fault rules and its behind-the-back control hooks, through the real client.

Each test uses a Deployment of its own in one shared simulator and removes its rules afterwards,
so the tests do not depend on their order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import urllib3
from kubernetes import client
from kubernetes.client import ApiException

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import wait_until
from tests.kube import ALL_RULES, TOKEN, USER

pytestmark = pytest.mark.integration

NS = "faults"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
NAMES = ("rules", "status", "after", "lost", "slow", "vanish", "again", "roll", "mark", "lease")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    body = {
        "seed": 5,
        "users": {TOKEN: {"name": USER}},
        "bindings": [{"user": USER, "namespace": NS, "rules": ALL_RULES}],
        "deployments": [
            {
                "namespace": NS,
                "name": name,
                "replicas": 3,
                "labels": {"app": name},
                "startupSeconds": 0.3,
                "terminationGracePeriodSeconds": 1,
            }
            for name in NAMES
        ],
    }
    server = KubeSim(tmp_path_factory.mktemp("kubesim-faults"), body, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(sim: KubeSim) -> Iterator[client.ApiClient]:
    config = client.Configuration(host=sim.url, api_key={"authorization": f"Bearer {TOKEN}"})
    config.retries = False  # every answer as the server gave it
    with client.ApiClient(config) as api_client:
        yield api_client
    sim.clear_faults()


def pods_of(sim: KubeSim, deployment: str) -> list[dict[str, Any]]:
    return sorted(sim.pods(NS, deployment), key=lambda p: p["metadata"]["name"])


def evict(core: client.CoreV1Api, pod: dict[str, Any], timeout: float | None = None) -> Any:
    meta = pod["metadata"]
    body = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=meta["name"], namespace=NS),
        delete_options=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=meta["uid"])
        ),
    )
    return core.create_namespaced_pod_eviction(meta["name"], NS, body, _request_timeout=timeout)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def lease_body(name: str, holder: str) -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, namespace=NS),
        spec=client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=30),
    )


def test_a_rule_matches_method_and_path_glob_or_regex(sim: KubeSim, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    sim.set_fault(path=f"/api/v1/namespaces/{NS}/pods/rules-*/eviction", method="POST", status=503)
    sim.set_fault(path=rf"^/api/v1/namespaces/{NS}/pods$", method="GET", status=500)
    with pytest.raises(ApiException) as listed:
        core.list_namespaced_pod(NS, label_selector="app=rules")
    assert status_of(listed.value)["reason"] == "InternalError"
    victim = pods_of(sim, "rules")[0]
    with pytest.raises(ApiException) as evicted:
        evict(core, victim)
    assert (evicted.value.status, status_of(evicted.value)["reason"]) == (503, "ServiceUnavailable")
    # Another method on the same path, and another path, are let through.
    assert core.read_namespaced_pod(victim["metadata"]["name"], NS).metadata.uid
    seen = {rule["path"]: (rule["seen"], rule["applied"]) for rule in sim.faults()}
    assert seen[f"/api/v1/namespaces/{NS}/pods/rules-*/eviction"] == (1, 1)


@pytest.mark.parametrize(
    ("code", "path", "method", "reason", "message"),
    [
        (
            403,
            f"{LEASES}/x",
            "GET",
            "Forbidden",
            f'leases.coordination.k8s.io "x" is forbidden: '
            f'User "{USER}" cannot get resource "leases" in API group "coordination.k8s.io" in the '
            f'namespace "{NS}"',
        ),
        (404, f"{LEASES}/x", "GET", "NotFound", 'leases.coordination.k8s.io "x" not found'),
        (409, LEASES, "POST", "AlreadyExists", 'leases.coordination.k8s.io "x" already exists'),
        (
            409,
            f"{LEASES}/x",
            "PUT",
            "Conflict",
            "Operation cannot be fulfilled on "
            'leases.coordination.k8s.io "x": the object has been modified; please apply your '
            "changes to the latest version and try again",
        ),
        (
            429,
            f"{LEASES}/x",
            "GET",
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        (500, f"{LEASES}/x", "GET", "InternalError", "Internal error occurred: injected fault"),
        (
            503,
            f"{LEASES}/x",
            "GET",
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        (
            504,
            f"{LEASES}/x",
            "GET",
            "Timeout",
            "the server was unable to return a response in "
            "the time allotted, but may still be processing the request",
        ),
    ],
    ids=["403", "404", "409-create", "409-update", "429", "500", "503", "504"],
)
def test_error_answers_are_kube_apiserver_status_objects(
    sim: KubeSim,
    api: client.ApiClient,
    code: int,
    path: str,
    method: str,
    reason: str,
    message: str,
) -> None:
    leases = client.CoordinationV1Api(api)
    sim.set_fault(path=path, method=method, status=code)
    calls = {
        "GET": lambda: leases.read_namespaced_lease("x", NS),
        "POST": lambda: leases.create_namespaced_lease(NS, lease_body("x", "me")),
        "PUT": lambda: leases.replace_namespaced_lease("x", NS, lease_body("x", "me")),
    }
    with pytest.raises(ApiException) as caught:
        calls[method]()
    status = status_of(caught.value)
    assert caught.value.status == status["code"] == code
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure")
    assert (status["reason"], status["message"]) == (reason, message)
    assert sim.requests()[-1]["answer"] == "injected"


def test_a_custom_message_or_body_replaces_the_answer(sim: KubeSim, api: client.ApiClient) -> None:
    path = f"{LEASES}/custom"
    sim.set_fault(path=path, status=503, message="etcd leader changed", count=1)
    sim.set_fault(
        path=path, status=502, body="<html>bad gateway</html>", contentType="text/html", count=1
    )
    sim.set_fault(path=path, body={"kind": "Lease", "metadata": "not an object"}, count=1)
    http = httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {TOKEN}"})
    with http:
        first = http.get(path)
        assert (first.status_code, first.json()["message"]) == (503, "etcd leader changed")
        assert first.json()["reason"] == "ServiceUnavailable"
        second = http.get(path)
        assert second.status_code == 502
        assert second.headers["content-type"].startswith("text/html")
        assert second.text == "<html>bad gateway</html>"
        third = http.get(path)
        assert (third.status_code, third.json()["metadata"]) == (200, "not an object")
        assert http.get(path).status_code == 404  # every rule used up: the real answer


def test_after_lets_the_first_requests_through_and_count_limits(
    sim: KubeSim, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    victims = pods_of(sim, "after")
    sim.set_fault(
        path=f"/api/v1/namespaces/{NS}/pods/after-*/eviction", status=500, after=1, count=1
    )
    evict(core, victims[0])  # the first eviction goes through
    with pytest.raises(ApiException) as second:
        evict(core, victims[1])
    assert second.value.status == 500
    evict(core, victims[2])  # count 1: the third goes through again
    (rule,) = sim.faults()
    assert (rule["seen"], rule["applied"], rule["exhausted"]) == (2, 1, True)
    # A later page of a list: only the request carrying `continue` fails, as an expired token.
    sim.set_fault(path=f"/api/v1/namespaces/{NS}/pods", method="GET", after=1, status=410)
    first = core.list_namespaced_pod(NS, label_selector="app=after", limit=1)
    with pytest.raises(ApiException) as later:
        core.list_namespaced_pod(
            NS, label_selector="app=after", limit=1, _continue=first.metadata._continue
        )
    assert (later.value.status, status_of(later.value)["reason"]) == (410, "Expired")


def test_phase_after_carries_the_write_out_and_loses_the_answer(
    sim: KubeSim, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    first, second = pods_of(sim, "lost")[:2]
    sim.set_fault(
        path=f"/api/v1/namespaces/{NS}/pods/{first['metadata']['name']}/eviction",
        phase="after",
        drop=True,
    )
    with pytest.raises(urllib3.exceptions.HTTPError):
        evict(core, first)
    sim.set_fault(
        path=f"/api/v1/namespaces/{NS}/pods/{second['metadata']['name']}/eviction",
        phase="after",
        delay=1.0,
    )
    with pytest.raises(urllib3.exceptions.HTTPError):
        evict(core, second, timeout=0.3)
    left = {p["metadata"]["uid"]: p for p in sim.pods(NS, "lost")}
    for pod in (first, second):  # both evictions were carried out
        gone = left.get(pod["metadata"]["uid"])
        assert gone is None or gone["metadata"].get("deletionTimestamp")
    log = wait_until(lambda: evictions_logged(sim, "lost", 2), timeout=5, what="both logged")
    assert [(r["status"], r["answer"]) for r in log] == [(201, "dropped"), (201, "late")]


def evictions_logged(sim: KubeSim, deployment: str, count: int) -> list[dict[str, Any]]:
    """The request log's evictions of the Deployment's pods, once there are `count`."""
    prefix = f"/api/v1/namespaces/{NS}/pods/{deployment}-"
    log = [r for r in sim.requests() if r["route"] == "pods.evict" and r["path"].startswith(prefix)]
    return log if len(log) >= count else []


def test_phase_after_can_answer_an_error_for_a_write_that_was_done(
    sim: KubeSim, api: client.ApiClient
) -> None:
    leases = client.CoordinationV1Api(api)
    sim.set_fault(path=LEASES, method="POST", phase="after", status=504)
    with pytest.raises(ApiException) as caught:
        leases.create_namespaced_lease(NS, lease_body("written", "me"))
    assert status_of(caught.value)["reason"] == "Timeout"
    assert leases.read_namespaced_lease("written", NS).spec.holder_identity == "me"


def test_a_delayed_request_is_abandoned_when_its_client_gave_up(
    sim: KubeSim, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    slow, patient = pods_of(sim, "slow")[:2]
    sim.set_fault(path=f"/api/v1/namespaces/{NS}/pods/slow-*/eviction", delay=0.8)
    with pytest.raises(urllib3.exceptions.HTTPError):
        evict(core, slow, timeout=0.2)
    evict(core, patient, timeout=5)  # a client that waits is answered, late
    log = wait_until(lambda: evictions_logged(sim, "slow", 2), timeout=5, what="both logged")
    uids = {p["metadata"]["uid"]: p for p in sim.pods(NS, "slow")}
    assert not uids[slow["metadata"]["uid"]]["metadata"].get("deletionTimestamp")
    answers = sorted((r["status"], r["answer"]) for r in log)
    assert answers == [(0, "abandoned"), (201, "late")]


def test_a_pod_deleted_behind_the_clients_back_is_not_found(
    sim: KubeSim, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    gone, vanishing = pods_of(sim, "vanish")[:2]
    sim.delete_pod(NS, gone["metadata"]["name"])
    with pytest.raises(ApiException) as caught:
        evict(core, gone)
    assert (caught.value.status, status_of(caught.value)["reason"]) == (404, "NotFound")
    # The same, as the side effect of a rule: between a list and the eviction.
    sim.set_fault(path=f"/api/v1/namespaces/{NS}/pods/*/eviction", action="deletePod", count=1)
    with pytest.raises(ApiException) as again:
        evict(core, vanishing)
    assert again.value.status == 404
    wait_until(lambda: sim.settled(NS, "vanish", 3), timeout=10, what="replacements Ready")


def test_a_pod_replaced_under_its_name_fails_the_uid_precondition(
    sim: KubeSim, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    old = pods_of(sim, "again")[0]
    name = old["metadata"]["name"]
    new = sim.replace_pod(NS, name)
    assert new["metadata"]["name"] == name
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert conditions_ready(new)
    with pytest.raises(ApiException) as caught:
        evict(core, old)
    status = status_of(caught.value)
    assert (caught.value.status, status["reason"]) == (409, "Conflict")
    assert "the UID in the precondition" in status["message"]
    assert sim.settled(NS, "again", 3)  # still three Ready replicas, the new one among them
    # As a rule's side effect: the pod is replaced just before the eviction is carried out.
    other = pods_of(sim, "again")[1]
    sim.set_fault(path=f"/api/v1/namespaces/{NS}/pods/*/eviction", action="replacePod", count=1)
    with pytest.raises(ApiException) as replaced:
        evict(core, other)
    assert replaced.value.status == 409


def conditions_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


def test_a_rollout_really_rolls(sim: KubeSim, api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_deployment("roll", NS)
    old_pods = {p["metadata"]["name"] for p in sim.pods(NS, "roll")}
    sim.rollout(NS, "roll")
    during = apps.read_namespaced_deployment("roll", NS)
    assert during.metadata.generation == before.metadata.generation + 1

    def rolled() -> bool:
        now = apps.read_namespaced_deployment("roll", NS)
        names = {p["metadata"]["name"] for p in sim.pods(NS, "roll")}
        return (
            now.status.observed_generation == now.metadata.generation
            and now.status.updated_replicas == 3
            and not names & old_pods
            and sim.settled(NS, "roll", 3)
        )

    wait_until(rolled, timeout=20, what="every pod replaced by the new template")
    # As a rule's side effect: after an eviction is carried out, the owning Deployment rolls.
    core = client.CoreV1Api(api)
    sim.set_fault(
        path=f"/api/v1/namespaces/{NS}/pods/*/eviction", phase="after", action="rollout", count=1
    )
    evict(core, pods_of(sim, "roll")[0])
    after = apps.read_namespaced_deployment("roll", NS)
    assert after.metadata.generation == before.metadata.generation + 2


def test_annotate_marks_the_deployment_owning_the_pod(sim: KubeSim, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    sim.set_fault(
        path=f"/api/v1/namespaces/{NS}/pods/*/eviction",
        phase="after",
        action="annotate",
        annotations={"example.com/stop": "true"},
        count=1,
    )
    evict(core, pods_of(sim, "mark")[0])
    found = client.AppsV1Api(api).read_namespaced_deployment("mark", NS)
    assert found.metadata.annotations["example.com/stop"] == "true"


def test_take_lease_makes_a_create_or_update_lose_the_race(
    sim: KubeSim, api: client.ApiClient
) -> None:
    leases = client.CoordinationV1Api(api)
    sim.set_fault(path=LEASES, method="POST", action="takeLease", holder="rival", count=1)
    with pytest.raises(ApiException) as created:
        leases.create_namespaced_lease(NS, lease_body("raced", "me"))
    assert status_of(created.value)["reason"] == "AlreadyExists"
    current = leases.read_namespaced_lease("raced", NS)
    assert current.spec.holder_identity == "rival"
    sim.set_fault(
        path=f"{LEASES}/raced",
        method="PUT",
        action="takeLease",
        holder="third",
        annotations={"example.com/by": "third"},
        count=1,
    )
    current.spec.holder_identity = "me"
    with pytest.raises(ApiException) as updated:
        leases.replace_namespaced_lease("raced", NS, current)
    assert status_of(updated.value)["reason"] == "Conflict"
    final = leases.read_namespaced_lease("raced", NS)
    assert final.spec.holder_identity == "third"
    assert final.metadata.annotations == {"example.com/by": "third"}


@pytest.mark.parametrize(
    "rule",
    [
        {"status": 503},
        {"path": "/x", "phase": "later"},
        {"path": "/x", "action": "explode"},
        {"path": "^(unclosed", "status": 500},
        {"path": "/x", "after": -1},
    ],
    ids=["no-path-or-route", "bad-phase", "bad-action", "bad-regex", "negative-after"],
)
def test_an_invalid_rule_is_a_bad_request(sim: KubeSim, rule: dict[str, Any]) -> None:
    answer = sim.control.post("/_sim/faults", json=rule)
    assert (answer.status_code, answer.json()["reason"]) == (400, "BadRequest")
