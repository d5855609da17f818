"""EKS bearer tokens, verified the way aws-iam-authenticator does it.

A token is `k8s-aws-v1.` + base64url(a presigned STS GetCallerIdentity URL whose signature covers
the `x-k8s-aws-id: <cluster id>` header). The authenticator checks the URL's shape and age, sends
the GET to STS with that header (STS checks the signature, so a token minted for another cluster
fails there), and maps the caller's ARN to a Kubernetes user. moto_server does not check
signatures, so when the scenario lists an access key's secret the simulator checks the SigV4
query signature itself, as STS would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import httpx

PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
TOKEN_LIFETIME = timedelta(minutes=15)  # STS honours the URL for 15 minutes whatever X-Amz-Expires
CACHE_SECONDS = 60.0
# The authenticator only ever calls STS (no open proxy): the global and regional endpoints.
AWS_STS_HOST = re.compile(r"sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?")
ASSUMED_ROLE = re.compile(
    r"arn:(?P<partition>[^:]+):sts::(?P<account>\d+):assumed-role/(?P<path>.+)"
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class TokenError(Exception):
    """Why a token was refused (the client only ever sees 401)."""


def canonical_arn(arn: str) -> str:
    """An assumed-role session ARN as the role's IAM ARN (aws-iam-authenticator's Canonicalize)."""
    match = ASSUMED_ROLE.fullmatch(arn)
    if match is None:
        return arn
    role = match.group("path").rsplit("/", 1)[0]  # the last segment is the session name
    return f"arn:{match.group('partition')}:iam::{match.group('account')}:role/{role}"


def presigned_url(token: str) -> str:
    """The URL inside a token; base64url with or without padding, as clients differ."""
    if not token.startswith(PREFIX):
        raise TokenError("not a k8s-aws-v1 token")
    encoded = token.removeprefix(PREFIX)
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"undecodable token: {exc}") from exc


class EksVerifier:
    """Verifies tokens for one cluster against an STS endpoint; remembers answers for 60 s."""

    def __init__(
        self,
        cluster_id: str,
        sts_endpoint: str,
        secret_keys: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self.cluster_id = cluster_id
        self.sts_endpoint = sts_endpoint.rstrip("/")
        self.secret_keys = dict(secret_keys or {})
        self._clock = clock
        self._timeout = timeout
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_scenario(cls, spec: Mapping[str, Any]) -> EksVerifier:
        try:
            return cls(
                str(spec["clusterId"]),
                str(spec["stsEndpoint"]),
                spec.get("secretAccessKeys"),
            )
        except KeyError as exc:
            raise ValueError(f"the scenario's eks section needs {exc.args[0]!r}") from exc

    def caller_arn(self, token: str) -> str:
        """The ARN STS names as the token's signer; TokenError when anything is off."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None and cached[1] > now:
                return cached[0]
        url = presigned_url(token)
        signed_at = self.check(url, now)
        arn = self._ask_sts(url)
        until = min(now + CACHE_SECONDS, (signed_at + TOKEN_LIFETIME).timestamp())
        with self._lock:
            self._cache = {t: v for t, v in self._cache.items() if v[1] > now}
            self._cache[token] = (arn, until)
        return arn

    def check(self, url: str, now: float) -> datetime:
        """The checks made before calling STS; returns the signing time."""
        parts = urlsplit(url)
        if parts.netloc != urlsplit(self.sts_endpoint).netloc and not (
            parts.scheme == "https" and AWS_STS_HOST.fullmatch(parts.hostname or "")
        ):
            raise TokenError(f"unexpected host {parts.hostname!r} in the presigned URL")
        if parts.path != "/":
            raise TokenError("unexpected path in the presigned URL")
        query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        if query.get("action") != "GetCallerIdentity":
            raise TokenError("the presigned URL is not a GetCallerIdentity call")
        if not query.get("x-amz-expires", "").isdigit():
            raise TokenError("X-Amz-Expires missing from the presigned URL")
        signed_headers = query.get("x-amz-signedheaders", "").split(";")
        if CLUSTER_HEADER not in signed_headers:
            raise TokenError(f"{CLUSTER_HEADER} is not signed")
        try:
            signed_at = datetime.strptime(query.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC
            )
        except ValueError as exc:
            raise TokenError("X-Amz-Date missing or malformed") from exc
        if abs(now - signed_at.timestamp()) > TOKEN_LIFETIME.total_seconds():
            raise TokenError("the token has expired")
        if self.secret_keys:
            self._check_signature(url, query)
        return signed_at

    def _check_signature(self, url: str, query: Mapping[str, str]) -> None:
        """SigV4 query signing (botocore's SigV4QueryAuth), with the header value this cluster
        sends: a token minted for another cluster id does not verify."""
        access_key, _, scope = query.get("x-amz-credential", "").partition("/")
        secret = self.secret_keys.get(access_key)
        if secret is None:
            raise TokenError(f"unknown access key {access_key!r}")
        signed = query["x-amz-signedheaders"].split(";")
        values = {"host": _host_header(url), CLUSTER_HEADER: self.cluster_id}
        if not set(signed) <= set(values):
            raise TokenError(f"cannot verify signed headers {signed}")
        pairs = [p.partition("=") for p in urlsplit(url).query.split("&")]
        canonical_query = "&".join(
            sorted(f"{k}={v}" for k, _, v in pairs if k.lower() != "x-amz-signature")
        )
        canonical_request = "\n".join(
            [
                "GET",
                "/",
                canonical_query,
                "".join(f"{name}:{values[name]}\n" for name in sorted(signed)),
                ";".join(sorted(signed)),
                EMPTY_SHA256,
            ]
        )
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                query["x-amz-date"],
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = f"AWS4{secret}".encode()
        for part in scope.split("/"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, query.get("x-amz-signature", "")):
            raise TokenError("signature mismatch")

    def _ask_sts(self, url: str) -> str:
        parts = urlsplit(url)
        target = f"{self.sts_endpoint}{parts.path}?{parts.query}"
        query = {k.lower(): v for k, v in parse_qsl(parts.query)}
        headers = {
            CLUSTER_HEADER: self.cluster_id,
            "Accept": "application/json",
            # moto_server picks the service from the Authorization header's credential scope and
            # would answer a bare presigned GET as S3; restate the query signature as a header.
            # (Real STS wants one or the other; the simulator only ever talks to a stand-in.)
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={query.get('x-amz-credential', '')}, "
                f"SignedHeaders={query.get('x-amz-signedheaders', '')}, "
                f"Signature={query.get('x-amz-signature', '')}"
            ),
        }
        try:
            with httpx.Client(timeout=self._timeout) as client:
                response = client.get(target, headers=headers)
        except httpx.HTTPError as exc:
            raise TokenError(f"STS unreachable: {exc}") from exc
        if response.status_code != 200:
            raise TokenError(f"STS answered {response.status_code}: {response.text[:200]}")
        return _arn(response)


def _host_header(url: str) -> str:
    """The Host value the signer saw: lowercase, no userinfo, no default port (botocore's)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _arn(response: httpx.Response) -> str:
    """The Arn of a GetCallerIdentity answer, JSON (what the authenticator asks for) or XML."""
    try:
        if "json" in response.headers.get("content-type", ""):
            body = json.loads(response.text)
            result = body["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
            return str(result["Arn"])
        # The answer comes from the configured STS endpoint, not from the client.
        root = ElementTree.fromstring(response.text)  # noqa: S314
    except (ValueError, KeyError, TypeError, ElementTree.ParseError) as exc:
        raise TokenError(f"unreadable STS answer: {exc}") from exc
    arn = next((el.text for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Arn"), None)
    if not arn:
        raise TokenError("the STS answer has no Arn")
    return arn.strip()
