"""Injected faults, as a sick network or server would cause them: latency, an error status, or a
connection closed without an answer, for requests whose route matches a glob (`pods.*`, `*`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from infra.kubesim.status import bad_request, generic, internal_error


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


class Faults:
    """The faults in force; the first that matches a request's route applies to it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = 0

    def add(self, spec: Any) -> Fault:
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
            self._ids += 1
            fault.id = self._ids
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def listed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def apply(self, route_name: str) -> None:
        """Sleep, raise the fault's Status, or raise DropConnection; nothing if none matches."""
        if route_name == "unknown":
            return
        with self._lock:
            fault = next((f for f in self._faults if f.matches(route_name)), None)
            if fault is None:
                return
            fault.applied += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
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


def drop(environ: Mapping[str, Any]) -> None:
    """Close the client's connection without a response (werkzeug exposes the socket)."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
