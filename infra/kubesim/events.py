"""Events over REST in both APIs, core/v1 and events.k8s.io/v1: one store of core Events with
two views, create with validation, list with field selectors (pkg/apis/core/validation/events.go).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infra.kubesim import objects, rest, selectors
from infra.kubesim.status import (
    CORE,
    EVENTS,
    already_exists,
    field_invalid,
    field_required,
    invalid,
)
from infra.kubesim.store import Obj, Store
from infra.kubesim.timefmt import rfc3339

EVENT_FIELDS: dict[str, selectors.FieldGetter] = {
    **selectors.OBJECT_FIELDS,
    **{
        f"involvedObject.{f}": selectors.field_getter(f"involvedObject.{f}")
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
    "reason": selectors.field_getter("reason"),
    "reportingComponent": selectors.field_getter("reportingComponent"),
    "type": selectors.field_getter("type"),
}


def create_event(store: Store, api: str, namespace: str, body: Any, dry_run: bool) -> Obj:
    """api is "core" (v1) or "events" (events.k8s.io/v1); both views share one store."""
    if api == "events":
        obj = rest.decode(body, "Event", "events.k8s.io/v1", namespace)
        rest.reencode_times(
            obj,
            "Event",
            "v1",
            ("eventTime",),
            ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"),
        )
        _validate_new_event(obj, namespace)
        core = objects.event_to_core(obj)
    else:
        core = rest.decode(body, "Event", "v1", namespace)
        rest.reencode_times(
            core, "Event", "v1", ("eventTime",), ("firstTimestamp", "lastTimestamp")
        )
        involved = (core.get("involvedObject") or {}).get("namespace")
        name = (core.get("metadata") or {}).get("name", "")
        if involved and involved != namespace:
            raise invalid(
                "Event",
                "",
                name,
                [
                    field_invalid(
                        "involvedObject.namespace", involved, "does not match event.namespace"
                    )
                ],
            )
    meta = core.setdefault("metadata", {})
    name = rest.new_name(store, meta, "Event", EVENTS if api == "events" else "")
    if (namespace, name) in store.events:
        raise already_exists("events", EVENTS if api == "events" else CORE, name)
    meta.update(
        {
            "name": name,
            "namespace": namespace,
            "uid": store.uid(),
            "creationTimestamp": rfc3339(store.clock()),
        }
    )
    core["kind"], core["apiVersion"] = "Event", "v1"
    if not dry_run:
        store.touch(core)
        store.events[(namespace, name)] = core
    return _view(api, core)


def _validate_new_event(obj: Mapping[str, Any], namespace: str) -> None:
    name = (obj.get("metadata") or {}).get("name", "")
    causes = []
    for key in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(key):
            causes.append(field_required(key))
    kind = obj.get("type")
    if kind not in ("Normal", "Warning"):
        causes.append(
            {
                "reason": "FieldValueNotSupported" if kind else "FieldValueRequired",
                "message": (
                    f'Unsupported value: "{kind}": supported values: "Normal", "Warning"'
                    if kind
                    else "Required value"
                ),
                "field": "type",
            }
        )
    regarding = (obj.get("regarding") or {}).get("namespace")
    if regarding and regarding != namespace:
        causes.append(
            field_invalid("regarding.namespace", regarding, "does not match event.namespace")
        )
    if causes:
        raise invalid("Event", EVENTS, name, causes)


def _view(api: str, core: Mapping[str, Any]) -> Obj:
    return objects.core_to_event(core) if api == "events" else copy.deepcopy(dict(core))


def list_events(store: Store, api: str, namespace: str, field_selector: str | None = None) -> Obj:
    fields = selectors.parse_field_selector(
        field_selector, EVENT_FIELDS if api == "core" else selectors.OBJECT_FIELDS
    )

    def select() -> list[Obj]:
        return [
            _view(api, e)
            for (ns, _), e in sorted(store.events.items())
            if namespace in ("", ns) and selectors.field_matches(fields, e, EVENT_FIELDS)
        ]

    if api == "events":
        return store.page("EventList", "events.k8s.io/v1", select)
    return store.page("EventList", "v1", select)
