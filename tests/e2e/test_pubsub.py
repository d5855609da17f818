"""Scheduled runs end to end: Pub/Sub emulator push subscription → `rebalance_pubsub` → simulator.

What the emulator pushes (captured from the emulator shipped with the Cloud SDK, pinned by
`test_emulator_pushes_the_plain_push_wrapper`): `POST <push endpoint>` with
`Content-Type: application/json`, no CloudEvent (`ce-*`) headers and no Authorization, body

    {"subscription": "projects/P/subscriptions/S",
     "message": {"data": "<base64>", "attributes": {...}, "messageId": "1", "message_id": "1",
                 "publishTime": "2026-11-22T00:50:44.896Z", "publish_time": "..."}}

(`data` is "" for an empty message). functions-framework 3.10 finds no CloudEvent in it, sees the
raw Pub/Sub wrapper (`subscription` + `message.data` + `message.messageId`) and converts it into a
`google.cloud.pubsub.topic.v1.messagePublished` CloudEvent: id = messageId, time = publishTime,
source `//pubsub.googleapis.com/projects/P/topics/T` taken from the push URL's path (so the push
endpoint here ends in that path), data = {"message": {"@type", "data", "attributes", "messageId",
"publishTime"}} — `subscription` is dropped. The function then reads `data["message"]["data"]` as
the manual/scheduler body. A 2xx answer acknowledges; anything else is redelivered about once a
second, for ever, which is why bad input must be logged and acknowledged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1

from infra.kubesim.launcher import KubeSim
from infra.stack.processes import FunctionServer, wait_until
from infra.stack.pubsub import PubSubEmulator
from infra.stack.series import cpu_counters
from infra.stack.victoria import VictoriaMetrics
from tests.e2e.probes import evictions, lease
from tests.kube import deployment, kubeconfig, scenario

NAMESPACE = "e2e-pubsub"
DEPLOYMENT = "scheduled"
PROJECT = "local-project"
MAX_PODS_TO_DELETE = 2
SKEW = [2.0, 1.9, 0.5, 0.5, 0.5, 0.5, 0.05, 0.1]


@dataclass(frozen=True)
class PubSub:
    publisher: Any
    subscriber: Any

    def topic(self, name: str) -> str:
        path: str = self.publisher.topic_path(PROJECT, name)
        self.publisher.create_topic(name=path)
        return path

    def subscription(self, name: str, topic: str, push: str | None = None) -> str:
        path: str = self.subscriber.subscription_path(PROJECT, name)
        config = {"push_config": {"push_endpoint": push}} if push else {}
        self.subscriber.create_subscription(
            name=path, topic=topic, ack_deadline_seconds=10, **config
        )
        return path

    def publish(self, topic: str, data: bytes, **attributes: str) -> str:
        message_id: str = self.publisher.publish(topic, data, **attributes).result(timeout=10)
        return message_id

    def pull(self, subscription: str) -> list[Any]:
        response = self.subscriber.pull(subscription=subscription, max_messages=20, timeout=5)
        received = list(response.received_messages)
        if received:
            self.subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in received]
            )
        return [m.message for m in received]


@pytest.fixture(scope="module")
def emulator(workdir: Path) -> Iterator[PubSubEmulator]:
    server = PubSubEmulator(workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pubsub(emulator: PubSubEmulator) -> Iterator[PubSub]:
    """Clients of the emulator: they find it through PUBSUB_EMULATOR_HOST, as the function does."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in emulator.env().items():
            patch.setenv(key, value)
        clients = PubSub(pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient())
        try:
            yield clients
        finally:
            clients.publisher.stop()
            clients.publisher.transport.close()
            clients.subscriber.close()


