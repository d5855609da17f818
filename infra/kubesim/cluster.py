"""The simulated cluster: a scenario loaded into one store, and every API call run under its one
lock (N racing Lease creates yield one 201); `tick()` plays the kubelet and the controllers.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from infra.kubesim import (
    autoscaling,
    control,
    controllers,
    deployments,
    disruption,
    events,
    kubelet,
    leases,
    objects,
    pods,
)
from infra.kubesim.load import ConsumerGroup, KafkaSpec
from infra.kubesim.rest import DeleteOptions
from infra.kubesim.store import DeploymentState, Obj, PdbState, Store

P = ParamSpec("P")
T = TypeVar("T")


def cpu_limit(deployment: Obj) -> float | None:
    """The cores one pod may use: the sum of its containers' CPU limits, None if one has none."""
    total = 0.0
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        limit = ((container.get("resources") or {}).get("limits") or {}).get("cpu")
        if limit is None:
            return None
        text = str(limit)
        total += float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return total


class Cluster:
    """Times come from `clock`; the server calls `tick()` from a background thread, a test may
    advance a clock of its own and call it."""

    def __init__(
        self,
        scenario: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.store = Store(clock, random.Random(scenario.get("seed", seed)))
        self.store.after_write = functools.partial(controllers.refresh, self.store)
        metrics = scenario.get("metrics") or {}
        self.metrics_interval = float(metrics.get("intervalSeconds", 1.0))
        self.backfill_minutes = float(metrics.get("backfillMinutes", 20.0))
        with self.store.lock:
            self._load(scenario)

    def _load(self, scenario: Mapping[str, Any]) -> None:
        """Deployments with Running, Ready pods `podAgeSeconds` old; PDBs; Leases."""
        store = self.store
        now = store.clock()
        for spec in scenario.get("deployments") or []:
            labels = dict(spec.get("labels") or {"app": spec["name"]})
            created = now - float(spec.get("podAgeSeconds", 3600)) - 60
            obj = objects.deployment(spec, labels, store.uid(), created)
            store.touch(obj)
            kafka = spec.get("kafka")
            group = None
            if kafka:
                group = ConsumerGroup(KafkaSpec.from_scenario(kafka), cpu_limit=cpu_limit(obj))
                # Lag is integrated from the start of the backfilled history, all caught up then.
                group.start(now - self.backfill_minutes * 60)
            dep = DeploymentState(
                obj=obj,
                startup=float(spec.get("startupSeconds", 2.0)),
                pending=float(spec.get("pendingSeconds", 0.0)),
                shutdown=(float(spec["shutdownSeconds"]) if "shutdownSeconds" in spec else None),
                container=str(spec.get("container", spec["name"])),
                group=group,
            )
            store.deployments[dep.key] = dep
            rs = controllers.replica_set_for(store, dep, created)
            age = float(spec.get("podAgeSeconds", 3600))
            for _ in range(int(obj["spec"]["replicas"])):
                pod = controllers.create_pod(store, dep, rs, now - age)
                kubelet.bind(store, pod, now - age)
                kubelet.set_ready(store, pod, True, now - age + dep.startup)
            controllers.reconcile(store, dep, now)
        for spec in scenario.get("pdbs") or []:
            obj = objects.pdb(spec, store.uid(), now - 3600)
            store.touch(obj)
            store.pdbs[(spec["namespace"], spec["name"])] = PdbState(obj)
        for spec in scenario.get("hpas") or []:
            ref = spec.get("scaleTargetRef") or {"name": spec["name"]}
            scaled = store.deployments.get((spec["namespace"], str(ref.get("name", ""))))
            replicas = int(scaled.obj["spec"]["replicas"]) if scaled is not None else 0
            obj = autoscaling.hpa(spec, store.uid(), now - 3600, replicas)
            store.touch(obj)
            store.hpas[(spec["namespace"], spec["name"])] = obj
        for spec in scenario.get("leases") or []:
            leases.create_lease(store, spec["metadata"]["namespace"], spec, dry_run=False)
        controllers.refresh(store, now)

    def _locked(
        self, action: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`action(store, ...)` under the one lock: every call below is one atomic step."""
        with self.store.lock:
            return action(self.store, *args, **kwargs)

    # ------------------------------------------------------------------ the controllers

    def tick(self) -> None:
        with self.store.lock:
            controllers.tick(self.store, self.store.clock())

    # ------------------------------------------------------------------ the Kubernetes API

    def list_pods(
        self,
        namespace: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        return self._locked(
            pods.list_pods, namespace, label_selector, field_selector, limit, continue_token
        )

    def get_pod(self, namespace: str, name: str) -> Obj:
        return self._locked(pods.get, namespace, name)

    def delete_pod(self, namespace: str, name: str, opts: DeleteOptions) -> Obj:
        with self.store.lock:
            pod = pods.find(self.store, namespace, name)
            return pods.delete(self.store, pod, opts, self.store.clock())

    def evict_pod(self, namespace: str, name: str, body: Any, query_dry_run: Sequence[str]) -> Obj:
        return self._locked(disruption.evict, namespace, name, body, query_dry_run)

    def get_deployment(self, namespace: str, name: str) -> Obj:
        return self._locked(deployments.get_deployment, namespace, name)

    def list_deployments(
        self,
        namespace: str,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        return self._locked(
            deployments.list_deployments, namespace, label_selector, limit, continue_token
        )

    def patch_deployment(
        self, namespace: str, name: str, content_type: str, body: Any, dry_run: bool
    ) -> Obj:
        return self._locked(
            deployments.patch_deployment, namespace, name, content_type, body, dry_run
        )

    def get_replicaset(self, namespace: str, name: str) -> Obj:
        return self._locked(deployments.get_replicaset, namespace, name)

    def list_replicasets(self, namespace: str, label_selector: str | None = None) -> Obj:
        return self._locked(deployments.list_replicasets, namespace, label_selector)

    def get_pdb(self, namespace: str, name: str) -> Obj:
        return self._locked(disruption.get_pdb, namespace, name)

    def list_pdbs(self, namespace: str, label_selector: str | None = None) -> Obj:
        return self._locked(disruption.list_pdbs, namespace, label_selector)

    def get_hpa(self, namespace: str, name: str) -> Obj:
        return self._locked(autoscaling.get_hpa, namespace, name)

    def list_hpas(self, namespace: str, label_selector: str | None = None) -> Obj:
        return self._locked(autoscaling.list_hpas, namespace, label_selector)

    def list_leases(self, namespace: str, label_selector: str | None = None) -> Obj:
        return self._locked(leases.list_leases, namespace, label_selector)

    def get_lease(self, namespace: str, name: str) -> Obj:
        return self._locked(leases.get_lease, namespace, name)

    def create_lease(self, namespace: str, body: Any, dry_run: bool) -> Obj:
        return self._locked(leases.create_lease, namespace, body, dry_run)

    def update_lease(self, namespace: str, name: str, body: Any, dry_run: bool) -> tuple[Obj, bool]:
        return self._locked(leases.update_lease, namespace, name, body, dry_run)

    def delete_lease(self, namespace: str, name: str, opts: DeleteOptions) -> Obj:
        return self._locked(leases.delete_lease, namespace, name, opts)

    def create_event(self, api: str, namespace: str, body: Any, dry_run: bool) -> Obj:
        return self._locked(events.create_event, api, namespace, body, dry_run)

    def list_events(self, api: str, namespace: str, field_selector: str | None = None) -> Obj:
        return self._locked(events.list_events, api, namespace, field_selector)

    # ------------------------------------------------------------------ the control API

    def state(self) -> dict[str, Any]:
        return self._locked(control.state)

    def deployment_pods(self, namespace: str, deployment: str) -> list[Obj]:
        return self._locked(control.deployment_pods, namespace, deployment)

    def set_pod(self, namespace: str, name: str, change: Mapping[str, Any]) -> Obj:
        return self._locked(control.set_pod, namespace, name, change)

    def set_deployment(self, namespace: str, name: str, change: Mapping[str, Any]) -> Obj:
        return self._locked(control.set_deployment, namespace, name, change)

    def remove_pod(self, namespace: str, name: str) -> Obj:
        return self._locked(control.delete_pod, namespace, name)

    def replace_pod(self, namespace: str, name: str) -> Obj:
        return self._locked(control.replace_pod, namespace, name)

    def rollout(self, namespace: str, name: str) -> Obj:
        return self._locked(control.rollout, namespace, name)

    def owning_deployment(self, namespace: str, pod: str) -> str:
        return self._locked(control.owning_deployment, namespace, pod)

    def take_lease(
        self, namespace: str, name: str, holder: str, annotations: Mapping[str, str]
    ) -> Obj:
        return self._locked(control.take_lease, namespace, name, holder, annotations)

    def cpu(self, namespace: str, deployment: str) -> dict[str, Any]:
        return self._locked(control.cpu, namespace, deployment)

    def load_samples(self) -> list[dict[str, Any]]:
        return self._locked(control.load_samples)

    def kafka_samples(self) -> list[dict[str, Any]]:
        return self._locked(control.kafka_samples)
