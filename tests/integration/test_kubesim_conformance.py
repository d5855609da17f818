"""Conformance table: the Kubernetes API simulator answers as kube-apiserver does.

Every row is one HTTP request sent with plain httpx (no Kubernetes client in between, so the
table shows the wire: method, path, query, JSON body, bearer token) and the status code and body
the real kube-apiserver returns for it. Expected texts are taken from the Kubernetes source, cited
beside each row (paths are in github.com/kubernetes/kubernetes). Error bodies are compared
exactly: a real Status is Go's metav1.Status marshalled with `omitempty`, so empty fields
(details.group for the core group, details.name for a list, details.retryAfterSeconds of 0) are
absent, never null, "" or 0.

Rows that need live names ({pod}, {pod_uid}, ...) are filled from the state the module fixture sets
up; rows that need a before/after comparison are tests after the table. No test depends on another
or on their order: none changes what another reads (the one that evicts a pod has a namespace of
its own, "spare").
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import wait_until
from tests.kube import ALL_RULES

pytestmark = pytest.mark.integration

ADMIN = "conformance-admin-token"
LIMITED = "conformance-limited-token"
NOBODY = "conformance-nobody-token"
UNKNOWN = "no-such-token"
WRONG_UID = "00000000-0000-0000-0000-000000000000"


def _deployment(namespace: str, replicas: int) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": "web",
        "replicas": replicas,
        "labels": {"app": "web"},
        "annotations": {},
        "container": "web",
        "startupSeconds": 0.5,
        "terminationGracePeriodSeconds": 1,
        "podAgeSeconds": 3600,
    }


# "conf": no PDB, so evictions there only meet RBAC and preconditions.
# "guarded": 4 replicas under minAvailable 4, so the PDB allows no disruption while all are Ready.
# "spare": the same as "guarded", for the one test that evicts a pod.
SCENARIO: dict[str, Any] = {
    "users": {
        ADMIN: {"name": "rebalancer", "groups": []},
        LIMITED: {"name": "limited", "groups": []},
        NOBODY: {"name": "nobody", "groups": []},
    },
    "bindings": [
        {"user": "rebalancer", "namespace": "*", "rules": ALL_RULES},
        {
            "user": "limited",
            "namespace": "conf",
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    ],
    "deployments": [_deployment("conf", 3), _deployment("guarded", 4), _deployment("spare", 4)],
    "pdbs": [
        {"namespace": ns, "name": "web", "selector": {"app": "web"}, "minAvailable": 4}
        for ns in ("guarded", "spare")
    ],
    "hpas": [{"namespace": "conf", "name": "web", "cpuUtilization": 70}],
}

PDB_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
PDB_CAUSE = "The disruption budget web needs 4 healthy pods and has 4 currently"
GUARDED_EVICTION = "/api/v1/namespaces/guarded/pods/{guarded_pod}/eviction"
OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
LEASES = "/apis/coordination.k8s.io/v1/namespaces/conf/leases"
DEPLOYMENT = "/apis/apps/v1/namespaces/conf/deployments/web"
UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}
EVICTED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def failure(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A metav1.Status as the server writes it (errors.go, ErrorToAPIStatus); empties omitted."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    kept = {key: value for key, value in details.items() if value}
    if kept:
        status["details"] = kept
    status["code"] = code
    return status


def forbidden(
    user: str, verb: str, resource: str, namespace: str, name: str = ""
) -> dict[str, Any]:
    """responsewriters.Forbidden: NewForbidden(gr, name, forbiddenMessage) for a namespaced request.

    The RBAC authorizer gives no reason when no rule matches
    (plugin/pkg/auth/authorizer/rbac/rbac.go), so nothing follows the message. Details carry the
    resource without the subresource.
    """
    plural, _, _ = resource.partition("/")
    group = {
        "leases": "coordination.k8s.io",
        "deployments": "apps",
        "horizontalpodautoscalers": "autoscaling",
    }.get(plural, "")
    qualified = f"{plural}.{group}" if group else plural
    subject = f'{qualified} "{name}"' if name else qualified
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" in the namespace "{namespace}"'
    )
    return failure(403, "Forbidden", message, name=name, group=group, kind=plural)


def eviction(name: str, namespace: str, **delete_options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


def lease(resource_version: str | None, holder: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "held", "namespace": "conf"}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30},
    }


@dataclass(frozen=True)
class Row:
    """One request and the real server's answer. Strings may use placeholders: {pod}, ..."""

    id: str
    method: str
    path: str
    status: int
    body: Mapping[str, Any] | None = None  # the whole response body, compared exactly
    subset: Mapping[str, Any] | None = None  # for success rows: these keys, recursively
    present: tuple[str, ...] = ()  # dotted paths that must exist in the response body
    token: str | None = ADMIN
    query: Mapping[str, str] | None = None
    json: Any = None
    content_type: str | None = None
    absent_headers: tuple[str, ...] = ()


