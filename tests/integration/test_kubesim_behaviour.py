"""The Kubernetes API simulator, driven by the real `kubernetes` client over HTTP(S).

What takes time in a cluster (grace periods, startup delays, rollouts, CPU counters) is tested in
this process instead: a `Cluster` on a clock the test moves by hand, ticked by the test, so the
timings asserted are exact and cost no wall-clock time.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import urllib3
from kubernetes import client
from kubernetes.client import ApiException
from werkzeug.test import Client

from infra.kubesim.auth import Authorizer
from infra.kubesim.cluster import Cluster
from infra.kubesim.exposition import Exposition
from infra.kubesim.launcher import KubeSim
from infra.kubesim.metrics import VictoriaWriter
from infra.kubesim.patch import JSON_PATCH, STRATEGIC
from infra.kubesim.rest import DeleteOptions
from infra.kubesim.server import Simulator
from infra.kubesim.status import ApiError
from infra.stack.victoria import VictoriaMetrics
from tests.kube import ALL_RULES, FakeClock

pytestmark = pytest.mark.integration

T = TypeVar("T")
NS = "posthog"
DEP = "ingestion-consumer"
SA = "system:serviceaccount:ops:rebalancer"
TOKEN = "rebalancer-token"
READER = "reader-token"


def scenario(
    replicas: int = 4, min_available: int | str | None = 3, **deployment: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespace": NS,
        "name": DEP,
        "replicas": replicas,
        "labels": {"app": DEP},
        "container": DEP,
        "startupSeconds": 1.0,
        "terminationGracePeriodSeconds": 1,
        "podAgeSeconds": 3600,
    }
    spec.update(deployment)
    out: dict[str, Any] = {
        "seed": 11,
        "users": {
            TOKEN: {"name": SA, "groups": ["system:serviceaccounts"]},
            READER: {"name": "jane", "groups": []},
        },
        "bindings": [
            {"user": SA, "namespace": NS, "rules": ALL_RULES},
            {
                "user": "jane",
                "namespace": NS,
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            },
        ],
        "deployments": [
            spec,
            {
                "namespace": NS,
                "name": "web",
                "replicas": 2,
                "labels": {"app": "web", "tier": "frontend"},
            },
        ],
        "pdbs": [],
    }
    if min_available is not None:
        out["pdbs"].append(
            {"namespace": NS, "name": DEP, "selector": {"app": DEP}, "minAvailable": min_available}
        )
    return out


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., KubeSim]]:
    """Start simulators for this test (about 0.4 s each); all are stopped afterwards."""
    sims: list[KubeSim] = []

    def make(spec: dict[str, Any] | None = None, **kw: Any) -> KubeSim:
        kw.setdefault("tick", 0.1)
        sim = KubeSim(tmp_path, spec or scenario(), **kw)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    """One simulator for the tests that only read."""
    sim = KubeSim(tmp_path_factory.mktemp("kubesim"), scenario(), tick=0.1)
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def kube(sim: KubeSim, token: str = TOKEN) -> Iterator[client.ApiClient]:
    config = client.Configuration(host=sim.url, api_key={"authorization": f"Bearer {token}"})
    if sim.ca_file is not None:
        config.ssl_ca_cert = str(sim.ca_file)
    with client.ApiClient(config) as api:
        yield api


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def pod_names(core: client.CoreV1Api, selector: str = f"app={DEP}") -> list[str]:
    return [p.metadata.name for p in core.list_namespaced_pod(NS, label_selector=selector).items]


def eviction(name: str, **delete_options: Any) -> client.V1Eviction:
    options = client.V1DeleteOptions(**delete_options) if delete_options else None
    return client.V1Eviction(
        metadata=client.V1ObjectMeta(name=name, namespace=NS), delete_options=options
    )


@dataclass
class Local:
    """The simulator in this process: a cluster and the only clock it reads."""

    cluster: Cluster
    clock: FakeClock
    spec: dict[str, Any]

    def after(self, seconds: float) -> None:
        """Let `seconds` pass, then run the kubelet and the controllers once."""
        self.clock.advance(seconds)
        self.cluster.tick()

    def play(self, seconds: float, step: float, observe: Callable[[], T]) -> list[T]:
        """Tick every `step` for `seconds`; what `observe` saw after each tick."""
        seen = []
        for _ in range(round(seconds / step)):
            self.after(step)
            seen.append(observe())
        return seen

    def pod_names(self, selector: str = f"app={DEP}") -> list[str]:
        pods = self.cluster.list_pods(NS, label_selector=selector)["items"]
        return [p["metadata"]["name"] for p in pods]

    def http(self, writer: VictoriaWriter | None = None) -> Client:
        """werkzeug's test client on the WSGI app, /metrics/cadvisor wired as the server does."""
        app = Simulator(self.cluster, Authorizer.from_scenario(self.spec))
        app.cadvisor = Exposition(self.cluster, writer, self.clock, self.spec.get("seed")).render
        return Client(app)


