"""The `rebalance` HTTP entry point through functions-framework's real app: every status code."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from tests.entry import MAIN
from tests.unit.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client() -> FlaskClient:
    return create_app("rebalance", str(MAIN), "http").test_client()


def test_refuses_methods_other_than_post(env: pytest.MonkeyPatch) -> None:
    for method in ("get", "put", "delete", "patch"):
        response = getattr(client(), method)("/", headers=AUTH)
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
        assert "POST" in response.get_json()["error"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", f"bearer{TOKEN}"],
)
def test_refuses_missing_or_wrong_token(env: pytest.MonkeyPatch, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client().post("/", json={"dry_run": True}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.get_data(as_text=True)


def test_token_file_is_reread_so_it_can_be_rotated(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    env.delenv("WEBHOOK_TOKEN")
    env.setenv("WEBHOOK_TOKEN_FILE", str(token_file))
    app = client()
    bad = {"namespace": "Bad"}  # a 400 proves the token was accepted without touching metrics
    assert app.post("/", json=bad, headers={"Authorization": "Bearer first"}).status_code == 400
    token_file.write_text("second\n")
    assert app.post("/", json=bad, headers={"Authorization": "Bearer first"}).status_code == 401
    assert app.post("/", json=bad, headers={"Authorization": "Bearer second"}).status_code == 400


def test_refuses_every_call_when_no_token_is_configured(env: pytest.MonkeyPatch) -> None:
    env.delenv("WEBHOOK_TOKEN")
    assert client().post("/", json={"namespace": "Bad"}).status_code == 401


def test_allow_unauthenticated_admits_calls_without_token(env: pytest.MonkeyPatch) -> None:
    env.delenv("WEBHOOK_TOKEN")
    env.setenv("ALLOW_UNAUTHENTICATED", "true")
    assert client().post("/", json={"namespace": "Bad"}).status_code == 400


def test_refuses_a_body_over_one_mebibyte(env: pytest.MonkeyPatch) -> None:
    body = b'{"namespace": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = client().post("/", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_refuses_an_oversized_body_sent_without_content_length(env: pytest.MonkeyPatch) -> None:
    # As a WSGI server presents a chunked upload: no CONTENT_LENGTH, input marked terminated.
    response = client().post(
        "/",
        input_stream=io.BytesIO(b" " * (1024 * 1024 + 10)),
        headers={**AUTH, "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_refuses_bodies_that_are_not_json(env: pytest.MonkeyPatch, content_type: str) -> None:
    response = client().post(
        "/", data='{"dry_run": true}', headers={**AUTH, "Content-Type": content_type}
    )
    assert response.status_code == 415


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-gzip", "gzip, identity"])
def test_compressed_bodies_are_refused_with_415(env: pytest.MonkeyPatch, encoding: str) -> None:
    # Never inflated, so no compressed bomb gets past the 1 MiB limit: 64 MiB of spaces here.
    body = gzip.compress(b" " * (64 * 1024 * 1024))
    response = client().post(
        "/",
        data=body,
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status_code == 415
    assert "Content-Encoding" in response.get_json()["error"]


def test_identity_encoding_is_the_body_as_it_is(env: pytest.MonkeyPatch) -> None:
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "identity"}
    assert client().post("/", data='{"namespace": "Bad"}', headers=headers).status_code == 400


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "us-ascii"])
def test_a_charset_other_than_utf8_is_refused_with_415(
    env: pytest.MonkeyPatch, charset: str
) -> None:
    headers = {**AUTH, "Content-Type": f"application/json; charset={charset}"}
    response = client().post("/", data='{"dry_run": true}', headers=headers)
    assert response.status_code == 415
    assert "charset" in response.get_json()["error"]


def test_malformed_json_is_a_400_naming_the_body(env: pytest.MonkeyPatch) -> None:
    response = client().post(
        "/", data="{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"namespace": 'x"} or vector(1) #'}, "namespace"),
        ({"namespace": "UPPER"}, "namespace"),
        ({"deployment": 'a"}[5m]) or on() vector(1'}, "deployment"),
        ({"deployment": "-leading-dash"}, "deployment"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"namespace": 7}, "namespace"),
        ({"unknown": 1}, "unknown"),
        ([1, 2], "body"),
    ],
)
def test_invalid_fields_are_a_400_naming_the_field(
    env: pytest.MonkeyPatch, body: object, field: str
) -> None:
    response = client().post("/", json=body, headers=AUTH)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["field"] == field
    assert field in payload["error"]


def test_invalid_dry_run_query_flag_is_a_400(env: pytest.MonkeyPatch) -> None:
    response = client().post("/?dry_run=maybe", json={}, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["field"] == "dry_run"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("dryrun=true", "dryrun"),
        ("DRY_RUN=true", "DRY_RUN"),
        ("dry_run=true&force=1", "force"),
        ("dry_run=true&dry_run=false", "dry_run"),
        ("dry_run=false&dry_run=true", "dry_run"),
        ("dry_run&dry_run", "dry_run"),
    ],
)
def test_an_unknown_or_repeated_query_parameter_is_a_400_naming_it(
    env: pytest.MonkeyPatch, query: str, field: str
) -> None:
    # A typo must not make a call run for real, and which of two values counts must not depend
    # on who reads the query string: refused before anything is asked.
    response = client().post(f"/?{query}", json={}, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_unreachable_kubernetes_api_is_a_503_with_nothing_done(env: pytest.MonkeyPatch) -> None:
    response = client().post("/", json={"dry_run": True}, headers=AUTH)
    assert response.status_code == 503
    (result,) = response.get_json()["results"]
    assert result["action"] == "failed"
    assert result["reason"] == "dependency_unavailable"
    assert result["evicted"] == []
    assert result["selected"] == []
    assert "kubernetes" in result["errors"]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_too_deeply_is_a_400_naming_the_body(
    env: pytest.MonkeyPatch, depth: int
) -> None:
    body = "[" * depth + "]" * depth
    response = client().post("/", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


def test_deeply_nested_labels_of_an_alert_are_a_400(env: pytest.MonkeyPatch) -> None:
    nested = "{}"
    for _ in range(900):
        nested = '{"a":' + nested + "}"
    body = '{"version":"4","status":"firing","alerts":[{"status":"firing","labels":' + nested
    response = client().post(
        "/", data=body + "}]}", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["field"].startswith("alerts.0.labels")


def test_a_cluster_lookup_failing_at_startup_is_a_503_not_a_500(
    eks_down: pytest.MonkeyPatch,
) -> None:
    response = client().post("/", json={"dry_run": True}, headers=AUTH)
    assert response.status_code == 503
    (result,) = response.get_json()["results"]
    assert (result["action"], result["reason"]) == ("failed", "dependency_unavailable")
    assert "DescribeCluster" in result["errors"]["kubernetes"]


def test_a_refused_call_never_reaches_the_cloud_api(eks_down: pytest.MonkeyPatch) -> None:
    # The token is checked before any client is built, so no lookup is made for a stranger.
    app = client()
    assert app.post("/", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app.post("/", json={"namespace": "Bad"}, headers=AUTH).status_code == 400


def test_empty_body_runs_the_default_target(env: pytest.MonkeyPatch) -> None:
    response = client().post("/", headers=AUTH)
    (result,) = response.get_json()["results"]
    assert result["target"] == {"namespace": "posthog", "deployment": "ingestion-consumer"}


def test_target_outside_the_allow_list_is_skipped_without_a_query(
    env: pytest.MonkeyPatch,
) -> None:
    response = client().post("/", json={"namespace": "kube-system"}, headers=AUTH)
    assert response.status_code == 200  # every server is down, so nothing was asked
    (result,) = response.get_json()["results"]
    assert (result["action"], result["reason"]) == ("skipped", "target_not_allowed")


def test_invalid_configuration_is_a_500_naming_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("CPU_VARIANCE_THRESHOLD", "lots")
    response = client().post("/", json={}, headers=AUTH)
    assert response.status_code == 500
    payload = response.get_json()
    assert payload["variable"] == "CPU_VARIANCE_THRESHOLD"
    assert "CPU_VARIANCE_THRESHOLD" in payload["error"]


def test_logs_one_json_line_per_decision_without_secrets(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client().post("/", json={"namespace": "kube-system"}, headers=AUTH)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    decisions = [line for line in lines if line.get("event") == "decision"]
    assert len(decisions) == 1
    assert decisions[0]["severity"] == "INFO"
    assert decisions[0]["reason"] == "target_not_allowed"
    assert decisions[0]["target"] == "kube-system/ingestion-consumer"
    assert all(TOKEN not in json.dumps(line) for line in lines)


def sign(body: bytes, secret: str, stamp: str | None = None) -> str:
    message = body if stamp is None else stamp.encode() + b":" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@pytest.fixture
def hmac_env(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    env.delenv("WEBHOOK_TOKEN")
    env.setenv("WEBHOOK_HMAC_SECRET", "grafana-shared-secret")
    return env


BAD_BODY = json.dumps({"namespace": "Bad"}).encode()  # a 400 proves the call was admitted
JSON = {"Content-Type": "application/json"}


def test_a_correct_body_signature_admits_the_call(hmac_env: pytest.MonkeyPatch) -> None:
    headers = {**JSON, "X-Grafana-Alerting-Signature": sign(BAD_BODY, "grafana-shared-secret")}
    assert client().post("/", data=BAD_BODY, headers=headers).status_code == 400


@pytest.mark.parametrize(
    "signature",
    [None, "", "deadbeef", sign(BAD_BODY, "other-secret"), sign(BAD_BODY + b" ", "x")],
)
def test_a_missing_or_wrong_signature_is_refused(
    hmac_env: pytest.MonkeyPatch, signature: str | None
) -> None:
    headers = dict(JSON)
    if signature is not None:
        headers["X-Grafana-Alerting-Signature"] = signature
    assert client().post("/", data=BAD_BODY, headers=headers).status_code == 401


def test_signature_and_token_are_both_required_when_both_are_configured(
    hmac_env: pytest.MonkeyPatch,
) -> None:
    hmac_env.setenv("WEBHOOK_TOKEN", TOKEN)
    signature = {"X-Grafana-Alerting-Signature": sign(BAD_BODY, "grafana-shared-secret")}
    app = client()
    assert app.post("/", data=BAD_BODY, headers={**JSON, **signature}).status_code == 401
    assert app.post("/", data=BAD_BODY, headers={**JSON, **AUTH}).status_code == 401
    both = {**JSON, **AUTH, **signature}
    assert app.post("/", data=BAD_BODY, headers=both).status_code == 400


def test_signed_timestamps_must_be_fresh(hmac_env: pytest.MonkeyPatch) -> None:
    hmac_env.setenv("WEBHOOK_SIGNATURE_TIMESTAMP_HEADER", "X-Grafana-Alerting-Signature-Timestamp")
    app = client()
    for age, status in ((0, 400), (600, 401)):
        stamp = str(int(time.time()) - age)
        headers = {
            **JSON,
            "X-Grafana-Alerting-Signature-Timestamp": stamp,
            "X-Grafana-Alerting-Signature": sign(BAD_BODY, "grafana-shared-secret", stamp),
        }
        assert app.post("/", data=BAD_BODY, headers=headers).status_code == status


def test_the_token_may_come_in_its_own_header_beside_an_oidc_bearer(
    env: pytest.MonkeyPatch,
) -> None:
    headers = {"Authorization": "Bearer eyJ.oidc.token", "X-Pod-Rebalancer-Token": TOKEN}
    assert client().post("/", json={"namespace": "Bad"}, headers=headers).status_code == 400
    headers["X-Pod-Rebalancer-Token"] = "wrong"
    assert client().post("/", json={"namespace": "Bad"}, headers=headers).status_code == 401
