"""What the end-to-end tests observe in the simulator: real evictions and the target's Lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from infra.kubesim.launcher import KubeSim
from pod_rebalancer.adapters.kube import LAST_REBALANCE, LAST_SELECTION
from pod_rebalancer.core.model import Target
from pod_rebalancer.locking import lease_name

__all__ = ["LAST_REBALANCE", "LAST_SELECTION", "evictions", "last_rebalance", "lease"]


def evictions(sim: KubeSim, namespace: str, deployment: str) -> list[str]:
    """Pods of `deployment` evicted for real (201, not dryRun=All), in the order they were."""
    prefix = f"/api/v1/namespaces/{namespace}/pods/{deployment}-"
    return [
        r["path"].split("/")[-2]
        for r in sim.requests()
        if r["method"] == "POST"
        and r["path"].startswith(prefix)
        and r["path"].endswith("/eviction")
        and r["status"] == 201
        and r["query"].get("dryRun") != "All"
    ]


def lease(sim: KubeSim, namespace: str, deployment: str) -> dict[str, Any] | None:
    """The target's Lease (its lock and cooldown memory), if there is one."""
    name = lease_name(Target(namespace, deployment))
    return next(
        (
            item
            for item in sim.state()["leases"]
            if item["metadata"]["namespace"] == namespace and item["metadata"]["name"] == name
        ),
        None,
    )


def last_rebalance(item: dict[str, Any]) -> datetime:
    """The cooldown stamp the function writes on the Lease."""
    return datetime.fromisoformat(item["metadata"]["annotations"][LAST_REBALANCE])
