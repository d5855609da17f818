"""The container label: which `container` series of a target's pods the CPU query reads."""

from __future__ import annotations

from collections.abc import Sequence

from pod_rebalancer.core.model import Target


def container_label(
    target: Target, containers: Sequence[str], *, default_deployment: str, configured: str | None
) -> str | None:
    """The `container` label of the target's CPU series, or None when nothing says which.

    1. CONTAINER_NAME (`configured`), for the default Deployment (DEPLOYMENT_NAME) only;
    2. else the Deployment's container that bears the Deployment's name;
    3. else its only container.
    A Deployment with several containers, none named like it, is ambiguous: None, so the caller
    skips it rather than measure a sidecar.
    """
    if configured and target.deployment == default_deployment:
        return configured
    if target.deployment in containers:
        return target.deployment
    if len(containers) == 1:
        return containers[0]
    return None
