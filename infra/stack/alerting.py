"""The alert-driven path on loopback, as it runs in a cluster:

Prometheus evaluating infra/prometheus/rules.yml (only `for` shortened) over the simulator's CPU
counters → Alertmanager routing with infra/alertmanager/alertmanager.yml (URL, token file and
timings filled in) → the function (`rebalance`, querying that Prometheus) → the simulator.

Prometheus starts with the last minutes of the counters copied from VictoriaMetrics, where the
simulator's load model writes them, then scrapes the very same counters from the simulator's
`/metrics/cadvisor`, so `rate(...[5m])` is meaningful from the first evaluation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.kubesim.launcher import KubeSim
from infra.stack.alertmanager import Alertmanager, webhook_config
from infra.stack.processes import FunctionServer, free_port
from infra.stack.prometheus import Prometheus, openmetrics, rules_with_for, scrape_job
from infra.stack.victoria import VictoriaMetrics

SCRAPE_JOB = "kubelet"


@dataclass(frozen=True)
class AlertPath:
    prometheus: Prometheus
    alertmanager: Alertmanager
    function: FunctionServer
    history_end: float  # Prometheus holds every sample up to here, then one per scrape


@contextlib.contextmanager
def alert_path(
    workdir: Path,
    vm: VictoriaMetrics,
    sim: KubeSim,
    namespace: str,
    env: Mapping[str, str],
    token: str,
    *,
    hold: str = "2s",
    repeat_interval: str | None = None,
    history_minutes: float = 6.0,
) -> Iterator[AlertPath]:
    """Start Prometheus, the function (with `env` plus PROMETHEUS_ENDPOINT and the token file)
    and Alertmanager; stop them all on exit. `hold` replaces the alert's `for`."""
    workdir.mkdir(parents=True, exist_ok=True)
    token_file = workdir / "webhook-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    now = time.time()
    # An explicit end: by default VictoriaMetrics leaves out the last second or so of samples.
    series = vm.export(f'{{namespace="{namespace}"}}', now - history_minutes * 60, now)
    if not series:
        raise RuntimeError(f"VictoriaMetrics holds no series for namespace {namespace}")
    alertmanager_port = free_port()  # Prometheus is told where to send before it starts
    with contextlib.ExitStack() as stack:
        prometheus = Prometheus(
            workdir,
            [scrape_job(SCRAPE_JOB, sim.url, "/metrics/cadvisor", sim.ca_file)],
            rules=rules_with_for(hold),
            alertmanager=f"127.0.0.1:{alertmanager_port}",
            history=openmetrics(series),
        )
        stack.callback(prometheus.stop)
        function = FunctionServer(
            "rebalance",
            {**env, "PROMETHEUS_ENDPOINT": prometheus.url, "WEBHOOK_TOKEN_FILE": str(token_file)},
            workdir,
        )
        stack.callback(function.stop)
        config = webhook_config(function.url, token_file, repeat_interval=repeat_interval)
        alertmanager = Alertmanager(workdir, config, port=alertmanager_port)
        stack.callback(alertmanager.stop)
        yield AlertPath(prometheus, alertmanager, function, now)
