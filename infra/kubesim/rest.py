"""What every resource's REST handler shares: DeleteOptions and dryRun, decoding a request body,
naming a new object and re-encoding its times (staging/src/k8s.io/apiserver/pkg/registry/rest).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.kubesim.status import bad_request, field_invalid, field_required, invalid
from infra.kubesim.store import Obj, Store
from infra.kubesim.timefmt import TimeFormatError, micro, parse_micro, parse_time, rfc3339

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@dataclass
class DeleteOptions:
    grace: int | None = None
    dry_run: bool = False
    uid: str | None = None
    resource_version: str | None = None


def delete_options(body: Any, query: Mapping[str, Sequence[str]]) -> DeleteOptions:
    """DeleteOptions as the delete handler reads them: from the body if there is one, else the
    query string (kube-apiserver ignores query parameters when a body is sent)."""
    if body is not None:
        if not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal into Go value of type v1.DeleteOptions")
        source: dict[str, Any] = body
        grace = source.get("gracePeriodSeconds")
        dry = source.get("dryRun") or []
        pre = source.get("preconditions") or {}
    else:
        grace_text = (query.get("gracePeriodSeconds") or [""])[0]
        try:
            grace = int(grace_text) if grace_text else None
        except ValueError as exc:
            raise bad_request(f'strconv.ParseInt: parsing "{grace_text}": invalid syntax') from exc
        dry = list(query.get("dryRun") or [])
        pre = {}
    return DeleteOptions(
        grace=int(grace) if grace is not None else None,
        dry_run=parse_dry_run(dry, "DeleteOptions"),
        uid=pre.get("uid"),
        resource_version=pre.get("resourceVersion"),
    )


def parse_dry_run(values: Any, kind: str) -> bool:
    if isinstance(values, str):
        values = [values]
    values = list(values or [])
    for value in values:
        if value != "All":
            raise invalid(
                kind,
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueNotSupported",
                        "message": f'Unsupported value: "{value}": supported values: "All"',
                        "field": "dryRun",
                    }
                ],
            )
    return bool(values)


def decode(
    body: Any, kind: str, api_version: str, namespace: str, accepted: Sequence[str] = ()
) -> Obj:
    """A request body as the decoder and the handler's namespace check accept it (a copy)."""
    version = api_version.rsplit("/", 1)[-1]
    if not isinstance(body, dict):
        raise bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot '
            f"unmarshal into Go value of type {kind}"
        )
    got = body.get("apiVersion", api_version)
    if got not in (api_version, *accepted):
        raise bad_request(
            f"the API version in the data ({got}) does not match the expected API version "
            f"({api_version})"
        )
    if body.get("kind", kind) != kind:
        raise bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: no kind '
            f'"{body.get("kind")}" is registered for version "{api_version}"'
        )
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}')
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return copy.deepcopy(body)


def new_name(store: Store, meta: Mapping[str, Any], kind: str, group: str) -> str:
    """rest.BeforeCreate's naming: `generateName` plus 5 random characters, then validation."""
    name = meta.get("name") or ""
    if not name and meta.get("generateName"):
        name = f"{meta['generateName']}{store.suffix()}"
    if not name:
        raise invalid(
            kind,
            group,
            "",
            [field_required("metadata.name", "name or generateName is required")],
        )
    if not DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise invalid(
            kind, group, name, [field_invalid("metadata.name", name, DNS_SUBDOMAIN_MESSAGE)]
        )
    return str(name)


def reencode_times(
    obj: Obj,
    kind: str,
    version: str,
    micro_fields: Sequence[str],
    time_fields: Sequence[str] = (),
) -> None:
    """Decode and re-encode time fields as the API server's serializer would."""
    for path, parse, render in (
        *((p, parse_micro, micro) for p in micro_fields),
        *((p, parse_time, rfc3339) for p in time_fields),
    ):
        *parents, leaf = path.split(".")
        holder: Any = obj
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or holder.get(leaf) is None:
            continue
        try:
            holder[leaf] = render(parse(str(holder[leaf])))
        except TimeFormatError as exc:
            raise bad_request(
                f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}'
            ) from exc
