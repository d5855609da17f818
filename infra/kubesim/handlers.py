"""The handler behind each resource verb: it reads the request's body and options and calls the
cluster, as staging/src/k8s.io/apiserver/pkg/endpoints/handlers call the registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from infra.kubesim.auth import Attributes
from infra.kubesim.cluster import Cluster
from infra.kubesim.rest import DeleteOptions, delete_options, parse_dry_run
from infra.kubesim.status import EVENTS, ApiError, bad_request, generic, not_found

MAX_BODY = 3 * 1024 * 1024


def handle(
    cluster: Cluster, short: str, attrs: Attributes, request: Request, query: Mapping[str, str]
) -> tuple[int, Any]:
    """The status code and body for an authorized request to the route named `short`."""
    handler = HANDLERS.get((short, attrs.subresource, attrs.verb))
    if handler is None or (not attrs.namespace and attrs.verb != "list"):
        raise generic(405)
    options_kind = {"update": "UpdateOptions", "patch": "PatchOptions"}.get(
        attrs.verb, "CreateOptions"
    )
    dry_run = attrs.verb != "delete" and parse_dry_run(request.args.getlist("dryRun"), options_kind)
    call = Call(cluster, attrs.group, attrs.namespace, attrs.name, request, query, dry_run)
    return handler(call)


@dataclass(frozen=True)
class Call:
    cluster: Cluster
    group: str
    namespace: str
    name: str
    request: Request
    query: Mapping[str, str]
    dry_run: bool

    @property
    def labels(self) -> str | None:
        return self.query.get("labelSelector")

    @property
    def fields(self) -> str | None:
        return self.query.get("fieldSelector")

    @property
    def api(self) -> str:
        return "events" if self.group == EVENTS else "core"

    def delete_options(self) -> DeleteOptions:
        return delete_options(optional_body(self.request), self.request.args.to_dict(flat=False))


def _list_pods(c: Call) -> tuple[int, Any]:
    limit = int(c.query["limit"]) if c.query.get("limit", "").isdigit() else None
    items = c.cluster.list_pods(c.namespace, c.labels, c.fields, limit, c.query.get("continue"))
    return 200, items


def _list_deployments(c: Call) -> tuple[int, Any]:
    limit = int(c.query["limit"]) if c.query.get("limit", "").isdigit() else None
    return 200, c.cluster.list_deployments(c.namespace, c.labels, limit, c.query.get("continue"))


def _evict(c: Call) -> tuple[int, Any]:
    eviction = body(c.request)
    return 201, c.cluster.evict_pod(c.namespace, c.name, eviction, c.request.args.getlist("dryRun"))


def _patch_deployment(c: Call) -> tuple[int, Any]:
    content_type = c.request.headers.get("Content-Type", "")
    change = body(c.request)
    return 200, c.cluster.patch_deployment(c.namespace, c.name, content_type, change, c.dry_run)


def _update_lease(c: Call) -> tuple[int, Any]:
    obj, created = c.cluster.update_lease(c.namespace, c.name, body(c.request), c.dry_run)
    return (201 if created else 200), obj


def _get_event(c: Call) -> tuple[int, Any]:
    items = c.cluster.list_events(c.api, c.namespace, f"metadata.name={c.name}")["items"]
    if not items:
        raise not_found("events", c.group, c.name)
    version = "events.k8s.io/v1" if c.api == "events" else "v1"
    return 200, {"kind": "Event", "apiVersion": version, **items[0]}


Handler = Callable[[Call], tuple[int, Any]]
HANDLERS: dict[tuple[str, str, str], Handler] = {
    ("pods", "", "list"): _list_pods,
    ("pods", "", "get"): lambda c: (200, c.cluster.get_pod(c.namespace, c.name)),
    ("pods", "", "delete"): lambda c: (
        200,
        c.cluster.delete_pod(c.namespace, c.name, c.delete_options()),
    ),
    ("pods", "eviction", "create"): _evict,
    ("deployments", "", "get"): lambda c: (200, c.cluster.get_deployment(c.namespace, c.name)),
    ("deployments", "", "list"): _list_deployments,
    ("deployments", "", "patch"): _patch_deployment,
    ("replicasets", "", "get"): lambda c: (200, c.cluster.get_replicaset(c.namespace, c.name)),
    ("replicasets", "", "list"): lambda c: (200, c.cluster.list_replicasets(c.namespace, c.labels)),
    ("pdbs", "", "get"): lambda c: (200, c.cluster.get_pdb(c.namespace, c.name)),
    ("pdbs", "", "list"): lambda c: (200, c.cluster.list_pdbs(c.namespace, c.labels)),
    ("hpas", "", "get"): lambda c: (200, c.cluster.get_hpa(c.namespace, c.name)),
    ("hpas", "", "list"): lambda c: (200, c.cluster.list_hpas(c.namespace, c.labels)),
    ("leases", "", "list"): lambda c: (200, c.cluster.list_leases(c.namespace, c.labels)),
    ("leases", "", "get"): lambda c: (200, c.cluster.get_lease(c.namespace, c.name)),
    ("leases", "", "create"): lambda c: (
        201,
        c.cluster.create_lease(c.namespace, body(c.request), c.dry_run),
    ),
    ("leases", "", "update"): _update_lease,
    ("leases", "", "delete"): lambda c: (
        200,
        c.cluster.delete_lease(c.namespace, c.name, c.delete_options()),
    ),
    ("events", "", "create"): lambda c: (
        201,
        c.cluster.create_event(c.api, c.namespace, body(c.request), c.dry_run),
    ),
    ("events", "", "list"): lambda c: (200, c.cluster.list_events(c.api, c.namespace, c.fields)),
    ("events", "", "get"): _get_event,
}


# ---------------------------------------------------------------------- request bodies


def _raw_body(request: Request) -> bytes:
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError(
            413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728", {}
        )
    return request.get_data(cache=True)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc


def body(request: Request) -> Any:
    raw = _raw_body(request)
    if not raw.strip():
        raise bad_request("the body of the request was empty")
    return _decode(raw)


def optional_body(request: Request) -> Any:
    raw = _raw_body(request)
    return _decode(raw) if raw.strip() else None


def json_object(request: Request) -> dict[str, Any]:
    value = body(request)
    if not isinstance(value, dict):
        raise bad_request("expected a JSON object")
    return value


def arg(request: Request, name: str) -> str:
    value = request.args.get(name)
    if not value:
        raise bad_request(f"query parameter {name} is required")
    return value
