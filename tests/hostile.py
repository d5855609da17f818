"""Hostile input for the fuzz suites: strategies of bodies, names, headers, query strings and
events that a broken or malicious sender could produce, and the tripwire that proves a refused
input reached no dependency.

The strategies produce *wire* values (bytes, header dicts, raw query strings), not Python objects
a client library would clean up, so the function sees exactly what a hostile sender can send.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------------- budget


def examples(fraction: float) -> int:
    """A share of the active profile's max_examples, for a property whose examples are costly."""
    return max(5, int(settings.default.max_examples * fraction))


def budget(fraction: float = 1.0) -> settings:
    """The active profile (scaled by `fraction`) for a property that uses the entry-point
    fixtures: they are built once per test and hold nothing an example changes (the app, the
    tripwires, the captured output, read afresh by each example)."""
    return settings(
        max_examples=examples(fraction),
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


# ---------------------------------------------------------------------- big values, briefly shown


class Blob(bytes):
    """Bytes that hypothesis reports by size and head: a megabyte body printed in full helps
    nobody, and hypothesis warns (an error here) when asked to."""

    def __repr__(self) -> str:
        head = bytes(self[:80])
        return f"Blob({head!r}{'...' if len(self) > 80 else ''}, {len(self)} bytes)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class Text(str):
    """A str that hypothesis reports by size and head (see Blob)."""

    __slots__ = ()

    def __repr__(self) -> str:
        head = str(self[:60])
        return f"Text({head!r}{'...' if len(self) > 60 else ''}, {len(self)} chars)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


# ---------------------------------------------------------------------- names

# Each is refused by the DNS-1123 rules, so none may ever reach PromQL, a label selector or a URL.
INJECTIONS = [
    'x"} or vector(1) #',
    'a"}[5m]) or on() vector(1',
    'posthog",container=~".+',
    'posthog"} or sum(rate(container_cpu_usage_seconds_total[5m])) by (pod) #',
    "app=x,tier!=y",
    "app in (x,y)",
    "!app",
    "a,b",
    "a=b",
    "..",
    "../",
    "../kube-system",
    "..%2f..%2fkube-system",
    "%2e%2e%2f",
    "%2F",
    "a%2Fb",
    "a/b",
    "a\\b",
    "kube-system/",
    "?watch=true",
    "#frag",
    "a b",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\x00b",
    "\x00",
    "",
    " ",
    "-leading",
    "trailing-",
    "UPPER",
    "under_score",
    "ünïcödé",
    "ｐｏｓｔｈｏｇ",  # full-width letters that normalise to "posthog"  # noqa: RUF001
    "posthog\u200b",  # a zero-width space
    "\ud800",  # a lone surrogate, as JSON's \ud800 escape decodes
    "a" * 64,
    "a" * 254,
    "a." * 127 + "a",
    Text("a" * 100_000),
    "*",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "' OR '1'='1",
]

_VALID_LABEL = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")


def names() -> st.SearchStrategy[str]:
    """Hostile names, and valid ones beside them so that both branches of the edge are run."""
    return st.one_of(
        st.sampled_from(INJECTIONS),
        _VALID_LABEL,
        st.text(max_size=80),
        st.builds(lambda a, b: a + b, _VALID_LABEL, st.sampled_from(INJECTIONS)),
    )


# ---------------------------------------------------------------------- JSON of any shape


def _text() -> st.SearchStrategy[str]:
    # Any code point, NUL and lone surrogates included (JSON can carry them as \u escapes).
    return st.text(st.characters(codec=None), max_size=40)


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**300, max_value=10**400),
        st.floats(allow_nan=False, allow_infinity=False),
        _text(),
        st.sampled_from(INJECTIONS),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(
                st.one_of(_text(), _MANUAL_KEYS, _ALERTMANAGER_KEYS), children, max_size=5
            ),
        ),
        max_leaves=max_leaves,
    )


_MANUAL_KEYS = st.sampled_from(["namespace", "deployment", "dry_run"])
_ALERTMANAGER_KEYS = st.sampled_from(
    ["version", "status", "alerts", "labels", "groupKey", "truncatedAlerts", "receiver"]
)


