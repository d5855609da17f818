"""Secrets scan: every secret set to a distinctive value, the function driven down each of its
paths, and everything it emits searched for each secret, as is and encoded.

The secrets: the webhook token (as a value, from a file, and from AWS Secrets Manager), the HMAC
secret (value and file), the metrics bearer token (value and file) and the cluster token (the
kubeconfig user's, which the simulator authenticates). The paths: dry and real runs, a cooldown,
an Alertmanager webhook, every refusal (401 for a wrong or missing token or signature, 400, 405,
413, 415), dependency failures (metrics down, a Kubernetes 403 from RBAC and from a fault, a 500),
an invalid configuration and a missing secret file; the CloudEvent entry point (a run, bad data,
a failure that raises); the Lambda handler (function URL calls, scheduled runs, a failure that
raises, a secret store that is down). What is searched: the function servers' whole output (logs,
tracebacks), every HTTP answer (status line, headers, body), every Lambda answer and exception, the
objects the function wrote in the simulator (Leases, Events) and every request it sent there, and
each record it published on the audit topic (the Pub/Sub emulator).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import io
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from google.cloud import pubsub_v1

from infra.kubesim.launcher import KubeSim
from infra.stack.moto import TEST_KEYS, Moto
from infra.stack.processes import FunctionServer, free_port, wait_until
from infra.stack.pubsub import PubSubEmulator
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from pod_rebalancer.logs import LOGGER_NAME
from tests.entry import fresh_main
from tests.kube import USER, deployment, kubeconfig, rebalancer_rules, scenario
from tests.reliability import record

NAMESPACE = "e2e-secrets"
NO_RBAC = "e2e-secrets-norbac"  # allowed, but the function's identity may do nothing there
PROJECT = "local-project"
SKEW = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]
SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"

# Distinctive values, with characters that base64 and URL encoding change.
WEBHOOK_TOKEN = "whk-Z9q+/=Tk~canary-webhook-token"
HMAC_SECRET = "hmac-W7p+/=Sx~canary-hmac-secret"
METRICS_TOKEN = "prom-K4x+/=Bv~canary-metrics-token"
CLUSTER_TOKEN = "kube-M2w+/=Ru~canary-cluster-token"
WEBHOOK_TOKEN_FILE = "whf-D3s+/=Lm~canary-webhook-token-file"
HMAC_SECRET_FILE = "hmf-P8t+/=Nc~canary-hmac-secret-file"
METRICS_TOKEN_FILE = "prf-Q5v+/=Hj~canary-metrics-token-file"
STORED_TOKEN = "smt-F6y+/=Gd~canary-secrets-manager-token"
REJECTED_CLUSTER_TOKEN = "kbx-T1r+/=Yo~canary-rejected-cluster-token"
# Credentials in the metrics URL (`https://user:key@host/...`, as hosted Prometheus services
# hand them out): its password part, URL-safe as a URL needs it.
METRICS_PASSWORD = "prp-C8n~canary-metrics-url-password"
SECRETS = {
    "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    "WEBHOOK_HMAC_SECRET": HMAC_SECRET,
    "PROMETHEUS_BEARER_TOKEN": METRICS_TOKEN,
    "cluster token": CLUSTER_TOKEN,
    "WEBHOOK_TOKEN_FILE": WEBHOOK_TOKEN_FILE,
    "WEBHOOK_HMAC_SECRET_FILE": HMAC_SECRET_FILE,
    "PROMETHEUS_BEARER_TOKEN_FILE": METRICS_TOKEN_FILE,
    "WEBHOOK_TOKEN_SECRET_ARN": STORED_TOKEN,
    "rejected cluster token": REJECTED_CLUSTER_TOKEN,
    "password in PROMETHEUS_ENDPOINT": METRICS_PASSWORD,
}


def base64_forms(secret: bytes) -> set[str]:
    """The secret's base64 at each of the three byte alignments it can have inside a longer
    encoded text (a whole record base64-encoded): the characters that depend on it alone."""
    forms = set()
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * offset + secret).decode()
            first = -(-offset // 3) * 4  # the first group holding only secret bytes
            last = (offset + len(secret)) // 3 * 4
            forms.add(text[first:last])
    return forms


def forms(secret: str) -> dict[str, str]:
    """How a secret could appear in an output: as is, JSON-escaped, URL-encoded, base64, hex."""
    raw = secret.encode()
    found = {
        "as is": secret,
        "JSON string": json.dumps(secret)[1:-1],
        "URL-encoded": quote(secret, safe=""),
        "form-encoded": quote_plus(secret),
        "hex": raw.hex(),
    }
    for index, text in enumerate(sorted(base64_forms(raw))):
        found[f"base64 #{index}"] = text
    return found


@dataclass
class Outputs:
    """Everything the function emitted, by where it was seen."""

    items: list[tuple[str, str]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.items.append((where, text))

    def response(self, what: str, response: httpx.Response) -> httpx.Response:
        self.statuses[what] = response.status_code
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.add(f"HTTP answer to {what}", f"{response.status_code}\n{headers}\n{response.text}")
        return response


def leaks(outputs: Outputs) -> list[str]:
    found = []
    for where, text in outputs.items:
        lowered = text.lower()
        for name, secret in SECRETS.items():
            for form, needle in forms(secret).items():
                haystack = lowered if form == "hex" else text
                if needle in haystack:
                    found.append(f"{name} ({form}) in {where}")
    return found


def scan(outputs: Outputs, kind: str) -> None:
    found = leaks(outputs)
    record("secrets", outputs_scanned=len(outputs.items), leaks=len(found))
    assert outputs.items, f"no {kind} collected"
    assert found == []


# ---------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def emulator(workdir: Path) -> Iterator[PubSubEmulator]:
    server = PubSubEmulator(workdir)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Audit:
    topic: str
    subscription: str
    subscriber: Any

    def pull_all(self) -> list[Any]:
        messages: list[Any] = []
        while True:
            answer = self.subscriber.pull(
                subscription=self.subscription, max_messages=50, timeout=5
            )
            received = list(answer.received_messages)
            if not received:
                return messages
            self.subscriber.acknowledge(
                subscription=self.subscription, ack_ids=[m.ack_id for m in received]
            )
            messages.extend(m.message for m in received)


@pytest.fixture(scope="module")
def audit(emulator: PubSubEmulator) -> Iterator[Audit]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in emulator.env().items():
            patch.setenv(key, value)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        try:
            topic = publisher.topic_path(PROJECT, "audit")
            publisher.create_topic(name=topic)
            subscription = subscriber.subscription_path(PROJECT, "audit-scan")
            subscriber.create_subscription(name=subscription, topic=topic)
            yield Audit(topic, subscription, subscriber)
        finally:
            publisher.stop()
            publisher.transport.close()
            subscriber.close()


DEPLOYMENTS = ("skewed", "skewed-files", "standby", "standby-lambda")


@pytest.fixture(scope="module")
def sim(workdir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    body = scenario(
        [NAMESPACE],
        [deployment(NAMESPACE, name, len(SKEW)) for name in DEPLOYMENTS]
        + [deployment(NO_RBAC, "standby", 4)],
        # The kubeconfig user's token is the secret: the simulator knows the function by it.
        users={CLUSTER_TOKEN: {"name": USER, "groups": []}},
    )
    assert body["bindings"] == [{"user": USER, "namespace": NAMESPACE, "rules": rebalancer_rules()}]
    server = KubeSim(workdir / "kubesim", body, tls=True, tick=0.1)
    try:
        now_ms = int(time.time() * 1000)
        for name in DEPLOYMENTS:
            pods = sorted(p["metadata"]["name"] for p in server.pods(NAMESPACE, name))
            victoria.import_series(
                cpu_counters(NAMESPACE, name, dict(zip(pods, SKEW, strict=True)), now_ms, 10)
            )
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def secret_files(workdir: Path) -> dict[str, Path]:
    files = {}
    for variable, value in (
        ("WEBHOOK_TOKEN_FILE", WEBHOOK_TOKEN_FILE),
        ("WEBHOOK_HMAC_SECRET_FILE", HMAC_SECRET_FILE),
        ("PROMETHEUS_BEARER_TOKEN_FILE", METRICS_TOKEN_FILE),
    ):
        path = workdir / variable.lower()
        path.write_text(value + "\n")
        files[variable] = path
    return files


def base_env(
    sim: KubeSim, victoria: VictoriaMetrics, emulator: PubSubEmulator, audit: Audit, workdir: Path
) -> dict[str, str]:
    return {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "PROMETHEUS_BEARER_TOKEN": METRICS_TOKEN,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig", token=CLUSTER_TOKEN)),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": "standby",
        "ALLOWED_NAMESPACES": f"{NAMESPACE},{NO_RBAC}",
        "CPU_VARIANCE_THRESHOLD": "0.1",
        "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "WEBHOOK_HMAC_SECRET": HMAC_SECRET,
        "AUDIT_TOPIC": audit.topic,
        "LOG_LEVEL": "debug",  # the most the function will ever say
        **emulator.env(),
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Caller:
    """Calls to one function server with its token and signature (or wrong ones)."""

    def __init__(self, server: FunctionServer, outputs: Outputs, token: str, secret: str) -> None:
        self.server, self.outputs, self.token, self.secret = server, outputs, token, secret

    def post(
        self,
        what: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> httpx.Response:
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        bearer = self.token if token is None else token
        sent = {
            "Authorization": f"Bearer {bearer}",
            SIGNATURE_HEADER: sign(data, self.secret) if signature is None else signature,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        sent = {name: value for name, value in sent.items() if value and value != "Bearer "}
        url = f"{self.server.url}/?{query}" if query else self.server.url
        return self.outputs.response(what, httpx.post(url, content=data, headers=sent, timeout=60))


@contextlib.contextmanager
def serving(
    target: str, env: dict[str, str], workdir: Path, outputs: Outputs, signature: str = "http"
) -> Iterator[FunctionServer]:
    server = FunctionServer(target, env, workdir, signature=signature)
    try:
        yield server
    finally:
        server.stop()
        outputs.add(
            f"output of {server.server.name} ({target})", server.server.log_path.read_bytes()
        )


def webhook(deployment_name: str) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "groupKey": '{}:{alertname="PodCPUImbalance"}',
        "receiver": "pod-rebalancer",
        "alerts": [
            {
                "status": "firing",
                "labels": {"namespace": NAMESPACE, "deployment": deployment_name},
                "fingerprint": "0f1e2d3c4b5a6978",
            }
        ],
    }


# ---------------------------------------------------------------------- driving every path


@pytest.fixture(scope="module")
def http_outputs(
    sim: KubeSim,
    victoria: VictoriaMetrics,
    emulator: PubSubEmulator,
    audit: Audit,
    secret_files: dict[str, Path],
    workdir: Path,
) -> Outputs:
    outputs = Outputs()
    env = base_env(sim, victoria, emulator, audit, workdir)
    logs = workdir / "functions"
    logs.mkdir(exist_ok=True)
    with serving("rebalance", {**env, "DRY_RUN": "false"}, logs, outputs) as server:
        call = Caller(server, outputs, WEBHOOK_TOKEN, HMAC_SECRET).post
        call("a dry run", {"deployment": "standby", "dry_run": True})
        call("a real run", {"deployment": "skewed"})
        call("a run inside the cooldown", {"deployment": "skewed"})
        call("an Alertmanager webhook", webhook("standby"), query="dry_run=true")
        call("a wrong token", {"dry_run": True}, token="wrong")
        call("no token", {"dry_run": True}, token="")
        call("a wrong signature", {"dry_run": True}, signature="sha256=" + "0" * 64)
        call("no signature", {"dry_run": True}, signature="")
        call("a bad field", {"namespace": "Not_A_Namespace"})
        call("a PromQL injection", {"namespace": 'x"} or vector(1) #'})
        call("an unknown query parameter", {"dry_run": True}, query="dryrun=true")
        call("a 2 MiB body", raw=b'{"namespace": "' + b"a" * (2 * 1024 * 1024) + b'"}')
        call("a text body", {"dry_run": True}, headers={"Content-Type": "text/plain"})
        call(
            "a gzip body",
            raw=gzip.compress(b'{"dry_run": true}'),
            headers={"Content-Encoding": "gzip"},
        )
        outputs.response("a GET", httpx.get(server.url, timeout=30))
        call("a namespace without RBAC", {"namespace": NO_RBAC, "dry_run": True})
        for status in (403, 500):
            sim.set_fault("deployments.get", status=status, message=f"injected {status}")
            try:
                call(f"a Kubernetes API {status}", {"deployment": "standby", "dry_run": True})
            finally:
                sim.clear_faults()
        sim.set_fault("pods.list", status=500, message="injected 500 on pods.list")
        try:
            call("a pod list failing", {"deployment": "standby", "dry_run": True})
        finally:
            sim.clear_faults()

    file_env = {k: v for k, v in env.items() if k not in SECRETS}
    file_env.update({name: str(path) for name, path in secret_files.items()}, DRY_RUN="false")
    with serving("rebalance", file_env, logs, outputs) as server:
        call = Caller(server, outputs, WEBHOOK_TOKEN_FILE, HMAC_SECRET_FILE).post
        call("a real run, secrets from files", {"deployment": "skewed-files"})
        call("a wrong token, secrets from files", {"dry_run": True}, token=WEBHOOK_TOKEN)
        call("a bad field, secrets from files", {"deployment": "-"})

    down = f"http://reader:{METRICS_PASSWORD}@127.0.0.1:{free_port()}/prometheus"
    with serving("rebalance", {**env, "PROMETHEUS_ENDPOINT": down}, logs, outputs) as server:
        call = Caller(server, outputs, WEBHOOK_TOKEN, HMAC_SECRET).post
        call("metrics down", {"deployment": "standby", "dry_run": True})

    rejected = kubeconfig(sim, workdir / "kubeconfig-rejected", token=REJECTED_CLUSTER_TOKEN)
    with serving("rebalance", {**env, "KUBECONFIG": str(rejected)}, logs, outputs) as server:
        call = Caller(server, outputs, WEBHOOK_TOKEN, HMAC_SECRET).post
        call("a cluster token the API rejects", {"deployment": "standby", "dry_run": True})

    for what, change in (
        ("an invalid configuration", {"CPU_VARIANCE_THRESHOLD": "lots"}),
        ("a missing token file", {"WEBHOOK_TOKEN_FILE": str(workdir / "absent")}),
        ("an invalid audit topic", {"AUDIT_TOPIC": "topic-" + METRICS_TOKEN}),
        (
            "an invalid metrics URL with credentials",
            {"PROMETHEUS_ENDPOINT": f"http://reader:{METRICS_PASSWORD}@bad host"},
        ),
    ):
        with serving("rebalance", {**env, **change}, logs, outputs) as server:
            Caller(server, outputs, WEBHOOK_TOKEN, HMAC_SECRET).post(what, {"dry_run": True})
    return outputs


def cloud_event(data: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    envelope = {"message": {"data": base64.b64encode(data).decode(), "messageId": event_id}}
    headers = {
        "ce-id": event_id,
        "ce-source": "//pubsub.googleapis.com/projects/local-project/topics/schedule",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "ce-time": published,
        "Content-Type": "application/json",
    }
    return json.dumps(envelope).encode(), headers


@pytest.fixture(scope="module")
def cloud_event_outputs(
    sim: KubeSim,
    victoria: VictoriaMetrics,
    emulator: PubSubEmulator,
    audit: Audit,
    workdir: Path,
    http_outputs: Outputs,  # one after the other: the faults injected are the simulator's
) -> Outputs:
    outputs = Outputs()
    env = base_env(sim, victoria, emulator, audit, workdir)
    logs = workdir / "functions"
    with serving("rebalance_pubsub", env, logs, outputs, signature="cloudevent") as server:

        def deliver(what: str, data: bytes) -> None:
            body, headers = cloud_event(data, what.replace(" ", "-"))
            outputs.response(what, httpx.post(server.url, content=body, headers=headers))

        deliver("a scheduled dry run", b'{"deployment": "standby", "dry_run": true}')
        # A webhook sent to the wrong function, with its token: no CloudEvent at all.
        outputs.response(
            "a webhook sent to the CloudEvent function",
            httpx.post(
                server.url,
                json=webhook("standby"),
                headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
            ),
        )
        deliver("a scheduled bad field", b'{"namespace": "Not_A_Namespace"}')
        deliver("scheduled data that is not JSON", b"{not json")
        sim.set_fault("deployments.get", status=500, message="injected 500")
        try:
            deliver("a scheduled run failing", b'{"deployment": "standby", "dry_run": true}')
        finally:
            sim.clear_faults()
    return outputs


@pytest.fixture(scope="module")
def lambda_outputs(
    sim: KubeSim,
    victoria: VictoriaMetrics,
    emulator: PubSubEmulator,
    audit: Audit,
    moto: Moto,
    workdir: Path,
    cloud_event_outputs: Outputs,
) -> Outputs:
    outputs = Outputs()
    arn = moto.client("secretsmanager").create_secret(
        Name="pod-rebalancer/e2e-secrets-webhook", SecretString=STORED_TOKEN
    )["ARN"]
    env = base_env(sim, victoria, emulator, audit, workdir)
    del env["WEBHOOK_TOKEN"]
    env.update(
        {
            **TEST_KEYS,
            "DEPLOYMENT_NAME": "standby-lambda",
            "WEBHOOK_TOKEN_SECRET_ARN": arn,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(workdir / "absent-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "absent-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto.url,
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    context = SimpleNamespace(aws_request_id="8f7e6d5c-0000-4000-8000-000000005ec7")

    def url_event(body: Any, token: str = STORED_TOKEN, **headers: str) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return {
            "version": "2.0",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": {
                "authorization": f"Bearer {token}",
                "content-type": "application/json",
                SIGNATURE_HEADER.lower(): sign(data, HMAC_SECRET),
                **headers,
            },
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": base64.b64encode(data).decode(),
            "isBase64Encoded": True,
        }

    def invoke(handler: Callable[[Any, Any], Any], what: str, event: Any) -> None:
        try:
            answer = handler(event, context)
        except Exception as exc:
            outputs.add(f"Lambda exception for {what}", "".join(traceback.format_exception(exc)))
            outputs.statuses[what] = -1
            return
        outputs.add(f"Lambda answer to {what}", json.dumps(answer))
        outputs.statuses[what] = answer.get("statusCode", 200)

    logger = logging.getLogger(LOGGER_NAME)
    saved = list(logger.handlers)
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        for name, value in env.items():
            patch.setenv(name, value)
        logger.handlers[:] = []  # the function's own handler, on this process' stdout
        try:
            main = fresh_main()
            handler = main.lambda_handler
            invoke(handler, "a function URL dry run", url_event({"dry_run": True}))
            invoke(handler, "a function URL wrong token", url_event({}, token=WEBHOOK_TOKEN))
            invoke(handler, "a function URL bad field", url_event({"namespace": "Bad"}))
            invoke(handler, "a function URL 2 MiB body", url_event(b" " * (2 * 1024 * 1024)))
            invoke(
                handler,
                "a function URL text body",
                url_event({"dry_run": True}, **{"content-type": "text/plain"}),
            )
            invoke(handler, "a scheduled Lambda dry run", {"dry_run": True})
            invoke(handler, "a scheduled Lambda bad field", {"namespace": "Bad"})
            sim.set_fault("deployments.get", status=403, message="injected 403")
            try:
                invoke(handler, "a scheduled Lambda run failing", {"dry_run": True})
            finally:
                sim.clear_faults()
            main.runtime.service().close()
            patch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
            down = fresh_main()
            invoke(down.lambda_handler, "the secret store down", url_event({"dry_run": True}))
        finally:
            logger.handlers[:] = saved
    outputs.add("Lambda stdout", stdout.getvalue())
    outputs.add("Lambda stderr", stderr.getvalue())
    return outputs


@pytest.fixture(scope="module")
def cluster_outputs(sim: KubeSim, lambda_outputs: Outputs) -> Outputs:
    """What the function left in the cluster, and every request it sent there."""
    outputs = Outputs()
    state = sim.state()
    for kind in ("leases", "events"):
        for item in state[kind]:
            outputs.add(f"{kind[:-1]} {item['metadata']['name']}", json.dumps(item))
    for request in sim.requests():
        outputs.add(f"request {request['method']} {request['path']}", json.dumps(request))
    return outputs


@pytest.fixture(scope="module")
def audit_outputs(audit: Audit, lambda_outputs: Outputs) -> Outputs:
    outputs = Outputs()
    messages: list[Any] = []

    def enough() -> bool:
        messages.extend(audit.pull_all())
        return len(messages) >= 8

    wait_until(enough, timeout=30, what="the audit records of the runs", interval=0.5)
    for message in messages:
        outputs.add(f"audit message {message.message_id}", message.data)
        outputs.add(f"audit attributes {message.message_id}", json.dumps(dict(message.attributes)))
    return outputs


# ---------------------------------------------------------------------- the paths were taken


def test_every_http_path_was_driven(http_outputs: Outputs) -> None:
    statuses = http_outputs.statuses
    assert statuses["a dry run"] == statuses["a real run"] == 200
    assert statuses["a run inside the cooldown"] == statuses["an Alertmanager webhook"] == 200
    for refused in ("a wrong token", "no token", "a wrong signature", "no signature"):
        assert statuses[refused] == 401, refused
    assert statuses["a bad field"] == statuses["a PromQL injection"] == 400
    assert statuses["an unknown query parameter"] == 400
    assert statuses["a 2 MiB body"] == 413
    assert statuses["a text body"] == statuses["a gzip body"] == 415
    assert statuses["a GET"] == 405
    for failed in (
        "a namespace without RBAC",
        "a Kubernetes API 403",
        "a Kubernetes API 500",
        "a pod list failing",
        "metrics down",
        "a cluster token the API rejects",
    ):
        assert statuses[failed] == 503, failed
    assert statuses["a real run, secrets from files"] == 200
    assert statuses["a wrong token, secrets from files"] == 401
    assert statuses["a bad field, secrets from files"] == 400
    for broken in (
        "an invalid configuration",
        "a missing token file",
        "an invalid audit topic",
        "an invalid metrics URL with credentials",
    ):
        assert statuses[broken] == 500, broken


def test_the_real_runs_wrote_leases_and_events(sim: KubeSim, http_outputs: Outputs) -> None:
    state = sim.state()
    leases = {
        i["metadata"]["name"] for i in state["leases"] if i["metadata"]["namespace"] == NAMESPACE
    }
    assert {"pod-rebalancer.skewed", "pod-rebalancer.skewed-files"} <= leases
    reasons = [e["reason"] for e in state["events"] if e["metadata"]["namespace"] == NAMESPACE]
    assert reasons.count("Rebalanced") == 2


def test_the_cloud_event_and_lambda_paths_were_driven(
    cloud_event_outputs: Outputs, lambda_outputs: Outputs
) -> None:
    statuses = cloud_event_outputs.statuses
    assert statuses["a scheduled dry run"] == statuses["a scheduled bad field"] == 200
    assert statuses["scheduled data that is not JSON"] == 200
    assert statuses["a webhook sent to the CloudEvent function"] == 400
    assert statuses["a scheduled run failing"] == 500  # raised, so Pub/Sub delivers it again
    statuses = lambda_outputs.statuses
    assert statuses["a function URL dry run"] == 200
    assert statuses["a function URL wrong token"] == 401
    assert statuses["a function URL bad field"] == 400
    assert statuses["a function URL 2 MiB body"] == 413
    assert statuses["a function URL text body"] == 415
    assert statuses["a scheduled Lambda dry run"] == statuses["a scheduled Lambda bad field"] == 200
    assert statuses["a scheduled Lambda run failing"] == -1  # raised, so Lambda retries
    assert statuses["the secret store down"] == 503


# ---------------------------------------------------------------------- nothing leaked


def test_the_scan_finds_a_secret_where_there_is_one() -> None:
    planted = Outputs()
    planted.add("a base64 record", base64.b64encode(b'{"x": "' + CLUSTER_TOKEN.encode() + b'"}'))
    planted.add("a URL", "https://example.invalid/?t=" + quote(METRICS_TOKEN, safe=""))
    planted.add("an escaped JSON string", json.dumps({"t": HMAC_SECRET}))
    assert len(leaks(planted)) >= 3


def test_no_secret_in_any_http_answer_or_function_output(http_outputs: Outputs) -> None:
    scan(http_outputs, "HTTP answers and function output")


def test_no_secret_in_any_cloud_event_answer_or_output(cloud_event_outputs: Outputs) -> None:
    scan(cloud_event_outputs, "CloudEvent answers and output")


def test_no_secret_in_any_lambda_answer_log_or_exception(lambda_outputs: Outputs) -> None:
    scan(lambda_outputs, "Lambda answers, logs and exceptions")


def test_no_secret_in_what_the_function_wrote_or_sent_to_the_cluster(
    cluster_outputs: Outputs,
) -> None:
    scan(cluster_outputs, "Leases, Events and API requests")


def test_no_secret_in_any_audit_record(audit_outputs: Outputs) -> None:
    scan(audit_outputs, "audit records")
