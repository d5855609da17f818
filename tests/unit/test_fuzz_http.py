"""Hostile input to the `rebalance` HTTP entry point, through functions-framework's real app.

Every dependency is a tripwire and the allow-list admits no target the strategies can name, so
whatever is sent must be refused (4xx, the field named) or skipped (`target_not_allowed`,
`alert_resolved`) — never a 5xx, and never with a dependency contacted. Framing that only a real
server shows (chunked uploads, compressed bodies on the wire) is fuzzed in
tests/integration/test_fuzz_http.py.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import re
import time
import zlib
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import example, given
from hypothesis import strategies as st

from tests import hostile
from tests.entry import MAIN
from tests.reliability import record
from tests.unit.conftest import TOKEN, Watched

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
SKIPS = {"target_not_allowed", "alert_resolved"}

# Kubernetes' own rules, written out here rather than imported, so the oracle is independent.
LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_label(name: str) -> bool:
    return len(name) <= 63 and LABEL.fullmatch(name) is not None


def is_subdomain(name: str) -> bool:
    return len(name) <= 253 and SUBDOMAIN.fullmatch(name) is not None


class Edge:
    """The app, the tripwires and the captured output: one request, every invariant checked."""

    def __init__(self, watched: Watched, capsys: pytest.CaptureFixture[str]) -> None:
        self.app: FlaskClient = create_app("rebalance", str(MAIN), "http").test_client()
        self.watched = watched
        self.capsys = capsys

    def send(
        self,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        method: str = "POST",
        query: str = "",
    ) -> tuple[int, Any]:
        self.capsys.readouterr()
        started = time.monotonic()
        response = self.app.open(
            "/", method=method, data=body, headers=headers or {}, query_string=query
        )
        elapsed = time.monotonic() - started
        text = response.get_data(as_text=True)
        output = self.capsys.readouterr()
        record(
            "fuzz",
            cases=1,
            server_errors_on_bad_input=int(response.status_code >= 500),
            dependency_contacts=self.watched.contacts,
        )
        # Never a 5xx; nothing asked of a dependency; every log line one JSON object of a size
        # Cloud Logging keeps; an answer well inside the function's timeout.
        assert response.status_code < 500, text[:2000]
        assert self.watched.contacts == 0, "a dependency was contacted"
        assert hostile.log_problems(output.out + output.err) == []
        assert elapsed < 30, elapsed
        assert len(text) <= 1024 * 1024
        body_json = None if method == "HEAD" else json.loads(text)
        if response.status_code == 200:
            results = body_json["results"]
            assert all(r["action"] == "skipped" and r["reason"] in SKIPS for r in results)
            assert all(r["evicted"] == [] for r in results)
        elif method != "HEAD":
            hostile.check_refusal(response.status_code, body_json)
        record("fuzz", passed=1)
        return response.status_code, body_json


@pytest.fixture
def edge(watched: Watched, capsys: pytest.CaptureFixture[str]) -> Edge:
    return Edge(watched, capsys)


AUTH_HEADERS = st.sampled_from(
    [
        AUTH,
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"bearer {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}\x00"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Pod-Rebalancer-Token": TOKEN},
        {"Authorization": "Bearer eyJ.oidc", "X-Pod-Rebalancer-Token": TOKEN},
        {"Authorization": "Bearer " + "A" * 8000},
    ]
)


@hostile.budget()
@given(
    method=st.one_of(st.just("POST"), st.sampled_from(hostile.METHODS)),
    auth=AUTH_HEADERS,
    content_type=st.one_of(st.none(), st.sampled_from(hostile.CONTENT_TYPES)),
    encoding=st.one_of(st.none(), st.sampled_from(hostile.CONTENT_ENCODINGS)),
    extra=st.dictionaries(
        st.sampled_from(
            ["X-Forwarded-For", "Expect", "X-Junk", "Authorization", "X-Pod-Rebalancer-Token"]
        ),
        hostile.header_values(),
        max_size=2,
    ),
    body=st.one_of(hostile.raw_bodies(), hostile.huge_alertmanager()),
    query=hostile.query_strings(),
)
def test_any_request_is_refused_or_skipped_and_reaches_no_dependency(
    edge: Edge,
    method: str,
    auth: dict[str, str],
    content_type: str | None,
    encoding: str | None,
    extra: dict[str, str],
    body: bytes,
    query: str,
) -> None:
    headers = {**extra, **auth}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    status, _ = edge.send(body, headers, method, query)
    if method != "POST":
        assert status == 405


@hostile.budget()
@given(broken=hostile.broken_manual())
def test_a_manual_body_with_a_wrong_field_is_a_400_naming_it(
    edge: Edge, broken: tuple[dict[str, Any], str]
) -> None:
    body, field = broken
    status, answer = edge.send(hostile.encode(body), JSON)
    assert (status, answer["field"]) == (400, field)


@hostile.budget()
@given(broken=hostile.broken_alertmanager())
@example(broken=({"version": "4", "status": "firing"}, "alerts"))
@example(broken=({"version": 4, "status": "firing", "alerts": []}, "version"))
def test_an_alertmanager_payload_with_a_wrong_field_is_a_400_naming_its_path(
    edge: Edge, broken: tuple[dict[str, Any], str]
) -> None:
    body, field = broken
    status, answer = edge.send(hostile.encode(body), JSON)
    assert (status, answer["field"]) == (400, field)


@hostile.budget()
@given(name=hostile.names(), where=st.sampled_from(["namespace", "deployment"]))
def test_a_hostile_name_in_a_manual_body_never_passes_the_edge(
    edge: Edge, name: str, where: str
) -> None:
    status, answer = edge.send(hostile.encode({where: name}), JSON)
    valid = is_label(name) if where == "namespace" else is_subdomain(name)
    if valid:
        assert status == 200
    else:
        assert (status, answer["field"]) == (400, where)


@hostile.budget()
@given(
    name=hostile.names(),
    label=st.sampled_from(["namespace", "deployment", "container"]),
    status=st.sampled_from(["firing", "resolved"]),
)
@example(name="Bad_Name", label="container", status="firing")
def test_a_hostile_name_in_an_alert_label_is_a_400_naming_that_label(
    edge: Edge, name: str, label: str, status: str
) -> None:
    # An empty label is an absent one (Prometheus' rule): the default is used instead.
    valid = name == "" or (is_label(name) if label == "namespace" else is_subdomain(name))
    code, answer = edge.send(hostile.encode(hostile.alertmanager_with({label: name}, status)), JSON)
    if valid:
        assert code == 200
    else:
        assert (code, answer["field"]) == (400, f"alerts.0.labels.{label}")


@hostile.budget()
@given(body=hostile.deep_json())
@example(body=hostile.Blob(b"[" * 100_000 + b"]" * 100_000))
@example(body=hostile.Blob(b'{"a":' * 5_000 + b"null" + b"}" * 5_000))
def test_json_nested_to_any_depth_is_a_400(edge: Edge, body: bytes) -> None:
    status, _ = edge.send(body, JSON)
    assert status == (413 if len(body) > 1024 * 1024 else 400)


@hostile.budget()
@given(
    encoding=st.sampled_from(["gzip", "deflate", "br", "compress", "x-gzip", "gzip, identity"]),
    compress=st.booleans(),
)
def test_a_compressed_body_is_refused_with_415_naming_the_encoding(
    edge: Edge, encoding: str, compress: bool
) -> None:
    document = b'{"namespace": "kube-system"}'
    body = document
    if compress:
        body = gzip.compress(document) if "gzip" in encoding else zlib.compress(document)
    status, answer = edge.send(body, {**JSON, "Content-Encoding": encoding})
    assert status == 415
    assert "Content-Encoding" in answer["error"]


def test_a_gzip_bomb_is_refused_before_it_is_inflated(edge: Edge) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))  # 64 MiB of spaces in ~64 KiB
    assert len(bomb) < 1024 * 1024
    status, _ = edge.send(bomb, {**JSON, "Content-Encoding": "gzip"})
    assert status == 415


@hostile.budget()
@given(case=hostile.duplicate_keys())
def test_a_duplicate_key_is_a_400_naming_it(edge: Edge, case: tuple[bytes, str]) -> None:
    body, field = case
    status, answer = edge.send(body, JSON)
    assert (status, answer["field"]) == (400, field)
    assert "duplicate" in answer["error"]


@hostile.budget()
@given(body=hostile.non_finite_numbers())
def test_nan_and_infinity_are_not_json_and_a_400(edge: Edge, body: bytes) -> None:
    status, answer = edge.send(body, JSON)
    assert (status, answer["field"]) == (400, "body")


@hostile.budget()
@given(digits=st.integers(4_301, 200_000))
def test_a_number_too_long_to_read_is_a_400(edge: Edge, digits: int) -> None:
    body = b'{"version": "4", "status": "firing", "alerts": [], "truncatedAlerts": '
    status, _ = edge.send(body + b"9" * digits + b"}", JSON)
    assert status == 400


@hostile.budget()
@given(body=hostile.not_utf8())
def test_a_body_that_is_not_utf8_is_a_400_naming_the_body(edge: Edge, body: bytes) -> None:
    status, answer = edge.send(body, JSON)
    assert (status, answer["field"]) == (400, "body")


@hostile.budget()
@given(charset=st.sampled_from(["latin-1", "utf-16", "iso-8859-1", "ascii", "utf-7", "x"]))
def test_a_charset_other_than_utf8_is_refused_with_415(edge: Edge, charset: str) -> None:
    headers = {**AUTH, "Content-Type": f"application/json; charset={charset}"}
    status, answer = edge.send(b'{"namespace": "kube-system"}', headers)
    assert status == 415
    assert "charset" in answer["error"]


@hostile.budget()
@given(name=st.sampled_from(["dryrun", "DRY_RUN", "dry-run", "namespace", "force", "dry_run[]"]))
def test_an_unknown_query_parameter_is_a_400_naming_it(edge: Edge, name: str) -> None:
    # A typo such as `?dryrun=true` must not run for real, as a typo in the body does not.
    status, answer = edge.send(b"{}", JSON, query=f"{name}=true")
    assert status == 400
    assert answer["field"] == name


@hostile.budget()
@given(values=st.lists(st.sampled_from(["true", "false", "", "1", "0"]), min_size=2, max_size=4))
def test_a_repeated_dry_run_parameter_is_a_400_naming_it(edge: Edge, values: list[str]) -> None:
    # Which of several values counts differs between proxies and frameworks: refuse them all.
    query = "&".join(f"dry_run={value}" for value in values)
    status, answer = edge.send(b'{"namespace": "kube-system"}', JSON, query=query)
    assert (status, answer["field"]) == (400, "dry_run")


@hostile.budget()
@given(
    method=st.sampled_from(hostile.METHODS),
    body=st.one_of(st.just(b""), hostile.raw_bodies()),
    auth=AUTH_HEADERS,
)
def test_every_method_but_post_is_a_405(
    edge: Edge, method: str, body: bytes, auth: dict[str, str]
) -> None:
    status, _ = edge.send(body, {**auth, "Content-Type": "application/json"}, method)
    assert status == 405


@hostile.budget(0.2)
@given(
    count=st.integers(101, 3_000),
    status=st.sampled_from(["firing", "resolved"]),
)
def test_a_payload_naming_more_targets_than_one_call_may_handle_is_a_400(
    edge: Edge, count: int, status: str
) -> None:
    alerts = [
        {"status": status, "labels": {"namespace": "kube-system", "deployment": f"d{i}"}}
        for i in range(count)
    ]
    body = hostile.encode({"version": "4", "status": status, "alerts": alerts})
    code, answer = edge.send(body, JSON)
    assert (code, answer["field"]) == (400, "alerts")


@hostile.budget()
@given(key=st.text(min_size=1, max_size=10).map(lambda k: hostile.Text(k * 2_000)))
def test_an_error_about_a_huge_key_names_it_briefly(edge: Edge, key: str) -> None:
    body = hostile.alertmanager_with({key: 1})
    status, answer = edge.send(hostile.encode(body), JSON)
    assert status == 400
    assert answer["field"].startswith("alerts.0.labels.")
    assert len(answer["error"]) < 1_000


@hostile.budget(0.2)  # each example is up to 1 MiB of payload
@given(body=hostile.huge_alertmanager())
def test_a_huge_webhook_is_answered_with_bounded_logs_and_response(edge: Edge, body: bytes) -> None:
    # Edge.send checks the bounds: every log line one JSON object Cloud Logging keeps (256 KiB)
    # and the answer well inside the timeout.
    status, _ = edge.send(body, JSON)
    assert status in (200, 400)


def near(secret: str) -> st.SearchStrategy[str]:
    """The secret, and strings a guesser would try around it."""
    return st.one_of(
        st.just(secret),
        st.builds(lambda a, b: a + secret + b, hostile.header_values(), hostile.header_values()),
        st.just(secret.upper()),
        st.just(secret[:-1]),
        st.just(secret + "\x00"),
        st.just(" " + secret + " "),
        hostile.header_values(),
    )


@hostile.budget()
@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
    bearer=st.one_of(st.none(), near(TOKEN)),
    own=st.one_of(st.none(), near(TOKEN)),
)
def test_only_the_token_admits_a_call(
    edge: Edge, scheme: str, bearer: str | None, own: str | None
) -> None:
    headers = dict(JSON)
    del headers["Authorization"]
    if bearer is not None:
        headers["Authorization"] = f"{scheme} {bearer}"
    if own is not None:
        headers["X-Pod-Rebalancer-Token"] = own
    status, _ = edge.send(b'{"namespace": "Bad"}', headers)  # a 400 once admitted
    by_bearer = bearer is not None and scheme.lower() == "bearer" and bearer.strip() == TOKEN
    by_own = own is not None and own.strip() == TOKEN
    assert status == (400 if by_bearer or by_own else 401)


SECRET = "grafana-shared-secret"
STAMP = "X-Grafana-Alerting-Signature-Timestamp"


@pytest.fixture
def signed_edge(
    watched: Watched, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Edge:
    env.delenv("WEBHOOK_TOKEN")
    env.setenv("WEBHOOK_HMAC_SECRET", SECRET)
    env.setenv("WEBHOOK_SIGNATURE_TIMESTAMP_HEADER", STAMP)
    return Edge(watched, capsys)


@hostile.budget()
@given(
    body=st.one_of(st.just(b'{"namespace": "Bad"}'), hostile.raw_bodies()),
    stamp=st.one_of(
        st.none(),
        st.sampled_from(["nan", "inf", "-inf", "1e309", "", " ", "0x10", "1_0"]),
        st.integers(-400, 400).map(lambda skew: f"now{skew:+d}"),
        hostile.header_values(),
    ),
    signature=st.sampled_from(["right", "right-upper", "prefixed", "other-secret", "none", "junk"]),
)
def test_only_a_fresh_signature_of_the_very_body_admits_a_call(
    signed_edge: Edge, body: bytes, stamp: str | None, signature: str
) -> None:
    now = int(time.time())
    if stamp is not None and stamp.startswith("now"):
        stamp = str(now + int(stamp[3:]))
    headers = {"Content-Type": "application/json"}
    if stamp is not None:
        headers[STAMP] = stamp
    # As the edge reads it: the timestamp header stripped, then `timestamp:body` signed.
    message = (stamp or "").strip().encode() + b":" + body
    key = SECRET if signature != "other-secret" else "other"
    digest = hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    presented = {
        "right": digest,
        "right-upper": digest.upper(),
        "prefixed": "sha256=" + digest,
        "other-secret": digest,
        "none": None,
        "junk": "sha256=" + "0" * 64,
    }[signature]
    if presented is not None:
        headers["X-Grafana-Alerting-Signature"] = presented
    status, _ = signed_edge.send(body, headers)
    skew = _skew(now, stamp)
    correct = signature in ("right", "right-upper", "prefixed")
    if len(body) > 1024 * 1024:
        assert status == 413  # too large to read, so too large to check: refused unread
    elif correct and skew is not None and skew <= 295:
        assert status != 401
    elif not correct or skew is None or skew > 305:  # (the clock moves: no judging the edge)
        assert status == 401


def _skew(now: int, stamp: str | None) -> float | None:
    """How far the timestamp is from now, in seconds; None when it is no finite number."""
    try:
        value = float((stamp or "").strip())
    except ValueError:
        return None
    return abs(now - value) if math.isfinite(value) else None