def local(spec: dict[str, Any] | None = None, clock: FakeClock | None = None) -> Local:
    spec = spec or scenario()
    clock = clock or FakeClock()
    return Local(Cluster(spec, clock=clock), clock, spec)


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"]["conditions"]}


# ---------------------------------------------------------------------- pods: reading


def test_lists_pods_with_label_and_field_selectors(shared: KubeSim) -> None:
    with kube(shared) as api:
        core = client.CoreV1Api(api)
        consumers = core.list_namespaced_pod(NS, label_selector=f"app={DEP}")
        assert len(consumers.items) == 4
        assert int(consumers.metadata.resource_version) > 0
        assert len(pod_names(core, "app in (web,other),tier!=db")) == 2
        assert len(pod_names(core, "tier")) == 2
        assert len(pod_names(core, "!tier")) == 4
        assert pod_names(core, "app notin (web," + DEP + ")") == []

        first = consumers.items[0]
        by_name = core.list_namespaced_pod(
            NS, field_selector=f"metadata.name={first.metadata.name}"
        )
        assert [p.metadata.name for p in by_name.items] == [first.metadata.name]
        running = core.list_namespaced_pod(NS, field_selector="status.phase=Running")
        assert len(running.items) == 6
        assert core.list_namespaced_pod(NS, field_selector="status.phase!=Running").items == []
        on_node = core.list_namespaced_pod(
            NS, field_selector=f"spec.nodeName={first.spec.node_name}"
        )
        assert first.metadata.name in [p.metadata.name for p in on_node.items]

        with pytest.raises(ApiException) as bad:
            core.list_namespaced_pod(NS, field_selector="spec.foo=bar")
        assert bad.value.status == 400
        assert status_of(bad.value)["message"] == "field label not supported: spec.foo"


def test_pods_look_like_a_replicaset_made_them(shared: KubeSim) -> None:
    with kube(shared) as api:
        pod = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=f"app={DEP}").items[0]
    owner = pod.metadata.owner_references[0]
    pod_hash = pod.metadata.labels["pod-template-hash"]
    assert (owner.kind, owner.name, owner.controller) == ("ReplicaSet", f"{DEP}-{pod_hash}", True)
    assert pod.metadata.name.startswith(f"{DEP}-{pod_hash}-")
    assert len(pod.metadata.name.rsplit("-", 1)[1]) == 5
    age = (datetime.now(UTC) - pod.metadata.creation_timestamp).total_seconds()
    assert 3595 < age < 3700
    assert pod.spec.node_name
    assert pod.spec.containers[0].name == DEP
    assert pod.spec.termination_grace_period_seconds == 1
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "True"
    assert pod.status.container_statuses[0].ready is True
    assert pod.status.container_statuses[0].restart_count == 0


# ---------------------------------------------------------------------- deletion


def test_delete_with_a_wrong_uid_precondition_is_a_conflict(start: Callable[..., KubeSim]) -> None:
    sim = start()
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        pod = core.list_namespaced_pod(NS, label_selector=f"app={DEP}").items[0]
        name, uid = pod.metadata.name, pod.metadata.uid
        wrong = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-" + uid))
        with pytest.raises(ApiException) as conflict:
            core.delete_namespaced_pod(name, NS, body=wrong)
        assert conflict.value.status == 409
        assert status_of(conflict.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": (
                f'Operation cannot be fulfilled on Pod "{name}": the UID in the precondition '
                f"(not-{uid}) does not match the UID in record ({uid}). The object might have "
                "been deleted and then recreated"
            ),
            "reason": "Conflict",
            "details": {"name": name, "kind": "Pod"},
            "code": 409,
        }
        assert core.read_namespaced_pod(name, NS).metadata.deletion_timestamp is None

        right = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        deleted = core.delete_namespaced_pod(name, NS, body=right)
        assert deleted.metadata.deletion_timestamp is not None


def test_bound_pod_terminates_for_its_grace_period_then_disappears() -> None:
    sim = local(scenario(terminationGracePeriodSeconds=2))
    names = sim.pod_names()
    deleted = sim.cluster.delete_pod(NS, names[0], DeleteOptions())
    assert deleted["metadata"]["deletionGracePeriodSeconds"] == 2
    sim.after(0.5)
    terminating = sim.cluster.get_pod(NS, names[0])
    assert terminating["metadata"].get("deletionTimestamp") is not None
    assert conditions(terminating)["Ready"] == "False"
    sim.after(1.25)
    assert names[0] in sim.pod_names()  # still Terminating 1.75 s after the delete
    sim.after(0.25)
    assert names[0] not in sim.pod_names()  # gone when the 2 s grace period is over


