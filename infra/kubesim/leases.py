"""Leases over REST (coordination.k8s.io/v1): create (409 AlreadyExists), update only with the
current resourceVersion, create on update, delete (pkg/registry/coordination/lease/strategy.go).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infra.kubesim import rest
from infra.kubesim.rest import DeleteOptions
from infra.kubesim.status import (
    COORDINATION,
    OPTIMISTIC_LOCK_MESSAGE,
    already_exists,
    bad_request,
    conflict,
    field_invalid,
    internal_error,
    invalid,
    not_found,
    success,
)
from infra.kubesim.store import Obj, Store, check_preconditions, labelled
from infra.kubesim.timefmt import rfc3339

API_VERSION = "coordination.k8s.io/v1"


def _lease_object(
    store: Store, namespace: str, body: Obj, name: str, base: Mapping[str, Any] | None
) -> Obj:
    """The Lease as stored: validated spec, server-owned metadata kept from `base` if any."""
    rest.reencode_times(body, "Lease", "v1", ("spec.acquireTime", "spec.renewTime"))
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request('Lease in version "v1" cannot be handled as a Lease')
    causes = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        causes.append(
            field_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        causes.append(
            field_invalid(
                "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
            )
        )
    if causes:
        raise invalid("Lease", COORDINATION, name, causes)
    meta_in = body.get("metadata") or {}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": base["metadata"]["uid"] if base else store.uid(),
        "resourceVersion": base["metadata"]["resourceVersion"] if base else "",
        "creationTimestamp": (
            base["metadata"]["creationTimestamp"] if base else rfc3339(store.clock())
        ),
    }
    if meta_in.get("generateName") and not base:
        metadata["generateName"] = meta_in["generateName"]
    for key in ("labels", "annotations", "ownerReferences", "finalizers"):
        if meta_in.get(key):
            metadata[key] = copy.deepcopy(meta_in[key])
    return {
        "kind": "Lease",
        "apiVersion": API_VERSION,
        "metadata": metadata,
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


def list_leases(store: Store, namespace: str, label_selector: str | None = None) -> Obj:
    entries = list(store.leases.items())
    return store.page(
        "LeaseList", API_VERSION, lambda: labelled(entries, namespace, label_selector)
    )


def get_lease(store: Store, namespace: str, name: str) -> Obj:
    obj = store.leases.get((namespace, name))
    if obj is None:
        raise not_found("leases", COORDINATION, name)
    return copy.deepcopy(obj)


def create_lease(store: Store, namespace: str, body: Any, dry_run: bool) -> Obj:
    obj = rest.decode(body, "Lease", API_VERSION, namespace)
    meta = obj.get("metadata") or {}
    name = rest.new_name(store, meta, "Lease", COORDINATION)
    if meta.get("resourceVersion"):
        raise internal_error("resourceVersion should not be set on objects to be created")
    lease = _lease_object(store, namespace, obj, name, None)
    if (namespace, name) in store.leases:
        raise already_exists("leases", COORDINATION, name)
    if dry_run:
        return lease
    store.touch(lease)
    store.leases[(namespace, name)] = lease
    return copy.deepcopy(lease)


def update_lease(
    store: Store, namespace: str, name: str, body: Any, dry_run: bool
) -> tuple[Obj, bool]:
    """PUT; Leases may be created by an update (AllowCreateOnUpdate). Returns (obj, created)."""
    obj = rest.decode(body, "Lease", API_VERSION, namespace)
    meta = obj.get("metadata") or {}
    if meta.get("name", "") != name:
        raise bad_request(
            f"the name of the object ({meta.get('name', '')}) does not match the name on "
            f"the URL ({name})"
        )
    existing = store.leases.get((namespace, name))
    if existing is None:
        lease = _lease_object(store, namespace, obj, name, None)
        if not dry_run:
            store.touch(lease)
            store.leases[(namespace, name)] = lease
        return copy.deepcopy(lease), True
    wanted = meta.get("resourceVersion")
    if not wanted:  # the lease strategy does not AllowUnconditionalUpdate
        raise invalid(
            "leases",
            COORDINATION,
            name,
            [
                field_invalid(
                    "metadata.resourceVersion", 0, "must be specified for an update", "0x0"
                )
            ],
        )
    if wanted != existing["metadata"]["resourceVersion"]:
        raise conflict("leases", COORDINATION, name, OPTIMISTIC_LOCK_MESSAGE)
    lease = _lease_object(store, namespace, obj, name, existing)
    if lease == existing or dry_run:
        return copy.deepcopy(lease), False
    store.touch(lease)
    store.leases[(namespace, name)] = lease
    return copy.deepcopy(lease), False


def delete_lease(store: Store, namespace: str, name: str, opts: DeleteOptions) -> Obj:
    obj = store.leases.get((namespace, name))
    if obj is None:
        raise not_found("leases", COORDINATION, name)
    meta = obj["metadata"]
    check_preconditions("Lease", COORDINATION, meta, opts.uid, opts.resource_version)
    if not opts.dry_run:
        del store.leases[(namespace, name)]
        store.next_rv()
    status = success(
        0, {"details": {"name": name, "group": COORDINATION, "kind": "leases", "uid": meta["uid"]}}
    )
    del status["code"]
    return status