# fmt: off
ROWS: list[Row] = [
    # --- NotFound: NewNotFound in staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go,
    #     reached through storeerr.InterpretGetError/InterpretDeleteError
    #     (staging/src/k8s.io/apiserver/pkg/storage/errors/storage.go); message "%s %q not found"
    #     with the GroupResource string ("pods", "leases.coordination.k8s.io");
    #     details.kind is the resource.
    Row("get-missing-pod", "GET", "/api/v1/namespaces/conf/pods/nope", 404,
        failure(404, "NotFound", 'pods "nope" not found', name="nope", kind="pods")),
    Row("get-missing-lease", "GET", f"{LEASES}/nope", 404,
        failure(404, "NotFound", 'leases.coordination.k8s.io "nope" not found',
                name="nope", group="coordination.k8s.io", kind="leases")),
    Row("get-missing-deployment", "GET", "/apis/apps/v1/namespaces/conf/deployments/nope", 404,
        failure(404, "NotFound", 'deployments.apps "nope" not found',
                name="nope", group="apps", kind="deployments")),
    Row("get-missing-replicaset", "GET", "/apis/apps/v1/namespaces/conf/replicasets/nope", 404,
        failure(404, "NotFound", 'replicasets.apps "nope" not found',
                name="nope", group="apps", kind="replicasets")),
    Row("get-missing-pdb", "GET", "/apis/policy/v1/namespaces/conf/poddisruptionbudgets/nope", 404,
        failure(404, "NotFound", 'poddisruptionbudgets.policy "nope" not found',
                name="nope", group="policy", kind="poddisruptionbudgets")),
    Row("get-missing-hpa", "GET",
        "/apis/autoscaling/v2/namespaces/conf/horizontalpodautoscalers/nope", 404,
        failure(404, "NotFound", 'horizontalpodautoscalers.autoscaling "nope" not found',
                name="nope", group="autoscaling", kind="horizontalpodautoscalers")),
    # pkg/apis/autoscaling/v2 (types.go): scaleTargetRef, and the Resource metric's target.
    Row("get-hpa", "GET", "/apis/autoscaling/v2/namespaces/conf/horizontalpodautoscalers/web", 200,
        subset={"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
                "metadata": {"name": "web", "namespace": "conf"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": "web"},
                         "metrics": [{"type": "Resource", "resource": {
                             "name": "cpu",
                             "target": {"type": "Utilization", "averageUtilization": 70}}}]}},
        present=("metadata.uid", "metadata.resourceVersion", "metadata.creationTimestamp",
                 "spec.maxReplicas", "status.currentReplicas")),
    # registry/generic/registry/store.go Delete: Storage.Get -> InterpretDeleteError -> NewNotFound
    Row("delete-missing-pod", "DELETE", "/api/v1/namespaces/conf/pods/nope", 404,
        failure(404, "NotFound", 'pods "nope" not found', name="nope", kind="pods")),
    # pkg/registry/core/pod/storage/eviction.go Create: r.store.Get(pod) -> the pods NotFound
    Row("evict-missing-pod", "POST", "/api/v1/namespaces/conf/pods/nope/eviction", 404,
        failure(404, "NotFound", 'pods "nope" not found', name="nope", kind="pods"),
        json=eviction("nope", "conf")),

    # --- Leases (coordination.k8s.io/v1)
    # errors.go NewAlreadyExists: "%s %q already exists" (store.go create -> InterpretCreateError)
    Row("create-existing-lease", "POST", LEASES, 409,
        failure(409, "AlreadyExists", 'leases.coordination.k8s.io "held" already exists',
                name="held", group="coordination.k8s.io", kind="leases"),
        json=lease(None, "intruder")),
    # staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go Update:
    # NewConflict(qualifiedResource, name, OptimisticLockErrorMsg); errors.go NewConflict's
    # "Operation cannot be fulfilled on %s %q: %v"
    Row("update-lease-stale-rv", "PUT", f"{LEASES}/held", 409,
        failure(409, "Conflict",
                f'Operation cannot be fulfilled on leases.coordination.k8s.io "held": '
                f"{OPTIMISTIC_LOCK}",
                name="held", group="coordination.k8s.io", kind="leases"),
        json=lease("{stale_lease_rv}", "intruder")),
    # pkg/registry/coordination/lease/strategy.go AllowUnconditionalUpdate() == false, so store.go
    # Update answers NewInvalid(GroupKind{coordination.k8s.io, "leases"}) with field.Invalid on
    # metadata.resourceVersion (uint64 0 printed "%#v" -> 0x0, util/validation/field/errors.go)
    Row("update-lease-without-rv", "PUT", f"{LEASES}/held", 422,
        failure(422, "Invalid",
                'leases.coordination.k8s.io "held" is invalid: metadata.resourceVersion: '
                "Invalid value: 0x0: must be specified for an update",
                name="held", group="coordination.k8s.io", kind="leases",
                causes=[{"reason": "FieldValueInvalid",
                         "message": "Invalid value: 0x0: must be specified for an update",
                         "field": "metadata.resourceVersion"}]),
        json=lease(None, "intruder")),

    # --- Pod preconditions. staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go BeforeDelete
    #     checks the preconditions first ("to fail early") and answers
    #     NewConflict(GroupResource{gvk.Group, gvk.Kind}, ...): the resource is the KIND "Pod", so
    #     the message says `on Pod "x"` and details.kind is "Pod". The storage-level text
    #     "Precondition failed: UID in precondition: %v, UID in object meta: %v"
    #     (staging/src/k8s.io/apiserver/pkg/storage/interfaces.go Preconditions.Check) is only
    #     reached when the object changes between that check and the write.
    Row("delete-pod-wrong-uid", "DELETE", "/api/v1/namespaces/conf/pods/{pod}", 409,
        failure(409, "Conflict",
                'Operation cannot be fulfilled on Pod "{pod}": the UID in the precondition '
                f"({WRONG_UID}) does not match the UID in record ({{pod_uid}}). "
                "The object might have been deleted and then recreated",
                name="{pod}", kind="Pod"),
        json={"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": WRONG_UID}}),
    # pkg/registry/core/pod/storage/eviction.go: a Running pod with no PDB goes to
    # r.store.Delete(..., deleteOptions) -> the same BeforeDelete conflict (not retried: the
    # conflict retry loop only wraps the Pending/terminal-pod branch)
    Row("evict-pod-wrong-uid", "POST", "/api/v1/namespaces/conf/pods/{pod}/eviction", 409,
        failure(409, "Conflict",
                'Operation cannot be fulfilled on Pod "{pod}": the UID in the precondition '
                f"({WRONG_UID}) does not match the UID in record ({{pod_uid}}). "
                "The object might have been deleted and then recreated",
                name="{pod}", kind="Pod"),
        json=eviction("{pod}", "conf", preconditions={"uid": WRONG_UID})),
    # eviction.go Create: NewBadRequest("name in URL does not match name in Eviction object"),
    # checked before the pod is read (errors.go NewBadRequest: no details)
    Row("evict-name-mismatch", "POST", "/api/v1/namespaces/conf/pods/nope/eviction", 400,
        failure(400, "BadRequest", "name in URL does not match name in Eviction object"),
        json=eviction("other", "conf")),

    # --- PodDisruptionBudget. eviction.go checkAndDecrement, DisruptionsAllowed == 0:
    #     NewTooManyRequests(PDB_MESSAGE, 0) + cause {Type: policyv1.DisruptionBudgetCause
    #     ("DisruptionBudget", staging/src/k8s.io/api/policy/v1/types.go), Message:
    #     "The disruption budget %s needs %d healthy pods and has %d currently"}.
    #     retryAfterSeconds 0 is omitted, and ErrorNegotiated
    #     (endpoints/handlers/responsewriters/writers.go) sets Retry-After only when it is > 0.
    #     The check runs before the dry-run short cut, so dryRun=All is refused alike.
    Row("evict-guarded-running-ready", "POST", GUARDED_EVICTION, 429,
        failure(429, "TooManyRequests", PDB_MESSAGE,
                causes=[{"reason": "DisruptionBudget", "message": PDB_CAUSE}]),
        json=eviction("{guarded_pod}", "guarded"), absent_headers=("retry-after",)),
    Row("evict-guarded-dry-run", "POST", GUARDED_EVICTION, 429,
        failure(429, "TooManyRequests", PDB_MESSAGE,
                causes=[{"reason": "DisruptionBudget", "message": PDB_CAUSE}]),
        query={"dryRun": "All"}, json=eviction("{guarded_pod}", "guarded"),
        absent_headers=("retry-after",)),

    # --- Deployments: a patch carrying a stale metadata.resourceVersion reaches store.go Update
    #     with newResourceVersion != existing -> NewConflict(OptimisticLockErrorMsg)
    Row("patch-deployment-stale-rv-merge", "PATCH", DEPLOYMENT, 409,
        failure(409, "Conflict",
                f'Operation cannot be fulfilled on deployments.apps "web": {OPTIMISTIC_LOCK}',
                name="web", group="apps", kind="deployments"),
        json={"metadata": {"resourceVersion": "{stale_deploy_rv}",
                           "annotations": {"conformance/stale": "1"}}},
        content_type="application/merge-patch+json"),
    Row("patch-deployment-stale-rv-strategic", "PATCH", DEPLOYMENT, 409,
        failure(409, "Conflict",
                f'Operation cannot be fulfilled on deployments.apps "web": {OPTIMISTIC_LOCK}',
                name="web", group="apps", kind="deployments"),
        json={"metadata": {"resourceVersion": "{stale_deploy_rv}",
                           "annotations": {"conformance/stale": "1"}}},
        content_type="application/strategic-merge-patch+json"),

    # --- Lists: PodList, apiVersion v1, metadata.resourceVersion; an empty result is "items": []
    #     (GetList never leaves Items nil: staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go)
    Row("list-pods", "GET", "/api/v1/namespaces/conf/pods", 200,
        subset={"kind": "PodList", "apiVersion": "v1"}, present=("metadata.resourceVersion",)),
    Row("list-pods-no-match", "GET", "/api/v1/namespaces/conf/pods", 200,
        subset={"kind": "PodList", "apiVersion": "v1", "items": []},
        present=("metadata.resourceVersion",), query={"labelSelector": "app=nomatch"}),

    # --- Authentication. staging/src/k8s.io/apiserver/pkg/endpoints/filters/authentication.go:
    #     ErrorNegotiated(NewUnauthorized("Unauthorized")) -> no details
    Row("unknown-token-get", "GET", "/api/v1/namespaces/conf/pods/nope", 401, UNAUTHORIZED,
        token=UNKNOWN),
    Row("unknown-token-evict", "POST", "/api/v1/namespaces/conf/pods/nope/eviction", 401,
        UNAUTHORIZED, token=UNKNOWN, json=eviction("nope", "conf")),
    # No Authorization header: with the default --anonymous-auth=true the request is made by
    # "system:anonymous" (anonymous.go in
    # staging/src/k8s.io/apiserver/pkg/authentication/request/anonymous/), and RBAC forbids it:
    # it is not a 401.
    Row("no-token-is-anonymous", "GET", "/api/v1/namespaces/conf/pods/nope", 403,
        forbidden("system:anonymous", "get", "pods", "conf", "nope"), token=None),

    # --- Authorization. Forbidden in
    #     staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go:
    #     Forbidden + forbiddenMessage: "User %q cannot %s resource %q in API group %q in the
    #     namespace %q" (resource/subresource joined), wrapped by errors.go NewForbidden
    #     ("%s %q is forbidden: %v", or "%s is forbidden: %v" without a name). Authorization runs
    #     before the object is read, so a missing name is still 403.
    Row("forbidden-get-pod", "GET", "/api/v1/namespaces/conf/pods/nope", 403,
        forbidden("nobody", "get", "pods", "conf", "nope"), token=NOBODY),
    Row("forbidden-list-pods", "GET", "/api/v1/namespaces/conf/pods", 403,
        forbidden("nobody", "list", "pods", "conf"), token=NOBODY),
    Row("forbidden-get-hpa", "GET",
        "/apis/autoscaling/v2/namespaces/conf/horizontalpodautoscalers/web", 403,
        forbidden("nobody", "get", "horizontalpodautoscalers", "conf", "web"), token=NOBODY),
    Row("forbidden-get-lease", "GET", f"{LEASES}/held", 403,
        forbidden("nobody", "get", "leases", "conf", "held"), token=NOBODY),
    Row("forbidden-evict-subresource", "POST", "/api/v1/namespaces/conf/pods/{pod}/eviction", 403,
        forbidden("limited", "create", "pods/eviction", "conf", "{pod}"), token=LIMITED,
        json=eviction("{pod}", "conf")),
    Row("forbidden-delete-pod", "DELETE", "/api/v1/namespaces/conf/pods/{pod}", 403,
        forbidden("limited", "delete", "pods", "conf", "{pod}"), token=LIMITED),
    Row("forbidden-get-pod-other-namespace", "GET", "/api/v1/namespaces/guarded/pods/{guarded_pod}",
        403, forbidden("limited", "get", "pods", "guarded", "{guarded_pod}"), token=LIMITED),
    Row("forbidden-patch-deployment", "PATCH", DEPLOYMENT, 403,
        forbidden("limited", "patch", "deployments", "conf", "web"), token=LIMITED,
        json={"metadata": {"annotations": {"conformance/forbidden": "1"}}},
        content_type="application/merge-patch+json"),
    # forbiddenMessage, cluster-scope form: "... in API group %q at the cluster scope"
    Row("forbidden-list-pods-all-namespaces", "GET", "/api/v1/pods", 403,
        failure(403, "Forbidden",
                'pods is forbidden: User "limited" cannot list resource "pods" in API group "" '
                "at the cluster scope",
                kind="pods"),
        token=LIMITED),
    # the same user, inside its grant: allowed, and a missing name is then a plain 404
    Row("limited-get-pod-allowed", "GET", "/api/v1/namespaces/conf/pods/{pod}", 200,
        subset={"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "{pod}"}}, token=LIMITED),
    Row("limited-get-missing-pod", "GET", "/api/v1/namespaces/conf/pods/nope", 404,
        failure(404, "NotFound", 'pods "nope" not found', name="nope", kind="pods"), token=LIMITED),
]
# fmt: on

TLS_ROWS = ("get-missing-pod", "unknown-token-get", "forbidden-get-pod", "list-pods")


@dataclass
class World:
    sim: KubeSim
    client: httpx.Client
    names: dict[str, str]


def fill(value: Any, names: Mapping[str, str]) -> Any:
    """Replace {placeholders} in every string of a (nested) row value."""
    if isinstance(value, str):
        return value.format_map(names)
    if isinstance(value, Mapping):
        return {key: fill(item, names) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [fill(item, names) for item in value]
    return value


def project(actual: Any, expected: Any) -> Any:
    """The part of `actual` that `expected` describes, so a failed comparison shows only that."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return {key: project(actual.get(key, "<absent>"), item) for key, item in expected.items()}
    return actual


def dig(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(body, Mapping) or part not in body:
            return "<absent>"
        body = body[part]
    return body


def headers(token: str | None, content_type: str | None = None) -> dict[str, str]:
    result = {"Accept": "application/json"}
    if token is not None:
        result["Authorization"] = f"Bearer {token}"
    if content_type is not None:
        result["Content-Type"] = content_type
    return result


def send(world: World, row: Row) -> httpx.Response:
    names = world.names
    content_type = row.content_type or ("application/json" if row.json is not None else None)
    return world.client.request(
        row.method,
        fill(row.path, names),
        params=fill(row.query, names) if row.query else None,
        json=fill(row.json, names) if row.json is not None else None,
        headers=headers(row.token, content_type),
    )


def check(world: World, row: Row) -> None:
    response = send(world, row)
    try:
        body = response.json()
    except ValueError:
        body = f"<not JSON: {response.text[:300]!r}>"
    got: dict[str, Any] = {"code": response.status_code}
    want: dict[str, Any] = {"code": row.status}
    if row.body is not None:
        got["body"], want["body"] = body, fill(row.body, world.names)
    if row.subset is not None:
        expected = fill(row.subset, world.names)
        got["subset"], want["subset"] = project(body, expected), expected
    for dotted in row.present:
        got[dotted] = "<absent>" if dig(body, dotted) == "<absent>" else "<present>"
        want[dotted] = "<present>"
    got["content-type"] = response.headers.get("content-type", "").split(";")[0]
    want["content-type"] = "application/json"
    for name in row.absent_headers:
        got[f"header {name}"] = response.headers.get(name, "<absent>")
        want[f"header {name}"] = "<absent>"
    assert got == want, f"{row.method} {fill(row.path, world.names)}"


# --- the simulator, set up once per module -------------------------------------------------------


def ready_pods(client: httpx.Client, namespace: str, count: int) -> list[dict[str, Any]]:
    """The namespace's `count` pods, once all are Running and Ready, sorted by name."""

    def listed() -> list[dict[str, Any]] | None:
        response = client.get(
            f"/api/v1/namespaces/{namespace}/pods",
            params={"labelSelector": "app=web"},
            headers=headers(ADMIN),
        )
        if response.status_code != 200:
            return None
        pods = [pod for pod in response.json()["items"] if is_running_ready(pod)]
        return sorted(pods, key=lambda pod: pod["metadata"]["name"]) if len(pods) == count else None

    return wait_until(listed, 30, f"{count} pods Running and Ready in {namespace}")


def is_running_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status", {})
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return status.get("phase") == "Running" and ready and "deletionTimestamp" not in pod["metadata"]


def budget_counts_all_healthy(client: httpx.Client, namespace: str) -> None:
    """The disruption controller has counted the 4 pods (the rows and tests judge the rest)."""

    def counted() -> bool:
        response = client.get(
            f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web",
            headers=headers(ADMIN),
        )
        return (
            response.status_code == 200
            and response.json().get("status", {}).get("currentHealthy") == 4
        )

    wait_until(counted, 10, f"the PDB in {namespace} counting 4 healthy pods")


def prepare(client: httpx.Client) -> dict[str, str]:
    """Live names for the rows, plus a stale resourceVersion for a Lease and for a Deployment."""
    conf = ready_pods(client, "conf", 3)
    guarded = ready_pods(client, "guarded", 4)
    spare = ready_pods(client, "spare", 4)
    for namespace in ("guarded", "spare"):
        budget_counts_all_healthy(client, namespace)

    created = client.post(LEASES, json=lease(None, "conformance"), headers=headers(ADMIN))
    assert created.status_code == 201, created.text
    first_rv = created.json()["metadata"]["resourceVersion"]
    renewed = client.put(
        f"{LEASES}/held", json=lease(first_rv, "conformance-renewed"), headers=headers(ADMIN)
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["metadata"]["resourceVersion"] != first_rv

    before = client.get(DEPLOYMENT, headers=headers(ADMIN))
    assert before.status_code == 200, before.text
    touched = client.patch(
        DEPLOYMENT,
        json={"metadata": {"annotations": {"conformance/touched": "1"}}},
        headers=headers(ADMIN, "application/merge-patch+json"),
    )
    assert touched.status_code == 200, touched.text
    stale_deploy_rv = before.json()["metadata"]["resourceVersion"]
    assert touched.json()["metadata"]["resourceVersion"] != stale_deploy_rv

    return {
        "pod": conf[0]["metadata"]["name"],
        "pod_uid": conf[0]["metadata"]["uid"],
        "guarded_pod": guarded[0]["metadata"]["name"],
        "pending_pod": spare[0]["metadata"]["name"],
        "stale_lease_rv": first_rv,
        "stale_deploy_rv": stale_deploy_rv,
    }


def start_world(workdir: Path, *, tls: bool) -> Iterator[World]:
    sim = KubeSim(workdir, SCENARIO, tls=tls)
    try:
        verify: ssl.SSLContext | bool = True
        if tls:
            assert sim.url.startswith("https://"), sim.url
            verify = ssl.create_default_context(cafile=str(sim.ca_file))
        with httpx.Client(base_url=sim.url, verify=verify, timeout=15) as client:
            yield World(sim, client, prepare(client))
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from start_world(tmp_path_factory.mktemp("kubesim-conformance"), tls=False)


@pytest.fixture(scope="module")
def tls_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from start_world(tmp_path_factory.mktemp("kubesim-conformance-tls"), tls=True)


# --- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_row(world: World, row: Row) -> None:
    check(world, row)


@pytest.mark.parametrize(
    "row", [row for row in ROWS if row.id in TLS_ROWS], ids=lambda row: f"tls-{row.id}"
)
def test_row_over_tls(tls_world: World, row: Row) -> None:
    check(tls_world, row)


def test_row_ids_are_unique() -> None:
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids))
    assert set(TLS_ROWS) <= set(ids)


# --- ordered rows: they need a before/after look, or they change state ----------------------------


def get_pod(world: World, namespace: str, name: str) -> httpx.Response:
    return world.client.get(f"/api/v1/namespaces/{namespace}/pods/{name}", headers=headers(ADMIN))


def test_pdb_status_counts_the_healthy_pods(world: World) -> None:
    # The disruption controller's status, read by eviction.go checkAndDecrement
    # (fields: staging/src/k8s.io/api/policy/v1/types.go PodDisruptionBudgetStatus).
    response = world.client.get(
        "/apis/policy/v1/namespaces/guarded/poddisruptionbudgets/web", headers=headers(ADMIN)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["apiVersion"]) == ("PodDisruptionBudget", "policy/v1")
    wanted = {"disruptionsAllowed": 0, "currentHealthy": 4, "desiredHealthy": 4, "expectedPods": 4}
    assert {key: body["status"].get(key) for key in wanted} == wanted


def test_dry_run_delete_answers_like_a_delete_and_keeps_the_pod(world: World) -> None:
    # store.go Delete with dryRun: the graceful-deletion update is computed, not persisted, and the
    # would-be object (deletionTimestamp set) is returned with 200 (handlers/delete.go).
    name = world.names["pod"]
    before = get_pod(world, "conf", name).json()
    response = world.client.request(
        "DELETE",
        f"/api/v1/namespaces/conf/pods/{name}",
        params={"dryRun": "All"},
        headers=headers(ADMIN),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["metadata"]["name"]) == ("Pod", name)
    assert "deletionTimestamp" in body["metadata"]
    after = get_pod(world, "conf", name)
    assert after.status_code == 200, after.text
    meta = after.json()["metadata"]
    assert meta["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert meta["uid"] == before["metadata"]["uid"]
    assert "deletionTimestamp" not in meta


def test_dry_run_eviction_succeeds_and_keeps_the_pod(world: World) -> None:
    # eviction.go: no PDB in "conf" -> r.store.Delete(dry run) -> &metav1.Status{Status: Success};
    # handlers/create.go sets Code 201 on a Status without one.
    name = world.names["pod"]
    before = get_pod(world, "conf", name).json()
    response = world.client.post(
        f"/api/v1/namespaces/conf/pods/{name}/eviction",
        params={"dryRun": "All"},
        json=eviction(name, "conf"),
        headers=headers(ADMIN, "application/json"),
    )
    assert (response.status_code, response.json()) == (201, EVICTED)
    after = get_pod(world, "conf", name)
    assert after.status_code == 200, after.text
    meta = after.json()["metadata"]
    assert meta["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "deletionTimestamp" not in meta


def test_delete_with_stale_resource_version_precondition(world: World) -> None:
    # rest/delete.go BeforeDelete, ResourceVersion branch: conflict on the kind "Pod".
    name = world.names["pod"]
    current = get_pod(world, "conf", name).json()["metadata"]["resourceVersion"]
    stale = "1" if current != "1" else "2"
    response = world.client.request(
        "DELETE",
        f"/api/v1/namespaces/conf/pods/{name}",
        json={
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": stale},
        },
        headers=headers(ADMIN, "application/json"),
    )
    expected = failure(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on Pod "{name}": the ResourceVersion in the precondition '
        f"({stale}) does not match the ResourceVersion in record ({current}). "
        "The object might have been modified",
        name=name,
        kind="Pod",
    )
    assert (response.status_code, response.json()) == (409, expected)
    assert get_pod(world, "conf", name).status_code == 200


def test_put_creates_a_missing_lease(world: World) -> None:
    # pkg/registry/coordination/lease/strategy.go AllowCreateOnUpdate() == true: a PUT to a missing
    # Lease creates it, 201 (handlers/update.go: wasCreated -> http.StatusCreated).
    body = lease(None, "conformance")
    body["metadata"]["name"] = "put-created"
    response = world.client.put(f"{LEASES}/put-created", json=body, headers=headers(ADMIN))
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["name"] == "put-created"
    assert world.client.get(f"{LEASES}/put-created", headers=headers(ADMIN)).status_code == 200
    removed = world.client.delete(f"{LEASES}/put-created", headers=headers(ADMIN))
    assert removed.status_code == 200, removed.text  # the module's world is as it was


def test_label_and_field_selectors(world: World) -> None:
    by_label = world.client.get(
        "/api/v1/namespaces/conf/pods", params={"labelSelector": "app=web"}, headers=headers(ADMIN)
    )
    assert by_label.status_code == 200, by_label.text
    assert len(by_label.json()["items"]) == 3
    name = world.names["pod"]
    by_name = world.client.get(
        "/api/v1/namespaces/conf/pods",
        params={"fieldSelector": f"metadata.name={name}"},
        headers=headers(ADMIN),
    )
    assert by_name.status_code == 200, by_name.text
    assert [pod["metadata"]["name"] for pod in by_name.json()["items"]] == [name]


def test_pending_pod_is_evicted_despite_the_pdb(world: World) -> None:
    # eviction.go canIgnorePDB: a Pending pod is deleted without consulting the PDB -> 201 Success.
    # In "spare", whose PDB allows no disruption either: no other test reads that namespace.
    name = world.names["pending_pod"]
    marked = world.sim.control.post(f"/_sim/pods/spare/{name}", json={"phase": "Pending"})
    assert marked.status_code < 300, marked.text
    assert get_pod(world, "spare", name).json()["status"]["phase"] == "Pending"
    response = world.client.post(
        f"/api/v1/namespaces/spare/pods/{name}/eviction",
        json=eviction(name, "spare"),
        headers=headers(ADMIN, "application/json"),
    )
    assert (response.status_code, response.json()) == (201, EVICTED)
    after = get_pod(world, "spare", name)
    # bound pods stay Terminating through their grace period; unbound ones vanish at once
    assert after.status_code == 404 or "deletionTimestamp" in after.json()["metadata"]
