"""The simulator's HTTP face (a werkzeug WSGI app): kube-apiserver's paths through injected faults,
authentication, RBAC and the handler (handlers.py), in that order; and the /_sim control API.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.kubesim import handlers
from infra.kubesim.auth import Attributes, Authorizer, User
from infra.kubesim.cluster import Cluster
from infra.kubesim.faults import DropConnection, Faults, drop
from infra.kubesim.status import (
    APPS,
    COORDINATION,
    CORE,
    EVENTS,
    POLICY,
    ApiError,
    generic,
    internal_error,
)

JSON = "application/json"
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


class Simulator:
    """The WSGI application: kube-apiserver's paths plus the /_sim control API."""

    def __init__(self, cluster: Cluster, authorizer: Authorizer) -> None:
        self.cluster = cluster
        self.authorizer = authorizer
        self.faults = Faults()
        self.requests: deque[dict[str, Any]] = deque(maxlen=20000)
        # The load model's counters in Prometheus text format (exposition.py), when wired.
        self.cadvisor: Callable[[], str] | None = None

    # ------------------------------------------------------------------ WSGI

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except DropConnection:
            drop(environ)
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
            self.faults.apply(route_name)
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
            status, body = handlers.handle(self.cluster, route.short, attrs, request, query)
            response = _json(status, body)
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

    # ------------------------------------------------------------------ the request log

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


# ---------------------------------------------------------------------- control API

ControlAction = Callable[..., tuple[int, Any]]


def _add_fault(sim: Simulator, request: Request) -> tuple[int, Any]:
    return 201, asdict(sim.faults.add(handlers.body(request)))


def _clear_faults(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.faults.clear()
    return 200, {"faults": []}


def _clear_requests(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.requests.clear()
    return 200, {"requests": []}


def _tick(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.cluster.tick()
    return 200, {"ok": True}


def _target(request: Request) -> tuple[str, str]:
    return handlers.arg(request, "namespace"), handlers.arg(request, "deployment")


CONTROL: dict[tuple[str, str], ControlAction] = {
    ("GET", "/_sim/state"): lambda sim, request: (200, sim.cluster.state()),
    ("GET", "/_sim/faults"): lambda sim, request: (200, {"faults": sim.faults.listed()}),
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
        sim.cluster.set_pod(ns, name, handlers.json_object(request)),
    ),
    ("POST", r"/_sim/deployments/([^/]+)/([^/]+)"): lambda sim, request, ns, name: (
        200,
        sim.cluster.set_deployment(ns, name, handlers.json_object(request)),
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
