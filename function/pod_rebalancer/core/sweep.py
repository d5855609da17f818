"""Which Deployments a sweep covers: those of the allow-list's literal namespaces that opted in
and that ALLOWED_DEPLOYMENTS names. The shell lists each namespace; these functions only judge.

Namespaces can only be listed cluster-wide (`namespaces list`, a ClusterRole the least-privilege
RBAC does not grant), so a pattern with a wildcard cannot be expanded: a sweep covers the literal
namespaces and says which patterns it left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pod_rebalancer.core.model import AllowList, Deployment, Target
from pod_rebalancer.core.names import label_problem
from pod_rebalancer.core.target_guards import target_not_allowed


@dataclass(frozen=True, slots=True)
class Reach:
    """The namespaces a sweep lists, and the allow-list patterns it cannot list."""

    namespaces: tuple[str, ...]
    not_listed: tuple[str, ...]  # patterns with a wildcard (or that no namespace can be named)


def reach(allow: AllowList) -> Reach:
    literal = sorted({p for p in allow.namespaces if "*" not in p and label_problem(p) is None})
    return Reach(tuple(literal), tuple(p for p in allow.namespaces if p not in literal))


def swept(deployments: Iterable[Deployment], allow: AllowList) -> tuple[Target, ...]:
    """The opted-in Deployments the allow-list names, once each, by namespace and name.

    An excluded Deployment that opted in stays: its result then says `excluded`.
    """
    targets = {
        d.target for d in deployments if d.enabled and target_not_allowed(d.target, allow) is None
    }
    return tuple(sorted(targets, key=lambda t: (t.namespace, t.deployment)))
