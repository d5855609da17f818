"""HorizontalPodAutoscalers over REST (autoscaling/v2): get and list, seeded from the scenario.

The simulator does not scale anything: an HPA is the object kube-apiserver would serve, with a
status that reports the Deployment's replicas as both current and desired.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infra.kubesim.status import AUTOSCALING, not_found
from infra.kubesim.store import Obj, Store, labelled
from infra.kubesim.timefmt import rfc3339

API_VERSION = "autoscaling/v2"


def hpa(spec: Mapping[str, Any], uid: str, created: float, replicas: int) -> Obj:
    """An HPA from a scenario entry: `namespace`, `name`, `scaleTargetRef` (default: the
    Deployment of the same name), `cpuUtilization` (percent; null for none), `metrics` (raw
    autoscaling/v2 metric specs, replacing the CPU one), `minReplicas`, `maxReplicas`."""
    target = spec.get("scaleTargetRef") or {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": spec["name"],
    }
    if "metrics" in spec:
        metrics = copy.deepcopy(list(spec["metrics"]))
    elif spec.get("cpuUtilization", 80) is None:
        metrics = []
    else:
        utilization = int(spec.get("cpuUtilization", 80))
        metrics = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": utilization},
                },
            }
        ]
    body: dict[str, Any] = {
        "scaleTargetRef": dict(target),
        "minReplicas": int(spec.get("minReplicas", 1)),
        "maxReplicas": int(spec.get("maxReplicas", max(replicas, 1) * 2)),
    }
    if metrics:
        body["metrics"] = metrics
    return {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": spec["name"],
            "namespace": spec["namespace"],
            "uid": uid,
            "resourceVersion": "",
            "creationTimestamp": rfc3339(created),
            "labels": dict(spec.get("labels") or {}),
        },
        "spec": body,
        "status": {"currentReplicas": replicas, "desiredReplicas": replicas},
    }


def get_hpa(store: Store, namespace: str, name: str) -> Obj:
    obj = store.hpas.get((namespace, name))
    if obj is None:
        raise not_found("horizontalpodautoscalers", AUTOSCALING, name)
    return copy.deepcopy(obj)


def list_hpas(store: Store, namespace: str, label_selector: str | None = None) -> Obj:
    entries = list(store.hpas.items())
    return store.page(
        "HorizontalPodAutoscalerList",
        API_VERSION,
        lambda: labelled(entries, namespace, label_selector),
    )
