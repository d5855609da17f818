"""The Pushgateway adapter against a real Pushgateway (Debian `prometheus-pushgateway`): what a
Prometheus scraping it reads after one run and after the next."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.stack.pushgateway import Pushgateway as Gateway
from infra.stack.pushgateway import pushgateway
from pod_rebalancer import telemetry
from pod_rebalancer.adapters.pushgateway import Pushgateway
from pod_rebalancer.errors import TelemetryError

pytestmark = pytest.mark.integration

TARGET = {"namespace": "posthog", "deployment": "ingestion-consumer"}
REBALANCED = {
    "target": TARGET,
    "dry_run": False,
    "action": "rebalanced",
    "reason": "imbalance_confirmed",
    "statistic": "variance",
    "value": 0.52,
    "selected": [{"pod": "a", "role": "busiest"}, {"pod": "z", "role": "idlest"}],
    "evicted": ["a", "z"],
    "errors": {},
}
FAILED = {
    "target": TARGET,
    "dry_run": False,
    "action": "failed",
    "reason": "dependency_unavailable",
    "value": None,
    "errors": {"metrics": "metrics server at http://vm:8428 unreachable"},
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with pushgateway(tmp_path_factory.mktemp("pushgateway")) as server:
        yield server


def value(exposition: str, series: str) -> float:
    """The value of the one line that starts with `series` (name and labels, as exposed)."""
    (line,) = [line for line in exposition.splitlines() if line.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_runs_add_up_in_groups_of_job_and_target(gateway: Gateway) -> None:
    client = Pushgateway(gateway.url)
    try:
        client.push(telemetry.run_samples([REBALANCED], 0.4, "alertmanager"))
        client.push(telemetry.run_samples([FAILED], 3.0, "alertmanager"))
        client.push(telemetry.run_samples([FAILED], 0.2, "alertmanager"))
    finally:
        client.close()
    where = 'deployment="ingestion-consumer",instance="",job="pod-rebalancer",namespace="posthog"'
    text = gateway.exposition()
    failed = (
        f'rebalancer_executions_total{{action="failed",{where},reason="dependency_unavailable"}}'
    )
    assert value(text, failed) == 2
    rebalanced = (
        f'rebalancer_executions_total{{action="rebalanced",{where},reason="imbalance_confirmed"}}'
    )
    assert value(text, rebalanced) == 1
    assert value(text, f'rebalancer_pods_deleted_total{{{where},role="busiest"}}') == 1
    assert value(text, f'rebalancer_pods_deleted_total{{{where},role="idlest"}}') == 1
    assert value(text, f'rebalancer_dependency_failures_total{{dependency="metrics",{where}}}') == 2
    # The last value measured stays, though the failed runs measured nothing.
    assert value(text, f'rebalancer_load_variance_current{{{where},statistic="variance"}}') == 0.52
    run = 'instance="",job="pod-rebalancer",source="alertmanager"'
    assert value(text, f"rebalancer_execution_duration_seconds_count{{{run}}}") == 3
    assert value(text, f"rebalancer_execution_duration_seconds_sum{{{run}}}") == pytest.approx(3.6)
    assert value(text, f'rebalancer_execution_duration_seconds_bucket{{{run},le="0.5"}}') == 2
    # Two groups: the target's and the run's; no instance in either grouping key.
    assert sorted(sorted(group["labels"].items()) for group in gateway.groups()) == [
        [("deployment", "ingestion-consumer"), ("job", "pod-rebalancer"), ("namespace", "posthog")],
        [("job", "pod-rebalancer")],
    ]
    assert re.search(r"push_failure_time_seconds\{[^}]*\} 0\n", text)


def test_a_gateway_that_is_not_there_is_a_telemetry_error(tmp_path: Path) -> None:
    with pushgateway(tmp_path) as server:
        url = server.url
    client = Pushgateway(url)
    try:
        with pytest.raises(TelemetryError, match=r"pushgateway at http://127\.0\.0\.1"):
            client.push(telemetry.run_samples([FAILED], 0.1, "manual"))
    finally:
        client.close()
