"""The simulator's HTTP face (a werkzeug WSGI app): kube-apiserver's paths through injected faults,
authentication, RBAC and the handler (handlers.py), in that order; and the /_sim control API.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.kubesim import handlers
from infra.kubesim.auth import Attributes, Authorizer, User
from infra.kubesim.cluster import Cluster
from infra.kubesim.faults import (
    DropConnection,
    Faults,
    Rule,
    client_gone,
    created_name,
    decoded,
    drop,
    injected_error,
)
from infra.kubesim.status import (
    APPS,
    AUTOSCALING,
    COORDINATION,
    CORE,
    EVENTS,
    POLICY,
    ApiError,
    generic,
    internal_error,
)
from infra.kubesim.wire import Encoder, compact

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
    _route("/apis/autoscaling/v2", "horizontalpodautoscalers", "hpas", AUTOSCALING),
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
        self.encoder = Encoder()
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
        attrs = _attributes(route, match, verb)
        exchange = Exchange(user=self.authorizer.identify(request.headers.get("Authorization")))
        started = time.monotonic()
        rule = None
        if route is not None:
            rule = self.faults.match(request.method, request.path, route_name)
            exchange.fault = rule.id if rule else None
        try:
            if rule is not None and rule.phase == "before":
                early = self._before(rule, request, attrs, exchange)
                if early is not None:
                    return early
            response = self._serve(request, route, attrs, query, exchange)
            if rule is not None and rule.phase == "after":
                # Logged when it was done, before its answer is delayed or lost.
                exchange.answer = _after_answer(rule)
                self._log(request, query, route_name, exchange, started)
                response = self._after(rule, request, attrs, exchange, response)
            return response
        finally:
            if not exchange.logged:
                self._log(request, query, route_name, exchange, started)

    def _serve(
        self,
        request: Request,
        route: Route | None,
        attrs: Attributes | None,
        query: Mapping[str, str],
        exchange: Exchange,
    ) -> Response:
        """Authentication, RBAC and the handler, as kube-apiserver runs them."""
        try:
            exchange.user = self.authorizer.authenticate(request.headers.get("Authorization"))
            if route is None or attrs is None:
                raise generic(404)
            self.authorizer.authorize(exchange.user, attrs)
            status, body = handlers.handle(self.cluster, route.short, attrs, request, query)
            exchange.status = status
            return _json(status, body, encode=self.encoder.encode)
        except ApiError as err:
            exchange.status = err.code
            return _status_response(err)
        except Exception as exc:  # a bug here must still answer like a server would
            bug = internal_error(f"{type(exc).__name__}: {exc}")
            exchange.status = bug.code
            return _status_response(bug)

    # ------------------------------------------------------------------ injected faults

    def _before(
        self, rule: Rule, request: Request, attrs: Attributes | None, exchange: Exchange
    ) -> Response | None:
        """Delay, act, then fail; None carries the request out (unless the client went away)."""
        raw = request.get_data(cache=True)  # read now, so that a client gone away shows
        if rule.delay:
            time.sleep(rule.delay)
        if rule.action:
            self._act(rule, attrs, raw)
        if rule.drop:
            exchange.status, exchange.answer = 0, "dropped"
            raise DropConnection
        if rule.answers:
            return self._injected(rule, attrs, raw, exchange)
        if rule.delay and client_gone(request.environ):
            # A cancelled request context: the request never reaches storage.
            exchange.status, exchange.answer = 0, "abandoned"
            raise DropConnection
        exchange.answer = "late" if rule.delay else None
        return None

    def _after(
        self,
        rule: Rule,
        request: Request,
        attrs: Attributes | None,
        exchange: Exchange,
        response: Response,
    ) -> Response:
        """The request was carried out; now act, wait, and lose or replace its answer."""
        if rule.action:
            self._act(rule, attrs, request.get_data(cache=True))
        if rule.delay:
            time.sleep(rule.delay)
        if rule.drop:
            raise DropConnection
        if rule.answers:
            return self._injected(rule, attrs, request.get_data(cache=True), exchange)
        return response

    def _injected(
        self, rule: Rule, attrs: Attributes | None, raw: bytes, exchange: Exchange
    ) -> Response:
        exchange.answer = "injected"
        if rule.body is not None:
            code = rule.status or 200
            exchange.status = code
            if isinstance(rule.body, str):
                return Response(
                    rule.body, status=code, content_type=rule.content_type or "text/plain"
                )
            return _json(code, rule.body)
        err = injected_error(rule, attrs, exchange.user, decoded(raw))
        exchange.status = err.code
        return _status_response(err)

    def _act(self, rule: Rule, attrs: Attributes | None, raw: bytes) -> None:
        """The rule's side effect, on what its `target` or the request's path names."""
        namespace, _, name = rule.target.partition("/")
        if not rule.target:
            namespace = attrs.namespace if attrs else ""
            name = (attrs.name if attrs else "") or created_name(decoded(raw))
        resource = attrs.resource if attrs else ""
        cluster = self.cluster
        if rule.action == "deletePod":
            cluster.remove_pod(namespace, name)
        elif rule.action == "replacePod":
            cluster.replace_pod(namespace, name)
        elif rule.action == "takeLease":
            cluster.take_lease(namespace, name, rule.holder, rule.annotations)
        else:  # the Deployment named, or the one owning the pod named
            if not rule.target and resource == "pods":
                name = cluster.owning_deployment(namespace, name)
            if rule.action == "rollout":
                cluster.rollout(namespace, name)
            else:
                cluster.set_deployment(namespace, name, {"annotations": dict(rule.annotations)})

    # ------------------------------------------------------------------ the request log

    def _log(
        self,
        request: Request,
        query: Mapping[str, str],
        route_name: str,
        exchange: Exchange,
        started: float,
    ) -> None:
        exchange.logged = True
        self.requests.append(
            {
                "time": time.time(),
                "method": request.method,
                "path": request.path,
                "query": dict(query),
                "route": route_name,
                "user": exchange.user.name if exchange.user else None,
                # What was done: 0 when the request was never carried out.
                "status": exchange.status,
                "fault": exchange.fault,
                # How it was answered, when a fault changed that: injected, dropped, late,
                # abandoned.
                "answer": exchange.answer,
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
    return 201, sim.faults.add(handlers.body(request)).to_json()


def _clear_faults(sim: Simulator, request: Request) -> tuple[int, Any]:
    sim.faults.clear()
    return 200, {"faults": []}


def _remove_fault(sim: Simulator, request: Request, rule_id: str) -> tuple[int, Any]:
    if not sim.faults.remove(int(rule_id)):
        raise generic(404)
    return 200, {"faults": sim.faults.listed()}


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
    ("DELETE", r"/_sim/faults/(\d+)"): _remove_fault,
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
    ("DELETE", r"/_sim/pods/([^/]+)/([^/]+)"): lambda sim, request, ns, name: (
        200,
        sim.cluster.remove_pod(ns, name),
    ),
    ("POST", r"/_sim/pods/([^/]+)/([^/]+)/replace"): lambda sim, request, ns, name: (
        200,
        sim.cluster.replace_pod(ns, name),
    ),
    ("POST", r"/_sim/deployments/([^/]+)/([^/]+)"): lambda sim, request, ns, name: (
        200,
        sim.cluster.set_deployment(ns, name, handlers.json_object(request)),
    ),
    ("POST", r"/_sim/deployments/([^/]+)/([^/]+)/rollout"): lambda sim, request, ns, name: (
        200,
        sim.cluster.rollout(ns, name),
    ),
}


# ---------------------------------------------------------------------- helpers


@dataclass
class Exchange:
    """One API request as the log records it."""

    user: User | None
    status: int = 500
    fault: int | None = None
    answer: str | None = None
    logged: bool = False


def _after_answer(rule: Rule) -> str | None:
    if rule.drop:
        return "dropped"
    if rule.answers:
        return "injected"
    return "late" if rule.delay else None


def _attributes(route: Route | None, match: re.Match[str] | None, verb: str) -> Attributes | None:
    if route is None or match is None:
        return None
    return Attributes(
        verb=verb,
        group=route.group,
        resource=route.resource,
        subresource=route.subresource,
        namespace=match.group("namespace") or "",
        name=match.group("name") or "",
    )


def _match(path: str) -> tuple[Route | None, re.Match[str] | None]:
    for route in ROUTES:
        if match := route.pattern.match(path):
            return route, match
    return None, None


def _json(
    code: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    encode: Callable[[Any], bytes] = compact,
) -> Response:
    response = Response(encode(body) + b"\n", status=code, content_type=JSON)
    response.headers["Audit-Id"] = str(uuid.uuid4())
    response.headers["Cache-Control"] = "no-cache, private"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _status_response(err: ApiError) -> Response:
    return _json(err.code, err.body(), err.headers)
