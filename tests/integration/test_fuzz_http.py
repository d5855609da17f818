"""Hostile input to the HTTP entry point with every dependency healthy: a simulated cluster with a
Deployment worth rebalancing on each side of the allow-list, and real VictoriaMetrics.

Through functions-framework's app in this process (quick, so many examples), and over real HTTP
to the function served by functions-framework's own server (gunicorn) for what only the wire
shows: chunked uploads without a length, compressed bodies, bytes a client library would refuse
to send. For every example: never a 5xx (nothing is down, so a 5xx is a bug), never a write to
the cluster but a server-side dry run, never a request outside the allowed namespace, an answer
well inside the function's timeout, and every refusal naming what was wrong.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import event, example, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from infra.stack.processes import FunctionServer
from tests import hostile
from tests.entry import MAIN
from tests.integration.conftest import (
    ALLOWED,
    FORBIDDEN,
    TIMEOUT,
    FuzzStack,
    deployments,
    namespaces,
    outside,
    writes,
)
from tests.reliability import record

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}


def check_answer(stack: FuzzStack, status: int, text: str, elapsed: float) -> Any:
    """The invariants of every answer with healthy dependencies; the answer's JSON."""
    requests = stack.requests()
    changed, strays = writes(requests), outside(requests)
    record(
        "fuzz",
        cases=1,
        server_errors_on_bad_input=int(status >= 500),
        cluster_writes=len(changed),
        requests_outside_allow_list=len(strays),
    )
    assert status < 500, text[:2000]
    assert changed == [], changed
    assert strays == [], strays
    assert elapsed < TIMEOUT, elapsed
    body = json.loads(text) if text else None
    label = event if currently_in_test_context() else (lambda _: None)
    label(f"HTTP {status}")
    if status == 200:
        for result in body["results"]:
            label(f"{result['action']} ({result['reason']})")
            assert result["action"] in ("would_rebalance", "skipped"), result
            assert result["evicted"] == [], result
            assert result["target"]["namespace"] == ALLOWED or result["reason"] in (
                "target_not_allowed",
                "alert_resolved",
            ), result
    elif text:
        hostile.check_refusal(status, body)
    record("fuzz", passed=1)
    return body


class App:
    """functions-framework's app for `rebalance`, configured against the stack."""

    def __init__(self, stack: FuzzStack, capsys: pytest.CaptureFixture[str]) -> None:
        self.app: FlaskClient = create_app("rebalance", str(MAIN), "http").test_client()
        self.module = sys.modules[MAIN.stem]  # where create_app put the module it loaded
        self.stack = stack
        self.capsys = capsys
        stack.requests()

    def send(
        self, body: bytes, headers: dict[str, str] | None = None, query: str = ""
    ) -> tuple[int, Any]:
        self.capsys.readouterr()
        started = time.monotonic()
        response = self.app.post("/", data=body, headers=headers or JSON, query_string=query)
        elapsed = time.monotonic() - started
        output = self.capsys.readouterr()
        answer = check_answer(self.stack, response.status_code, response.get_data(True), elapsed)
        assert hostile.log_problems(output.out) == []
        return response.status_code, answer

    def close(self) -> None:
        """Close the clients the function built (their connections to the stack)."""
        self.module.runtime.service().close()


