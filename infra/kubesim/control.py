"""The control API's side of the cluster (`/_sim/...`, for tests and the demo): every object,
a Deployment's pods, pinning a pod or a Deployment, changes made behind the client's back (a pod
deleted or replaced under its name, a rollout, another holder's Lease), and the load model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infra.kubesim import deployments, kubelet, leases, objects, patch, pods
from infra.kubesim.load import population_variance
from infra.kubesim.rest import DeleteOptions
from infra.kubesim.status import bad_request
from infra.kubesim.store import Obj, PodState, Store
from infra.kubesim.timefmt import micro, rfc3339

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def state(store: Store) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "resourceVersion": str(store.rv),
            "pods": [p.obj for _, p in sorted(store.pods.items())],
            "deployments": [d.obj for _, d in sorted(store.deployments.items())],
            "replicasets": [r.obj for _, r in sorted(store.replicasets.items())],
            "poddisruptionbudgets": [b.obj for _, b in sorted(store.pdbs.items())],
            "leases": [obj for _, obj in sorted(store.leases.items())],
            "horizontalpodautoscalers": [obj for _, obj in sorted(store.hpas.items())],
            "events": [obj for _, obj in sorted(store.events.items())],
        }
    )


def deployment_pods(store: Store, namespace: str, deployment: str) -> list[Obj]:
    deployments.find(store, namespace, deployment)
    return copy.deepcopy(
        [p.obj for _, p in sorted(store.pods.items()) if p.deployment == (namespace, deployment)]
    )


def set_pod(store: Store, namespace: str, name: str, change: Mapping[str, Any]) -> Obj:
    """Test hooks: {"ready": bool|None, "phase": str|None, "annotations": {...},
    "labels": {...}, "createdSecondsAgo": n, "readySecondsAgo": n, "nodeName": str|None}; None
    clears a pin. `readySecondsAgo` backdates a Ready pod's Ready and ContainersReady conditions
    (lastTransitionTime), as a real API server's status subresource can."""
    now = store.clock()
    pod = pods.find(store, namespace, name)
    _set_metadata(pod, change, now)
    if "phase" in change:
        _set_phase(pod, change["phase"], now)
    if "ready" in change:
        pod.ready_override = change["ready"]
        if change["ready"] is not None and pod.phase == "Running" and not pod.terminating:
            kubelet.write_conditions(pod, bool(change["ready"]), now)
    if "readySecondsAgo" in change:
        stamp = rfc3339(now - float(change["readySecondsAgo"]))
        for condition in pod.obj["status"].get("conditions", ()):
            if condition["type"] in ("Ready", "ContainersReady") and condition["status"] == "True":
                condition["lastTransitionTime"] = stamp
    store.touch(pod.obj)
    kubelet.progress(store, now)
    store.after_write(now)
    return copy.deepcopy(pod.obj)


def _set_metadata(pod: PodState, change: Mapping[str, Any], now: float) -> None:
    meta, status = pod.obj["metadata"], pod.obj["status"]
    if "annotations" in change:
        merged = patch.merge_patch(meta.get("annotations") or {}, change["annotations"] or {})
        meta["annotations"] = merged
        if not merged:
            meta.pop("annotations")
    if "labels" in change:
        meta["labels"] = patch.merge_patch(meta.get("labels") or {}, change["labels"] or {})
    if "createdSecondsAgo" in change:
        pod.created = now - float(change["createdSecondsAgo"])
        meta["creationTimestamp"] = rfc3339(pod.created)
        if "startTime" in status:
            status["startTime"] = rfc3339(pod.created)
    if "nodeName" in change:
        if change["nodeName"]:
            pod.obj["spec"]["nodeName"] = change["nodeName"]
        else:
            pod.obj["spec"].pop("nodeName", None)


