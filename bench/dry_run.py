"""One dry run of the function as bootstrap.build() wires it, with a fixed clock.

bench_e2e.py imports the wiring from here. Run as a script, this is the child process that
measures memory: it imports the function's package (and, with --entry-point, main.py with
functions-framework and Flask, as Cloud Functions loads it), builds the service, runs ONE dry run
and prints one JSON line with its resident set sizes. Only the function's own modules and the
standard library are imported, so the numbers are the function's, not the benchmark's.

Peak RSS is getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux). Linux carries the ru_maxrss of the
process that exec()s into the new program, so the parent must start this script through an
intermediate process (bench_e2e.py uses `sh -c '"$@"; exit $?'`, whose fork starts clean).
VmHWM from /proc/self/status (the peak of this program's own address space) is printed too,
as a cross-check: the two agree when the measurement is clean.

Run (bench_e2e.py does this for you):
  KUBECONFIG=... PYTHONPATH=function:. .venv/bin/python bench/dry_run.py \
      --prometheus URL --namespace NS --pods N --at EPOCH_SECONDS [--entry-point]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pod_rebalancer.bootstrap import build
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.logs import LOGGER_NAME, JsonFormatter
from pod_rebalancer.report import Action, Outcome
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.triggers import RunRequest

DEPLOYMENT = "bench-app"
CONTAINER = "app"
WINDOW = timedelta(minutes=5)
MAX_DELETE = 2  # the default MAX_PODS_TO_DELETE: two dry-run evictions per run


def require(condition: object, problem: object) -> None:
    """A sanity check that survives `python -O`: a wrong answer makes the timing meaningless."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {problem}")


def settings_for(prometheus_url: str, namespace: str) -> Settings:
    """The function's configuration for one bench namespace; the cluster comes from $KUBECONFIG."""
    return Settings(
        prometheus_endpoint=prometheus_url,
        kube_namespace=namespace,
        deployment_name=DEPLOYMENT,
        container_name=CONTAINER,
        allowed_namespaces=(namespace,),
        metrics_time_window=WINDOW,
        kube_auth="kubeconfig",
        dry_run=True,
        max_pods_to_delete=MAX_DELETE,
        # Always over the threshold, and any improvement is enough: the plan selects pods and the
        # run sends the dry-run evictions, i.e. the longest path a dry run can take.
        imbalance_threshold=0.0,
        min_improvement_percent=0.0,
    )


def build_service(
    settings: Settings, clock: Callable[[], datetime], log: logging.Logger
) -> Rebalancer:
    """The production wiring (bootstrap.build) with a fixed clock and a quiet logger."""
    return build(settings, clock=clock, log=log)


def request_for(namespace: str) -> RunRequest:
    return RunRequest(targets=(Target(namespace, DEPLOYMENT),), dry_run=True, source="bench")


def response_body(outcomes: list[Outcome]) -> str:
    """What the HTTP handler (web.py) serializes for the caller."""
    return json.dumps({"results": [o.to_json() for o in outcomes]}, separators=(",", ":"))


class Counting(logging.Filter):
    """Counts the records that reach the (null) handler by their `event` field: one `decision`
    line per target and one `run` line per invocation expected, and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.events: Counter[str] = Counter()

    @property
    def count(self) -> int:
        """The decision lines."""
        return self.events["decision"]

    def others(self) -> dict[str, int]:
        """Lines other than decisions and run lines: warnings a benchmark run must not have."""
        return {e: n for e, n in self.events.items() if e not in ("decision", "run")}

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        event = fields.get("event") if isinstance(fields, dict) else None
        self.events[str(event) if event is not None else record.getMessage()[:80]] += 1
        return True


def quiet_logger() -> tuple[logging.Logger, Counting]:
    """The project's logger as logs.configure() sets it up, but writing JSON to /dev/null."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115  (lives as long as the run)
    handler.setFormatter(JsonFormatter())
    counter = Counting()
    handler.addFilter(counter)
    logger.addHandler(handler)
    logger.propagate = False
    return logger, counter


def check_outcome(outcomes: list[Outcome], pods: int) -> Outcome:
    """A dry run that measured every pod and sent its dry-run evictions without an error."""
    require(len(outcomes) == 1, outcomes)
    (outcome,) = outcomes
    require(outcome.action is Action.WOULD_REBALANCE, outcome)
    plan = outcome.plan
    summary = plan.summary if plan else None
    require(summary is not None and summary.count == pods, f"{pods} pods expected: {outcome}")
    require(plan is not None and len(plan.selected) == MAX_DELETE, outcome)
    require(plan is not None and not plan.ignored, f"ignored pods: {outcome}")
    require(not outcome.errors, f"dry-run evictions failed: {outcome.errors}")
    return outcome


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _mib(kib: int) -> float:
    return kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pods", type=int, required=True, help="expected pod count")
    parser.add_argument("--at", type=float, required=True, help="evaluation time, epoch seconds")
    parser.add_argument(
        "--entry-point", action="store_true", help="import main.py (functions-framework, Flask)"
    )
    args = parser.parse_args()
    if args.entry_point:
        import main as entry  # noqa: F401, PLC0415  (function/main.py, as Cloud Functions loads it)
    for name in Settings.model_fields:  # the machine's own CONTAINER_NAME must not leak in
        os.environ.pop(name.upper(), None)

    imported_rss = _status_kib("VmRSS")
    log, decisions = quiet_logger()
    at = datetime.fromtimestamp(args.at, UTC)
    service = build_service(settings_for(args.prometheus, args.namespace), lambda: at, log)
    built_rss = _status_kib("VmRSS")
    started = time.perf_counter()
    outcomes = service.run(request_for(args.namespace))
    body = response_body(outcomes)
    seconds = time.perf_counter() - started
    after_rss = _status_kib("VmRSS")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm = _status_kib("VmHWM")
    check_outcome(outcomes, args.pods)
    require(decisions.count == 1, f"{decisions.count} decision lines for one run")
    service.close()
    result: dict[str, Any] = {
        "entry_point": args.entry_point,
        "pods": args.pods,
        "run_seconds": round(seconds, 3),
        "body_bytes": len(body),
        "imports_rss_mib": round(_mib(imported_rss), 1),
        "built_rss_mib": round(_mib(built_rss), 1),
        "after_run_rss_mib": round(_mib(after_rss), 1),
        "peak_maxrss_mib": round(_mib(peak), 1),
        "peak_vmhwm_mib": round(_mib(hwm), 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
