"""Helpers for tests that run against the Kubernetes API simulator."""

from __future__ import annotations

from kubernetes.client import ApiClient, Configuration

from infra.kubesim.launcher import KubeSim
from infra.stack.kube import TOKEN, USER, deployment, kubeconfig, rebalancer_rules, scenario
from pod_rebalancer.adapters.kube_auth import CLIENT_RETRIES

__all__ = [
    "REBALANCER_RULES",
    "TOKEN",
    "USER",
    "api_client",
    "deployment",
    "kubeconfig",
    "rebalancer_rules",
    "scenario",
]

REBALANCER_RULES = rebalancer_rules()


def api_client(sim: KubeSim, token: str = TOKEN) -> ApiClient:
    configuration = Configuration(host=sim.url)
    if sim.ca_file is not None:
        configuration.ssl_ca_cert = str(sim.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.retries = CLIENT_RETRIES  # as the function configures its client
    return ApiClient(configuration)