def test_force_deleted_and_unbound_pods_go_at_once(start: Callable[..., KubeSim]) -> None:
    sim = start(scenario(terminationGracePeriodSeconds=2))
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        names = pod_names(core)
        # gracePeriodSeconds=0 (force) and an unbound pod both go at once.
        core.delete_namespaced_pod(names[1], NS, grace_period_seconds=0)
        assert names[1] not in pod_names(core)
        sim.set_pod(NS, names[2], nodeName=None)
        core.delete_namespaced_pod(names[2], NS)
        assert names[2] not in pod_names(core)


def test_deleted_pod_is_replaced_under_a_new_name_and_ready_after_startup() -> None:
    sim = local(scenario(startupSeconds=1.5))
    before = set(sim.pod_names())
    victim = sorted(before)[0]
    sim.cluster.delete_pod(NS, victim, DeleteOptions(grace=0))
    sim.after(0)  # the ReplicaSet controller's next pass
    (new,) = set(sim.pod_names()) - before
    assert new != victim
    pod = sim.cluster.get_pod(NS, new)
    assert pod["metadata"]["labels"]["pod-template-hash"] in new
    assert conditions(pod)["Ready"] == "False"
    sim.after(1.25)
    assert conditions(sim.cluster.get_pod(NS, new))["Ready"] == "False"
    sim.after(0.25)
    assert conditions(sim.cluster.get_pod(NS, new))["Ready"] == "True"  # startupSeconds later
    assert sim.cluster.get_deployment(NS, DEP)["status"]["readyReplicas"] == 4


def test_dry_run_changes_nothing(start: Callable[..., KubeSim]) -> None:
    sim = start(scenario(min_available=None))
    with kube(sim) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        names = pod_names(core)
        version = core.list_namespaced_pod(NS).metadata.resource_version

        preview = core.delete_namespaced_pod(names[0], NS, dry_run="All")
        assert preview.metadata.deletion_timestamp is not None
        body_dry = client.V1DeleteOptions(dry_run=["All"], grace_period_seconds=0)
        core.delete_namespaced_pod(names[1], NS, body=body_dry)
        _, code, _ = core.create_namespaced_pod_eviction_with_http_info(
            names[2], NS, eviction(names[2]), dry_run="All"
        )
        assert code == 201
        patched = apps.patch_namespaced_deployment(
            DEP, NS, {"spec": {"replicas": 9}}, dry_run="All"
        )
        assert patched.spec.replicas == 9

        assert pod_names(core) == names
        assert core.list_namespaced_pod(NS).metadata.resource_version == version
        assert all(
            p.metadata.deletion_timestamp is None for p in core.list_namespaced_pod(NS).items
        )
        assert apps.read_namespaced_deployment(DEP, NS).spec.replicas == 4


def test_query_options_are_ignored_when_a_delete_body_is_sent(
    start: Callable[..., KubeSim],
) -> None:
    """kube-apiserver reads DeleteOptions from the body when there is one, else from the query."""
    sim = start(scenario(min_available=None))
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        name = pod_names(core)[0]
        core.delete_namespaced_pod(name, NS, body=client.V1DeleteOptions(), dry_run="All")
        assert core.read_namespaced_pod(name, NS).metadata.deletion_timestamp is not None


# ---------------------------------------------------------------------- eviction


def test_eviction_blocked_by_the_pdb_is_429_with_the_budget_cause(
    start: Callable[..., KubeSim],
) -> None:
    sim = start(scenario(replicas=4, min_available=4))
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        name = pod_names(core)[0]
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod_eviction(name, NS, eviction(name))
    assert refused.value.status == 429
    assert "Retry-After" not in refused.value.headers
    assert status_of(refused.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests",
        "details": {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": (
                        f"The disruption budget {DEP} needs 4 healthy pods and has 4 currently"
                    ),
                }
            ]
        },
        "code": 429,
    }
    assert all(p["metadata"].get("deletionTimestamp") is None for p in sim.pods(NS, DEP))


