"""Helpers for tests that run against the Kubernetes API simulator."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient, Configuration

from infra.kubesim.launcher import KubeSim
from pod_rebalancer.adapters.kube_auth import CLIENT_RETRIES

TOKEN = "rebalancer-token"
USER = "system:serviceaccount:ops:pod-rebalancer"

# What the function needs, as infra/kubernetes/rbac.yaml grants it.
REBALANCER_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def deployment(namespace: str, name: str, replicas: int, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "replicas": replicas,
        "labels": {"app": name},
        "container": name,
        "startupSeconds": 0.5,
        "terminationGracePeriodSeconds": 1,
        "podAgeSeconds": 3600,
    }
    spec.update(extra)
    return spec


def scenario(
    namespaces: list[str], deployments: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """The function's service account, bound in `namespaces` with exactly the rules it needs."""
    body: dict[str, Any] = {
        "seed": 11,
        "users": {TOKEN: {"name": USER, "groups": []}},
        "bindings": [
            {"user": USER, "namespace": ns, "rules": REBALANCER_RULES} for ns in namespaces
        ],
        "deployments": deployments,
    }
    body.update(extra)
    return body


def api_client(sim: KubeSim, token: str = TOKEN) -> ApiClient:
    configuration = Configuration(host=sim.url)
    if sim.ca_file is not None:
        configuration.ssl_ca_cert = str(sim.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.retries = CLIENT_RETRIES  # as the function configures its client
    return ApiClient(configuration)


def kubeconfig(sim: KubeSim, path: Path, token: str = TOKEN) -> Path:
    """A kubeconfig file for the simulator, as `KUBE_AUTH=kubeconfig` reads it."""
    cluster: dict[str, Any] = {"server": sim.url}
    if sim.ca_file is not None:
        ca = base64.b64encode(Path(sim.ca_file).read_bytes()).decode()
        cluster["certificate-authority-data"] = ca
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "sim", "cluster": cluster}],
                "users": [{"name": "rb", "user": {"token": token}}],
                "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "rb"}}],
                "current-context": "sim",
            }
        )
    )
    return path
