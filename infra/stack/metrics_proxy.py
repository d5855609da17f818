"""A fault-injecting HTTP proxy in front of a real Prometheus-compatible server (VictoriaMetrics).

It passes requests through, or, for queries matching a fault: waits, answers an HTTP error or a
`"status": "error"` body, sends malformed JSON, turns the instant vector into another result type,
or rewrites the real answer — NaN for some pods, a pod's series twice, some pods left out.

    proxy = MetricsProxy(victoria.url)
    proxy.set_fault(kind="nan", pods=["web-1"], match='namespace="shop"')
    ... point PROMETHEUS_ENDPOINT at proxy.url ...
    proxy.clear_faults(); proxy.stop()

Kinds: `pass` (only `delay`), `status` (HTTP `status`, default 503, with Prometheus' error body),
`error` (`"status": "error"` with HTTP `status`, default 422), `malformed` (the real body cut in
half), `wrong_type` (the vector as a matrix), `nan`, `duplicate`, `missing` (for `pods`), `reset`
(the connection closed without an answer). Every fault may also `delay` (seconds) and be limited
to queries whose PromQL matches the regex `match`, and to `count` uses.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from infra.stack.processes import free_port

KINDS = (
    "pass",
    "status",
    "error",
    "malformed",
    "wrong_type",
    "nan",
    "duplicate",
    "missing",
    "reset",
)


@dataclass
class MetricsFault:
    kind: str
    match: str = ""
    pods: tuple[str, ...] = ()
    delay: float = 0.0
    status: int | None = None
    count: int | None = None
    applied: int = 0
    queries: list[str] = field(default_factory=list)

    def matches(self, promql: str) -> bool:
        if self.count is not None and self.applied >= self.count:
            return False
        return not self.match or re.search(self.match, promql) is not None


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class MetricsProxy:
    """The proxy, served from a thread of this process on a free loopback port."""

    def __init__(self, upstream: str, port: int | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._faults: list[MetricsFault] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=self.upstream, timeout=30.0)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", self.port, self._app, threaded=True, request_handler=_Quiet
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-proxy-{self.port}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ control

    def set_fault(
        self,
        kind: str,
        *,
        match: str = "",
        pods: Iterable[str] = (),
        delay: float = 0.0,
        status: int | None = None,
        count: int | None = None,
    ) -> MetricsFault:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        fault = MetricsFault(kind, match, tuple(pods), delay, status, count)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._client.close()

    # ------------------------------------------------------------------ serving

    def _fault_for(self, promql: str) -> MetricsFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(promql):
                    fault.applied += 1
                    fault.queries.append(promql)
                    return fault
        return None

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        raw = request.get_data(cache=True)
        promql = request.values.get("query", "")
        fault = self._fault_for(promql) if promql else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "reset":
            _reset(environ)
            return Response(b"", status=500)(environ, start_response)
        if fault is not None and fault.kind in ("status", "error"):
            response = _error_response(fault)
        else:
            response = self._forward(request, raw)
            if fault is not None and fault.kind not in ("pass",):
                response = _rewrite(response, fault)
        return response(environ, start_response)

    def _forward(self, request: Request, raw: bytes) -> Response:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "content-type", "accept")
        }
        try:
            upstream = self._client.request(
                request.method,
                request.path,
                params=list(request.args.items(multi=True)),
                content=raw,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return Response(f"upstream unreachable: {exc}", status=502)
        return Response(
            upstream.content,
            status=upstream.status_code,
            content_type=upstream.headers.get("content-type", "application/json"),
        )


def _error_response(fault: MetricsFault) -> Response:
    if fault.kind == "status":
        code = fault.status or 503
        body = {"status": "error", "errorType": "unavailable", "error": "injected fault"}
    else:
        code = fault.status or 422
        body = {"status": "error", "errorType": "execution", "error": "injected query error"}
    return Response(json.dumps(body), status=code, content_type="application/json")


def _rewrite(response: Response, fault: MetricsFault) -> Response:
    """The real answer changed as the fault says (left as is when it is not a vector)."""
    content = response.get_data()
    if fault.kind == "malformed":
        return Response(
            content[: len(content) // 2],
            status=response.status_code,
            content_type="application/json",
        )
    try:
        body = json.loads(content)
        data = body["data"]
        result = data["result"]
    except (ValueError, KeyError, TypeError):
        return response
    if not isinstance(result, list):
        return response
    data["result"] = _changed(result, fault, data)
    return Response(json.dumps(body), status=response.status_code, content_type="application/json")


def _changed(result: list[Any], fault: MetricsFault, data: dict[str, Any]) -> list[Any]:
    def named(series: Any) -> bool:
        return isinstance(series, dict) and (series.get("metric") or {}).get("pod") in fault.pods

    if fault.kind == "wrong_type":
        data["resultType"] = "matrix"
        return [{"metric": s["metric"], "values": [s["value"]]} for s in result]
    if fault.kind == "missing":
        return [s for s in result if not named(s)]
    if fault.kind == "duplicate":
        return [*result, *(json.loads(json.dumps(s)) for s in result if named(s))]
    if fault.kind == "nan":
        for series in result:
            if named(series):
                series["value"] = [series["value"][0], "NaN"]
    return result


def _reset(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
