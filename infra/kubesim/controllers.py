"""The ReplicaSet and Deployment controllers: replicas kept, rollouts one surge pod at a time, and
the status of Deployments, ReplicaSets and PDBs recomputed (pkg/controller/deployment, replicaset).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from infra.kubesim import disruption, kubelet, objects
from infra.kubesim.store import DeploymentState, Key, PodState, ReplicaSetState, Store
from infra.kubesim.timefmt import rfc3339


def tick(store: Store, now: float) -> None:
    """One pass of the kubelet and every controller."""
    kubelet.progress(store, now)
    owned: dict[Key | None, list[PodState]] = defaultdict(list)
    for pod in store.pods.values():
        owned[pod.deployment].append(pod)
    for dep in store.deployments.values():
        reconcile(store, dep, now, owned.get(dep.key, []))
    refresh(store, now)


def create_pod(store: Store, dep: DeploymentState, rs: ReplicaSetState, now: float) -> PodState:
    """A pod from the ReplicaSet's template, bound at once unless the Deployment has a pending
    delay."""
    while True:
        name = f"{rs.name}-{store.suffix()}"
        if (dep.key[0], name) not in store.pods:
            break
    obj = objects.pod(rs.obj, name, store.uid(), now)
    store.touch(obj)
    state = PodState(obj=obj, deployment=dep.key, rs=rs.name, created=now)
    state.bind_at = now + dep.pending
    state.ready_at = state.bind_at + dep.startup
    store.pods[(dep.key[0], name)] = state
    if dep.pending <= 0:
        kubelet.bind(store, state, now)  # scheduled and started at once
    return state


def replica_set_for(store: Store, dep: DeploymentState, now: float) -> ReplicaSetState:
    """The ReplicaSet of the Deployment's current template (made if new), marked newest."""
    template = dep.obj["spec"]["template"]
    pod_hash = objects.template_hash(template)
    ns, name = dep.key
    key = (ns, f"{name}-{pod_hash}")
    existing = store.replicasets.get(key)
    revisions = [
        int(r.obj["metadata"]["annotations"].get(objects.REVISION, "0"))
        for r in store.replicasets.values()
        if r.deployment == dep.key
    ]
    revision = max(revisions, default=0) + 1
    if existing is not None:
        current = int(existing.obj["metadata"]["annotations"].get(objects.REVISION, "0"))
        if current != max(revisions, default=0):  # a rollback makes it the newest again
            existing.obj["metadata"]["annotations"][objects.REVISION] = str(revision)
            store.touch(existing.obj)
        rs = existing
    else:
        obj = objects.replica_set(dep.obj, pod_hash, revision, store.uid(), now)
        store.touch(obj)
        rs = ReplicaSetState(obj, dep.key, pod_hash)
        store.replicasets[key] = rs
    wanted = rs.obj["metadata"]["annotations"][objects.REVISION]
    annotations = dep.obj["metadata"].setdefault("annotations", {})
    if annotations.get(objects.REVISION) != wanted:
        annotations[objects.REVISION] = wanted
        store.touch(dep.obj)
    return rs


def reconcile(
    store: Store, dep: DeploymentState, now: float, pods: list[PodState] | None = None
) -> None:
    """ReplicaSet + Deployment controllers; a rollout surges one pod at a time. `pods`: the
    Deployment's pods, when the caller has them already (every tick groups them once)."""
    new_rs = replica_set_for(store, dep, now)
    desired = int(dep.obj["spec"].get("replicas", 1))
    key = dep.key
    owned = pods if pods is not None else [p for p in store.pods.values() if p.deployment == key]
    active = [p for p in owned if not p.terminating]
    new_pods = [p for p in active if p.rs == new_rs.name]
    old_pods = [p for p in active if p.rs != new_rs.name]

    def victims_order(p: PodState) -> tuple[bool, float]:
        # Not Ready first, then the newest: the pods a ReplicaSet gives up first.
        return (p.ready, -p.created)

    if not old_pods:
        for _ in range(desired - len(new_pods)):
            new_pods.append(create_pod(store, dep, new_rs, now))
        if len(new_pods) > desired:
            for victim in sorted(new_pods, key=victims_order)[: len(new_pods) - desired]:
                kubelet.start_deletion(store, victim, kubelet.termination_grace(victim), now)
                new_pods.remove(victim)
    else:
        if len(new_pods) < desired and len(active) < desired + 1:
            new_pods.append(create_pod(store, dep, new_rs, now))
            active = [*new_pods, *old_pods]
        ready_total = sum(1 for p in active if p.ready)
        victim = min(old_pods, key=victims_order)
        if not victim.ready or ready_total - 1 >= desired or len(new_pods) > desired:
            kubelet.start_deletion(store, victim, kubelet.termination_grace(victim), now)
            old_pods.remove(victim)
    counts: dict[str, int] = defaultdict(int)
    for p in [*new_pods, *old_pods]:
        counts[p.rs] += 1
    for rs in store.replicasets.values():
        if rs.deployment != dep.key:
            continue
        want = counts.get(rs.name, 0)
        if rs is new_rs and not old_pods:
            want = desired
        if rs.obj["spec"]["replicas"] != want:
            rs.obj["spec"]["replicas"] = want
            rs.obj["metadata"]["generation"] += 1
            rs.obj["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(
                desired
            )
            store.touch(rs.obj)
    dep.observed_generation = int(dep.obj["metadata"]["generation"])


