"""The project's own exception tree; library errors are translated into it once, in the adapters.

RebalancerError
├── ConfigError          invalid configuration; names the environment variable (HTTP 500)
├── RequestError         a trigger sent something invalid; names the field (HTTP 400)
├── AuditError           the audit record was lost; the decision it describes stands (logged)
├── TelemetryError       the run's metrics were not pushed; the run stands (logged)
└── DependencyError      a dependency failed; retrying may help, nothing was done (HTTP 503)
    ├── MetricsError     the metrics server was unreachable, slow, erroring or answered nonsense
    ├── KubernetesError  the Kubernetes API, or the cloud API that locates it, failed
    ├── SecretsError     the secret store holding the webhook token did not answer
    └── RetryableError   raised to the platform (Pub/Sub, Lambda) so that it delivers again

Permanent problems are never DependencyErrors: they are a RequestError, a ConfigError, or a skip
with its own reason code.
"""

from __future__ import annotations


class RebalancerError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(RebalancerError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class RequestError(RebalancerError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class AuditError(RebalancerError):
    """The audit record was lost; the decision it describes stands."""


class TelemetryError(RebalancerError):
    """The run's own metrics could not be pushed; nothing about the run changes."""


class DependencyError(RebalancerError):
    """A dependency failed in a way a later retry may fix; the run must stop with nothing done."""

    dependency = "dependency"


class MetricsError(DependencyError):
    dependency = "metrics"


class KubernetesError(DependencyError):
    """`unsure`: the request may have been carried out all the same — its answer was lost (a
    timeout, a dropped connection) or was a server error. A write that failed so may have
    happened; one refused with a 4xx did not."""

    dependency = "kubernetes"

    def __init__(
        self,
        message: str,
        status: int | None = None,
        reason: str | None = None,
        *,
        unsure: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.unsure = unsure


class SecretsError(DependencyError):
    dependency = "secrets"


class RetryableError(DependencyError):
    """Raised to the platform so that it delivers the event again later (Pub/Sub, Lambda)."""