def _set_phase(pod: PodState, phase: str | None, now: float) -> None:
    pod.phase_override = phase
    status = pod.obj["status"]
    if phase is None:  # unpinned: the kubelet takes over again
        if pod.phase != "Running":
            if pod.obj["spec"].get("nodeName"):
                status["phase"] = "Running"
                kubelet.write_conditions(pod, False, now)
            else:
                pod.bind_at = now
        return
    status["phase"] = phase
    if phase != "Running":
        pod.ready_override = None
    kubelet.write_conditions(pod, phase == "Running" and pod.ready, now)


def set_deployment(store: Store, namespace: str, name: str, change: Mapping[str, Any]) -> Obj:
    """{"annotations": {...}, "status": {...} | None, "startupSeconds": s, "pendingSeconds": s}."""
    now = store.clock()
    dep = deployments.find(store, namespace, name)
    if "annotations" in change:
        meta = dep.obj["metadata"]
        meta["annotations"] = patch.merge_patch(
            meta.get("annotations") or {}, change["annotations"] or {}
        )
    if "status" in change:
        if change["status"] is None:
            dep.status_override = {}
        else:
            dep.status_override.update(change["status"])
    if "startupSeconds" in change:
        dep.startup = float(change["startupSeconds"])
    if "pendingSeconds" in change:
        dep.pending = float(change["pendingSeconds"])
    store.touch(dep.obj)
    store.after_write(now)
    return copy.deepcopy(dep.obj)


def delete_pod(store: Store, namespace: str, name: str) -> Obj:
    """Someone else force-deletes the pod: it is gone at once (its ReplicaSet replaces it under
    a new name), so an eviction that names it then answers 404."""
    pod = pods.find(store, namespace, name)
    return pods.delete(store, pod, DeleteOptions(grace=0), store.clock())


def replace_pod(store: Store, namespace: str, name: str) -> Obj:
    """The pod deleted and created again under the same name with a new UID, Running and Ready
    at once (as a StatefulSet does): a UID precondition naming the old pod then answers 409."""
    now = store.clock()
    old = pods.find(store, namespace, name)
    rs = store.replicasets.get((namespace, old.rs))
    if rs is None:
        raise bad_request(f"pod {name} has no ReplicaSet to be made again from")
    del store.pods[(namespace, name)]
    obj = objects.pod(rs.obj, name, store.uid(), now)
    store.touch(obj)
    new = PodState(obj=obj, deployment=old.deployment, rs=old.rs, created=now, ready_at=now)
    store.pods[(namespace, name)] = new
    kubelet.bind(store, new, now)
    kubelet.set_ready(store, new, True, now)
    store.after_write(now)
    return copy.deepcopy(new.obj)


def rollout(store: Store, namespace: str, name: str) -> Obj:
    """`kubectl rollout restart`: a new template annotation, so the controllers really roll."""
    change = {
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: micro(store.clock())}}}}
    }
    return deployments.patch_deployment(
        store, namespace, name, "application/strategic-merge-patch+json", change, dry_run=False
    )


def owning_deployment(store: Store, namespace: str, pod: str) -> str:
    """The Deployment a pod belongs to (for actions aimed at a pod's request)."""
    state = pods.find(store, namespace, pod)
    if state.deployment is None:
        raise bad_request(f"pod {pod} belongs to no Deployment")
    return state.deployment[1]


def take_lease(
    store: Store,
    namespace: str,
    name: str,
    holder: str,
    annotations: Mapping[str, str],
    duration: int = 300,
) -> Obj:
    """Another invocation takes the Lease now (created, or updated over whatever is there)."""
    now = micro(store.clock())
    existing = store.leases.get((namespace, name))
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if existing is not None:
        meta = copy.deepcopy(existing["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    body = {
        "apiVersion": leases.API_VERSION,
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": now,
            "renewTime": now,
        },
    }
    if existing is None:
        return leases.create_lease(store, namespace, body, dry_run=False)
    return leases.update_lease(store, namespace, name, body, dry_run=False)[0]


