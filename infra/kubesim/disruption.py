"""PodDisruptionBudgets and the Eviction API: the disruption controller's status arithmetic
(pkg/controller/disruption) and pods/eviction (pkg/registry/core/pod/storage/eviction.go).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from infra.kubesim import objects, pods, selectors
from infra.kubesim.rest import delete_options, parse_dry_run
from infra.kubesim.status import (
    POLICY,
    ApiError,
    bad_request,
    internal_error,
    not_found,
    success,
    too_many_requests,
)
from infra.kubesim.store import Obj, PdbState, PodState, Store, labelled
from infra.kubesim.timefmt import rfc3339

DISRUPTED_POD_TIMEOUT = 120.0  # the disruption controller's DeletionTimeout
PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget."

# ---------------------------------------------------------------------- the disruption controller


def _selector(budget: PdbState) -> selectors.LabelSelector | None:
    selector = selectors.from_label_selector_object(budget.obj["spec"].get("selector"))
    return selector or None  # an empty selector matches nothing for the eviction API


def budgets_for(store: Store, pod: PodState) -> Iterator[PdbState]:
    for (ns, _), budget in sorted(store.pdbs.items()):
        selector = _selector(budget)
        if ns == pod.namespace and selector and selectors.matches(selector, pod.labels):
            yield budget


def budget_status(store: Store, budget: PdbState, now: float) -> dict[str, Any]:
    """The disruption controller's arithmetic; approved disruptions expire here."""
    ns = budget.obj["metadata"]["namespace"]
    selector = _selector(budget)
    matched = [
        p
        for (pns, _), p in store.pods.items()
        if pns == ns and selector and selectors.matches(selector, p.labels)
    ]
    for name, at in list(budget.disrupted.items()):
        gone = (ns, name) not in store.pods or store.pods[(ns, name)].terminating
        if gone or at + DISRUPTED_POD_TIMEOUT <= now:
            del budget.disrupted[name]
    spec = budget.obj["spec"]
    scale = sum(
        int(store.deployments[k].obj["spec"].get("replicas", 1))
        for k in {p.deployment for p in matched if p.deployment in store.deployments}
        if k is not None
    )
    if "maxUnavailable" in spec:
        expected = scale
        desired = max(0, expected - objects.scaled_value(spec["maxUnavailable"], expected, True))
    elif isinstance(spec.get("minAvailable"), str):
        expected = scale
        desired = objects.scaled_value(spec["minAvailable"], expected, True)
    else:
        expected = len(matched)
        desired = int(spec.get("minAvailable", 0))
    healthy = sum(
        1 for p in matched if not p.terminating and p.name not in budget.disrupted and p.ready
    )
    allowed = max(0, healthy - desired)
    old = {c["type"]: c for c in budget.obj.get("status", {}).get("conditions", ())}
    value = "True" if allowed > 0 else "False"
    previous = old.get("DisruptionAllowed")
    generation = budget.obj["metadata"]["generation"]
    status: dict[str, Any] = {"observedGeneration": generation}
    if budget.disrupted:
        status["disruptedPods"] = {n: rfc3339(t) for n, t in sorted(budget.disrupted.items())}
    status.update(
        {
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": value,
                    "observedGeneration": generation,
                    "lastTransitionTime": (
                        previous["lastTransitionTime"]
                        if previous and previous["status"] == value
                        else rfc3339(now)
                    ),
                    "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                    "message": "",
                }
            ],
        }
    )
    return status


# ---------------------------------------------------------------------- the Eviction API


def _mark_disrupted(store: Store, pod: PodState, now: float) -> None:
    """The Eviction API's DisruptionTarget condition (PodDisruptionConditions)."""
    conditions = pod.obj["status"].setdefault("conditions", [])
    if not any(c["type"] == "DisruptionTarget" for c in conditions):
        conditions.append(
            objects.condition(
                "DisruptionTarget", True, now, "EvictionByEvictionAPI", "Eviction API: evicting"
            )
        )
        store.touch(pod.obj)


