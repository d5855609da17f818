"""The Lambda zip, built by `make package-lambda`, unpacked and run by the real runtime interface
client (awslambdaric) with nothing else on its path, against a Runtime API server of the test:
EKS tokens signed by the vendored boto3 and verified by the simulator through moto's STS, the
webhook token read from moto's Secrets Manager, real VictoriaMetrics."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.kubesim.launcher import KubeSim
from infra.stack.lambda_runtime import LambdaProcess, Result, RuntimeApi
from infra.stack.moto import ACCOUNT, TEST_KEYS, Moto
from infra.stack.processes import free_port
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.kube import deployment, rebalancer_rules, scenario

NAMESPACE = "e2e-lambda"
DEPLOYMENT = "consumer"
STANDBY = "standby"  # never rebalanced here, so never in cooldown: the outage test's target
OPTED_IN = {"pod-rebalancer.io/enabled": "true"}  # DEPLOYMENT only: a sweep leaves STANDBY alone
CLUSTER = "posthog-eks"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"  # what moto's STS says the test keys are
EKS_USER = "eks:pod-rebalancer"
TOKEN = "lambda-token-from-secrets-manager"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def package(lambda_package: Path, workdir: Path) -> Path:
    """The zip unpacked as Lambda unpacks it."""
    task_root = workdir / "task"
    with zipfile.ZipFile(lambda_package) as archive:
        archive.extractall(task_root)
    return task_root


@pytest.fixture(scope="module")
def runtime_dir(workdir: Path) -> Path:
    """What Lambda's python3.11 runtime puts beside the code: the runtime interface client."""
    target = workdir / "runtime"
    for distribution in ("awslambdaric", "simplejson", "snapshot-restore-py"):
        for file in importlib.metadata.files(distribution) or ():
            source = Path(str(file.locate()))
            if ".dist-info" not in str(file) and source.is_file():
                (target / str(file)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / str(file))
    return target


@pytest.fixture(scope="module")
def sim(workdir: Path, moto: Moto) -> Iterator[KubeSim]:
    body = scenario(
        [NAMESPACE],
        [
            deployment(NAMESPACE, DEPLOYMENT, 10, annotations=OPTED_IN),
            deployment(NAMESPACE, STANDBY, 4),
        ],
        bindings=[{"user": EKS_USER, "namespace": NAMESPACE, "rules": rebalancer_rules(True)}],
        eks={
            "clusterId": CLUSTER,
            "stsEndpoint": moto.url,
            "secretAccessKeys": {
                TEST_KEYS["AWS_ACCESS_KEY_ID"]: TEST_KEYS["AWS_SECRET_ACCESS_KEY"]
            },
            "users": {CALLER: {"name": EKS_USER, "groups": []}},
        },
    )
    server = KubeSim(workdir / "kubesim", body, tls=True, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def loads(victoria: VictoriaMetrics, sim: KubeSim) -> dict[str, float]:
    names = sorted(p["metadata"]["name"] for p in sim.pods(NAMESPACE, DEPLOYMENT))
    cpu = dict(zip(names, [2.2, 2.0, 0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.05, 0.1], strict=True))
    victoria.import_series(
        cpu_counters(NAMESPACE, DEPLOYMENT, cpu, int(time.time() * 1000), minutes=10, noise=0.01)
    )
    return cpu


@pytest.fixture(scope="module")
def secret_arn(moto: Moto) -> str:
    created = moto.client("secretsmanager").create_secret(
        Name="pod-rebalancer/e2e-lambda-webhook", SecretString=TOKEN
    )
    arn: str = created["ARN"]
    return arn


def function_env(sim: KubeSim, moto: Moto, victoria_url: str, secret_arn: str) -> dict[str, str]:
    """What the Terraform module sets, pointed at the local stack."""
    assert sim.ca_file is not None
    return {
        **TEST_KEYS,  # Lambda gives the execution role's credentials as these variables
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_STS": moto.url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto.url,
        "PROMETHEUS_ENDPOINT": victoria_url,
        "PROMETHEUS_TIMEOUT": "3s",
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "KUBE_AUTH": "eks",
        "EKS_CLUSTER_NAME": CLUSTER,
        "EKS_ENDPOINT": sim.url,
        "EKS_CA_CERT": base64.b64encode(Path(sim.ca_file).read_bytes()).decode(),
        "WEBHOOK_TOKEN_SECRET_ARN": secret_arn,
        "CPU_VARIANCE_THRESHOLD": "0.1",
        "DRY_RUN": "false",
    }


@pytest.fixture(scope="module")
def process(
    package: Path,
    runtime_dir: Path,
    sim: KubeSim,
    moto: Moto,
    victoria: VictoriaMetrics,
    loads: dict[str, float],
    secret_arn: str,
    workdir: Path,
) -> Iterator[LambdaProcess]:
    api = RuntimeApi()
    env = function_env(sim, moto, victoria.url, secret_arn)
    process = LambdaProcess(package, runtime_dir, api, env, workdir)
    try:
        yield process
    finally:
        process.stop()
        api.stop()
        print(process.log()[-4000:])


@pytest.fixture(scope="module")
def invoke(process: LambdaProcess) -> Any:
    return process.invoke


def url_event(body: dict[str, Any], token: str = TOKEN, query: str = "") -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "isBase64Encoded": True,
    }


def url_answer(result: Result) -> tuple[int, dict[str, Any]]:
    assert result.kind == "response", result
    return result.payload["statusCode"], json.loads(result.payload["body"])