@pytest.fixture(scope="module")
def sim(workdir: Path, victoria: VictoriaMetrics) -> Iterator[KubeSim]:
    server = KubeSim(
        workdir, scenario([NAMESPACE], [deployment(NAMESPACE, DEPLOYMENT, 8)]), tick=0.1
    )
    try:
        pods = sorted(p["metadata"]["name"] for p in server.pods(NAMESPACE, DEPLOYMENT))
        loads = dict(zip(pods, SKEW, strict=True))
        victoria.import_series(
            cpu_counters(
                NAMESPACE, DEPLOYMENT, loads, int(time.time() * 1000), minutes=10, noise=0.01
            )
        )
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Topics:
    scheduler: str
    audit: str
    audit_pull: str


@pytest.fixture(scope="module")
def topics(pubsub: PubSub) -> Topics:
    audit = pubsub.topic("audit")
    return Topics(pubsub.topic("scheduler"), audit, pubsub.subscription("audit-pull", audit))


@pytest.fixture(scope="module")
def function(
    emulator: PubSubEmulator,
    pubsub: PubSub,
    topics: Topics,
    victoria: VictoriaMetrics,
    sim: KubeSim,
    workdir: Path,
) -> Iterator[FunctionServer]:
    env = {
        "PROMETHEUS_ENDPOINT": victoria.url,
        "KUBE_AUTH": "kubeconfig",
        "KUBECONFIG": str(kubeconfig(sim, workdir / "kubeconfig")),
        "KUBE_NAMESPACE": NAMESPACE,
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "MAX_PODS_TO_DELETE": str(MAX_PODS_TO_DELETE),
        "DRY_RUN": "false",
        "AUDIT_TOPIC": topics.audit,
        **emulator.env(),
    }
    server = FunctionServer("rebalance_pubsub", env, workdir, signature="cloudevent")
    try:
        # The push endpoint's path names the topic, so the CloudEvent's source does too.
        pubsub.subscription("scheduler-push", topics.scheduler, f"{server.url}/{topics.scheduler}")
        yield server
    finally:
        server.stop()


def decisions_of(function: FunctionServer, event_id: str) -> list[dict[str, Any]]:
    return [d for d in function.decisions() if d.get("event_id") == event_id]


