"""The fault matrix: every Kubernetes API step and the metrics query, each failing in every way
we know of, against real servers — the simulator over HTTP through the real `kubernetes` client,
a real VictoriaMetrics behind a fault-injecting proxy, and the function's service wired with its
production adapters, called through its edges (HTTP, CloudEvent, Lambda; a few through
functions-framework itself).

Each case has a namespace and a Deployment of its own, so cases are independent of their order.
For each case the test asserts what the caller sees, what really happened in the cluster (the
simulator's request log, not the function's report) and the state left on the Lease:

- never more than MAX_PODS_TO_DELETE pods removed, and none when the decision lacked information;
- no HTTP 500; a retryable failure is HTTP 503 (a raise on the CloudEvent and Lambda paths);
- the report's `evicted` is exactly what the cluster saw evicted;
- the Lease afterwards: no holder, or a holder whose lock expires within LOCK_TTL; a new
  cooldown stamp if and only if something was evicted.

The table of results is written to this module's tmp dir (fault_matrix.md, shown with `-s`) and
reported to `make reliability` (tests/reliability.py).
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.http import CloudEvent

from infra.kubesim.launcher import KubeSim
from infra.stack.metrics_proxy import MetricsProxy
from infra.stack.processes import FunctionServer, free_port
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.adapters.kube import LAST_REBALANCE, format_time
from pod_rebalancer.aws_lambda import handle_lambda
from pod_rebalancer.bootstrap import Lazy, build
from pod_rebalancer.cloudevent import handle_cloud_event
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.errors import RetryableError
from pod_rebalancer.locking import LOCK_TTL, lease_name
from pod_rebalancer.service import Rebalancer
from pod_rebalancer.web import HttpRequest, handle
from tests import reliability
from tests.kube import TOKEN, deployment, kubeconfig, scenario

pytestmark = pytest.mark.integration

DEP = "consumer"
BIG_NS, BIG_DEP, BIG_PODS = "fm-big", "wide", 520  # more than one page of the adapter's 500
REPLICAS = 8
LOADS = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]  # by pod name: busiest first, idlest 7th
MAX_PODS = 2
KUBE_TIMEOUT = 0.8  # seconds per Kubernetes API request
METRICS_TIMEOUT = "500ms"
DELAY = 2.0  # beyond either timeout
RUN_BUDGET = 10.0  # seconds: generous next to the timeouts, far below a platform's time limit
WEBHOOK = "fault-matrix-token"
OTHER = "another-invocation"
OLD_STAMP = datetime.now(UTC) - timedelta(hours=2)  # the previous rebalance of `lease_before`


# ---------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Expect:
    status: int  # HTTP status (the CloudEvent and Lambda paths: 503 means "raised")
    action: str
    reason: str
    removed: int  # pods evicted, as the cluster saw it
    lease: str  # afterwards: "none" (no Lease), "free", "ours" (held, expiring), "other"


@dataclass(frozen=True)
class Case:
    id: str
    rules: tuple[dict[str, Any], ...] = ()  # simulator rules; {ns} and {dep} are filled in
    metrics: dict[str, Any] | None = None  # a proxy fault; pods given as indexes into LOADS
    expect: Expect = Expect(200, "rebalanced", "imbalance_confirmed", 2, "free")
    informed: bool = True  # False: the fault struck before the decision had its facts
    lease_before: bool = False  # a Lease from a rebalance two hours ago (acquire = update)
    big: bool = False  # the 520-pod Deployment
    edge: str = "http"  # http | cloudevent | lambda | functions-framework
    metrics_down: bool = False
    dry_run: bool = False  # the request asks for a dry run
    check: Callable[[Observed], None] | None = None

    @property
    def namespace(self) -> str:
        return BIG_NS if self.big else f"fm-{self.id}"[:63].rstrip("-")

    @property
    def deployment(self) -> str:
        return BIG_DEP if self.big else DEP


FAIL = Expect(503, "failed", "dependency_unavailable", 0, "none")
FAIL_FREE = replace(FAIL, lease="free")  # failed after acquiring: the lock was released
PARTIAL_1 = Expect(200, "rebalanced", "partial", 1, "free")
DONE = Expect(200, "rebalanced", "imbalance_confirmed", 2, "free")

PATHS = {
    "deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{dep}",
    "pods": "/api/v1/namespaces/{ns}/pods",
    "lease": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/pod-rebalancer.{dep}",
    "leases": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
    "eviction": "/api/v1/namespaces/{ns}/pods/*/eviction",
    "events": "/api/v1/namespaces/{ns}/events",
}


@dataclass(frozen=True)
class Step:
    name: str
    method: str
    path: str
    rule: dict[str, Any] = field(default_factory=dict)
    informed: bool = True
    big: bool = False
    lease_before: bool = False


STEPS = (
    Step("deployment-get", "GET", "deployment", informed=False),
    Step("pods-first-page", "GET", "pods", informed=False),
    Step("pods-later-page", "GET", "pods", {"after": 1}, informed=False, big=True),
    Step("lease-get", "GET", "lease", informed=False),
    Step("lease-create", "POST", "leases"),
    Step("lease-update-acquire", "PUT", "lease", lease_before=True),
    Step("lease-update-release", "PUT", "lease"),
    Step("eviction-1", "POST", "eviction", {"count": 1}),
    Step("eviction-2", "POST", "eviction", {"after": 1, "count": 1}),
    Step("deployment-reread", "GET", "deployment", {"after": 1}),
    Step("event-create", "POST", "events"),
)
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "503": {"status": 503},
    "403": {"status": 403},
    "409": {"status": 409},
    "429": {"status": 429},
    "timeout": {"delay": DELAY},  # the client gives up; the server abandons the request
}


def step_expectation(step: Step, fault: str) -> Expect:
    """What each failing step must lead to, once every defect the matrix found is fixed."""
    if not step.informed:
        return FAIL
    if step.name in ("lease-create", "lease-update-acquire"):
        lease = "free" if step.lease_before else "none"
        if fault == "409":  # the API says another invocation wrote first
            return Expect(200, "skipped", "locked", 0, lease)
        return replace(FAIL, lease=lease)
    if step.name == "lease-update-release":  # the evictions are done; the lock expires
        return replace(DONE, lease="ours")
    if step.name == "eviction-1":
        if fault == "429":
            return Expect(200, "skipped", "eviction_blocked", 0, "free")
        if fault == "409":  # "the pod changed": skipped, the next one is evicted
            return PARTIAL_1
        return FAIL_FREE
    if step.name in ("eviction-2", "deployment-reread"):
        return PARTIAL_1
    return DONE  # event-create: best effort


def step_cases() -> list[Case]:
    cases = []
    for step in STEPS:
        for fault, spec in FAULTS.items():
            rule = {"method": step.method, "path": PATHS[step.path], **step.rule, **spec}
            cases.append(
                Case(
                    id=f"{step.name}-{fault}",
                    rules=(rule,),
                    expect=step_expectation(step, fault),
                    informed=step.informed,
                    big=step.big,
                    lease_before=step.lease_before,
                )
            )
    return cases


def evicted_but(*roles: str) -> Callable[[Observed], None]:
    """The pods in `roles` ("busiest", "idlest") were not the ones evicted."""

    def check(seen: Observed) -> None:
        selected = {s["role"]: s["pod"] for s in seen.result["selected"]}
        for role in roles:
            assert selected[role] not in seen.removed

    return check


def never_selected(*indexes: int) -> Callable[[Observed], None]:
    """Pods (by their index in LOADS) left out of the measurement are never selected."""

    def check(seen: Observed) -> None:
        chosen = {s["pod"] for s in seen.result["selected"]}
        assert not chosen & {seen.pods[i] for i in indexes}

    return check


def stopped_because(reason: str) -> Callable[[Observed], None]:
    def check(seen: Observed) -> None:
        assert any(message.startswith(reason) for message in seen.result["errors"].values()), (
            seen.result["errors"]
        )

    return check


def replaced_pod_untouched(seen: Observed) -> None:
    busiest = seen.pods[0]
    now = {p["metadata"]["name"]: p for p in seen.sim.pods(seen.case.namespace, DEP)}
    assert busiest in now  # the new pod under the old name
    assert not now[busiest]["metadata"].get("deletionTimestamp")
    assert busiest not in seen.removed


def ignored(kind: str, count: int) -> Callable[[Observed], None]:
    def check(seen: Observed) -> None:
        assert seen.result["ignored_pods"].get(kind) == count, seen.result["ignored_pods"]
        assert seen.result["statistics"]["count"] == REPLICAS - count

    return check


def both(*checks: Callable[[Observed], None]) -> Callable[[Observed], None]:
    def check(seen: Observed) -> None:
        for one in checks:
            one(seen)

    return check


EVICTION = {"method": "POST", "path": PATHS["eviction"]}
LEASE_PUT = {"method": "PUT", "path": PATHS["lease"]}
LEASE_POST = {"method": "POST", "path": PATHS["leases"]}
STAMPED = {LAST_REBALANCE: format_time(datetime.now(UTC), micro=True)}

METRICS_CASES = [
    Case("metrics-down", metrics_down=True, expect=FAIL, informed=False),
    Case("metrics-slow", metrics={"kind": "pass", "delay": 1.5}, expect=FAIL, informed=False),
    Case("metrics-500", metrics={"kind": "status", "status": 500}, expect=FAIL, informed=False),
    Case("metrics-503", metrics={"kind": "status", "status": 503}, expect=FAIL, informed=False),
    Case("metrics-status-error", metrics={"kind": "error"}, expect=FAIL, informed=False),
    Case(
        "metrics-status-error-http-200",
        metrics={"kind": "error", "status": 200},
        expect=FAIL,
        informed=False,
    ),
    Case("metrics-malformed-json", metrics={"kind": "malformed"}, expect=FAIL, informed=False),
    Case("metrics-wrong-result-type", metrics={"kind": "wrong_type"}, expect=FAIL, informed=False),
    Case("metrics-connection-reset", metrics={"kind": "reset"}, expect=FAIL, informed=False),
    Case(
        "metrics-same-pod-twice",
        metrics={"kind": "duplicate", "pods": [3]},
        expect=FAIL,
        informed=False,
    ),
    Case(
        "metrics-nan-for-some-pods",
        metrics={"kind": "nan", "pods": [0, 2]},
        check=both(never_selected(0, 2), ignored("non_finite_metric", 2)),
    ),
    Case(
        "metrics-some-pods-missing",
        metrics={"kind": "missing", "pods": [2, 3]},
        check=both(never_selected(2, 3), ignored("no_metrics", 2)),
    ),
]

SPECIAL_CASES = [
    Case(
        "pod-vanished-before-eviction",
        rules=({**EVICTION, "count": 1, "action": "deletePod"},),
        expect=PARTIAL_1,
        check=evicted_but("busiest"),
    ),
    Case(
        "pod-replaced-under-its-name",
        rules=({**EVICTION, "count": 1, "action": "replacePod"},),
        expect=PARTIAL_1,
        check=replaced_pod_untouched,
    ),
    Case(
        "rollout-between-evictions",
        rules=({**EVICTION, "count": 1, "phase": "after", "action": "rollout"},),
        expect=PARTIAL_1,
        check=stopped_because("rollout_in_progress"),
    ),
    Case(
        "excluded-between-evictions",
        rules=(
            {
                **EVICTION,
                "count": 1,
                "phase": "after",
                "action": "annotate",
                "annotations": {"pod-rebalancer.io/exclude": "true"},
            },
        ),
        expect=PARTIAL_1,
        check=stopped_because("excluded"),
    ),
    Case(
        "deployment-vanished-between-evictions",
        rules=({"method": "GET", "path": PATHS["deployment"], "after": 1, "status": 404},),
        expect=PARTIAL_1,
        check=stopped_because("target_not_found"),
    ),
    Case(
        "lease-taken-before-create",
        rules=({**LEASE_POST, "count": 1, "action": "takeLease", "holder": OTHER},),
        expect=Expect(200, "skipped", "locked", 0, "other"),
    ),
    Case(
        "lease-taken-before-update",
        rules=(
            {
                **LEASE_PUT,
                "count": 1,
                "action": "takeLease",
                "holder": OTHER,
                "annotations": STAMPED,
            },
        ),
        lease_before=True,
        expect=Expect(200, "skipped", "cooldown", 0, "other"),
    ),
    Case(
        "lease-create-answer-lost",
        rules=({**LEASE_POST, "count": 1, "phase": "after", "delay": DELAY},),
    ),
    Case(
        "lease-create-connection-dropped",
        rules=({**LEASE_POST, "count": 1, "phase": "after", "drop": True},),
    ),
    Case(
        "lease-update-acquire-answer-lost",
        rules=({**LEASE_PUT, "count": 1, "phase": "after", "delay": DELAY},),
        lease_before=True,
    ),
    Case(
        "lease-update-release-answer-lost",
        rules=({**LEASE_PUT, "count": 1, "phase": "after", "delay": DELAY},),
    ),
    Case(
        "eviction-1-answer-lost",
        rules=({**EVICTION, "count": 1, "phase": "after", "delay": DELAY},),
        expect=PARTIAL_1,
    ),
    Case(
        "eviction-1-connection-dropped-after",
        rules=({**EVICTION, "count": 1, "phase": "after", "drop": True},),
        expect=PARTIAL_1,
    ),
    Case(
        "eviction-1-connection-dropped-before",
        rules=({**EVICTION, "count": 1, "drop": True},),
        expect=FAIL_FREE,
    ),
    Case(
        "eviction-1-answer-lost-unverifiable",
        rules=(
            {**EVICTION, "count": 1, "phase": "after", "delay": DELAY},
            {"method": "GET", "path": PATHS["pods"], "after": 1, "status": 503},
        ),
        expect=Expect(503, "failed", "dependency_unavailable", 1, "free"),
    ),
    Case(
        "eviction-2-answer-lost",
        rules=({**EVICTION, "after": 1, "count": 1, "phase": "after", "delay": DELAY},),
    ),
]

# A server asking the client to come back later: the run must not sit waiting (its platform would
# kill it mid-run), the trigger retries it.
RETRY_AFTER = 20  # seconds
SPECIAL_CASES += [
    Case(
        "deployment-get-503-retry-after",
        rules=(
            {
                "method": "GET",
                "path": PATHS["deployment"],
                "status": 503,
                "retryAfter": RETRY_AFTER,
            },
        ),
        expect=FAIL,
        informed=False,
    ),
    Case(
        "pods-later-page-429-retry-after",
        rules=(
            {
                "method": "GET",
                "path": PATHS["pods"],
                "after": 1,
                "status": 429,
                "retryAfter": RETRY_AFTER,
            },
        ),
        big=True,
        expect=FAIL,
        informed=False,
    ),
    Case(
        "lease-update-release-429-retry-after",
        rules=({**LEASE_PUT, "status": 429, "retryAfter": RETRY_AFTER},),
        expect=replace(DONE, lease="ours"),
    ),
]

# Answers of the wrong shape, and a list whose continue token expired mid-way.
SPECIAL_CASES += [
    Case(
        "pods-later-page-410-expired",
        rules=({"method": "GET", "path": PATHS["pods"], "after": 1, "status": 410},),
        big=True,
        expect=FAIL,
        informed=False,
    ),
    Case(
        "deployment-get-wrong-shape",
        rules=({"method": "GET", "path": PATHS["deployment"], "body": {"kind": "Deployment"}},),
        expect=FAIL,
        informed=False,
    ),
    Case(
        "pods-first-page-wrong-shape",
        rules=({"method": "GET", "path": PATHS["pods"], "body": {"items": "none"}},),
        expect=FAIL,
        informed=False,
    ),
    Case(
        "eviction-1-html-502",
        rules=(
            {
                **EVICTION,
                "count": 1,
                "status": 502,
                "body": "<html><body>502 Bad Gateway</body></html>",
                "contentType": "text/html",
            },
        ),
        expect=FAIL_FREE,
    ),
    Case(
        "metrics-most-pods-missing",
        metrics={"kind": "missing", "pods": [1, 2, 3, 4, 5, 7]},
        expect=Expect(200, "skipped", "too_few_pods", 0, "none"),
    ),
]

# A dry run walks the same path; it never takes the Lease, whatever fails.
DRY = Expect(200, "would_rebalance", "partial", 0, "none")
SPECIAL_CASES += [
    Case(
        "dry-run-eviction-1-503",
        rules=({**EVICTION, "count": 1, "status": 503},),
        dry_run=True,
        expect=FAIL,
    ),
    Case(
        "dry-run-eviction-1-answer-lost",
        rules=({**EVICTION, "count": 1, "phase": "after", "delay": DELAY},),
        dry_run=True,
        expect=FAIL,
    ),
    Case(
        "dry-run-eviction-2-429",
        rules=({**EVICTION, "after": 1, "count": 1, "status": 429},),
        dry_run=True,
        expect=DRY,
    ),
    Case(
        "dry-run-rollout-between-evictions",
        rules=({**EVICTION, "count": 1, "phase": "after", "action": "rollout"},),
        dry_run=True,
        expect=DRY,
        check=stopped_because("rollout_in_progress"),
    ),
]

# The same faults through the other edges: a retryable failure raises there.
EDGE_CASES = [
    Case(
        "cloudevent-pods-503",
        rules=({"method": "GET", "path": PATHS["pods"], "status": 503},),
        expect=FAIL,
        informed=False,
        edge="cloudevent",
    ),
    Case(
        "cloudevent-metrics-malformed",
        metrics={"kind": "malformed"},
        expect=FAIL,
        informed=False,
        edge="cloudevent",
    ),
    Case(
        "cloudevent-eviction-1-500",
        rules=({**EVICTION, "count": 1, "status": 500},),
        expect=FAIL_FREE,
        edge="cloudevent",
    ),
    Case(
        "cloudevent-eviction-2-503",
        rules=({**EVICTION, "after": 1, "count": 1, "status": 503},),
        expect=PARTIAL_1,
        edge="cloudevent",
    ),
    Case(
        "cloudevent-lease-create-answer-lost",
        rules=({**LEASE_POST, "count": 1, "phase": "after", "delay": DELAY},),
        edge="cloudevent",
    ),
    Case(
        "lambda-deployment-503",
        rules=({"method": "GET", "path": PATHS["deployment"], "status": 503},),
        expect=FAIL,
        informed=False,
        edge="lambda",
    ),
    Case(
        "lambda-metrics-status-error",
        metrics={"kind": "error"},
        expect=FAIL,
        informed=False,
        edge="lambda",
    ),
    Case(
        "lambda-eviction-1-timeout",
        rules=({**EVICTION, "count": 1, "delay": DELAY},),
        expect=FAIL_FREE,
        edge="lambda",
    ),
    Case(
        "lambda-eviction-2-429",
        rules=({**EVICTION, "after": 1, "count": 1, "status": 429},),
        expect=PARTIAL_1,
        edge="lambda",
    ),
    Case(
        "ff-lease-get-403",
        rules=({"method": "GET", "path": PATHS["lease"], "status": 403},),
        expect=FAIL,
        informed=False,
        edge="functions-framework",
    ),
    Case(
        "ff-metrics-wrong-result-type",
        metrics={"kind": "wrong_type"},
        expect=FAIL,
        informed=False,
        edge="functions-framework",
    ),
    Case(
        "ff-eviction-1-503",
        rules=({**EVICTION, "count": 1, "status": 503},),
        expect=FAIL_FREE,
        edge="functions-framework",
    ),
    Case(
        "ff-rollout-between-evictions",
        rules=({**EVICTION, "count": 1, "phase": "after", "action": "rollout"},),
        expect=PARTIAL_1,
        edge="functions-framework",
        check=stopped_because("rollout_in_progress"),
    ),
]

CASES = [*step_cases(), *METRICS_CASES, *SPECIAL_CASES, *EDGE_CASES]
SMALL = [case for case in CASES if not case.big]


# ---------------------------------------------------------------------- the servers


def old_lease(namespace: str) -> dict[str, Any]:
    stamp = format_time(OLD_STAMP, micro=True)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(Target(namespace, DEP)),
            "namespace": namespace,
            "annotations": {LAST_REBALANCE: stamp},
        },
        "spec": {"leaseDurationSeconds": 300, "renewTime": stamp},
    }


@pytest.fixture(scope="module")
def sim(session_dir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    namespaces = sorted({case.namespace for case in CASES})
    deployments = [deployment(case.namespace, DEP, REPLICAS) for case in SMALL]
    deployments.append(deployment(BIG_NS, BIG_DEP, BIG_PODS))
    leases = [old_lease(case.namespace) for case in SMALL if case.lease_before]
    body = scenario(namespaces, deployments, leases=leases)
    server = KubeSim(session_dir / "fault-matrix", body, tick=0.2)
    try:
        now_ms = int(time.time() * 1000)
        series = []
        for case in SMALL:
            names = pod_names(server, case.namespace)
            loads = dict(zip(names, LOADS, strict=True))
            series.extend(cpu_counters(case.namespace, DEP, loads, now_ms, minutes=10, noise=0.01))
        victoria.import_series(series)
        yield server
    finally:
        server.stop()


def pod_names(sim: KubeSim, namespace: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in sim.pods(namespace, DEP))


@pytest.fixture(scope="module")
def proxy(victoria: VictoriaMetrics) -> Iterator[MetricsProxy]:
    server = MetricsProxy(victoria.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def kubeconfig_file(sim: KubeSim, session_dir: Path) -> Path:
    return kubeconfig(sim, session_dir / "fault-matrix" / "kubeconfig")


@pytest.fixture(scope="module")
def function(
    sim: KubeSim, proxy: MetricsProxy, kubeconfig_file: Path, session_dir: Path
) -> Iterator[FunctionServer]:
    """functions-framework serving the function, for the cases that go through it."""
    env = {
        "PROMETHEUS_ENDPOINT": proxy.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig_file),
        "KUBE_NAMESPACE": "fm-default",
        "DEPLOYMENT_NAME": DEP,
        "ALLOWED_NAMESPACES": "fm-*",
        "WEBHOOK_TOKEN": WEBHOOK,
        "CPU_VARIANCE_THRESHOLD": "0.1",
        "MAX_PODS_TO_DELETE": str(MAX_PODS),
        "DRY_RUN": "false",
    }
    server = FunctionServer("rebalance", env, session_dir / "fault-matrix")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Table:
    rows: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Table]:
    rows = Table()
    started = time.monotonic()
    yield rows
    if not rows.rows:
        return
    markdown = render(rows.rows, time.monotonic() - started)
    path = tmp_path_factory.mktemp("fault-matrix") / "fault_matrix.md"
    path.write_text(markdown)
    print(f"\n{markdown}\n(written to {path})")
    forbidden = sum(
        row["removed"] for row in rows.rows if not row["informed"] or row["removed"] > MAX_PODS
    )
    reliability.record(
        "fault_matrix",
        cases=len(rows.rows),
        passed=sum(1 for row in rows.rows if row["passed"]),
        pods_removed_where_forbidden=forbidden,
        rows=rows.rows,
    )


def render(rows: list[dict[str, Any]], seconds: float) -> str:
    lines = [
        f"Fault matrix: {len(rows)} cases, {sum(r['passed'] for r in rows)} passed, "
        f"{seconds:.0f} s",
        "",
        "| case | edge | caller sees | pods removed | Lease after | new cooldown stamp | "
        "consistent | passed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['edge']} | {row['caller_sees']} | {row['removed']} | "
            f"{row['lease']} | {'yes' if row['stamped'] else 'no'} | "
            f"{'yes' if row['consistent'] else '**no**'} | {'yes' if row['passed'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- one case


@dataclass
class Observed:
    case: Case
    sim: KubeSim
    pods: list[str]  # the Deployment's pods before the run, by name (LOADS' order)
    caller_sees: str
    status: int
    result: dict[str, Any]  # the target's result (empty when the edge raised)
    removed: list[str]  # evicted, as the cluster saw it
    evictions_sent: int
    lease: str
    stamped: bool
    consistent: bool


def settings_for(case: Case, proxy: MetricsProxy) -> Settings:
    endpoint = f"http://127.0.0.1:{free_port()}" if case.metrics_down else proxy.url
    return Settings(
        prometheus_endpoint=endpoint,
        prometheus_timeout=METRICS_TIMEOUT,
        kube_namespace=case.namespace,
        deployment_name=case.deployment,
        allowed_namespaces="fm-*",
        kube_auth="kubeconfig",
        webhook_token=WEBHOOK,
        cpu_variance_threshold=0.1,
        max_pods_to_delete=MAX_PODS,
        dry_run=False,
    )


def runtime_for(settings: Settings, built: list[Rebalancer]) -> Lazy:
    """The production runtime, built lazily as on a cold start, with a short Kubernetes timeout."""

    def factory(settings: Settings) -> Rebalancer:
        service = build(settings, kube_timeout=KUBE_TIMEOUT)
        built.append(service)
        return service

    return Lazy(load=lambda: settings, factory=factory)


def call_edge(
    case: Case, settings: Settings, function: Callable[[], FunctionServer]
) -> tuple[int, dict[str, Any], str]:
    """Run the case through its edge: (status, the target's result, what the caller sees)."""
    body: dict[str, Any] = {"namespace": case.namespace, "deployment": case.deployment}
    if case.dry_run:
        body["dry_run"] = True
    built: list[Rebalancer] = []
    runtime = runtime_for(settings, built)
    try:
        if case.edge == "http":
            raw = json.dumps(body).encode()
            answer = handle(
                HttpRequest(
                    method="POST",
                    headers={
                        "authorization": f"Bearer {WEBHOOK}",
                        "content-type": "application/json",
                    },
                    query={},
                    read=io.BytesIO(raw).read,
                    content_length=len(raw),
                ),
                runtime,
            )
            return answer.status, only_result(answer.body), ""
        if case.edge == "functions-framework":
            response = httpx.post(
                function().url,
                json=body,
                headers={"Authorization": f"Bearer {WEBHOOK}"},
                timeout=60,
            )
            return response.status_code, only_result(response.json()), ""
        if case.edge == "cloudevent":
            data = base64.b64encode(json.dumps(body).encode()).decode()
            event = CloudEvent(
                {
                    "type": "google.cloud.pubsub.topic.v1.messagePublished",
                    "source": "//pubsub.googleapis.com/projects/p/topics/t",
                    "time": datetime.now(UTC).isoformat(),
                },
                {"message": {"data": data, "messageId": case.id}},
            )
            (outcome,) = handle_cloud_event(event, runtime)
            return 200, outcome.to_json(), "acknowledged"
        report = handle_lambda(body, None, runtime)
        return 200, only_result(report), "returned"
    except RetryableError as exc:
        return 503, {}, f"raised {type(exc).__name__} (delivered again)"
    finally:
        for service in built:
            service.close()


def only_result(body: dict[str, Any]) -> dict[str, Any]:
    (result,) = body["results"]
    assert isinstance(result, dict)
    return result


def lease_after(sim: KubeSim, case: Case) -> dict[str, Any] | None:
    name = lease_name(Target(case.namespace, case.deployment))
    response = sim.control.get(
        f"/apis/coordination.k8s.io/v1/namespaces/{case.namespace}/leases/{name}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def judge_lease(item: dict[str, Any] | None, case: Case, removed: int) -> tuple[str, bool, bool]:
    """(holder category, a new cooldown stamp, consistent): no holder or one whose lock expires
    within LOCK_TTL; a new stamp if and only if something was evicted."""
    if item is None:
        return "none", False, removed == 0
    spec = item.get("spec") or {}
    stamp = (item["metadata"].get("annotations") or {}).get(LAST_REBALANCE)
    previous = {format_time(OLD_STAMP, micro=True) if case.lease_before else None}
    previous.add(STAMPED[LAST_REBALANCE])  # what "another invocation" writes
    stamped = stamp not in previous
    holder = spec.get("holderIdentity")
    if not holder:
        return "free", stamped, stamped == (removed > 0)
    if holder == OTHER:
        return "other", stamped, not stamped
    renewed = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    expires = renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))
    within_ttl = expires <= datetime.now(UTC) + LOCK_TTL
    return "ours", stamped, within_ttl and stamped == (removed > 0)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault(
    case: Case,
    sim: KubeSim,
    proxy: MetricsProxy,
    kubeconfig_file: Path,
    table: Table,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_file))
    pods = pod_names(sim, case.namespace) if not case.big else []
    sim.clear_faults()
    proxy.clear_faults()
    for rule in case.rules:
        filled = {
            key: value.format(ns=case.namespace, dep=case.deployment)
            if isinstance(value, str)
            else value
            for key, value in rule.items()
        }
        sim.set_fault(**filled)
    if case.metrics is not None:
        fault = dict(case.metrics)
        fault["pods"] = [pods[i] for i in fault.get("pods", ())]
        proxy.set_fault(match=f'namespace="{case.namespace}"', **fault)
    started = time.monotonic()
    try:
        status, result, edge_note = call_edge(
            case, settings_for(case, proxy), lambda: request.getfixturevalue("function")
        )
        took = time.monotonic() - started
    finally:
        sim.clear_faults()
        proxy.clear_faults()

    prefix = f"/api/v1/namespaces/{case.namespace}/pods/"
    evictions = [
        r for r in sim.requests() if r["route"] == "pods.evict" and r["path"].startswith(prefix)
    ]
    removed = [
        r["path"].split("/")[-2]
        for r in evictions
        if r["status"] == 201 and r["query"].get("dryRun") != "All"
    ]
    lease, stamped, consistent = judge_lease(lease_after(sim, case), case, len(removed))
    sees = edge_note or f"{status} {result.get('action')}/{result.get('reason')}"
    if edge_note and result:
        sees = f"{edge_note}: {result.get('action')}/{result.get('reason')}"
    seen = Observed(
        case, sim, pods, sees, status, result, removed, len(evictions), lease, stamped, consistent
    )
    row = {
        "case": case.id,
        "edge": case.edge,
        "caller_sees": sees,
        "removed": len(removed),
        "lease": lease,
        "stamped": stamped,
        "consistent": consistent,
        "informed": case.informed,
        "seconds": round(took, 2),
        "passed": False,
    }
    table.rows.append(row)

    # What must hold in every case.
    assert took < RUN_BUDGET, f"the run took {took:.1f} s"
    assert status != 500
    assert len(removed) <= MAX_PODS
    if not case.informed:
        assert seen.evictions_sent == 0, "evicted on a decision that lacked information"
    if result:
        # The report says what the cluster saw, or that it cannot tell.
        untold = set(removed) - set(result["evicted"])
        assert set(result["evicted"]) <= set(removed), "reported evicted, but was not"
        assert all(
            "whether it was evicted is unknown" in result["errors"].get(p, "") for p in untold
        )
        if result.get("action") == "failed":
            assert status == 503
    assert consistent, f"Lease {lease}, new stamp {stamped}, {len(removed)} removed"
    # What this case must lead to.
    expect = case.expect
    assert status == expect.status, result
    if result:
        assert (result["action"], result["reason"]) == (expect.action, expect.reason), result
    assert len(removed) == expect.removed
    assert lease == expect.lease
    if case.check is not None:
        case.check(seen)
    row["passed"] = True