def test_eviction_spends_the_budget_then_refuses(start: Callable[..., KubeSim]) -> None:
    sim = start(scenario(replicas=4, min_available=3, startupSeconds=30))
    with kube(sim) as api:
        core, policy = client.CoreV1Api(api), client.PolicyV1Api(api)
        names = pod_names(core)
        assert policy.read_namespaced_pod_disruption_budget(DEP, NS).status.disruptions_allowed == 1
        _, code, _ = core.create_namespaced_pod_eviction_with_http_info(
            names[0], NS, eviction(names[0])
        )
        assert code == 201
        assert core.read_namespaced_pod(names[0], NS).metadata.deletion_timestamp is not None
        conditions = {c.type: c for c in core.read_namespaced_pod(names[0], NS).status.conditions}
        assert conditions["DisruptionTarget"].reason == "EvictionByEvictionAPI"
        budget = policy.read_namespaced_pod_disruption_budget(DEP, NS).status
        assert (budget.current_healthy, budget.desired_healthy) == (3, 3)
        assert budget.disruptions_allowed == 0
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod_eviction(names[1], NS, eviction(names[1]))
        assert refused.value.status == 429
        # Evicting the pod that is already terminating succeeds again.
        _, again, _ = core.create_namespaced_pod_eviction_with_http_info(
            names[0], NS, eviction(names[0])
        )
        assert again == 201


def test_pending_pod_is_evictable_despite_the_pdb(start: Callable[..., KubeSim]) -> None:
    sim = start(scenario(replicas=4, min_available=4))
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        name = pod_names(core)[0]
        sim.set_pod(NS, name, phase="Pending")
        raw = core.create_namespaced_pod_eviction(name, NS, eviction(name), _preload_content=False)
        assert raw.status == 201
        assert json.loads(raw.data) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }
        assert core.read_namespaced_pod(name, NS).metadata.deletion_timestamp is not None


def test_eviction_of_a_missing_pod_is_not_found(shared: KubeSim) -> None:
    with kube(shared) as api, pytest.raises(ApiException) as missing:
        client.CoreV1Api(api).create_namespaced_pod_eviction("nope", NS, eviction("nope"))
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'pods "nope" not found'
    assert status_of(missing.value)["details"] == {"name": "nope", "kind": "pods"}


# ---------------------------------------------------------------------- leases


def lease(name: str, holder: str, at: datetime | None = None) -> client.V1Lease:
    at = at or datetime.now(UTC).replace(microsecond=123456)
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, annotations={"pod-rebalancer.io/last": "x"}),
        spec=client.V1LeaseSpec(
            holder_identity=holder, lease_duration_seconds=60, acquire_time=at, renew_time=at
        ),
    )


def test_concurrent_lease_creates_yield_exactly_one_winner(start: Callable[..., KubeSim]) -> None:
    sim = start()
    outcomes: list[Any] = []
    barrier = threading.Barrier(20)

    def contend(i: int) -> None:
        with kube(sim) as api:
            coordination = client.CoordinationV1Api(api)
            barrier.wait()
            try:
                coordination.create_namespaced_lease(NS, lease("rebalance-lock", f"run-{i}"))
                outcomes.append(201)
            except ApiException as exc:
                outcomes.append(status_of(exc))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes.count(201) == 1
    losers = [o for o in outcomes if o != 201]
    assert len(losers) == 19
    assert all(
        o["code"] == 409
        and o["reason"] == "AlreadyExists"
        and o["message"] == 'leases.coordination.k8s.io "rebalance-lock" already exists'
        and o["details"]
        == {"name": "rebalance-lock", "group": "coordination.k8s.io", "kind": "leases"}
        for o in losers
    )


def test_stale_lease_update_is_a_conflict(start: Callable[..., KubeSim]) -> None:
    sim = start()
    with kube(sim) as api:
        coordination = client.CoordinationV1Api(api)
        created = coordination.create_namespaced_lease(NS, lease("lock", "a"))
        assert created.metadata.annotations == {"pod-rebalancer.io/last": "x"}
        assert created.spec.acquire_time.microsecond == 123456
        stale_version = created.metadata.resource_version

        created.spec.holder_identity = "b"
        updated = coordination.replace_namespaced_lease("lock", NS, created)
        assert updated.spec.holder_identity == "b"
        assert updated.metadata.resource_version != stale_version

        created.metadata.resource_version = stale_version
        created.spec.holder_identity = "c"
        with pytest.raises(ApiException) as conflict:
            coordination.replace_namespaced_lease("lock", NS, created)
        assert conflict.value.status == 409
        assert status_of(conflict.value)["reason"] == "Conflict"
        assert status_of(conflict.value)["message"] == (
            'Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object has '
            "been modified; please apply your changes to the latest version and try again"
        )
        assert coordination.read_namespaced_lease("lock", NS).spec.holder_identity == "b"

        created.metadata.resource_version = None  # Leases allow no unconditional update
        with pytest.raises(ApiException) as unconditional:
            coordination.replace_namespaced_lease("lock", NS, created)
        assert unconditional.value.status == 422
        assert status_of(unconditional.value)["message"] == (
            'leases.coordination.k8s.io "lock" is invalid: metadata.resourceVersion: Invalid '
            "value: 0x0: must be specified for an update"
        )

        coordination.delete_namespaced_lease("lock", NS)
        with pytest.raises(ApiException) as gone:
            coordination.read_namespaced_lease("lock", NS)
        assert gone.value.status == 404