@pytest.fixture(scope="module")
def scheduled_runs(
    pubsub: PubSub, topics: Topics, function: FunctionServer, sim: KubeSim
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two scheduler messages, the second once the replacements are up, well inside the
    cooldown; each one's decision (found in the function's log by the message id)."""
    decisions = []
    for body in (b'{"dry_run": false}', b"{}"):
        wait_until(lambda: sim.settled(NAMESPACE, DEPLOYMENT, 8), timeout=20, what="settled")
        message_id = pubsub.publish(topics.scheduler, body, origin="cloud-scheduler")
        (decision,) = wait_until(
            lambda message_id=message_id: decisions_of(function, message_id),
            timeout=20,
            what=f"the function's decision on message {message_id}",
        )
        decisions.append(decision)
    return decisions[0], decisions[1]


def test_scheduler_message_is_pushed_to_rebalance_pubsub_and_evicts(
    scheduled_runs: tuple[dict[str, Any], dict[str, Any]], sim: KubeSim
) -> None:
    first, _ = scheduled_runs
    assert first["source"] == "scheduler"
    assert (first["action"], first["reason"]) == ("rebalanced", "imbalance_confirmed")
    assert first["dry_run"] is False
    evicted = evictions(sim, NAMESPACE, DEPLOYMENT)
    assert evicted == first["evicted"]
    assert len(evicted) == MAX_PODS_TO_DELETE
    assert lease(sim, NAMESPACE, DEPLOYMENT) is not None


def test_second_message_inside_the_cooldown_evicts_nothing_more(
    scheduled_runs: tuple[dict[str, Any], dict[str, Any]], sim: KubeSim
) -> None:
    first, second = scheduled_runs
    assert (second["action"], second["reason"]) == ("skipped", "cooldown")
    assert second["evicted"] == []
    assert evictions(sim, NAMESPACE, DEPLOYMENT) == first["evicted"]


def test_every_report_arrives_on_the_audit_topic(
    scheduled_runs: tuple[dict[str, Any], dict[str, Any]], pubsub: PubSub, topics: Topics
) -> None:
    first, second = scheduled_runs
    received: list[Any] = []

    def two_records() -> bool:
        received.extend(pubsub.pull(topics.audit_pull))
        return len(received) >= 2

    wait_until(two_records, timeout=20, what="two audit records", interval=0.2)
    records = [json.loads(m.data) for m in received]
    assert [(r["action"], r["reason"]) for r in records] == [
        (first["action"], first["reason"]),
        (second["action"], second["reason"]),
    ]
    for record, message in zip(records, received, strict=True):
        assert record["target"] == {"namespace": NAMESPACE, "deployment": DEPLOYMENT}
        assert record["source"] == "scheduler"
        assert record["message_id"]  # the scheduler message that caused the run
        assert dict(message.attributes) == {
            "namespace": NAMESPACE,
            "deployment": DEPLOYMENT,
            "action": record["action"],
            "reason": record["reason"],
        }
    assert records[0]["evicted"] == first["evicted"]
    assert len(records[0]["evicted"]) == MAX_PODS_TO_DELETE
    assert records[0]["value"] > records[0]["threshold"]
    assert records[1]["evicted"] == []


def test_invalid_messages_are_acknowledged_not_redelivered(
    pubsub: PubSub, topics: Topics, function: FunctionServer
) -> None:
    """Each is logged once and acknowledged; had the function failed (5xx), the emulator would
    have pushed it again about once a second."""
    logged = {
        pubsub.publish(topics.scheduler, b"not json"): "dropped an unreadable event",
        pubsub.publish(
            topics.scheduler, b'{"namespace": "Not_A_Namespace"}'
        ): "dropped an invalid request",
    }

    def drops() -> list[dict[str, Any]]:
        return [
            r
            for r in function.records()
            if r.get("event_id") in logged and r["message"].startswith("dropped")
        ]

    wait_until(lambda: len(drops()) >= len(logged), timeout=20, what="both messages logged")
    time.sleep(3)
    records = drops()
    assert sorted(r["event_id"] for r in records) == sorted(logged)
    for record in records:
        assert record["message"].startswith(logged[record["event_id"]])
        assert record["severity"] == "ERROR"
        assert not decisions_of(function, record["event_id"])


class Recorder(ThreadingHTTPServer):
    """A push endpoint that records what it is sent and answers 204 (acknowledged)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.pushes: list[tuple[str, dict[str, str], bytes]] = []


class RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        assert isinstance(self.server, Recorder)
        self.server.pushes.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def test_emulator_pushes_the_plain_push_wrapper(pubsub: PubSub, recorder: Recorder) -> None:
    """Pins the format documented at the top of this module."""
    topic = pubsub.topic("format")
    endpoint = f"http://127.0.0.1:{recorder.server_address[1]}/{topic}"
    subscription = pubsub.subscription("format-push", topic, endpoint)
    message_id = pubsub.publish(topic, b'{"dry_run": true}', origin="test")
    wait_until(lambda: recorder.pushes, timeout=20, what="a push to the recorder")
    path, headers, body = recorder.pushes[0]
    assert path == f"/{topic}"
    assert headers["Content-Type"] == "application/json"
    assert not [h for h in headers if h.lower().startswith("ce-") or h.lower() == "authorization"]
    wrapper = json.loads(body)
    assert set(wrapper) == {"subscription", "message"}
    assert wrapper["subscription"] == subscription
    message = wrapper["message"]
    assert set(message) == {
        "data",
        "attributes",
        "messageId",
        "message_id",
        "publishTime",
        "publish_time",
    }
    assert message["data"] == "eyJkcnlfcnVuIjogdHJ1ZX0="  # base64 of {"dry_run": true}
    assert message["attributes"] == {"origin": "test"}
    assert message["messageId"] == message["message_id"] == message_id
    assert message["publishTime"] == message["publish_time"]
    assert message["publishTime"].endswith("Z")
