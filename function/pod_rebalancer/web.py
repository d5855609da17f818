"""The HTTP edge: method, auth, size and type checks; then parse, run, and map to a status.

200 decision made (skips included) · 400 bad field · 401 bad token · 405 not POST · 413 over 1 MiB ·
415 not JSON · 503 a dependency failed (nothing was done) · 500 configuration error or bug.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import flask

from pod_rebalancer.config import Settings
from pod_rebalancer.errors import ConfigError, RequestError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import parse_body

MAX_BODY = 1024 * 1024
SIGNATURE_MAX_SKEW = 300.0  # seconds
TOKEN_HEADER = "X-Pod-Rebalancer-Token"  # noqa: S105  (a header name)


def respond(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> flask.Response:
    response = flask.Response(
        json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json"
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error(status: int, message: str, **extra: Any) -> flask.Response:
    headers = {"Allow": "POST"} if status == 405 else None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="pod-rebalancer"'}
    return respond(status, {"error": message, **extra}, headers)


def authorized(request: flask.Request, settings: Settings) -> bool:
    """The bearer token, when one is configured; with neither token nor HMAC secret, only
    ALLOW_UNAUTHENTICATED=true admits a call."""
    if not settings.token_required and not settings.signature_required:
        return settings.allow_unauthenticated
    if not settings.token_required:
        return True  # the signature is checked once the body is read
    expected = settings.webhook_secret()
    if expected is None:
        return False  # a configured token that cannot be read admits nobody
    header = request.headers.get("Authorization", "")
    scheme, _, bearer = header.partition(" ")
    candidates = [bearer.strip()] if scheme.lower() == "bearer" and bearer.strip() else []
    # Cloud Scheduler with an OIDC token (checked by Cloud Run's IAM) uses Authorization for it,
    # so the token may come in its own header instead.
    if request.headers.get(TOKEN_HEADER):
        candidates.append(request.headers[TOKEN_HEADER].strip())
    # Compare every candidate (constant time each) so timing reveals nothing about which matched.
    matches = [hmac.compare_digest(c.encode(), expected.encode()) for c in candidates]
    return any(matches)


def signed(request: flask.Request, body: bytes, settings: Settings, now: float) -> bool:
    """HMAC-SHA256 of the body (hex, optionally `sha256=`-prefixed) in the configured header.

    With a timestamp header configured, the signed message is `timestamp:body` and the timestamp
    must be within five minutes, so a captured request cannot be replayed later.
    """
    if not settings.signature_required:
        return True
    secret = settings.hmac_secret()
    presented = request.headers.get(settings.webhook_signature_header, "").strip()
    if secret is None or not presented:
        return False
    message = body
    if settings.webhook_signature_timestamp_header:
        stamp = request.headers.get(settings.webhook_signature_timestamp_header, "").strip()
        try:
            fresh = abs(now - float(stamp)) <= SIGNATURE_MAX_SKEW
        except ValueError:
            return False
        if not fresh:
            return False
        message = stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(presented.removeprefix("sha256=").lower().encode(), digest.encode())


def read_body(request: flask.Request) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY (whether or not it declared its length)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    data = request.stream.read(MAX_BODY + 1)
    return None if len(data) > MAX_BODY else data


def handle_http(request: flask.Request, service_of: Callable[[], Rebalancer]) -> flask.Response:
    log = get_logger()
    if request.method != "POST":
        return error(405, f"method {request.method} not allowed; use POST")
    try:
        service = service_of()
    except ConfigError as exc:
        log.critical("invalid configuration: %s", exc, extra={"fields": {"variable": exc.variable}})
        return error(500, f"invalid configuration: {exc}", variable=exc.variable)
    if not authorized(request, service.settings):
        return error(401, "missing or wrong bearer token")
    raw = read_body(request)
    if raw is None:
        return error(413, f"body larger than {MAX_BODY} bytes")
    if not signed(request, raw, service.settings, time.time()):
        return error(401, "missing or wrong body signature")
    body: Any = None
    if raw.strip():
        if not request.mimetype or not (
            request.mimetype == "application/json" or request.mimetype.endswith("+json")
        ):
            return error(415, f"Content-Type must be application/json, not {request.mimetype!r}")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return error(400, f"body is not valid JSON: {exc}", field="body")
    try:
        run_request = parse_body(body, request.args, service.settings)
    except RequestError as exc:
        return error(400, str(exc), field=exc.field)
    outcomes = service.run(run_request)
    return respond(status_of(outcomes), {"results": [o.to_json() for o in outcomes]})


def status_of(outcomes: list[Outcome]) -> int:
    """503 when any target could not be decided because a dependency failed: the sender retries."""
    return 503 if any(o.retryable for o in outcomes) else 200