def test_lease_time_without_six_fractional_digits_is_rejected(
    start: Callable[..., KubeSim],
) -> None:
    """MicroTime needs exactly six digits; isoformat() drops them when the microsecond is 0."""
    sim = start()
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with kube(sim) as api, pytest.raises(ApiException) as bad:
        client.CoordinationV1Api(api).create_namespaced_lease(NS, lease("lock", "a", at))
    assert bad.value.status == 400
    assert status_of(bad.value)["message"] == (
        'Lease in version "v1" cannot be handled as a Lease: parsing time '
        '"2026-01-02T03:04:05+00:00" as "2006-01-02T15:04:05.000000Z07:00": cannot parse '
        '"+00:00" as ".000000"'
    )


# ---------------------------------------------------------------------- authentication, RBAC


def test_user_without_rights_gets_the_real_forbidden_status(start: Callable[..., KubeSim]) -> None:
    sim = start()
    with kube(sim, READER) as api:
        core = client.CoreV1Api(api)
        name = sim.pods(NS, DEP)[0]["metadata"]["name"]
        assert core.read_namespaced_pod(name, NS).metadata.name == name
        with pytest.raises(ApiException) as listing:
            core.list_namespaced_pod(NS)
        with pytest.raises(ApiException) as evicting:
            core.create_namespaced_pod_eviction(name, NS, eviction(name))
    assert listing.value.status == 403
    assert status_of(listing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods is forbidden: User "jane" cannot list resource "pods" in API group "" '
        'in the namespace "posthog"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    assert status_of(evicting.value)["message"] == (
        f'pods "{name}" is forbidden: User "jane" cannot create resource "pods/eviction" in API '
        'group "" in the namespace "posthog"'
    )
    assert status_of(evicting.value)["details"] == {"name": name, "kind": "pods"}


