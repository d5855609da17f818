"""The webhook token from AWS Secrets Manager (WEBHOOK_TOKEN_SECRET_ARN).

Read at first use and again once it is five minutes old — never because a caller presented a
wrong token, so a stranger cannot make the function hammer the store. A rotation therefore takes
effect within five minutes without a redeploy. boto3 is imported only when this is used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pod_rebalancer.errors import SecretsError
from pod_rebalancer.logs import get_logger

REREAD_AFTER_SECONDS = 5 * 60


class SecretsManagerToken:
    def __init__(
        self,
        arn: str,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = REREAD_AFTER_SECONDS,
    ) -> None:
        self._arn = arn
        self._client = client
        self._clock = clock
        self._max_age = max_age
        self._value: str | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._read_at >= self._max_age:
                try:
                    self._value = self._read()
                except SecretsError as exc:
                    if self._value is None:
                        raise
                    # The store is down but a token was read before: keep it a while longer
                    # rather than lock every caller out.
                    get_logger().warning("kept the last webhook token: %s", exc)
                self._read_at = now
            return self._value

    def _read(self) -> str | None:
        import botocore.exceptions  # noqa: PLC0415  (imported only when this is used)

        try:
            if self._client is None:
                import boto3  # noqa: PLC0415

                region = self._arn.split(":")[3]
                self._client = boto3.session.Session().client("secretsmanager", region_name=region)
            answer = self._client.get_secret_value(SecretId=self._arn)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SecretsError(f"could not read {self._arn}: {exc}") from exc
        text = answer.get("SecretString")
        if not isinstance(text, str):
            raise SecretsError(f"{self._arn} holds no SecretString")
        return text.strip() or None
