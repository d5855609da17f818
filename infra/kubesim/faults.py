"""Injected faults, as rules: which requests (method, URL path, route name) and what goes wrong
(a delay, a `Status` error or any other body, a dropped connection, a side effect), before the
request is carried out or after it (a write that succeeded but whose answer was lost).

A rule, as `POST /_sim/faults` takes it (every field optional but one of `path` and `route`):

    {"method": "POST",                  # or "*" (the default)
     "path": "/api/v1/namespaces/ns/pods/*/eviction",   # a glob, or a regex if it starts with ^
     "route": "pods.evict",             # the route-name glob of the request log (pods.list, ...)
     "status": 503,                     # answer with kube-apiserver's Status for this code
     "reason": "AlreadyExists", "message": "...",       # override the Status' reason / message
     "body": {...} | "text",            # answer with this body instead (JSON, or text as is)
     "contentType": "text/html",        # for a text body
     "delay": 1.5,                      # seconds before answering
     "drop": true,                      # close the connection without an answer
     "after": 1,                        # let the first N matching requests through
     "count": 1,                        # apply this many times (default: every time)
     "phase": "before" | "after",       # fail before the request is carried out, or after
     "action": "deletePod" | "replacePod" | "rollout" | "annotate" | "takeLease",
     "target": "ns/name",               # what the action acts on (default: what the path names)
     "holder": "...",                   # takeLease: the other invocation's identity
     "annotations": {...},              # annotate: merged into the Deployment; takeLease: the Lease
     "retryAfter": 1}

`phase: "before"` (the default): wait `delay`, run `action`, then answer `status`/`body` or drop
the connection; with neither, carry the request out (a slow server) unless the client has gone
away meanwhile: then it is abandoned, as kube-apiserver abandons a request whose context was
cancelled before it reached storage. `phase: "after"`: carry the request out, run `action`, wait
`delay`, then drop the connection, answer `status`/`body` instead of the real answer, or send the
real answer late. Every matching rule counts a request; the first one that is due applies.

The old route-name faults (`{"route", "latency", "times", "status", "drop", "message",
"retryAfter"}`) are rules too: `latency` is `delay` and `times` is `count`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.kubesim.auth import Attributes, User, forbidden_error
from infra.kubesim.status import (
    OPTIMISTIC_LOCK_MESSAGE,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired_continue,
    generic,
    internal_error,
    not_found,
    too_many_requests,
)

PHASES = ("before", "after")
ACTIONS = ("", "deletePod", "replacePod", "rollout", "annotate", "takeLease")
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


@dataclass
class Rule:
    method: str = "*"
    path: str | None = None
    route: str | None = None
    status: int | None = None
    reason: str = ""
    message: str = ""
    body: Any = None
    content_type: str = ""
    delay: float = 0.0
    drop: bool = False
    after: int = 0
    count: int | None = None
    phase: str = "before"
    action: str = ""
    target: str = ""
    holder: str = "another-invocation"
    annotations: dict[str, str] = field(default_factory=dict)
    retry_after: int = 0
    id: int = 0
    seen: int = 0  # matching requests so far, let through or not
    applied: int = 0

    def matches(self, method: str, path: str, route: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if self.path is not None and not _path_matches(self.path, path):
            return False
        return self.route is None or self.route == "*" or fnmatch.fnmatchcase(route, self.route)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.applied >= self.count

    @property
    def answers(self) -> bool:
        """Whether the rule replaces the answer (rather than only delaying it)."""
        return self.drop or self.status is not None or self.body is not None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["contentType"] = out.pop("content_type")
        out["retryAfter"] = out.pop("retry_after")
        out["exhausted"] = self.exhausted
        return out


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.startswith("^"):
        return re.search(pattern, path) is not None
    return fnmatch.fnmatchcase(path, pattern)


def parse_rule(spec: Any) -> Rule:
    """A rule from its JSON form; 400 BadRequest naming what is wrong."""
    if not isinstance(spec, dict):
        raise bad_request("a fault rule must be a JSON object")
    path, route = spec.get("path"), spec.get("route")
    if not isinstance(path, str | None) or not isinstance(route, str | None):
        raise bad_request("path and route must be strings")
    if path is None and route is None:
        raise bad_request('a fault rule needs "path" (a glob or ^regex) or "route" (a glob)')
    if path is not None and path.startswith("^"):
        try:
            re.compile(path)
        except re.error as exc:
            raise bad_request(f"path: not a regular expression: {exc}") from exc
    phase = str(spec.get("phase", "before"))
    if phase not in PHASES:
        raise bad_request(f'phase must be "before" or "after", not {phase!r}')
    action = str(spec.get("action", ""))
    if action not in ACTIONS:
        raise bad_request(f"action must be one of {', '.join(a for a in ACTIONS if a)}")
    count = spec.get("count", spec.get("times"))
    try:
        rule = Rule(
            method=str(spec.get("method", "*")).upper(),
            path=path,
            route=route,
            status=int(spec["status"]) if spec.get("status") else None,
            reason=str(spec.get("reason", "")),
            message=str(spec.get("message", "")),
            body=spec.get("body"),
            content_type=str(spec.get("contentType", "")),
            delay=float(spec.get("delay", spec.get("latency")) or 0.0),
            drop=bool(spec.get("drop", False)),
            after=int(spec.get("after", 0)),
            count=int(count) if count is not None else None,
            phase=phase,
            action=action,
            target=str(spec.get("target", "")),
            holder=str(spec.get("holder", "another-invocation")),
            annotations={str(k): str(v) for k, v in (spec.get("annotations") or {}).items()},
            retry_after=int(spec.get("retryAfter", 0)),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise bad_request(f"invalid fault rule: {exc}") from exc
    if rule.delay < 0 or rule.after < 0 or (rule.count is not None and rule.count < 0):
        raise bad_request("delay, after and count must not be negative")
    return rule


class DropConnection(Exception):  # noqa: N818 - a control-flow signal, not an error
    pass


class Faults:
    """The rules in force, in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._ids = 0

    def add(self, spec: Any) -> Rule:
        rule = parse_rule(spec)
        with self._lock:
            self._ids += 1
            rule.id = self._ids
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            found = len(kept) != len(self._rules)
            self._rules = kept
        return found

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def listed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def match(self, method: str, path: str, route: str) -> Rule | None:
        """The rule that applies to this request, counted as applied; None lets it through."""
        chosen: Rule | None = None
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, path, route):
                    continue
                rule.seen += 1
                if chosen is None and rule.seen > rule.after:
                    rule.applied += 1
                    chosen = rule
        return chosen


