"""The webhook token from AWS Secrets Manager (moto_server): read at first use, re-read once it is
five minutes old (never on a wrong token), kept while the store is down once it has been read."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra.stack.moto import TEST_KEYS, Moto, start_moto
from infra.stack.processes import free_port
from pod_rebalancer.adapters.secretsmanager import SecretsManagerToken
from pod_rebalancer.errors import SecretsError
from tests.entry import fresh_main


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Moto:
    for name, value in {
        **TEST_KEYS,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto.url,
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return moto


def new_secret(moto: Moto, value: str) -> str:
    answer = moto.client("secretsmanager").create_secret(
        Name=f"pod-rebalancer/webhook-{uuid.uuid4().hex[:8]}", SecretString=value
    )
    arn: str = answer["ARN"]
    return arn


def rotate(moto: Moto, arn: str, value: str) -> None:
    moto.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=value)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_token_is_read_once_and_again_after_five_minutes(aws: Moto) -> None:
    arn = new_secret(aws, "first\n")
    clock = Clock()
    token = SecretsManagerToken(arn, clock=clock)

    assert token() == "first"
    rotate(aws, arn, "second")
    clock.now += 299
    assert token() == "first"  # still within five minutes of the read
    clock.now += 1
    assert token() == "second"  # a rotation takes effect without a redeploy


def test_a_store_that_goes_down_after_a_read_keeps_the_last_token(
    aws: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = start_moto(tmp_path)  # a store of its own, to take down
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", store.url)
    arn = new_secret(store, "kept")
    clock = Clock()
    token = SecretsManagerToken(arn, clock=clock)
    assert token() == "kept"

    store.stop()
    clock.now += 301
    assert token() == "kept"
    with pytest.raises(SecretsError, match="could not read"):
        SecretsManagerToken(arn, clock=clock)()  # never read: nobody can be checked


def test_a_missing_secret_is_a_secrets_error(aws: Moto) -> None:
    arn = new_secret(aws, "x").rsplit("-", 1)[0] + "-absent"
    with pytest.raises(SecretsError):
        SecretsManagerToken(arn)()


def lambda_handler() -> Any:
    return fresh_main().lambda_handler


def url_call(token: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST"}},
        "rawQueryString": "",
        "body": json.dumps({"namespace": "Not_Valid"}),  # a 400 proves the caller was admitted
        "isBase64Encoded": False,
    }


def configure(monkeypatch: pytest.MonkeyPatch, arn: str) -> None:
    monkeypatch.setenv("PROMETHEUS_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("KUBE_NAMESPACE", "posthog")
    monkeypatch.setenv("DEPLOYMENT_NAME", "ingestion-consumer")
    monkeypatch.setenv("WEBHOOK_TOKEN_SECRET_ARN", arn)


def test_the_lambda_admits_the_token_held_in_secrets_manager_only(
    aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = new_secret(aws, "from-secrets-manager")
    configure(monkeypatch, arn)
    handler = lambda_handler()

    assert handler(url_call("from-secrets-manager"), None)["statusCode"] == 400
    assert handler(url_call("guess"), None)["statusCode"] == 401
    rotate(aws, arn, "rotated")
    # A wrong token never makes the function read the store again: the old token still works
    # until the five minutes are up.
    assert handler(url_call("rotated"), None)["statusCode"] == 401
    assert handler(url_call("from-secrets-manager"), None)["statusCode"] == 400


def test_an_unreadable_secret_is_a_503_for_everyone(
    aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = new_secret(aws, "x")
    configure(monkeypatch, arn)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")

    response = lambda_handler()(url_call("x"), None)

    assert response["statusCode"] == 503
    assert "x" not in json.loads(response["body"])["error"].split()
