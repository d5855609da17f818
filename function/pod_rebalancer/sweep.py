"""A sweep's two moves besides the per-target path: find the targets (list the Deployments of each
literal allowed namespace and keep the opted-in ones, core/sweep.py), and work on several
targets at once, at most SWEEP_CONCURRENCY, each on its own thread.

The adapters are shared by the threads: the Kubernetes client's urllib3 pool and the metrics
server's httpx.Client are thread-safe, and so are the logger and the audit publisher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from pod_rebalancer.core.model import AllowList, Deployment, Target
from pod_rebalancer.core.sweep import reach, swept
from pod_rebalancer.errors import ConfigError, KubernetesError

Item = TypeVar("Item")
Result = TypeVar("Result")

RBAC_HINT = (
    "a sweep lists Deployments, which needs `deployments list` in every namespace it covers "
    "(infra/kubernetes/rbac-sweep.yaml; Terraform: kubernetes-rbac with sweep = true)"
)


class DeploymentLister(Protocol):
    def deployments(self, namespace: str) -> list[Deployment]: ...


def discover(
    cluster: DeploymentLister, allow: AllowList, log: logging.Logger
) -> tuple[Target, ...]:
    """The sweep's targets, by namespace and name; ConfigError when the allow-list names no
    namespace that can be listed, KubernetesError when a list fails (nothing has been done)."""
    covered = reach(allow)
    if not covered.namespaces:
        raise ConfigError(
            "ALLOWED_NAMESPACES",
            f"{', '.join(allow.namespaces)} names no namespace a sweep can list: it lists literal "
            "namespaces only (a wildcard would need a ClusterRole to list namespaces); name them",
        )
    if covered.not_listed:
        log.warning(
            "sweep covers the literal namespaces %s only; not listed: %s",
            ", ".join(covered.namespaces),
            ", ".join(covered.not_listed),
            extra={
                "fields": {
                    "event": "sweep_not_listed",
                    "namespaces": list(covered.namespaces),
                    "not_listed": list(covered.not_listed),
                }
            },
        )
    found: list[Deployment] = []
    for namespace in covered.namespaces:
        try:
            found.extend(cluster.deployments(namespace))
        except KubernetesError as exc:
            if exc.status != 403:
                raise
            raise KubernetesError(f"{RBAC_HINT}: {exc}", exc.status, exc.reason) from exc
    return swept(found, allow)


def in_parallel(
    items: Sequence[Item], work: Callable[[Item], Result], concurrency: int
) -> list[Result]:
    """`work(item)` for every item, at most `concurrency` at a time; results in the items' order.

    A bug (any exception) in one stops the items not yet started, waits for those under way (a
    target mid-eviction finishes, and releases its lock) and is raised.
    """
    if concurrency <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    workers = min(concurrency, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pod-rebalancer") as pool:
        futures: list[Future[Result]] = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