def pod_names(sim: KubeSim) -> set[str]:
    return {p["metadata"]["name"] for p in sim.pods(NAMESPACE, DEPLOYMENT)}


def test_the_package_fits_lambdas_limits_and_carries_no_cloud_functions_client(
    package: Path,
) -> None:
    unzipped = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    assert unzipped < 250 * MIB
    assert (package / "main.py").is_file()
    for absent in ("functions_framework", "flask", "google/cloud/pubsub_v1", "kubernetes/aio"):
        assert not (package / absent).exists(), absent


def test_a_function_url_dry_run_changes_nothing(invoke: Any, sim: KubeSim) -> None:
    before = pod_names(sim)
    status, body = url_answer(invoke(url_event({"dry_run": True})))
    assert status == 200, body
    (result,) = body["results"]
    assert (result["action"], result["reason"]) == ("would_rebalance", "imbalance_confirmed")
    assert result["evicted"] == []
    assert [s["role"] for s in result["selected"]] == ["busiest", "idlest"]
    assert pod_names(sim) == before


def test_on_lambda_each_decision_line_is_also_an_embedded_metric(
    process: LambdaProcess, invoke: Any
) -> None:
    """What CloudWatch reads from the function's log: the metric set, namespace PodRebalancer."""
    seen = len(process.records())
    status, _ = url_answer(invoke(url_event({"dry_run": True})))
    assert status == 200
    records = process.records()[seen:]
    (decision,) = [r for r in records if r.get("event") == "decision"]
    (run,) = [r for r in records if r.get("event") == "run"]
    directives = decision["_aws"]["CloudWatchMetrics"]
    assert {d["Namespace"] for d in directives} == {"PodRebalancer"}
    assert [d["Metrics"][0]["Name"] for d in directives] == [
        "rebalancer_executions_total",
        "rebalancer_load_variance_current",
    ]
    assert decision["rebalancer_executions_total"] == 1
    assert (decision["namespace"], decision["deployment"]) == (NAMESPACE, DEPLOYMENT)
    assert (decision["action"], decision["reason"]) == ("would_rebalance", "imbalance_confirmed")
    assert isinstance(decision["_aws"]["Timestamp"], int)
    assert run["rebalancer_execution_duration_seconds"] == run["duration_seconds"] > 0
    # A dry run removes nothing: no pod line, so no rebalancer_pods_deleted_total.
    assert not [r for r in records if r.get("event") == "pod_removed"]


def test_a_wrong_token_is_a_401(invoke: Any) -> None:
    status, body = url_answer(invoke(url_event({"dry_run": True}, token="guess")))
    assert status == 401
    assert TOKEN not in json.dumps(body)


def test_an_eventbridge_scheduler_sweep_covers_the_opted_in_deployment_only(
    invoke: Any, sim: KubeSim
) -> None:
    # Before the real run below, which puts DEPLOYMENT in cooldown.
    before = pod_names(sim)
    sim.clear_requests()
    result = invoke({"sweep": True, "dry_run": True})
    assert result.kind == "response", result
    (report,) = result.payload["results"]  # none for STANDBY, which did not opt in
    assert report["target"] == {"namespace": NAMESPACE, "deployment": DEPLOYMENT}
    assert (report["action"], report["reason"]) == ("would_rebalance", "imbalance_confirmed")
    assert report["evicted"] == []
    lists = [r for r in sim.requests() if r["route"] == "deployments.list"]
    assert len(lists) == 1, lists
    assert not [
        r for r in sim.requests() if r["route"] == "pods.evict" and "dryRun" not in r["query"]
    ]
    assert pod_names(sim) == before


def test_a_scheduled_run_evicts_the_busiest_and_the_idlest(
    invoke: Any, sim: KubeSim, loads: dict[str, float]
) -> None:
    busiest = max(loads, key=loads.__getitem__)
    idlest = min(loads, key=loads.__getitem__)
    result = invoke({"namespace": NAMESPACE, "deployment": DEPLOYMENT})
    assert result.kind == "response", result
    (report,) = result.payload["results"]
    assert (report["action"], report["reason"]) == ("rebalanced", "imbalance_confirmed")
    assert report["evicted"] == [busiest, idlest]
    evictions = [
        r
        for r in sim.requests()
        if r["route"] == "pods.evict" and r["query"].get("dryRun") != "All"
    ]
    assert [r["path"].split("/")[-2] for r in evictions] == [busiest, idlest]
    assert {busiest, idlest}.isdisjoint(
        p["metadata"]["name"]
        for p in sim.pods(NAMESPACE, DEPLOYMENT)
        if not p["metadata"].get("deletionTimestamp")
    )


def test_a_metrics_outage_reaches_the_error_endpoint_so_lambda_retries(
    package: Path,
    runtime_dir: Path,
    sim: KubeSim,
    moto: Moto,
    secret_arn: str,
    workdir: Path,
) -> None:
    api = RuntimeApi()
    env = function_env(sim, moto, f"http://127.0.0.1:{free_port()}", secret_arn)
    process = LambdaProcess(package, runtime_dir, api, env, workdir, name="lambda-outage")
    try:
        sim.clear_requests()
        result = process.invoke({"namespace": NAMESPACE, "deployment": STANDBY, "dry_run": True})
    finally:
        process.stop()
        api.stop()
    assert result.kind == "error", result
    assert result.payload["errorType"] == "RetryableError"
    assert "metrics" in result.payload["errorMessage"]
    assert not [r for r in sim.requests() if r["method"] != "GET"]
