"""The simulator's HTTP face: kube-apiserver's paths, authentication, RBAC, faults, control API.

A plain WSGI app (werkzeug), so the real `kubernetes` client talks to it over HTTP(S). Request
handling order follows kube-apiserver: authentication, authorization, then the handler; faults
are injected before any of that, as a sick network or server would be.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.kubesim.auth import Attributes, Authorizer, User
from infra.kubesim.cluster import Cluster
from infra.kubesim.rest import DeleteOptions, delete_options, parse_dry_run
from infra.kubesim.status import (
    APPS,
    COORDINATION,
    CORE,
    EVENTS,
    POLICY,
    ApiError,
    bad_request,
    generic,
    internal_error,
    not_found,
)

JSON = "application/json"
MAX_BODY = 3 * 1024 * 1024
NS = r"(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
NAME = r"(?P<name>[^/]+)"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    short: str  # name used for faults and the request log: pods, deployments, leases, ...
    group: str
    resource: str
    subresource: str = ""


def _route(prefix: str, plural: str, short: str, group: str, sub: str = "") -> Route:
    if sub:
        path = f"{prefix}/namespaces/{NS}/{plural}/{NAME}/{sub}"
    else:  # namespaced, or a list across all namespaces
        path = f"{prefix}(?:/namespaces/{NS}/{plural}(?:/{NAME})?|/{plural})"
    return Route(re.compile(f"^{path}$"), short, group, plural, sub)


ROUTES = (
    _route("/api/v1", "pods", "pods", CORE, "eviction"),
    _route("/api/v1", "pods", "pods", CORE),
    _route("/api/v1", "events", "events", CORE),
    _route("/apis/apps/v1", "deployments", "deployments", APPS),
    _route("/apis/apps/v1", "replicasets", "replicasets", APPS),
    _route("/apis/policy/v1", "poddisruptionbudgets", "pdbs", POLICY),
    _route("/apis/coordination.k8s.io/v1", "leases", "leases", COORDINATION),
    _route("/apis/events.k8s.io/v1", "events", "events", EVENTS),
)


def verb_for(method: str, named: bool, query: Mapping[str, str]) -> str:
    if method in ("GET", "HEAD"):
        if query.get("watch") in ("1", "true"):
            return "watch"
        return "get" if named else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }.get(method, method.lower())


@dataclass
class Fault:
    route: str
    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    times: int | None = None
    message: str = ""
    retry_after: int = 0
    id: int = 0
    applied: int = 0

    def matches(self, route: str) -> bool:
        return self.route == "*" or fnmatch.fnmatchcase(route, self.route)


class DropConnection(Exception):  # noqa: N818 - a control-flow signal, not an error
    pass


class Simulator:
    """The WSGI application: kube-apiserver's paths plus the /_sim control API."""

    def __init__(self, cluster: Cluster, authorizer: Authorizer) -> None:
        self.cluster = cluster
        self.authorizer = authorizer
        self.faults: list[Fault] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=20000)
        # The load model's counters in Prometheus text format (exposition.py), when wired.
        self.cadvisor: Callable[[], str] | None = None
        self._lock = threading.Lock()
        self._fault_ids = 0

    # ------------------------------------------------------------------ WSGI

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except DropConnection:
            _drop(environ)
            response = Response(b"", status=500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_sim/") or path == "/_sim":
            try:
                return self.control(request)
            except ApiError as err:
                return _status_response(err)
        if path in ("/healthz", "/livez", "/readyz") and request.method == "GET":
            return Response("ok", content_type="text/plain; charset=utf-8")
        if path == "/metrics/cadvisor" and request.method == "GET" and self.cadvisor is not None:
            # The kubelet's path (no authentication here, as for /healthz).
            return Response(
                self.cadvisor(), content_type="text/plain; version=0.0.4; charset=utf-8"
            )
        if path == "/version" and request.method == "GET":
            return _json(
                200,
                {
                    "major": "1",
                    "minor": "34",
                    "gitVersion": "v1.34.0-kubesim",
                    "platform": "linux/amd64",
                },
            )
        return self.api(request)

    def api(self, request: Request) -> Response:
        query = {k: v for k, v in request.args.items()}
        route, match = _match(request.path)
        named = bool(match and match.groupdict().get("name"))
        verb = verb_for(request.method, named, query)
        op = "evict" if route and route.subresource == "eviction" else verb
        route_name = f"{route.short}.{op}" if route else "unknown"
        user: User | None = None
        started = time.monotonic()
        status = 500
        try:
            user = self.authorizer.identify(request.headers.get("Authorization"))
            self._apply_faults(route_name)
            user = self.authorizer.authenticate(request.headers.get("Authorization"))
            if route is None or match is None:
                raise generic(404)
            attrs = Attributes(
                verb=verb,
                group=route.group,
                resource=route.resource,
                subresource=route.subresource,
                namespace=match.group("namespace") or "",
                name=match.group("name") or "",
            )
            self.authorizer.authorize(user, attrs)
            status, body, headers = self.handle(route, attrs, request, query)
            response = _json(status, body, headers)
        except DropConnection:
            status = 0
            raise
        except ApiError as err:
            status = err.code
            response = _status_response(err)
        except Exception as exc:  # a bug here must still answer like a server would
            bug = internal_error(f"{type(exc).__name__}: {exc}")
            status = bug.code
            response = _status_response(bug)
        finally:
            self._log(request, query, route_name, user, status, started)
        return response

    # ------------------------------------------------------------------ handlers

    def handle(
        self, route: Route, attrs: Attributes, request: Request, query: Mapping[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        handler = HANDLERS.get((route.short, route.subresource, attrs.verb))
        if handler is None or (not attrs.namespace and attrs.verb != "list"):
            raise generic(405)
        options_kind = {"update": "UpdateOptions", "patch": "PatchOptions"}.get(
            attrs.verb, "CreateOptions"
        )
        dry_run = attrs.verb != "delete" and parse_dry_run(
            request.args.getlist("dryRun"), options_kind
        )
        call = Call(self.cluster, route, attrs.namespace, attrs.name, request, query, dry_run)
        code, body = handler(call)
        return code, body, {}

    # ------------------------------------------------------------------ faults and the request log

    def _apply_faults(self, route_name: str) -> None:
        if route_name == "unknown":
            return
        with self._lock:
            fault = next((f for f in self.faults if f.matches(route_name)), None)
            if fault is None:
                return
            fault.applied += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if fault.latency:
            time.sleep(fault.latency)
        if fault.drop:
            raise DropConnection
        if fault.status:
            err = generic(fault.status, fault.message or "injected fault", fault.retry_after)
            if fault.message:
                err.message = fault.message
            if fault.status == 500 and not fault.message:
                err = internal_error("injected fault")
            raise err

    def _log(
        self,
        request: Request,
        query: Mapping[str, str],
        route_name: str,
        user: User | None,
        status: int,
        started: float,
    ) -> None:
        self.requests.append(
            {
                "time": time.time(),
                "method": request.method,
                "path": request.path,
                "query": dict(query),
                "route": route_name,
                "user": user.name if user else None,
                "status": status,
                "durationSeconds": round(time.monotonic() - started, 6),
            }
        )

    # ------------------------------------------------------------------ control API (no auth)

    def control(self, request: Request) -> Response:
        path, method = request.path.rstrip("/"), request.method
        for (verb, pattern), action in CONTROL.items():
            if verb == method and (match := re.fullmatch(pattern, path)):
                code, body = action(self, request, *match.groups())
                return _json(code, body)
        raise generic(404)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def list_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self.faults]

    def add_fault(self, spec: Any) -> Fault:
        if not isinstance(spec, dict) or not isinstance(spec.get("route"), str):
            raise bad_request('a fault needs {"route": "pods.list" | "leases.*" | "*", ...}')
        fault = Fault(
            route=spec["route"],
            latency=float(spec.get("latency", 0.0)),
            status=int(spec["status"]) if spec.get("status") else None,
            drop=bool(spec.get("drop", False)),
            times=int(spec["times"]) if spec.get("times") is not None else None,
            message=str(spec.get("message", "")),
            retry_after=int(spec.get("retryAfter", 0)),
        )
        with self._lock:
            self._fault_ids += 1
            fault.id = self._fault_ids
            self.faults.append(fault)
        return fault


# ---------------------------------------------------------------------- API handlers


@dataclass(frozen=True)
class Call:
    cluster: Cluster
    route: Route
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
        return "events" if self.route.group == EVENTS else "core"

    def delete_options(self) -> DeleteOptions:
        return delete_options(_optional_body(self.request), self.request.args.to_dict(flat=False))


def _list_pods(c: Call) -> tuple[int, Any]:
    limit = int(c.query["limit"]) if c.query.get("limit", "").isdigit() else None
    items = c.cluster.list_pods(c.namespace, c.labels, c.fields, limit, c.query.get("continue"))
    return 200, items


def _evict(c: Call) -> tuple[int, Any]:
    body = _body(c.request)
    return 201, c.cluster.evict_pod(c.namespace, c.name, body, c.request.args.getlist("dryRun"))


def _patch_deployment(c: Call) -> tuple[int, Any]:
    content_type = c.request.headers.get("Content-Type", "")
    body = _body(c.request)
    return 200, c.cluster.patch_deployment(c.namespace, c.name, content_type, body, c.dry_run)


def _update_lease(c: Call) -> tuple[int, Any]:
    obj, created = c.cluster.update_lease(c.namespace, c.name, _body(c.request), c.dry_run)
    return (201 if created else 200), obj


def _get_event(c: Call) -> tuple[int, Any]:
    items = c.cluster.list_events(c.api, c.namespace, f"metadata.name={c.name}")["items"]
    if not items:
        raise not_found("events", c.route.group, c.name)
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
    ("deployments", "", "list"): lambda c: (200, c.cluster.list_deployments(c.namespace, c.labels)),
    ("deployments", "", "patch"): _patch_deployment,
    ("replicasets", "", "get"): lambda c: (200, c.cluster.get_replicaset(c.namespace, c.name)),
    ("replicasets", "", "list"): lambda c: (200, c.cluster.list_replicasets(c.namespace, c.labels)),
    ("pdbs", "", "get"): lambda c: (200, c.cluster.get_pdb(c.namespace, c.name)),
    ("pdbs", "", "list"): lambda c: (200, c.cluster.list_pdbs(c.namespace, c.labels)),
    ("leases", "", "list"): lambda c: (200, c.cluster.list_leases(c.namespace, c.labels)),
    ("leases", "", "get"): lambda c: (200, c.cluster.get_lease(c.namespace, c.name)),
    ("leases", "", "create"): lambda c: (
        201,
        c.cluster.create_lease(c.namespace, _body(c.request), c.dry_run),
    ),
    ("leases", "", "update"): _update_lease,
    ("leases", "", "delete"): lambda c: (
        200,
        c.cluster.delete_lease(c.namespace, c.name, c.delete_options()),
    ),
    ("events", "", "create"): lambda c: (
        201,
        c.cluster.create_event(c.api, c.namespace, _body(c.request), c.dry_run),
    ),
    ("events", "", "list"): lambda c: (200, c.cluster.list_events(c.api, c.namespace, c.fields)),
    ("events", "", "get"): _get_event,
}


# ---------------------------------------------------------------------- control API

ControlAction = Callable[..., tuple[int, Any]]


def _add_fault(sim: Simulator, request: Request) -> tuple[int, Any]:
    return 201, asdict(sim.add_fault(_body(request)))


def _clear_faults(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.clear_faults()
    return 200, {"faults": []}


def _clear_requests(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.requests.clear()
    return 200, {"requests": []}


def _tick(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.cluster.tick()
    return 200, {"ok": True}


def _target(request: Request) -> tuple[str, str]:
    return _arg(request, "namespace"), _arg(request, "deployment")


CONTROL: dict[tuple[str, str], ControlAction] = {
    ("GET", "/_sim/state"): lambda sim, request: (200, sim.cluster.state()),
    ("GET", "/_sim/faults"): lambda sim, request: (200, {"faults": sim.list_faults()}),
    ("POST", "/_sim/faults"): _add_fault,
    ("DELETE", "/_sim/faults"): _clear_faults,
    ("GET", "/_sim/requests"): lambda sim, request: (200, {"requests": list(sim.requests)}),
    ("DELETE", "/_sim/requests"): _clear_requests,
    ("POST", "/_sim/tick"): _tick,
    ("GET", "/_sim/cpu"): lambda sim, request: (200, sim.cluster.cpu(*_target(request))),
    ("GET", "/_sim/pods"): lambda sim, request: (
        200,
        {"items": sim.cluster.deployment_pods(*_target(request))},
    ),
    ("POST", r"/_sim/pods/([^/]+)/([^/]+)"): lambda sim, request, ns, name: (
        200,
        sim.cluster.set_pod(ns, name, _object(request)),
    ),
    ("POST", r"/_sim/deployments/([^/]+)/([^/]+)"): lambda sim, request, ns, name: (
        200,
        sim.cluster.set_deployment(ns, name, _object(request)),
    ),
}


# ---------------------------------------------------------------------- helpers


def _match(path: str) -> tuple[Route | None, re.Match[str] | None]:
    for route in ROUTES:
        if match := route.pattern.match(path):
            return route, match
    return None, None


def _json(code: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":")) + "\n", status=code, content_type=JSON
    )
    response.headers["Audit-Id"] = str(uuid.uuid4())
    response.headers["Cache-Control"] = "no-cache, private"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _status_response(err: ApiError) -> Response:
    return _json(err.code, err.body(), err.headers)


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


def _body(request: Request) -> Any:
    raw = _raw_body(request)
    if not raw.strip():
        raise bad_request("the body of the request was empty")
    return _decode(raw)


def _optional_body(request: Request) -> Any:
    raw = _raw_body(request)
    return _decode(raw) if raw.strip() else None


def _object(request: Request) -> dict[str, Any]:
    body = _body(request)
    if not isinstance(body, dict):
        raise bad_request("expected a JSON object")
    return body


def _arg(request: Request, name: str) -> str:
    value = request.args.get(name)
    if not value:
        raise bad_request(f"query parameter {name} is required")
    return value


def _drop(environ: Mapping[str, Any]) -> None:
    """Close the client's connection without a response (werkzeug exposes the socket)."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
