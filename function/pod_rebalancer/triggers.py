"""Inbound payloads: validated wire models turned into a RunRequest, or a RequestError."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.core.names import InvalidNameError
from pod_rebalancer.errors import RequestError


@dataclass(frozen=True, slots=True)
class RunRequest:
    targets: tuple[Target, ...]
    dry_run: bool  # what the caller asked for; Settings.dry_run=true overrides a False here
    source: str
    resolved: tuple[Target, ...] = ()  # targets whose alerts resolved: reported, never acted on
    context: dict[str, Any] = field(default_factory=dict)  # logged with every decision
    # Every opted-in Deployment of the allow-list, found when the run starts (`targets` is empty).
    sweep: bool = False


class ManualRequest(BaseModel):
    """The body of a manual or scheduled call; every field optional, and left out when unused.

    An explicit null is refused rather than read as "the default": a template that rendered
    `{"namespace": null}` must not make the function act on the default target instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: StrictStr | None = None
    deployment: StrictStr | None = None
    dry_run: StrictBool | None = None
    sweep: StrictBool | None = None

    @field_validator("namespace", "deployment", "dry_run", "sweep", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null: leave the field out for the default")
        return value


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, StrictStr] = Field(default_factory=dict)
    annotations: dict[str, StrictStr] = Field(default_factory=dict)
    starts_at: str = Field(default="", alias="startsAt")
    ends_at: str = Field(default="", alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AlertmanagerAlert]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


QUERY_PARAMETERS = ("dry_run",)


