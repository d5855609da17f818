"""What every edge needs from the instance, as a port: settings, the service, the clock, and the
token callers must present. bootstrap.Lazy is the production one; tests pass their own."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pod_rebalancer.config import Settings
from pod_rebalancer.service import Rebalancer


class Runtime(Protocol):
    """Settings first (cheap and validated), the service only for a call that was admitted
    (building it creates the clients and may ask a cloud API where the cluster is). Both raise
    ConfigError; the service and the token also DependencyError."""

    def settings(self) -> Settings: ...
    def service(self) -> Rebalancer: ...
    def now(self) -> datetime: ...
    def webhook_token(self) -> str | None:
        """The token HTTP callers must present, None when none can be read (nobody is admitted)."""
        ...
