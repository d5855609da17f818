"""Helpers for tests that run against the Kubernetes API simulator."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient, Configuration

from infra.kubesim.launcher import KubeSim
from infra.stack.kube import (
    TOKEN,
    USER,
    deployment,
    hpa,
    kubeconfig,
    rebalancer_rules,
    scenario,
    sweep_rules,
)
from pod_rebalancer.adapters.kube_auth import CLIENT_RETRIES

__all__ = [
    "ALL_RULES",
    "REBALANCER_RULES",
    "TOKEN",
    "USER",
    "FakeClock",
    "api_client",
    "deployment",
    "hpa",
    "kubeconfig",
    "rebalancer_rules",
    "scenario",
    "sweep_rules",
]

REBALANCER_RULES = rebalancer_rules()

# Every resource the simulator serves, with every verb it answers: an identity that may do anything.
ALL_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [
            "",
            "apps",
            "policy",
            "coordination.k8s.io",
            "events.k8s.io",
            "autoscaling",
        ],
        "resources": [
            "pods",
            "pods/eviction",
            "deployments",
            "replicasets",
            "poddisruptionbudgets",
            "leases",
            "events",
            "horizontalpodautoscalers",
        ],
        "verbs": ["get", "list", "create", "update", "patch", "delete"],
    }
]


class FakeClock:
    """A clock for an in-process `Cluster(scenario, clock=...)`: it moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def api_client(sim: KubeSim, token: str = TOKEN) -> ApiClient:
    configuration = Configuration(host=sim.url)
    if sim.ca_file is not None:
        configuration.ssl_ca_cert = str(sim.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.retries = CLIENT_RETRIES  # as the function configures its client
    return ApiClient(configuration)