def cpu(store: Store, namespace: str, deployment: str) -> dict[str, Any]:
    """The load model's view of a Deployment: per-pod CPU and lag, partitions, assignment,
    variance."""
    dep = deployments.find(store, namespace, deployment)
    group = dep.group
    owned = sorted(
        (p for p in store.pods.values() if p.deployment == dep.key), key=lambda p: p.name
    )
    out: dict[str, Any] = {
        "namespace": namespace,
        "deployment": deployment,
        "container": dep.container,
        "pods": {},
        "assignment": {},
        "members": [],
        "generation": 0,
        "variance": 0.0,
    }
    if group is None:
        return out
    group.advance(store.clock())
    ready_cpu = []
    for pod in owned:
        cpu = group.mean_cpu(pod.name)
        out["pods"][pod.name] = {
            "cpu": cpu,
            "ready": pod.ready and not pod.terminating,
            "terminating": pod.terminating,
            "partitions": list(group.assignment.get(pod.name, [])),
            "messagesPerSecond": group.messages(pod.name),
            "processedPerSecond": group.rate(pod.name) if pod.name in group.assignment else 0.0,
            "lag": group.pod_lag(pod.name),
        }
        if pod.ready and not pod.terminating:
            ready_cpu.append(cpu)
    out["assignment"] = {m: list(p) for m, p in group.assignment.items()}
    out["members"] = list(group.members)
    out["generation"] = group.generation
    out["partitionRates"] = list(group.rates)
    out["partitionLag"] = list(group.lag)
    out["cpuLimit"] = group.cpu_limit
    out["variance"] = population_variance(ready_cpu)
    return out


def load_samples(store: Store) -> list[dict[str, Any]]:
    """Each pod's load under the current assignment, for metrics.draw_cpu to sample."""
    now = store.clock()
    samples = []
    for dep in store.deployments.values():
        if dep.group is None:
            continue
        group = dep.group
        group.advance(now)
        for pod in store.pods.values():
            if pod.deployment != dep.key:
                continue
            spec = group.spec
            member = pod.name in group.assignment
            rate = group.rate(pod.name) if member else 0.0
            # A pod at its limit is throttled to its quota: it reads the limit, without noise.
            throttled = rate >= group.capacity()
            samples.append(
                {
                    "namespace": dep.key[0],
                    "pod": pod.name,
                    "uid": pod.obj["metadata"]["uid"],
                    "container": dep.container,
                    "created": pod.created,
                    "base": spec.base_cpu,
                    "busy": spec.cpu_per_message * rate,
                    "noise": 0.0 if throttled else spec.noise,
                    "limit": group.cpu_limit,
                }
            )
    return samples


def kafka_samples(store: Store) -> list[dict[str, Any]]:
    """Each consumer group's partitions now: lag, rate and owner (a pod, or None), for the
    metrics writer's lag and assignment series."""
    now = store.clock()
    out = []
    for dep in store.deployments.values():
        group = dep.group
        if group is None:
            continue
        group.advance(now)
        owners = {p: pod for pod, owned in group.assignment.items() for p in owned}
        ips = {
            pod.name: str(pod.obj.get("status", {}).get("podIP", ""))
            for pod in store.pods.values()
            if pod.deployment == dep.key
        }
        uids = {
            pod.name: str(pod.obj["metadata"]["uid"])
            for pod in store.pods.values()
            if pod.deployment == dep.key
        }
        out.append(
            {
                "namespace": dep.key[0],
                "group": dep.key[1],
                "topic": group.spec.topic,
                "since": group.since if group.since is not None else now,
                "pods": [{"name": name, "ip": ip} for name, ip in sorted(ips.items())],
                "partitions": [
                    {
                        "partition": index,
                        "lag": group.lag[index],
                        "rate": group.rates[index],
                        "owner": owners.get(index),
                        "ip": ips.get(owners.get(index) or "", ""),
                        "uid": uids.get(owners.get(index) or "", ""),
                    }
                    for index in range(len(group.rates))
                ],
            }
        )
    return out
