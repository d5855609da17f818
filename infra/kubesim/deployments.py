"""Deployments and ReplicaSets over REST (apps/v1): get, list, and a Deployment's patch with its
resourceVersion precondition and validation; controllers.py acts on what they hold.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from infra.kubesim import patch, selectors
from infra.kubesim.status import (
    APPS,
    OPTIMISTIC_LOCK_MESSAGE,
    bad_request,
    conflict,
    field_invalid,
    field_required,
    invalid,
    not_found,
)
from infra.kubesim.store import DeploymentState, Obj, Store, labelled


def find(store: Store, namespace: str, name: str) -> DeploymentState:
    dep = store.deployments.get((namespace, name))
    if dep is None:
        raise not_found("deployments", APPS, name)
    return dep


def get_deployment(store: Store, namespace: str, name: str) -> Obj:
    return copy.deepcopy(find(store, namespace, name).obj)


def list_deployments(
    store: Store,
    namespace: str,
    label_selector: str | None = None,
    limit: int | None = None,
    continue_token: str | None = None,
) -> Obj:
    """A DeploymentList, paged with `limit` and `continue` as pods are (a sweep's discovery)."""
    entries = [(key, dep.obj) for key, dep in store.deployments.items()]
    return store.page(
        "DeploymentList",
        "apps/v1",
        lambda: labelled(entries, namespace, label_selector),
        limit,
        continue_token,
        (namespace, label_selector),
    )


def patch_deployment(
    store: Store, namespace: str, name: str, content_type: str, body: Any, dry_run: bool
) -> Obj:
    """PATCH (merge, strategic or JSON patch); a spec change bumps metadata.generation."""
    now = store.clock()
    dep = find(store, namespace, name)
    current = dep.obj
    patched = patch.apply(content_type, current, body)
    meta = patched.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    wanted_rv = meta.get("resourceVersion")
    if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
        raise conflict("deployments", APPS, name, OPTIMISTIC_LOCK_MESSAGE)
    for key in ("name", "namespace", "uid", "creationTimestamp", "generation"):
        meta[key] = current["metadata"][key]
    meta["resourceVersion"] = current["metadata"]["resourceVersion"]
    patched["kind"], patched["apiVersion"] = "Deployment", "apps/v1"
    patched["status"] = current["status"]
    _validate(patched, current)
    if patched == current:
        return copy.deepcopy(current)
    if patched["spec"] != current["spec"]:
        meta["generation"] = int(meta["generation"]) + 1
    if dry_run:
        return patched
    dep.obj = patched
    store.touch(dep.obj)
    store.after_write(now)
    return copy.deepcopy(dep.obj)


def _validate(obj: Obj, current: Mapping[str, Any]) -> None:
    name = str(obj["metadata"]["name"])
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid("Deployment", APPS, name, [field_required("spec")])
    spec.setdefault("replicas", 1)
    causes = []
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise bad_request(
            "json: cannot unmarshal into Go struct field DeploymentSpec.spec.replicas of type int32"
        )
    if replicas < 0:
        causes.append(
            field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        )
    if spec.get("selector") != current["spec"]["selector"]:
        causes.append(
            field_invalid("spec.selector", json.dumps(spec.get("selector")), "field is immutable")
        )
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    selector = selectors.from_label_selector_object(spec.get("selector")) or []
    if not selectors.matches(selector, labels):
        causes.append(
            field_invalid(
                "spec.template.metadata.labels",
                json.dumps(labels, sort_keys=True),
                "`selector` does not match template `labels`",
            )
        )
    containers = (template.get("spec") or {}).get("containers")
    if not containers:
        causes.append(field_required("spec.template.spec.containers"))
    if causes:
        raise invalid("Deployment", APPS, name, causes)


def list_replicasets(store: Store, namespace: str, label_selector: str | None = None) -> Obj:
    entries = [(key, rs.obj) for key, rs in store.replicasets.items()]
    return store.page(
        "ReplicaSetList", "apps/v1", lambda: labelled(entries, namespace, label_selector)
    )


def get_replicaset(store: Store, namespace: str, name: str) -> Obj:
    rs = store.replicasets.get((namespace, name))
    if rs is None:
        raise not_found("replicasets", APPS, name)
    return copy.deepcopy(rs.obj)
