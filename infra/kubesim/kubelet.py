"""A pod's lifecycle as the scheduler and the kubelet play it: bound to a node, Ready after its
startup, Terminating for its grace period (pkg/registry/core/pod/strategy.go CheckGracefulDelete).
"""

from __future__ import annotations

from typing import Any

from infra.kubesim import objects
from infra.kubesim.store import PodState, Store
from infra.kubesim.timefmt import parse_time, rfc3339

NODES = tuple(f"gke-sim-default-pool-4f1c2d3e-{s}" for s in ("b7kq", "c9xz", "h2lm", "q5tw"))


def _next_ip(store: Store) -> str:
    store.ips += 1
    return f"10.8.{(store.ips // 250) % 250}.{store.ips % 250 + 2}"


def _next_node(store: Store) -> str:
    store.nodes += 1
    return NODES[store.nodes % len(NODES)]


def bind(store: Store, pod: PodState, now: float) -> None:
    """Scheduler and kubelet: bound to a node, containers started, not Ready yet."""
    spec, status = pod.obj["spec"], pod.obj["status"]
    spec["nodeName"] = _next_node(store)
    ip = _next_ip(store)
    status.update(
        {
            "phase": "Running",
            "hostIP": f"10.128.0.{NODES.index(spec['nodeName']) + 10}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": rfc3339(now),
        }
    )
    write_conditions(pod, ready=False, now=now)
    pod.bind_at = None
    store.touch(pod.obj)


def write_conditions(pod: PodState, ready: bool, now: float) -> None:
    """The pod's conditions and container statuses for its phase and readiness."""
    status = pod.obj["status"]
    containers = pod.obj["spec"]["containers"]
    names = ", ".join(c["name"] for c in containers)
    old = {c["type"]: c for c in status.get("conditions", ())}

    def cond(kind: str, value: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        previous = old.get(kind)
        if previous and previous["status"] == ("True" if value else "False"):
            return dict(previous)
        return objects.condition(kind, value, now, reason, message)

    running = status.get("phase") == "Running"
    unready = "" if ready else "ContainersNotReady"
    unready_msg = "" if ready else f"containers with unready status: [{names}]"
    conditions = [
        cond("PodReadyToStartContainers", running),
        cond("Initialized", True),
        cond("Ready", ready, unready, unready_msg),
        cond("ContainersReady", ready, unready, unready_msg),
        cond("PodScheduled", bool(pod.obj["spec"].get("nodeName"))),
    ]
    for extra in status.get("conditions", ()):
        if extra["type"] not in {c["type"] for c in conditions}:
            conditions.append(extra)
    status["conditions"] = conditions
    state = {"Running": "running", "Succeeded": "terminated", "Failed": "terminated"}.get(
        str(status.get("phase")), "waiting"
    )
    previous = {c["name"]: c for c in status.get("containerStatuses", ())}
    statuses = []
    for container in containers:
        seed = (pod.obj["metadata"]["uid"] + container["name"]).encode()
        cid = f"containerd://{objects.fnv32a(seed):08x}"
        entry = objects.container_status(container, state, ready, now, cid)
        old_entry = previous.get(container["name"])
        if old_entry and old_entry["state"].keys() == entry["state"].keys():
            entry["state"] = old_entry["state"]
        statuses.append(entry)
    status["containerStatuses"] = statuses
    pod.is_ready = ready


def set_ready(store: Store, pod: PodState, ready: bool, now: float) -> bool:
    if pod.ready == ready and pod.obj["status"].get("conditions"):
        return False
    write_conditions(pod, ready, now)
    store.touch(pod.obj)
    return True


def progress(store: Store, now: float) -> None:
    """One kubelet pass: finished terminations go, due pods bind, readiness follows startup."""
    for key, pod in list(store.pods.items()):
        if pod.delete_at is not None and now >= pod.delete_at:
            del store.pods[key]
            store.next_rv()
            continue
        if pod.terminating:
            continue
        if pod.phase_override is None and pod.bind_at is not None and now >= pod.bind_at:
            bind(store, pod, now)
        if pod.phase != "Running":
            continue
        want = pod.ready_override
        if want is None:
            want = pod.ready_at is not None and now >= pod.ready_at
        if want != pod.ready:
            set_ready(store, pod, want, now)


def termination_grace(pod: PodState) -> int:
    return int(pod.obj["spec"].get("terminationGracePeriodSeconds", 30))


def start_deletion(store: Store, pod: PodState, grace: int, now: float) -> None:
    """Terminating: deletionTimestamp set, not Ready, gone when its containers have exited."""
    meta = pod.obj["metadata"]
    meta["deletionTimestamp"] = rfc3339(now + grace)
    meta["deletionGracePeriodSeconds"] = grace
    dep = store.deployments.get(pod.deployment) if pod.deployment else None
    shutdown = dep.shutdown if dep and dep.shutdown is not None else float(grace)
    pod.delete_at = now + min(float(grace), shutdown)
    if pod.ready:
        write_conditions(pod, False, now)
    store.touch(pod.obj)


def begin_graceful_deletion(
    store: Store, pod: PodState, grace: int | None, now: float
) -> bool | None:
    """True: delete at once; False: now Terminating; None: already Terminating, unchanged."""
    meta = pod.obj["metadata"]
    if pod.terminating:
        current = meta.get("deletionGracePeriodSeconds")
        if not current:
            return True
        if grace is None or grace >= current:
            return None  # only a shorter grace period may be given
        if grace == 0:
            return True
        started = parse_time(meta["deletionTimestamp"]) - current
        start_deletion(store, pod, grace, started)
        return False
    period = grace
    if period is None:
        period = termination_grace(pod)
    if not pod.obj["spec"].get("nodeName") or pod.phase in ("Succeeded", "Failed"):
        period = 0  # nothing runs it, or nothing runs any more: no kubelet to wait for
    if period == 0:
        return True
    start_deletion(store, pod, period, now)
    return False