def encode(value: Any) -> bytes:
    """JSON text as a sender would write it; lone surrogates kept as \\u escapes."""
    return Blob(json.dumps(value, ensure_ascii=True).encode())


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    """Arrays or objects nested two to thousands of levels deep, closed or left open: never a
    valid request (a name nested in a name is no string)."""
    depth = draw(st.one_of(st.integers(2, 50), st.integers(50, 5_000), st.just(100_000)))
    opener, closer = draw(
        st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"namespace":', "}"), ('{"alerts":', "}")])
    )
    inner = draw(st.sampled_from(["null", "1", '"x"', "[]", "{}"]))
    closed = draw(st.booleans())
    return Blob((opener * depth + inner + (closer * depth if closed else "")).encode())


# ---------------------------------------------------------------------- raw bodies


@st.composite
def duplicate_keys(draw: st.DrawFn) -> tuple[bytes, str]:
    """An object with one key twice (an allowed target first, a forbidden one last, or the
    reverse), and the path of the duplicated key."""
    key = draw(st.sampled_from(["namespace", "deployment", "dry_run"]))
    first, last = draw(
        st.permutations(['"kube-system"', '"posthog"'] if key != "dry_run" else ["true", "false"])
    )
    inside_alert = draw(st.booleans())
    if not inside_alert:
        return f'{{"{key}": {first}, "{key}": {last}}}'.encode(), key
    label = "namespace" if key == "dry_run" else key
    first, last = '"kube-system"', '"posthog"'
    body = (
        '{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": '
        f'{{"{label}": {first}, "{label}": {last}}}}}]}}'
    )
    return body.encode(), f"alerts.0.labels.{label}"


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@st.composite
def non_finite_numbers(draw: st.DrawFn) -> bytes:
    literal = draw(st.sampled_from(NON_FINITE))
    template = draw(
        st.sampled_from(
            [
                "{}",
                '{{"dry_run": {}}}',
                '{{"namespace": {}}}',
                '{{"version": "4", "status": "firing", "truncatedAlerts": {}, "alerts": []}}',
                '{{"version": "4", "status": "firing", "alerts": [], "extra": {}}}',
                "[{}]",
            ]
        )
    )
    return template.format(literal).encode()


def not_utf8() -> st.SearchStrategy[bytes]:
    """Bodies that are not UTF-8: other encodings of valid JSON, stray bytes, a BOM."""
    document = st.sampled_from(['{"namespace": "kube-system"}', '{"dry_run": true}', "{}"])
    return st.one_of(
        st.builds(
            lambda text, codec: text.encode(codec),
            document,
            st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"]),
        ),
        st.builds(lambda text: b"\xef\xbb\xbf" + text.encode(), document),
        st.builds(
            lambda junk: b'{"namespace": "' + junk + b'"}',
            st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf5\x80\x80\x80"]),
        ),
    )


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Every kind of body bytes at once, for the properties that hold whatever the body is."""
    return st.one_of(
        st.builds(encode, json_values()),
        deep_json(),
        duplicate_keys().map(lambda pair: pair[0]),
        non_finite_numbers(),
        not_utf8(),
        st.binary(max_size=200),
        st.builds(lambda value, cut: encode(value)[:cut], json_values(), st.integers(0, 50)),
        st.just(b""),
        st.just(b"   \n"),
    )


# ---------------------------------------------------------------------- wire models, broken


def valid_alert(**labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "PodCPUImbalance", **labels},
        "annotations": {"summary": "CPU imbalance"},
        "startsAt": "2026-11-22T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "c2bdb9b5b1f3c1e0",
    }


def valid_webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="PodCPUImbalance"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "pod-rebalancer",
        "groupLabels": {"alertname": "PodCPUImbalance"},
        "commonLabels": {"alertname": "PodCPUImbalance"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts) or [valid_alert()],
    }


# Each field of the two wire models with values of every JSON type it must refuse.
_NOT_STRING = [None, 1, 1.5, True, [], {}, ["posthog"], {"a": "b"}]
_NOT_BOOL = [None, 0, 1, "true", "yes", [], {}, 1.0]
_NOT_LIST = [None, 1, "alerts", {}, {"0": {}}, True]
_NOT_DICT = [None, 1, "labels", [], [["namespace", "x"]], True]
_NOT_INT = [None, "many", [], {}, 1.5, "1e3"]

MANUAL_WRONG: dict[str, list[Any]] = {
    "namespace": _NOT_STRING,
    "deployment": _NOT_STRING,
    "dry_run": _NOT_BOOL,
    "sweep": _NOT_BOOL,
}


@st.composite
def broken_manual(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A manual body with one field of the wrong type (or unknown), and that field's name."""
    body: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={"namespace": st.just("kube-system"), "dry_run": st.booleans()},
        )
    )
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(MANUAL_WRONG)))
        body = {k: v for k, v in body.items() if k != name}
        body[name] = draw(st.sampled_from(MANUAL_WRONG[name]))
    else:
        name = draw(
            st.sampled_from(["dryrun", "Namespace", "deployments", "sweeps", "force", "target"])
        )
        body[name] = draw(json_values(max_leaves=3))
    return body, name


