"""The framework-free HTTP edge with a runtime of our own fakes: the clock it is given is the
clock it uses, and the service is only built for a call that was admitted."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from pod_rebalancer.config import Settings
from pod_rebalancer.errors import KubernetesError
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.web import HttpRequest, handle
from tests.builders import NOW
from tests.fakes import FakeCluster, FakeMetrics

SECRET = "grafana-shared-secret"
STAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"
SETTINGS = Settings(
    prometheus_endpoint="http://metrics.invalid",
    kube_namespace="posthog",
    deployment_name="ingestion-consumer",
    webhook_hmac_secret=SECRET,
    webhook_signature_timestamp_header=STAMP_HEADER,
)


@dataclass
class FakeRuntime:
    broken: bool = False
    built: int = 0
    cluster: FakeCluster = field(default_factory=lambda: FakeCluster(exists=False))

    def settings(self) -> Settings:
        return SETTINGS

    def service(self) -> Rebalancer:
        self.built += 1
        if self.broken:
            raise KubernetesError("GKE API unreachable looking up the cluster")
        return Rebalancer(
            SETTINGS, FakeMetrics(), self.cluster, clock=self.now, log=logging.getLogger("t")
        )

    def now(self) -> datetime:
        return NOW

    def webhook_token(self) -> str | None:
        return SETTINGS.webhook_secret()


def signed_request(body: bytes, stamp: float) -> HttpRequest:
    text = f"{stamp:.0f}"
    digest = hmac.new(SECRET.encode(), text.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        STAMP_HEADER.lower(): text,
        "x-grafana-alerting-signature": digest,
    }
    return HttpRequest("POST", headers, (), io.BytesIO(body).read, len(body))


def test_signature_freshness_is_judged_by_the_runtimes_clock_not_the_wall_clock() -> None:
    body = json.dumps({"dry_run": True}).encode()
    runtime = FakeRuntime()

    by_runtime = handle(signed_request(body, NOW.timestamp()), runtime)
    by_wall_clock = handle(signed_request(body, time.time()), runtime)

    assert by_runtime.status == 200
    assert by_runtime.body["results"][0]["reason"] == "target_not_found"
    assert by_wall_clock.status == 401


def test_the_service_is_built_only_for_an_admitted_call() -> None:
    runtime = FakeRuntime()
    body = b"{}"

    assert handle(signed_request(body, NOW.timestamp() - 3600), runtime).status == 401
    assert handle(signed_request(b"[", NOW.timestamp()), runtime).status == 400
    assert runtime.built == 0


def test_a_service_that_cannot_be_built_for_a_dependency_is_a_503_per_target() -> None:
    answer = handle(signed_request(b"{}", NOW.timestamp()), FakeRuntime(broken=True))

    assert answer.status == 503
    (result,) = answer.body["results"]
    assert (result["action"], result["reason"]) == ("failed", "dependency_unavailable")
    assert result["dry_run"] is True
    assert "GKE API unreachable" in result["errors"]["kubernetes"]