def test_unknown_token_is_unauthorized(shared: KubeSim) -> None:
    with kube(shared, "who-knows") as api, pytest.raises(ApiException) as denied:
        client.CoreV1Api(api).list_namespaced_pod(NS)
    assert denied.value.status == 401
    assert status_of(denied.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_unknown_paths_and_methods_answer_with_a_status(shared: KubeSim) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    missing = shared.control.get(f"/api/v1/namespaces/{NS}/configmaps", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["message"] == "the server could not find the requested resource"
    not_allowed = shared.control.delete(
        f"/apis/apps/v1/namespaces/{NS}/deployments/{DEP}", headers=headers
    )
    assert not_allowed.status_code == 405
    assert not_allowed.json()["reason"] == "MethodNotAllowed"
    garbage = shared.control.post(
        f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", headers=headers, content=b"{nope"
    )
    assert garbage.status_code == 400
    assert garbage.json()["reason"] == "BadRequest"


def test_tls_with_the_simulators_ca(start: Callable[..., KubeSim]) -> None:
    sim = start(tls=True)
    assert sim.url.startswith("https://127.0.0.1:")
    assert sim.ca_file is not None
    with kube(sim) as api:
        assert len(pod_names(client.CoreV1Api(api))) == 4
    config = client.Configuration(host=sim.url, api_key={"authorization": f"Bearer {TOKEN}"})
    config.retries = False
    with (
        client.ApiClient(config) as api,
        pytest.raises((ApiException, urllib3.exceptions.HTTPError)),
    ):
        client.CoreV1Api(api).list_namespaced_pod(NS)  # no CA: the certificate is not trusted


# ---------------------------------------------------------------------- faults and the request log


def test_faults_are_visible_through_the_client(start: Callable[..., KubeSim]) -> None:
    sim = start()
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        sim.set_fault("pods.list", status=500, times=1)
        with pytest.raises(ApiException) as broken:
            core.list_namespaced_pod(NS)
        assert broken.value.status == 500
        assert status_of(broken.value)["reason"] == "InternalError"
        assert len(core.list_namespaced_pod(NS).items) == 6  # only once

        sim.set_fault("pods.evict", status=503, times=1)
        name = pod_names(core)[0]
        with pytest.raises(ApiException) as unavailable:
            core.create_namespaced_pod_eviction(name, NS, eviction(name))
        assert unavailable.value.status == 503

        sim.set_fault("leases.*", latency=0.6, times=1)
        started = time.monotonic()
        client.CoordinationV1Api(api).list_namespaced_lease(NS)
        assert time.monotonic() - started >= 0.6

        sim.set_fault("pods.get", drop=True)
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            core.read_namespaced_pod(name, NS)
        sim.clear_faults()
        sim.set_fault("pods.get", drop=True, times=1)
        assert core.read_namespaced_pod(name, NS).metadata.name == name  # urllib3 retried

    log = sim.requests()
    evictions = [r for r in log if r["route"] == "pods.evict"]
    assert evictions[0]["status"] == 503
    assert evictions[0]["user"] == SA
    assert evictions[0]["method"] == "POST"
    assert evictions[0]["path"] == f"/api/v1/namespaces/{NS}/pods/{name}/eviction"


# ---------------------------------------------------------------------- deployments


def test_deployment_patch_conflict_and_generation(start: Callable[..., KubeSim]) -> None:
    sim = start(scenario(replicas=3, min_available=None, startupSeconds=0.4))
    with kube(sim) as api:
        apps = client.AppsV1Api(api)
        current = apps.read_namespaced_deployment(DEP, NS)
        assert current.metadata.generation == 1
        assert current.status.updated_replicas == 3
        assert current.status.unavailable_replicas is None
        (old_set,) = apps.list_namespaced_replica_set(NS, label_selector=f"app={DEP}").items
        assert old_set.spec.replicas == 3

        stale = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 5}}
        with pytest.raises(ApiException) as conflict:
            apps.patch_namespaced_deployment(DEP, NS, stale)
        assert conflict.value.status == 409
        assert status_of(conflict.value)["message"] == (
            f'Operation cannot be fulfilled on deployments.apps "{DEP}": the object has been '
            "modified; please apply your changes to the latest version and try again"
        )

        restart = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
        patched = apps.patch_namespaced_deployment(DEP, NS, restart)  # a strategic merge patch
        assert patched.metadata.generation == 2
        down = [{"op": "replace", "path": "/spec/replicas", "value": 2}]  # a JSON patch
        assert apps.patch_namespaced_deployment(DEP, NS, down).metadata.generation == 3


def test_template_change_rolls_out_one_surge_pod_at_a_time() -> None:
    sim = local(scenario(replicas=3, min_available=None, startupSeconds=0.4))
    (old_set,) = sim.cluster.list_replicasets(NS, f"app={DEP}")["items"]
    old_hash = old_set["metadata"]["labels"]["pod-template-hash"]
    restart = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
    patched = sim.cluster.patch_deployment(NS, DEP, STRATEGIC, restart, dry_run=False)
    assert patched["metadata"]["generation"] == 2

    def observed() -> tuple[int, int, int, int]:
        status = sim.cluster.get_deployment(NS, DEP)["status"]
        return (
            status.get("observedGeneration", 0),
            status.get("updatedReplicas", 0),
            status.get("replicas", 0),
            status.get("readyReplicas", 0),
        )

    assert observed()[0] == 1  # observedGeneration follows at the controllers' next pass
    seen = sim.play(8.0, step=0.1, observe=observed)
    assert seen[-1] == (2, 3, 3, 3)  # rolled out
    assert any(updated < 3 for gen, updated, _, _ in seen if gen == 2)  # the rollout was visible
    sets = sim.cluster.list_replicasets(NS, f"app={DEP}")["items"]
    replicas = {
        rs["metadata"]["labels"]["pod-template-hash"]: rs["spec"]["replicas"] for rs in sets
    }
    new_hash = next(h for h in replicas if h != old_hash)
    assert replicas == {old_hash: 0, new_hash: 3}
    hashes = {
        p["metadata"]["labels"]["pod-template-hash"]
        for p in sim.cluster.deployment_pods(NS, DEP)
        if "deletionTimestamp" not in p["metadata"]
    }
    assert hashes == {new_hash}


def test_changing_replicas_scales_the_replicaset() -> None:
    sim = local(scenario(min_available=None, startupSeconds=0.3))
    down = [{"op": "replace", "path": "/spec/replicas", "value": 2}]
    scaled = sim.cluster.patch_deployment(NS, DEP, JSON_PATCH, down, dry_run=False)
    assert scaled["metadata"]["generation"] == 2
    sim.after(0)  # two pods start terminating (grace 1 s)
    sim.after(1.0)
    assert len(sim.pod_names()) == 2
    sim.cluster.patch_deployment(NS, DEP, STRATEGIC, {"spec": {"replicas": 5}}, dry_run=False)
    sim.after(0)  # three new pods
    sim.after(0.3)  # Ready after startupSeconds
    status = sim.cluster.get_deployment(NS, DEP)["status"]
    assert (status["readyReplicas"], status["observedGeneration"]) == (5, 3)


def test_stuck_rollout_can_be_faked(start: Callable[..., KubeSim]) -> None:
    sim = start()
    sim.set_deployment(NS, DEP, status={"updatedReplicas": 2, "unavailableReplicas": 2})
    with kube(sim) as api:
        status = client.AppsV1Api(api).read_namespaced_deployment(DEP, NS).status
    assert (status.updated_replicas, status.unavailable_replicas, status.replicas) == (2, 2, 4)


# ---------------------------------------------------------------------- events


def test_events_are_stored_and_listed_in_both_apis(start: Callable[..., KubeSim]) -> None:
    sim = start()
    regarding = client.V1ObjectReference(kind="Deployment", name=DEP, namespace=NS)
    with kube(sim) as api:
        core = client.CoreV1Api(api)
        created = core.create_namespaced_event(
            NS,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name=f"{DEP}."),
                involved_object=regarding,
                reason="Rebalanced",
                message="evicted 2 pods",
                type="Normal",
            ),
        )
        assert created.metadata.name.startswith(f"{DEP}.")
        client.EventsV1Api(api).create_namespaced_event(
            NS,
            client.EventsV1Event(
                metadata=client.V1ObjectMeta(generate_name=f"{DEP}."),
                event_time=datetime.now(UTC).replace(microsecond=5),
                reporting_controller="pod-rebalancer",
                reporting_instance="run-1",
                action="Evict",
                reason="Rebalanced",
                type="Normal",
                note="second",
                regarding=regarding,
            ),
        )
        messages = sorted(e.message for e in core.list_namespaced_event(NS).items)
        assert messages == ["evicted 2 pods", "second"]
        selected = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={DEP}")
        assert len(selected.items) == 2