# (path, wrong values): the path as the 400's `field` names it.
_ALERTMANAGER_WRONG: list[tuple[tuple[str | int, ...], list[Any]]] = [
    (("version",), [None, 4, 4.0, "3", "", [], {}]),
    (("status",), [None, "weird", "FIRING", 1, [], {}]),
    (("alerts",), _NOT_LIST),
    (("groupLabels",), _NOT_DICT),
    (("commonLabels",), _NOT_DICT),
    (("truncatedAlerts",), _NOT_INT),
    (("alerts", 0), [None, 1, "alert", [], True]),
    (("alerts", 0, "status"), [None, "weird", 1, [], {}]),
    (("alerts", 0, "labels"), _NOT_DICT),
    (("alerts", 0, "labels", "namespace"), _NOT_STRING),
    (("alerts", 0, "labels", "deployment"), _NOT_STRING),
    (("alerts", 0, "labels", "container"), _NOT_STRING),
    (("alerts", 0, "labels", "alertname"), _NOT_STRING),
    (("alerts", 0, "annotations"), _NOT_DICT),
    (("alerts", 0, "annotations", "summary"), _NOT_STRING),
]
_ALERTMANAGER_REQUIRED = [("version",), ("status",), ("alerts",), ("alerts", 0, "status")]


def _set(document: Any, path: tuple[str | int, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


def _delete(document: Any, path: tuple[str | int, ...]) -> None:
    for step in path[:-1]:
        document = document[step]
    del document[path[-1]]


@st.composite
def broken_alertmanager(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A webhook with one field wrong or missing (and everything else valid), and the field's
    path. The alert under change is preceded by a few valid ones, so paths are not all `0`."""
    before = draw(st.integers(0, 3))
    alerts = [valid_alert(namespace="kube-system", deployment=f"d{i}") for i in range(before + 1)]
    body = valid_webhook(*alerts)
    if draw(st.booleans()):
        path, wrong = draw(st.sampled_from(_ALERTMANAGER_WRONG))
        path = tuple(before if step == 0 else step for step in path)
        _set(body, path, draw(st.sampled_from(wrong)))
    else:
        path = draw(st.sampled_from(_ALERTMANAGER_REQUIRED))
        path = tuple(before if step == 0 else step for step in path)
        _delete(body, path)
    return body, ".".join(str(step) for step in path)


@st.composite
def huge_alertmanager(draw: st.DrawFn) -> bytes:
    """Big but under the 1 MiB limit: many alerts, huge label values, long strings everywhere
    that the function keeps (groupKey, receiver and fingerprints are logged with decisions)."""
    count, width = draw(
        st.sampled_from([(1, 500_000), (10, 50_000), (100, 5_000), (2_000, 150), (6_000, 16)])
    )
    namespace = draw(st.sampled_from(["kube-system", "a" * (width // 4), "posthog"]))
    targets = draw(st.sampled_from([1, 50, 100, 101, count]))
    statuses = draw(st.sampled_from([["firing"], ["resolved"], ["firing", "resolved"]]))
    alerts = [
        {
            "status": statuses[i % len(statuses)],
            "labels": {"namespace": namespace, "deployment": f"d{i % targets}"},
            "annotations": {"summary": "x" * (width // 4)},
            "fingerprint": "f" * width,
        }
        for i in range(count)
    ]
    long = min(count * width, 100_000)

    def document() -> bytes:
        return encode(
            {
                "version": "4",
                "status": "firing",
                "groupKey": "g" * long,
                "receiver": "r" * long,
                "alerts": alerts,
            }
        )

    body = document()
    while len(body) > 1024 * 1024:  # as many alerts as fit
        alerts = alerts[: len(alerts) * 9 // 10]
        body = document()
    return body


def alertmanager_with(labels: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    alert = valid_alert()
    alert["status"] = status
    alert["labels"] = labels
    return valid_webhook(alert)


# ---------------------------------------------------------------------- HTTP framing

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json;charset=latin-1",
    "application/json; charset=utf-16",
    "application/cloudevents+json",
    "application/vnd.api+json",
    "Application/JSON",
    "application/json, text/plain",
    "text/plain",
    "text/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "",
    "json",
    ";",
    "application/json\x00",
]
CONTENT_ENCODINGS = [
    "gzip",
    "deflate",
    "br",
    "compress",
    "x-gzip",
    "identity",
    "gzip, identity",
    "",
]
METHODS = ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "CONNECT", "PROPFIND"]

QUERY_PARTS = [
    "dry_run=true",
    "dry_run=false",
    "dry_run=",
    "dry_run",
    "dry_run=maybe",
    "dry_run=%00",
    "dry_run=%ff",
    "dryrun=true",
    "DRY_RUN=false",
    "dry_run[]=true",
    "namespace=kube-system",
    "deployment=..%2f..%2fsecret",
    "%ff=1",
    "a=%c0%af",
    "x=" + "y" * 5000,
]


def query_strings() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(QUERY_PARTS), max_size=4).map("&".join)


def header_values() -> st.SearchStrategy[str]:
    """Header values as a WSGI server hands them on: latin-1 text (werkzeug decodes the bytes so),
    NUL and other control bytes included; a line break would end the header."""
    return st.text(
        st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"),
        max_size=60,
    )


# ---------------------------------------------------------------------- events


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------- tripwire


@dataclass
class Tripwire:
    """A loopback TCP listener that speaks no protocol: it counts the connections made to it and
    closes each one at once. Pointing a dependency's address here proves the dependency was
    never contacted (a client that connects also fails, so the run cannot succeed by accident)."""

    sock: socket.socket = field(default_factory=socket.socket)
    contacts: int = 0

    def __post_init__(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.contacts += 1
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.sock.close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------- what every answer obeys

# Cloud Logging drops a structured entry over 256 KiB: a decision line that long is lost.
MAX_LOG_LINE = 256 * 1024
REFUSALS = {400, 401, 405, 413, 415}


def log_problems(output: str) -> list[str]:
    """Lines of the function's output that are not one JSON object each, or too long to log."""
    problems = []
    for line in output.splitlines():
        if not line.strip():
            continue
        if len(line.encode()) > MAX_LOG_LINE:
            problems.append(f"a log line of {len(line.encode())} bytes: {line[:200]}")
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(f"not a JSON line: {line[:200]}")
            continue
        if not isinstance(entry, dict):
            problems.append(f"not a JSON object: {line[:200]}")
    return problems


def check_refusal(status: int, body: Any) -> None:
    """A 4xx names what was wrong: the 400's `field` (named in its message too), an error each."""
    assert status in REFUSALS, (status, body)
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    if status == 400:
        assert isinstance(body.get("field"), str), body
        assert body["field"], body
        assert body["error"].startswith(body["field"] + ":"), body
