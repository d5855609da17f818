"""Builders for the objects the simulator serves, shaped like kube-apiserver's JSON.

Pure functions of their inputs (names, times, counters are passed in), so the cluster decides
what happens and these decide only what it looks like.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Mapping
from typing import Any

from infra.kubesim.timefmt import rfc3339

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped onto the vowel-free alphabet."""
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in text)


def template_hash(template: Mapping[str, Any]) -> str:
    """Like controller.ComputeHash: FNV-32a of the template, its decimal form safe-encoded."""
    return _hash_of(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())


@functools.lru_cache(maxsize=4096)
def _hash_of(canonical: bytes) -> str:
    # Every controller pass hashes every template: remember them (FNV in Python is slow).
    return safe_encode(str(fnv32a(canonical)))


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%"):
        return int(text)
    percent = float(text[:-1])
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def condition(
    kind: str, status: bool, now: float, reason: str = "", message: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(now),
    }
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def pod_template(spec: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """The Deployment's pod template from a scenario entry, with the API server's defaults."""
    container = str(spec.get("container", spec["name"]))
    resources = spec.get(
        "resources",
        {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    )
    template: dict[str, Any] = {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "containers": [
                {
                    "name": container,
                    "image": str(spec.get("image", f"registry.example.com/{spec['name']}:1.0.0")),
                    "resources": copy.deepcopy(resources),
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": int(spec.get("terminationGracePeriodSeconds", 30)),
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }
    if spec.get("templateAnnotations"):
        template["metadata"]["annotations"] = dict(spec["templateAnnotations"])
    return template


def deployment(
    spec: Mapping[str, Any], labels: Mapping[str, str], uid: str, created: float
) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": spec["name"],
            "namespace": spec["namespace"],
            "uid": uid,
            "resourceVersion": "",
            "generation": 1,
            "creationTimestamp": rfc3339(created),
            "labels": dict(labels),
            "annotations": {REVISION: "1", **dict(spec.get("annotations") or {})},
        },
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(spec, labels),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {},
    }


def replica_set(
    dep: Mapping[str, Any], pod_hash: str, revision: int, uid: str, created: float
) -> dict[str, Any]:
    meta = dep["metadata"]
    template = copy.deepcopy(dep["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = pod_hash
    selector = copy.deepcopy(dep["spec"]["selector"])
    selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
    replicas = int(dep["spec"].get("replicas", 1))
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "uid": uid,
            "resourceVersion": "",
            "generation": 1,
            "creationTimestamp": rfc3339(created),
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                REVISION: str(revision),
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
        "status": {"replicas": 0},
    }


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars), several times faster than deepcopy."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value


def pod(rs: Mapping[str, Any], name: str, uid: str, created: float) -> dict[str, Any]:
    """A new, unscheduled pod of a ReplicaSet (the scheduler and kubelet move it on)."""
    meta = rs["metadata"]
    template = rs["spec"]["template"]
    spec: dict[str, Any] = json_copy(template["spec"])
    spec.update(
        {
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {
                    "key": f"node.kubernetes.io/{taint}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for taint in ("not-ready", "unreachable")
            ],
        }
    )
    metadata: dict[str, Any] = {
        "name": name,
        "generateName": f"{meta['name']}-",
        "namespace": meta["namespace"],
        "uid": uid,
        "resourceVersion": "",
        "creationTimestamp": rfc3339(created),
        "labels": dict(template["metadata"].get("labels", {})),
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if template["metadata"].get("annotations"):
        metadata["annotations"] = dict(template["metadata"]["annotations"])
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def container_status(
    container: Mapping[str, Any], state: str, ready: bool, now: float, container_id: str
) -> dict[str, Any]:
    if state == "running":
        detail: dict[str, Any] = {"running": {"startedAt": rfc3339(now)}}
    elif state == "terminated":
        detail = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": rfc3339(now),
                "finishedAt": rfc3339(now),
                "containerID": container_id,
            }
        }
    else:
        detail = {"waiting": {"reason": "ContainerCreating"}}
    image = container.get("image", "")
    out: dict[str, Any] = {
        "name": container["name"],
        "state": detail,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": image,
        "imageID": f"{str(image).split(':')[0]}@sha256:{'0' * 64}",
        "started": state == "running",
    }
    if state != "waiting":
        out["containerID"] = container_id
    return out


def pdb(spec: Mapping[str, Any], uid: str, created: float) -> dict[str, Any]:
    selector = spec.get("selector") or {}
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": dict(selector)}
    body: dict[str, Any] = {"selector": copy.deepcopy(selector)}
    if "minAvailable" in spec:
        body["minAvailable"] = spec["minAvailable"]
    if "maxUnavailable" in spec:
        body["maxUnavailable"] = spec["maxUnavailable"]
    if spec.get("unhealthyPodEvictionPolicy"):
        body["unhealthyPodEvictionPolicy"] = spec["unhealthyPodEvictionPolicy"]
    return {
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": {
            "name": spec["name"],
            "namespace": spec["namespace"],
            "uid": uid,
            "resourceVersion": "",
            "generation": 1,
            "creationTimestamp": rfc3339(created),
        },
        "spec": body,
        "status": {
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        },
    }


def without_type_meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    """List items carry no kind/apiVersion on the wire."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


# ------------------------------------------------------------ events: core/v1 <-> events.k8s.io

# events.k8s.io/v1 field → core/v1 field (pkg/apis/events/v1/conversion.go)
EVENTS_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
CORE_TO_EVENTS = {v: k for k, v in EVENTS_TO_CORE.items()}
EVENT_COMMON = (
    "metadata",
    "eventTime",
    "series",
    "related",
    "reportingInstance",
    "action",
    "reason",
    "type",
)


def event_to_core(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "v1"}
    for key, value in obj.items():
        if key in ("kind", "apiVersion"):
            continue
        out[EVENTS_TO_CORE.get(key, key)] = copy.deepcopy(value)
    return out


def core_to_event(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for key, value in obj.items():
        if key in ("kind", "apiVersion"):
            continue
        if key in CORE_TO_EVENTS:
            out[CORE_TO_EVENTS[key]] = copy.deepcopy(value)
        elif key in EVENT_COMMON:
            out[key] = copy.deepcopy(value)
    return out
