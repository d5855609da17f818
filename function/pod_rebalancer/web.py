"""The HTTP edge, independent of the framework that delivers the request: method, auth, size and
type checks; then parse, run, and map the outcome to a status. functions-framework (Flask) and
a Lambda function URL both translate into HttpRequest and out of HttpResponse around `handle`.

200 decision made (skips included) · 400 bad field · 401 bad token · 405 not POST · 413 over 1 MiB ·
415 not JSON · 503 a dependency failed (nothing was done) · 500 configuration error or bug.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pod_rebalancer.config import Settings
from pod_rebalancer.errors import ConfigError, DependencyError, RequestError
from pod_rebalancer.logs import get_logger
from pod_rebalancer.report import Outcome
from pod_rebalancer.runtime import Runtime
from pod_rebalancer.triggers import RunRequest, clip, decode_json, parse_body, query_args

MAX_BODY = 1024 * 1024
SIGNATURE_MAX_SKEW = 300.0  # seconds
TOKEN_HEADER = "x-pod-rebalancer-token"  # noqa: S105  (a header name)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    headers: Mapping[str, str]  # names in lower case
    query: Sequence[tuple[str, str]]  # (name, value) pairs in order, repeats kept
    # Up to n bytes of the body; RequestError when the upload cannot be read (malformed framing).
    read: Callable[[int], bytes]
    content_length: int | None = None  # as declared, if it was

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def mimetype(self) -> str:
        return self.header("content-type").partition(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The Content-Type's charset parameter, lower case, or None when none is given."""
        for parameter in self.header("content-type").split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"').lower()
        return None

    @property
    def encoding(self) -> str:
        """The Content-Encoding, lower case; "" when the body is sent as it is."""
        encoding = self.header("content-encoding").strip().lower()
        return "" if encoding == "identity" else encoding


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


def error(status: int, message: str, **extra: Any) -> HttpResponse:
    headers = {}
    if status == 405:
        headers["Allow"] = "POST"
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pod-rebalancer"'
    return HttpResponse(status, {"error": message, **extra}, headers)


def authorized(request: HttpRequest, settings: Settings, token: Callable[[], str | None]) -> bool:
    """The bearer token, when one is configured; with neither token nor HMAC secret, only
    ALLOW_UNAUTHENTICATED=true admits a call. `token` reads the expected one (a file, a secret
    store): only when a token is required, and it may raise DependencyError."""
    if not settings.token_required and not settings.signature_required:
        return settings.allow_unauthenticated
    if not settings.token_required:
        return True  # the signature is checked once the body is read
    expected = token()
    if expected is None:
        return False  # a configured token that cannot be read admits nobody
    scheme, _, bearer = request.header("authorization").partition(" ")
    candidates = [bearer.strip()] if scheme.lower() == "bearer" and bearer.strip() else []
    # Cloud Scheduler with an OIDC token (checked by Cloud Run's IAM) uses Authorization for it,
    # so the token may come in its own header instead.
    if request.header(TOKEN_HEADER):
        candidates.append(request.header(TOKEN_HEADER).strip())
    # Compare every candidate (constant time each) so timing reveals nothing about which matched.
    matches = [hmac.compare_digest(c.encode(), expected.encode()) for c in candidates]
    return any(matches)


def signed(request: HttpRequest, body: bytes, settings: Settings, now: float) -> bool:
    """HMAC-SHA256 of the body (hex, optionally `sha256=`-prefixed) in the configured header.

    With a timestamp header configured, the signed message is `timestamp:body` and the timestamp
    must be within five minutes, so a captured request cannot be replayed later.
    """
    if not settings.signature_required:
        return True
    secret = settings.hmac_secret()
    presented = request.header(settings.webhook_signature_header).strip()
    if secret is None or not presented:
        return False
    message = body
    if settings.webhook_signature_timestamp_header:
        stamp = request.header(settings.webhook_signature_timestamp_header).strip()
        try:
            fresh = abs(now - float(stamp)) <= SIGNATURE_MAX_SKEW
        except ValueError:
            return False
        if not fresh:
            return False
        message = stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(presented.removeprefix("sha256=").lower().encode(), digest.encode())