# ---------------------------------------------------------------------- load model


def test_cpu_series_per_pod_and_reassignment_after_deleting_the_busiest(
    victoria: VictoriaMetrics,
) -> None:
    namespace = "kubesim-load"
    spec = scenario(replicas=6, min_available=None, startupSeconds=0.3)
    deployment = spec["deployments"][0]
    deployment["namespace"] = namespace
    deployment["kafka"] = {"partitions": 24, "skew": 1.2, "assignor": "range", "seed": 7}
    spec["metrics"] = {"intervalSeconds": 0.3, "backfillMinutes": 10}
    # Simulated time starts just behind the wall clock: no sample lands in VictoriaMetrics' future.
    sim = local(spec, FakeClock(time.time() - 5))
    writer = VictoriaWriter(victoria.url, sim.cluster, clock=sim.clock, seed=spec["seed"])
    try:
        writer.backfill(sim.cluster.backfill_minutes)
        model = sim.cluster.cpu(namespace, DEP)
        assert len(model["members"]) == 6
        assert sum(len(p) for p in model["assignment"].values()) == 24
        promql = (
            f'sum by(pod)(rate(container_cpu_usage_seconds_total{{namespace="{namespace}",'
            f'container="{DEP}"}}[5m]))'
        )
        measured = {
            r["metric"]["pod"]: float(r["value"][1]) for r in victoria.query(promql, sim.clock())
        }
        assert set(measured) == set(model["members"])
        for pod, value in measured.items():
            assert value == pytest.approx(model["pods"][pod]["cpu"], rel=0.05)

        busiest = max(model["members"], key=lambda p: model["pods"][p]["cpu"])
        sim.cluster.delete_pod(namespace, busiest, DeleteOptions(grace=0))
        after = sim.cluster.cpu(namespace, DEP)
        assert after["generation"] > model["generation"]
        assert busiest not in after["members"]
        assert sum(len(p) for p in after["assignment"].values()) == 24

        sim.after(0)  # the ReplicaSet replaces the pod
        sim.after(0.3)  # Ready after startupSeconds: it joins the group
        settled = sim.cluster.cpu(namespace, DEP)
        assert len(settled["members"]) == 6
        newcomer = (set(settled["members"]) - set(model["members"])).pop()
        assert settled["assignment"][newcomer]

        writer.write_once()  # what the writer's thread does every intervalSeconds
        # A range selector: instant queries near "now" lag 30 s (VictoriaMetrics' latency offset).
        selector = f'container_cpu_usage_seconds_total{{namespace="{namespace}",pod="{newcomer}"}}'
        assert victoria.query(f"{selector}[1m]", sim.clock())
    finally:
        writer.stop()


SAMPLE = re.compile(
    r'^(\w+)\{namespace="([^"]*)",pod="([^"]*)",container="([^"]*)"\} (\S+)(?: (\d+))?$'
)


def scrape(http: Client) -> dict[str, tuple[float, int | None]]:
    """The simulator's /metrics/cadvisor, as Prometheus reads it: pod -> (value, timestamp ms)."""
    response = http.get("/metrics/cadvisor")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.get_data(as_text=True).splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        name, namespace, pod, container, value, stamp = match.groups()
        assert (name, namespace, container) == ("container_cpu_usage_seconds_total", NS, DEP)
        samples[pod] = (float(value), int(stamp) if stamp else None)
    return samples


