"""Pods over REST (core/v1): list with label and field selectors, get, and delete with
preconditions, grace periods and dryRun (staging/src/k8s.io/apiserver/pkg/registry/generic).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from infra.kubesim import kubelet, selectors
from infra.kubesim.rest import DeleteOptions
from infra.kubesim.status import CORE, not_found
from infra.kubesim.store import Obj, PodState, Store, check_preconditions
from infra.kubesim.timefmt import rfc3339


def find(store: Store, namespace: str, name: str) -> PodState:
    pod = store.pods.get((namespace, name))
    if pod is None:
        raise not_found("pods", CORE, name)
    return pod


def list_pods(
    store: Store,
    namespace: str,
    label_selector: str | None = None,
    field_selector: str | None = None,
    limit: int | None = None,
    continue_token: str | None = None,
) -> Obj:
    labels = selectors.parse_label_selector(label_selector)
    fields = selectors.parse_field_selector(field_selector, selectors.POD_FIELDS)

    def select() -> list[Obj]:
        return [
            p.obj
            for (ns, _), p in sorted(store.pods.items())
            if namespace in ("", ns)
            and selectors.matches(labels, p.labels)
            and selectors.field_matches(fields, p.obj, selectors.POD_FIELDS)
        ]

    query = (namespace, label_selector, field_selector)
    return store.page("PodList", "v1", select, limit, continue_token, query)


def get(store: Store, namespace: str, name: str) -> Obj:
    return copy.deepcopy(find(store, namespace, name).obj)


def delete(
    store: Store,
    pod: PodState,
    opts: DeleteOptions,
    now: float,
    before: Callable[[PodState, float], None] | None = None,
) -> Obj:
    """rest.BeforeDelete + the pod strategy's CheckGracefulDelete + the store's delete.

    `before` runs on the pod once the preconditions hold, unless this is a dry run (the Eviction
    API adds its DisruptionTarget condition there)."""
    check_preconditions("Pod", CORE, pod.obj["metadata"], opts.uid, opts.resource_version)
    grace = opts.grace
    if grace is not None and grace < 0:
        grace = 1
    saved_rv = store.rv
    try:
        return _delete_now(store, pod, grace, opts.dry_run, now, before)
    finally:
        if opts.dry_run:
            store.rv = saved_rv  # a dry run leaves no trace, not even a resourceVersion


def _delete_now(
    store: Store,
    pod: PodState,
    grace: int | None,
    dry_run: bool,
    now: float,
    before: Callable[[PodState, float], None] | None,
) -> Obj:
    target = copy.deepcopy(pod) if dry_run else pod
    if before is not None and not dry_run:
        before(pod, now)
    immediate = kubelet.begin_graceful_deletion(store, target, grace, now)
    if immediate is None:  # already terminating, and not asked to hurry
        return copy.deepcopy(target.obj)
    if immediate:
        target.obj["metadata"]["deletionTimestamp"] = rfc3339(now)
        target.obj["metadata"]["deletionGracePeriodSeconds"] = 0
        store.touch(target.obj)
        if not dry_run:
            del store.pods[(pod.namespace, pod.name)]
    if not dry_run:
        store.after_write(now)
    return copy.deepcopy(target.obj)