def read_body(request: HttpRequest) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY (whether or not it declared its length);
    RequestError when it cannot be read or is shorter than it said (a truncated request)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    data = request.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        return None
    if request.content_length is not None and len(data) < request.content_length:
        raise RequestError(
            "body",
            f"ended after {len(data)} of the {request.content_length} bytes its Content-Length "
            "declared",
        )
    return data


def unsupported_media(request: HttpRequest, raw: bytes) -> HttpResponse | None:
    """A 415 for a non-empty body that is not UTF-8 JSON by its headers, else None."""
    if not raw.strip():
        return None
    mimetype = request.mimetype
    if not (mimetype == "application/json" or mimetype.endswith("+json")):
        return error(415, f"Content-Type must be application/json, not {clip(mimetype)!r}")
    if request.charset not in (None, "utf-8", "utf8"):
        return error(415, f"charset {clip(request.charset)!r} is not supported; use utf-8")
    return None


def handle(request: HttpRequest, runtime: Runtime) -> HttpResponse:
    log = get_logger()
    if request.method.upper() != "POST":
        return error(405, f"method {clip(request.method)} not allowed; use POST")
    try:
        settings = runtime.settings()
    except ConfigError as exc:
        return _config_error(exc)
    try:
        admitted = authorized(request, settings, runtime.webhook_token)
    except DependencyError as exc:
        # The token lives in a secret store that did not answer: nobody can be checked, and
        # nobody is admitted; the sender retries.
        log.error("could not read the webhook token: %s", exc, extra={"fields": {"event": "auth"}})
        return error(503, f"cannot verify the token now: {exc.dependency} unavailable")
    if not admitted:
        return error(401, "missing or wrong bearer token")
    if request.encoding:
        # Nothing here inflates a body, so that no compressed bomb can pass the 1 MiB limit; the
        # senders this serves (Alertmanager, Grafana, Cloud Scheduler, curl) send plain JSON.
        return error(
            415, f"Content-Encoding {clip(request.encoding)!r} is not supported; send JSON"
        )
    try:
        raw = read_body(request)
    except RequestError as exc:
        return error(400, str(exc), field=exc.field)
    if raw is None:
        return error(413, f"body larger than {MAX_BODY} bytes")
    if not signed(request, raw, settings, runtime.now().timestamp()):
        return error(401, "missing or wrong body signature")
    refusal = unsupported_media(request, raw)
    if refusal is not None:
        return refusal
    try:
        args = query_args(request.query)
        run_request = parse_body(decode_json(raw) if raw.strip() else None, args, settings)
    except RequestError as exc:
        return error(400, str(exc), field=exc.field)
    try:
        outcomes = runtime.service().run(run_request)
    except ConfigError as exc:
        return _config_error(exc)
    except DependencyError as exc:
        return _unavailable(exc, run_request, settings)
    return HttpResponse(status_of(outcomes), {"results": [o.to_json() for o in outcomes]})


def _unavailable(exc: DependencyError, run_request: RunRequest, settings: Settings) -> HttpResponse:
    """Building the clients asked a cloud API (GKE cluster lookup, EKS DescribeCluster) that
    failed, or a sweep could not list its Deployments: nothing was done, and a retry can help."""
    get_logger().error(
        "could not reach the cluster: %s", exc, extra={"fields": {"event": "startup"}}
    )
    if run_request.sweep:  # no target is known to report on
        return error(503, f"{exc.dependency} unavailable: {exc}", results=[])
    dry_run = settings.dry_run or run_request.dry_run
    outcomes = [Outcome.unavailable(t, dry_run, exc) for t in run_request.targets]
    return HttpResponse(status_of(outcomes), {"results": [o.to_json() for o in outcomes]})


def _config_error(exc: ConfigError) -> HttpResponse:
    get_logger().critical(
        "invalid configuration: %s", exc, extra={"fields": {"variable": exc.variable}}
    )
    return error(500, f"invalid configuration: {exc}", variable=exc.variable)


def status_of(outcomes: list[Outcome]) -> int:
    """503 when any target could not be decided because a dependency failed: the sender retries."""
    return 503 if any(o.retryable for o in outcomes) else 200
