"""Inbound payloads: validated wire models turned into a RunRequest, or a RequestError."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, ValidationError

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.core.names import label_problem, subdomain_problem
from pod_rebalancer.errors import RequestError


@dataclass(frozen=True, slots=True)
class RunRequest:
    targets: tuple[Target, ...]
    dry_run: bool  # what the caller asked for; Settings.dry_run=true overrides a False here
    source: str


class ManualRequest(BaseModel):
    """The body of a manual or scheduled call; every field optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: StrictStr | None = None
    deployment: StrictStr | None = None
    dry_run: StrictBool | None = None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def query_flag(args: Mapping[str, str], name: str) -> bool | None:
    raw = args.get(name)
    if raw is None:
        return None
    text = raw.strip().lower()
    if text in _TRUE or text == "":
        return True
    if text in _FALSE:
        return False
    raise RequestError(name, f"{raw!r} is not a boolean (true or false)")


def make_target(namespace: str, deployment: str) -> Target:
    problem = label_problem(namespace)
    if problem:
        raise RequestError("namespace", problem)
    problem = subdomain_problem(deployment)
    if problem:
        raise RequestError("deployment", problem)
    return Target(namespace=namespace, deployment=deployment)


def parse_manual(
    body: Any, args: Mapping[str, str], settings: Settings, source: str = "manual"
) -> RunRequest:
    """A manual/scheduler body (`{}` or None means the configured default target)."""
    try:
        request = ManualRequest.model_validate(body if body is not None else {})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error.get("loc", ())) or "body"
        raise RequestError(loc, str(error.get("msg", "invalid"))) from exc
    target = make_target(
        request.namespace if request.namespace is not None else settings.kube_namespace,
        request.deployment if request.deployment is not None else settings.deployment_name,
    )
    if target.deployment != settings.deployment_name and label_problem(target.deployment):
        # Another Deployment's pods are measured by a container label equal to its name.
        raise RequestError(
            "deployment", "is also the container label, so it must be a DNS-1123 label"
        )
    flag = query_flag(args, "dry_run")
    dry_run = bool(request.dry_run) or bool(flag)
    return RunRequest(targets=(target,), dry_run=dry_run, source=source)