@pytest.fixture
def dry(
    fuzz_stack: FuzzStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[App]:
    """DRY_RUN=true (the default): whatever a request says, nothing may change."""
    for name, value in fuzz_stack.env(WEBHOOK_TOKEN=TOKEN, ALLOWED_DEPLOYMENTS="*").items():
        monkeypatch.setenv(name, value)
    app = App(fuzz_stack, capsys)
    yield app
    app.close()


@pytest.fixture
def armed(
    fuzz_stack: FuzzStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[App]:
    """DRY_RUN=false, and only the balanced Deployment allowed: requests may act, but the one
    target they may act on never needs it, so any write at all is hostile input getting through
    (to the skewed Deployment beside it, or to the one outside the allowed namespace)."""
    env = fuzz_stack.env(WEBHOOK_TOKEN=TOKEN, DRY_RUN="false", ALLOWED_DEPLOYMENTS="balanced")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = App(fuzz_stack, capsys)
    yield app
    app.close()


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body naming targets (manual or Alertmanager) and a query string, hostile or not."""
    kind = draw(st.sampled_from(["manual", "alertmanager", "raw"]))
    if kind == "manual":
        body: Any = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "namespace": namespaces(),
                    "deployment": deployments(),
                    "dry_run": st.one_of(st.booleans(), hostile.json_values(max_leaves=2)),
                },
            )
        )
        raw = hostile.encode(body)
    elif kind == "alertmanager":
        labels = st.fixed_dictionaries(
            {},
            optional={
                "namespace": namespaces(),
                "deployment": deployments(),
                "container": deployments(),
            },
        )
        alerts = draw(
            st.lists(st.tuples(labels, st.sampled_from(["firing", "resolved"])), max_size=4)
        )
        body = hostile.valid_webhook(
            *[
                {**hostile.valid_alert(), "labels": label, "status": status}
                for label, status in alerts
            ]
        )
        raw = hostile.encode(body)
    else:
        raw = draw(st.one_of(hostile.raw_bodies(), hostile.duplicate_keys().map(lambda c: c[0])))
    query = draw(
        st.one_of(
            st.just(""),
            st.sampled_from(["dry_run=false", "dry_run=0", "dry_run=true", "dry_run=no"]),
            hostile.query_strings(),
        )
    )
    return raw, query


@hostile.budget(0.5)
@given(request=requests())
@example(request=(hostile.encode({"namespace": FORBIDDEN, "deployment": "skewed"}), ""))
@example(request=(b'{"namespace": "fuzz-forbidden", "namespace": "fuzz-allowed"}', ""))
@example(request=(hostile.encode({"dry_run": False}), "dry_run=false"))
def test_hostile_requests_never_write_under_dry_run(dry: App, request: tuple[bytes, str]) -> None:
    body, query = request
    status, answer = dry.send(body, query=query)
    if status == 200:
        assert all(r["dry_run"] for r in answer["results"])


@hostile.budget(0.5)
@given(request=requests())
@example(request=(hostile.encode({"deployment": "skewed"}), "dry_run=false"))
@example(request=(hostile.encode({"namespace": FORBIDDEN}), ""))
@example(
    request=(
        hostile.encode(hostile.alertmanager_with({"namespace": ALLOWED, "container": "skewed"})),
        "",
    )
)
def test_hostile_requests_never_reach_a_target_outside_the_allow_list(
    armed: App, request: tuple[bytes, str]
) -> None:
    body, query = request
    status, answer = armed.send(body, query=query)
    if status == 200:
        # Nothing the allow-list admits needs rebalancing: every result is a skip.
        assert all(r["action"] == "skipped" for r in answer["results"]), answer


def test_a_real_dry_run_is_still_decided_by_the_fuzzed_app(dry: App) -> None:
    # The invariants above would hold for an app that refused everything; this one acts.
    status, answer = dry.send(hostile.encode({"deployment": "skewed"}))
    assert status == 200
    (result,) = answer["results"]
    assert (result["action"], result["reason"]) == ("would_rebalance", "imbalance_confirmed")


# ---------------------------------------------------------------------- over real HTTP


@pytest.fixture(scope="module")
def server(fuzz_stack: FuzzStack) -> Iterator[FunctionServer]:
    env = fuzz_stack.env(WEBHOOK_TOKEN=TOKEN)
    function = FunctionServer("rebalance", env, fuzz_stack.sim.server.log_path.parent)
    try:
        yield function
    finally:
        function.stop()


def exchange(server: FunctionServer, raw: bytes, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """Send bytes as they are; the status and body of the answer (0 when the server closed the
    connection without one)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as conn:
        with contextlib.suppress(OSError):  # the server answered early and closed (a 413)
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    if not received:
        return 0, b""
    head, _, body = received.partition(b"\r\n\r\n")
    while head.split(b" ", 2)[1].startswith(b"1"):  # an interim answer (100 Continue)
        head, _, body = body.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = unchunk(body)
    return status, body


def unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def http_request(
    body: bytes | list[bytes],
    headers: dict[str, str] | None = None,
    method: str = "POST",
    target: bytes = b"/",
) -> bytes:
    """A request on the wire: a list of bytes is sent chunked, with no Content-Length."""
    lines = [method.encode("latin-1") + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for name, value in (headers if headers is not None else JSON).items():
        lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
    if isinstance(body, list):
        lines.append(b"Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in body if c) + b"0\r\n\r\n"
    else:
        lines.append(b"Content-Length: %d" % len(body))
        payload = body
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def over_the_wire(stack: FuzzStack, server: FunctionServer, raw: bytes) -> tuple[int, Any]:
    stack.requests()
    started = time.monotonic()
    status, body = exchange(server, raw)
    elapsed = time.monotonic() - started
    # gunicorn itself may refuse a request it cannot parse (400) or close the connection; what
    # it hands on, the function answers. Neither may be a 5xx.
    assert status != 0 or elapsed < TIMEOUT
    text = body.decode() if status and body.startswith(b"{") else ""
    answer = check_answer(stack, status or 400, text, elapsed)
    assert server.server.process.poll() is None, "the function's server died"
    return status, answer


def chunks_of(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        out.append(data[at : at + size])
        at += size
    out.append(data[at:])
    return out


@hostile.budget(0.2)
@given(
    document=st.sampled_from(
        [
            {"deployment": "skewed", "dry_run": True},
            {"namespace": FORBIDDEN, "deployment": "skewed"},
            {"namespace": "Bad_Name"},
            {"deployment": "balanced"},
        ]
    ),
    sizes=st.lists(st.integers(1, 40), max_size=8),
    padding=st.integers(0, 2048),
)
def test_a_chunked_body_without_length_is_answered_as_the_same_body_sent_whole(
    fuzz_stack: FuzzStack,
    server: FunctionServer,
    document: dict[str, Any],
    sizes: list[int],
    padding: int,
) -> None:
    data = json.dumps(document).encode() + b" " * padding
    whole = over_the_wire(fuzz_stack, server, http_request(data))
    chunked = over_the_wire(fuzz_stack, server, http_request(chunks_of(data, sizes)))
    assert chunked[0] == whole[0]
    assert strip_instance(chunked[1]) == strip_instance(whole[1])


def strip_instance(answer: Any) -> Any:
    """An answer without what differs between two identical calls (the values measured)."""
    if isinstance(answer, dict) and "results" in answer:
        return [(r["target"], r["action"], r["reason"]) for r in answer["results"]]
    return answer


@hostile.budget(0.1)
@given(
    total=st.integers(1024 * 1024 + 1, 3 * 1024 * 1024),
    chunk=st.sampled_from([1024, 65536, 512 * 1024]),
)
def test_a_chunked_body_over_the_limit_is_a_413(
    fuzz_stack: FuzzStack, server: FunctionServer, total: int, chunk: int
) -> None:
    data = b" " * total
    parts = [data[i : i + chunk] for i in range(0, total, chunk)]
    status, _ = over_the_wire(fuzz_stack, server, http_request(parts))
    assert status == 413


@hostile.budget(0.1)
@given(
    encoding=st.sampled_from(["gzip", "x-gzip", "deflate", "br"]),
    size=st.sampled_from([10, 1024 * 1024, 32 * 1024 * 1024]),
    chunked=st.booleans(),
)
def test_a_compressed_body_on_the_wire_is_a_415_and_never_inflated(
    fuzz_stack: FuzzStack, server: FunctionServer, encoding: str, size: int, chunked: bool
) -> None:
    data = gzip.compress(b'{"deployment": "skewed"}' + b" " * size)
    body: bytes | list[bytes] = [data[:100], data[100:]] if chunked else data
    status, _ = over_the_wire(
        fuzz_stack, server, http_request(body, {**JSON, "Content-Encoding": encoding})
    )
    assert status == 415


REFUSED = {400, 401, 405, 413, 415}

# (what, bytes, the answers it may get): gunicorn refuses what it cannot parse (400) and closes
# the connection on bytes that are not HTTP at all (0); the rest reaches the function.
WIRE_TRICKS: list[tuple[str, bytes, set[int]]] = [
    ("nul-in-header", http_request(b"{}", {**JSON, "X-Junk": "a\x00b"}), {400}),
    ("nul-in-token", http_request(b"{}", {**JSON, "Authorization": f"Bearer {TOKEN}\x00"}), {400}),
    ("latin1-header", http_request(b"{}", {**JSON, "X-Junk": "caf\xe9\xff"}), {200}),
    ("invalid-utf8-query", http_request(b"{}", target=b"/?dry_run=%ff%fe"), {400}),
    ("raw-invalid-utf8-query", http_request(b"{}", target=b"/?dry_run=\xff"), {400}),
    ("nul-query", http_request(b"{}", target=b"/?dry_run=%00"), {400}),
    ("repeated-dry-run", http_request(b"{}", target=b"/?dry_run=true&dry_run=false"), {400}),
    ("unknown-parameter", http_request(b"{}", target=b"/?dryrun=false"), {400}),
    # The path is not read: the default target, a dry run.
    (
        "path-trick",
        http_request(b"{}", target=b"/..%2f..%2fapi/v1/namespaces/fuzz-forbidden"),
        {200},
    ),
    ("long-target", http_request(b"{}", target=b"/?" + b"a" * 200_000), {400}),
    ("head", http_request(b"", method="HEAD"), {405}),
    ("options", http_request(b"", method="OPTIONS"), {405}),
    ("lower-case-post", http_request(b"{}", method="post"), {400}),
    ("unknown-method", http_request(b"{}", method="BREW"), {405}),
    ("no-content-type", http_request(b'{"deployment": "skewed"}', AUTH), {415}),
    ("expect-continue", http_request(b"{}", {**JSON, "Expect": "100-continue"}), {200}),
    (
        "length-and-chunked",  # request smuggling: refused, whichever framing would have won
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        {400},
    ),
    (
        "bad-chunk-size",  # answered 401 unread; the framework then read it, and raised: a 500
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n",
        {400, 401},
    ),
    (
        "bad-chunk-size-admitted",
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n2\r\n{}\r\nzz\r\n0\r\n\r\n",
        {400},
    ),
    (
        "short-body",  # a Content-Length the body never reaches: a truncated request, not run
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close"
        b"\r\n\r\n{}",
        {400},
    ),
    ("http-1.0", b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", {401}),
    ("not-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, {0, 400}),
]


@pytest.mark.parametrize(
    ("name", "raw", "expected"), WIRE_TRICKS, ids=[name for name, _, _ in WIRE_TRICKS]
)
def test_bytes_no_client_library_would_send_are_answered_as_http_says(
    fuzz_stack: FuzzStack, server: FunctionServer, name: str, raw: bytes, expected: set[int]
) -> None:
    status, _ = over_the_wire(fuzz_stack, server, raw)
    assert status in expected, name