def injected_error(rule: Rule, attrs: Attributes | None, user: User | None, body: Any) -> ApiError:
    """The `Status` kube-apiserver would send with the rule's code, for this request."""
    code = int(rule.status or 500)
    resource = attrs.resource if attrs else ""
    group = attrs.group if attrs else ""
    name = (attrs.name if attrs else "") or created_name(body)
    if code == 403 and attrs is not None:
        err = forbidden_error(user or ANONYMOUS, attrs)
    elif code == 404 and resource and name:
        err = not_found(resource, group, name)
    elif code == 409 and resource:
        creating = attrs is not None and attrs.verb == "create" and not attrs.subresource
        if rule.reason == "AlreadyExists" or (creating and rule.reason != "Conflict"):
            err = already_exists(resource, group, name)
        else:
            err = conflict(resource, group, name, OPTIMISTIC_LOCK_MESSAGE)
    elif code == 410:
        err = expired_continue()
    elif code == 429:
        message = "the server has received too many requests and has asked us to try again later"
        err = too_many_requests(message, rule.retry_after, [])
    elif code == 500:
        err = internal_error(rule.message or "injected fault")
    else:
        err = generic(code, rule.message or "injected fault", rule.retry_after)
    if rule.message:
        err.message = rule.message
    if rule.reason:
        err.reason = rule.reason
    return err


def created_name(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        return str(body["metadata"].get("name") or "")
    return ""


def decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


def client_gone(environ: Mapping[str, Any]) -> bool:
    """Whether the client closed its connection (the request body must have been read already).

    Over TLS the socket cannot be peeked at, so a client there never counts as gone."""
    sock = environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return False
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False  # open, and nothing more sent
    except OSError:
        return True
    return data == b""


def drop(environ: Mapping[str, Any]) -> None:
    """Close the client's connection without a response (werkzeug exposes the socket)."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
