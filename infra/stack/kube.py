"""Scenarios for the Kubernetes API simulator: the function's identity with exactly its RBAC."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import REPO

RBAC = REPO / "infra" / "kubernetes" / "rbac.yaml"
SWEEP_RBAC = REPO / "infra" / "kubernetes" / "rbac-sweep.yaml"
TOKEN = "rebalancer-token"  # noqa: S105  (a test identity's token for the local simulator)
USER = "system:serviceaccount:ops:pod-rebalancer"


def rebalancer_rules(sweep: bool = False) -> list[dict[str, Any]]:
    """The rules of the Role in infra/kubernetes/rbac.yaml: what the function is granted; with
    `sweep`, also those of rbac-sweep.yaml (Deployments list)."""
    rules = _role_rules(RBAC)
    return rules + _role_rules(SWEEP_RBAC) if sweep else rules


def sweep_rules() -> list[dict[str, Any]]:
    """The rules of the Role in infra/kubernetes/rbac-sweep.yaml, granted only for sweeps."""
    return _role_rules(SWEEP_RBAC)


def _role_rules(path: Path) -> list[dict[str, Any]]:
    role = next(doc for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == "Role")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


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


def hpa(
    namespace: str, name: str, cpu_utilization: int | None = 70, **extra: Any
) -> dict[str, Any]:
    """An autoscaling/v2 HPA entry for `scenario(hpas=[...])`: by default named like the
    Deployment it scales, with a CPU Utilization target (None: no CPU target)."""
    spec: dict[str, Any] = {"namespace": namespace, "name": name, "cpuUtilization": cpu_utilization}
    spec.update(extra)
    return spec


def scenario(
    namespaces: list[str], deployments: list[dict[str, Any]], *, sweep: bool = False, **extra: Any
) -> dict[str, Any]:
    """The function's identity, bound in `namespaces` with the rules of rbac.yaml, no more (and
    with `sweep`, those of rbac-sweep.yaml)."""
    rules = rebalancer_rules(sweep)
    body: dict[str, Any] = {
        "seed": 11,
        "users": {TOKEN: {"name": USER, "groups": []}},
        "bindings": [{"user": USER, "namespace": ns, "rules": rules} for ns in namespaces],
        "deployments": deployments,
    }
    body.update(extra)
    return body


def kubeconfig(sim: KubeSim, path: Path, token: str = TOKEN) -> Path:
    """A kubeconfig file for the simulator, as `KUBE_AUTH=kubeconfig` reads it."""
    cluster: dict[str, Any] = {"server": sim.url}
    if sim.ca_file is not None:
        ca = base64.b64encode(Path(sim.ca_file).read_bytes()).decode()
        cluster["certificate-authority-data"] = ca
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sim", "cluster": cluster}],
        "users": [{"name": "rb", "user": {"token": token}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "rb"}}],
        "current-context": "sim",
    }
    path.write_text(yaml.safe_dump(config))
    return path