def evict(store: Store, namespace: str, name: str, body: Any, query_dry_run: Sequence[str]) -> Obj:
    """POST pods/{name}/eviction with the default IfHealthyBudget policy; a Success Status."""
    if not isinstance(body, dict):
        raise bad_request('Eviction in version "v1" cannot be handled as a Eviction')
    api_version = body.get("apiVersion", "policy/v1")
    if api_version not in ("policy/v1", "policy/v1beta1", "v1"):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            "version (policy/v1)"
        )
    if (body.get("metadata") or {}).get("name") != name:
        raise bad_request("name in URL does not match name in Eviction object")
    raw = body.get("deleteOptions")
    if raw is not None and not isinstance(raw, dict):
        raise bad_request("deleteOptions must be an object")
    opts = delete_options(raw or {}, {})
    query_dry = parse_dry_run(query_dry_run, "CreateOptions")
    body_dry = bool((raw or {}).get("dryRun"))
    if query_dry and body_dry and list(query_dry_run) != list((raw or {})["dryRun"]):
        raise internal_error(
            f"Non-matching dry-run options in request and content: {list(query_dry_run)} "
            f"and {(raw or {})['dryRun']}"
        )
    opts.dry_run = query_dry or body_dry
    now = store.clock()
    pod = pods.find(store, namespace, name)

    def disrupt(victim: PodState, at: float) -> None:
        _mark_disrupted(store, victim, at)

    if pod.phase in ("Succeeded", "Failed", "Pending") or pod.terminating:
        pods.delete(store, pod, opts, now)  # canIgnorePDB
        return success(201)
    matching = list(budgets_for(store, pod))
    if len(matching) > 1:
        raise ApiError(
            500,
            "",
            "This pod has more than one PodDisruptionBudget, which the eviction "
            "subresource does not support.",
        )
    if not matching:
        pods.delete(store, pod, opts, now, before=disrupt)
        return success(201)
    budget = matching[0]
    store.set_status(budget.obj, budget_status(store, budget, now))  # disruptedPods expire
    status = budget.obj["status"]
    if not pod.ready:
        policy = budget.obj["spec"].get("unhealthyPodEvictionPolicy")
        healthy_budget = (
            status["currentHealthy"] >= status["desiredHealthy"] and status["desiredHealthy"] > 0
        )
        if policy == "AlwaysAllow" or healthy_budget:
            pods.delete(store, pod, opts, now, before=disrupt)
            return success(201)
    if status["disruptionsAllowed"] <= 0:
        pdb_name = budget.obj["metadata"]["name"]
        raise too_many_requests(
            PDB_REFUSAL,
            0,
            [
                {
                    "reason": "DisruptionBudget",
                    "message": (
                        f"The disruption budget {pdb_name} needs "
                        f"{status['desiredHealthy']} healthy pods and has "
                        f"{status['currentHealthy']} currently"
                    ),
                }
            ],
        )
    if not opts.dry_run:
        budget.disrupted[name] = now  # counted even if the delete then fails a precondition
        store.after_write(now)
    pods.delete(store, pod, opts, now, before=disrupt)
    return success(201)


# ---------------------------------------------------------------------- PDBs over REST (policy/v1)


def get_pdb(store: Store, namespace: str, name: str) -> Obj:
    budget = store.pdbs.get((namespace, name))
    if budget is None:
        raise not_found("poddisruptionbudgets", POLICY, name)
    return copy.deepcopy(budget.obj)


def list_pdbs(store: Store, namespace: str, label_selector: str | None = None) -> Obj:
    entries = [(key, budget.obj) for key, budget in store.pdbs.items()]
    return store.page(
        "PodDisruptionBudgetList",
        "policy/v1",
        lambda: labelled(entries, namespace, label_selector),
    )