def load_scenario(**metrics: float) -> dict[str, Any]:
    spec = scenario(replicas=4, min_available=None)
    spec["deployments"][0]["kafka"] = {"partitions": 12, "skew": 1.2, "seed": 7}
    spec["metrics"] = {"intervalSeconds": 0.3, "backfillMinutes": 2, **metrics}
    return spec


def test_cadvisor_endpoint_serves_the_counters_written_to_victoria_metrics(
    victoria: VictoriaMetrics,
) -> None:
    sim = local(load_scenario(), FakeClock(time.time() - 5))
    writer = VictoriaWriter(victoria.url, sim.cluster, clock=sim.clock, seed=sim.spec["seed"])
    try:
        writer.backfill(sim.cluster.backfill_minutes)
        sim.clock.advance(0.3)
        writer.write_once()  # a live sample after the history, as the writer's thread writes
        served = scrape(sim.http(writer))
        assert set(served) == set(sim.cluster.cpu(NS, DEP)["members"])  # not "web"'s pods
        now = sim.clock()
        written = {
            line["metric"]["pod"]: dict(zip(line["timestamps"], line["values"], strict=True))
            for line in victoria.export(f'{{namespace="{NS}",container="{DEP}"}}', now - 300, now)
        }
        for pod, (value, stamp) in served.items():
            assert stamp is not None
            assert written[pod][stamp] == pytest.approx(value, abs=1e-6)
    finally:
        writer.stop()


def test_cadvisor_counters_grow_with_the_model_between_scrapes() -> None:
    sim = local(load_scenario())
    http = sim.http()  # no VictoriaMetrics: each scrape advances the counters
    model = sim.cluster.cpu(NS, DEP)["pods"]
    first = scrape(http)
    sim.clock.advance(1.0)
    second = scrape(http)
    for pod, (value, stamp) in second.items():
        assert stamp is None  # Prometheus stamps each sample with its scrape time
        rate = (value - first[pod][0]) / 1.0
        assert rate == pytest.approx(model[pod]["cpu"], rel=0.25)


def test_same_named_deployments_in_two_namespaces_keep_their_own_status(
    start: Callable[..., KubeSim],
) -> None:
    spec = scenario(min_available=None)
    twin = {**spec["deployments"][0], "namespace": "other"}
    spec["deployments"].append(twin)
    spec["bindings"].append({"user": SA, "namespace": "other", "rules": ALL_RULES})
    sim = start(spec)
    with kube(sim) as api:
        apps = client.AppsV1Api(api)
        for namespace in (NS, "other"):
            status = apps.read_namespaced_deployment(DEP, namespace).status
            assert status.replicas == status.updated_replicas == 4
            assert not status.unavailable_replicas


# ---------------------------------------------------------------------- pods: paged lists


PAGED = f"app={DEP}"


def paged() -> Local:
    return local(scenario(replicas=7, min_available=None))


def test_later_pages_come_from_the_first_pages_selection() -> None:
    sim = paged()
    first = sim.cluster.list_pods(NS, label_selector=PAGED, limit=3)
    names = [p["metadata"]["name"] for p in first["items"]]
    token = first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 4
    # Between pages: one pod of the list goes, and its replacement arrives.
    gone = sim.cluster.list_pods(NS, label_selector=PAGED)["items"][-1]["metadata"]["name"]
    sim.cluster.delete_pod(NS, gone, DeleteOptions(grace=0))
    sim.after(1.0)
    while token:
        page = sim.cluster.list_pods(NS, label_selector=PAGED, limit=3, continue_token=token)
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        names += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
    # The list is the one of the first page's revision: seven pods, the deleted one included,
    # its replacement not, each once.
    assert len(names) == len(set(names)) == 7
    assert gone in names
    assert set(names) != set(sim.pod_names(PAGED))


def test_a_continue_token_expires_with_its_selection_as_a_compacted_revision_does() -> None:
    sim = paged()
    first = sim.cluster.list_pods(NS, label_selector=PAGED, limit=3)
    sim.after(299.0)
    again = sim.cluster.list_pods(
        NS, label_selector=PAGED, limit=3, continue_token=first["metadata"]["continue"]
    )
    sim.after(2.0)
    with pytest.raises(ApiError) as caught:
        sim.cluster.list_pods(
            NS, label_selector=PAGED, limit=3, continue_token=again["metadata"]["continue"]
        )
    assert (caught.value.code, caught.value.reason) == (410, "Expired")
    assert "too old to display a consistent list result" in caught.value.message


def test_a_token_of_another_list_is_refused_as_expired() -> None:
    sim = paged()
    first = sim.cluster.list_pods(NS, label_selector=PAGED, limit=3)
    with pytest.raises(ApiError) as caught:
        sim.cluster.list_pods(
            NS, label_selector="app=other", limit=3, continue_token=first["metadata"]["continue"]
        )
    assert caught.value.code == 410