def refresh(store: Store, now: float) -> None:
    """Recompute the status of Deployments, ReplicaSets and PDBs, and the consumer groups."""
    # ReplicaSet names are unique per namespace only: key them by (namespace, name).
    by_rs: dict[Key, list[PodState]] = defaultdict(list)
    members: dict[Key | None, list[str]] = defaultdict(list)
    for pod in store.pods.values():
        if not pod.terminating:
            by_rs[(pod.namespace, pod.rs)].append(pod)
            if pod.is_ready:
                members[pod.deployment].append(pod.name)
    for rs in store.replicasets.values():
        pods = by_rs.get((rs.deployment[0], rs.name), [])
        ready = sum(1 for p in pods if p.ready)
        status: dict[str, Any] = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = rs.obj["metadata"]["generation"]
        store.set_status(rs.obj, status)
    sets: dict[Key, list[ReplicaSetState]] = defaultdict(list)
    for rs in store.replicasets.values():
        sets[rs.deployment].append(rs)
    for dep in store.deployments.values():
        status = deployment_status(store, dep, by_rs, now, sets.get(dep.key, []))
        store.set_status(dep.obj, status)
        if dep.group is not None:
            dep.group.update(members.get(dep.key, []), now)
    for budget in store.pdbs.values():
        store.set_status(budget.obj, disruption.budget_status(store, budget, now))


def deployment_status(
    store: Store,
    dep: DeploymentState,
    by_rs: Mapping[Key, list[PodState]],
    now: float,
    sets: list[ReplicaSetState],
) -> dict[str, Any]:
    """The Deployment's status from the pods of its ReplicaSets (`sets`)."""
    namespace = dep.key[0]
    new_name = f"{dep.key[1]}-{objects.template_hash(dep.obj['spec']['template'])}"
    pods = [p for rs in sets for p in by_rs.get((namespace, rs.name), [])]
    updated = len(by_rs.get((namespace, new_name), []))
    ready = sum(1 for p in pods if p.ready)
    desired_total = sum(int(rs.obj["spec"]["replicas"]) for rs in sets)
    unavailable = max(0, desired_total - ready)
    replicas = int(dep.obj["spec"].get("replicas", 1))
    max_unavailable = objects.scaled_value(
        dep.obj["spec"]["strategy"].get("rollingUpdate", {}).get("maxUnavailable", "25%"),
        replicas,
        round_up=False,
    )
    old = {c["type"]: c for c in dep.obj.get("status", {}).get("conditions", ())}

    def cond(kind: str, value: bool, reason: str, message: str) -> dict[str, Any]:
        previous = old.get(kind)
        text = "True" if value else "False"
        if previous and (previous["status"], previous["reason"], previous["message"]) == (
            text,
            reason,
            message,
        ):
            return dict(previous)
        stamp = rfc3339(now)
        return {
            "type": kind,
            "status": text,
            "lastUpdateTime": stamp,
            "lastTransitionTime": (
                previous["lastTransitionTime"] if previous and previous["status"] == text else stamp
            ),
            "reason": reason,
            "message": message,
        }

    available = ready >= replicas - max_unavailable
    complete = updated == replicas and len(pods) == replicas and ready == replicas
    status: dict[str, Any] = {"observedGeneration": dep.observed_generation}
    for name, value in (
        ("replicas", len(pods)),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("unavailableReplicas", unavailable),
    ):
        if value:
            status[name] = value
    status["conditions"] = [
        cond(
            "Available",
            available,
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if available
            else "Deployment does not have minimum availability.",
        ),
        cond(
            "Progressing",
            True,
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{new_name}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{new_name}" is progressing.',
        ),
    ]
    for key, value in dep.status_override.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = copy.deepcopy(value)
    return status