def query_args(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The query string: only parameters the contract knows, each at most once.

    A typo such as `?dryrun=true` is refused as one in the body is, not ignored (the call would
    run for real); and which of two `dry_run` values counts differs between proxies and
    frameworks, so a repeated one is refused too.
    """
    args: dict[str, str] = {}
    for name, value in pairs:
        if name not in QUERY_PARAMETERS:
            known = ", ".join(QUERY_PARAMETERS)
            raise RequestError(clip(name) or "query", f"is not a query parameter (only {known})")
        if name in args:
            raise RequestError(name, "is given more than once in the query string")
        args[name] = value
    return args


def query_flag(args: Mapping[str, str], name: str) -> bool | None:
    raw = args.get(name)
    if raw is None:
        return None
    text = raw.strip().lower()
    if text in _TRUE or text == "":
        return True
    if text in _FALSE:
        return False
    raise RequestError(name, f"{clip(raw)!r} is not a boolean (true or false)")


def make_target(namespace: str, deployment: str) -> Target:
    """A Target, or a RequestError naming the field that is not a valid Kubernetes name."""
    try:
        return Target(namespace=namespace, deployment=deployment)
    except InvalidNameError as exc:
        raise RequestError(exc.field, exc.problem) from exc


def _validation_error(exc: ValidationError) -> RequestError:
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return RequestError(field_path(error.get("loc", ())), message)


class _DuplicateKeys(dict[str, Any]):
    """An object that named `key` more than once (marked while decoding, found afterwards)."""

    key = ""


def _non_finite(literal: str) -> float:
    raise ValueError(f"{literal} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def decode_json(raw: bytes | str) -> Any:
    """Strict JSON (RFC 8259), or a RequestError naming the body or the duplicated key.

    UTF-8 only (json.loads would guess UTF-16 and UTF-32 too), no NaN or Infinity literals and no
    number that overflows to one, and no key twice in an object: parsers disagree on which of two
    values wins, so a proxy or a signature checker could read a different request than we do.
    Nesting so deep that the decoder gives up is the sender's problem too.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise RequestError("body", f"is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    duplicates = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        result = dict(items)
        if len(result) == len(items):
            return result
        duplicates = True
        marked = _DuplicateKeys(result)
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                marked.key = key
                break
            seen.add(key)
        return marked

    try:
        value = json.loads(
            text, object_pairs_hook=pairs, parse_constant=_non_finite, parse_float=_finite
        )
    except (ValueError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise RequestError("body", f"is not valid JSON: {problem}") from exc
    if duplicates:
        path = _duplicate_path(value)
        raise RequestError(path, "is given more than once in the same object (duplicate key)")
    return value


def _duplicate_path(value: Any) -> str:
    """Where the first duplicated key is, as a dotted path like pydantic's (`alerts.0.labels.x`)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _DuplicateKeys):
            return field_path((*path, node.key))
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, (*path, str(i))) for i, v in reversed(list(enumerate(node))))
    return "body"


def clip(text: str | None, size: int = 64) -> str:
    """A sender's value for a message, cut short: an error must not echo a megabyte of it."""
    text = text or ""
    return text if len(text) <= size else text[:size] + "..."


def field_path(parts: Iterable[object]) -> str:
    """A field's dotted path for an error message, each part clipped (keys come from the sender)."""
    return ".".join(clip(str(part)) for part in parts) or "body"


def is_alertmanager(body: Any) -> bool:
    """A body carrying either of the webhook's own keys is read as one, so that a webhook with a
    wrong or missing field is refused naming that field (a manual body has neither key)."""
    return isinstance(body, dict) and ("version" in body or "alerts" in body)


def parse_body(body: Any, args: Mapping[str, str], settings: Settings) -> RunRequest:
    """Any HTTP body: an Alertmanager webhook (version 4) or a manual/scheduler request."""
    if is_alertmanager(body):
        return parse_alertmanager(body, args, settings)
    return parse_manual(body, args, settings)


def parse_manual(
    body: Any, args: Mapping[str, str], settings: Settings, source: str = "manual"
) -> RunRequest:
    """A manual/scheduler body (`{}` or None means the configured default target; `{"sweep":
    true}` every opted-in Deployment, which is why it names no target)."""
    try:
        request = ManualRequest.model_validate(body if body is not None else {})
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    if request.sweep:
        # A target next to a sweep is ambiguous (a sweep of that one? of its namespace?): refused
        # rather than guessed, as an unknown field is.
        for name in ("namespace", "deployment"):
            if getattr(request, name) is not None:
                raise RequestError(
                    name, "cannot be combined with sweep (a sweep covers every opted-in Deployment)"
                )
        dry_run = bool(request.dry_run) or bool(query_flag(args, "dry_run"))
        return RunRequest(targets=(), dry_run=dry_run, source=source, sweep=True)
    target = make_target(
        request.namespace if request.namespace is not None else settings.kube_namespace,
        request.deployment if request.deployment is not None else settings.deployment_name,
    )
    flag = query_flag(args, "dry_run")
    dry_run = bool(request.dry_run) or bool(flag)
    return RunRequest(targets=(target,), dry_run=dry_run, source=source)


MAX_TARGETS_PER_CALL = 100
MAX_FINGERPRINTS = 100  # logged per decision; Alertmanager's are 16 hex digits each


def parse_alertmanager(body: Any, args: Mapping[str, str], settings: Settings) -> RunRequest:
    """Each firing alert is a target: labels `namespace` and `deployment` (else `container`),
    else the defaults. Resolved alerts are reported; a target named twice is processed once."""
    try:
        webhook = AlertmanagerWebhook.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    firing: dict[Target, None] = {}
    resolved: dict[Target, None] = {}
    for index, alert in enumerate(webhook.alerts):
        labels = alert.labels
        namespace = labels.get("namespace") or settings.kube_namespace
        # The label the Deployment's name came from, so that an error names the one sent.
        source = next((k for k in ("deployment", "container") if labels.get(k)), "deployment")
        deployment = labels.get(source) or settings.deployment_name
        try:
            target = make_target(namespace, deployment)
        except RequestError as exc:
            label = source if exc.field == "deployment" else exc.field
            raise RequestError(f"alerts.{index}.labels.{label}", exc.problem) from exc
        (firing if alert.status == "firing" else resolved)[target] = None
    named = len(firing) + len([t for t in resolved if t not in firing])
    if named > MAX_TARGETS_PER_CALL:
        # Each target costs a few API calls and a query: thousands of them (a 1 MiB payload holds
        # ten thousand) would outlast any function timeout. A route grouped by namespace and
        # deployment sends one target per call.
        raise RequestError(
            "alerts",
            f"name {named} targets; at most {MAX_TARGETS_PER_CALL} may be handled in one call "
            "(group the route by namespace and deployment)",
        )
    # Logged with every decision and published with every audit record, so bounded: a sender's
    # megabyte-long groupKey must not make a decision line too long for Cloud Logging to keep.
    fingerprints = [a.fingerprint for a in webhook.alerts if a.fingerprint]
    context = {
        "group_key": clip(webhook.group_key, 1024),
        "receiver": clip(webhook.receiver, 256),
        "alert_status": webhook.status,
        "fingerprints": [clip(f) for f in fingerprints[:MAX_FINGERPRINTS]],
        "truncated_alerts": webhook.truncated_alerts,
    }
    if len(fingerprints) > MAX_FINGERPRINTS:
        context["fingerprints_omitted"] = len(fingerprints) - MAX_FINGERPRINTS
    return RunRequest(
        targets=tuple(firing),
        dry_run=bool(query_flag(args, "dry_run")),
        source="alertmanager",
        resolved=tuple(t for t in resolved if t not in firing),
        context=context,
    )
