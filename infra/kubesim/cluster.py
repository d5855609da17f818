"""The simulated cluster: its objects, the API's semantics on them, and the controllers.

Everything happens under one lock, so concurrent requests see a linearizable store (N racing
Lease creates yield exactly one 201). Times come from an injected clock; the server calls
`tick()` from a background thread to play the ReplicaSet, deployment, disruption and kubelet
controllers.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.kubesim import objects, patch, selectors
from infra.kubesim.load import ConsumerGroup, KafkaSpec, population_variance
from infra.kubesim.status import (
    APPS,
    COORDINATION,
    CORE,
    EVENTS,
    OPTIMISTIC_LOCK_MESSAGE,
    POLICY,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    field_invalid,
    field_required,
    internal_error,
    invalid,
    not_found,
    success,
    too_many_requests,
)
from infra.kubesim.timefmt import TimeFormatError, micro, parse_micro, parse_time, rfc3339

Key = tuple[str, str]
DISRUPTED_POD_TIMEOUT = 120.0  # disruption controller's DeletionTimeout
PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget."
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
NODES = tuple(f"gke-sim-default-pool-4f1c2d3e-{s}" for s in ("b7kq", "c9xz", "h2lm", "q5tw"))
EVENT_FIELDS: dict[str, selectors.FieldGetter] = {
    **selectors.OBJECT_FIELDS,
    **{
        f"involvedObject.{f}": selectors.field_getter(f"involvedObject.{f}")
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
    "reason": selectors.field_getter("reason"),
    "reportingComponent": selectors.field_getter("reportingComponent"),
    "type": selectors.field_getter("type"),
}


@dataclass
class DeleteOptions:
    grace: int | None = None
    dry_run: bool = False
    uid: str | None = None
    resource_version: str | None = None


def delete_options(body: Any, query: Mapping[str, Sequence[str]]) -> DeleteOptions:
    """DeleteOptions as the delete handler reads them: from the body if there is one, else the
    query string (kube-apiserver ignores query parameters when a body is sent)."""
    if body is not None:
        if not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal into Go value of type v1.DeleteOptions")
        source: dict[str, Any] = body
        grace = source.get("gracePeriodSeconds")
        dry = source.get("dryRun") or []
        pre = source.get("preconditions") or {}
    else:
        grace_text = (query.get("gracePeriodSeconds") or [""])[0]
        try:
            grace = int(grace_text) if grace_text else None
        except ValueError as exc:
            raise bad_request(f'strconv.ParseInt: parsing "{grace_text}": invalid syntax') from exc
        dry = list(query.get("dryRun") or [])
        pre = {}
    return DeleteOptions(
        grace=int(grace) if grace is not None else None,
        dry_run=parse_dry_run(dry, "DeleteOptions"),
        uid=pre.get("uid"),
        resource_version=pre.get("resourceVersion"),
    )


def parse_dry_run(values: Any, kind: str) -> bool:
    if isinstance(values, str):
        values = [values]
    values = list(values or [])
    for value in values:
        if value != "All":
            raise invalid(
                kind,
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueNotSupported",
                        "message": f'Unsupported value: "{value}": supported values: "All"',
                        "field": "dryRun",
                    }
                ],
            )
    return bool(values)


@dataclass
class PodState:
    obj: dict[str, Any]
    deployment: Key | None
    rs: str
    created: float
    bind_at: float | None = None
    ready_at: float | None = None
    delete_at: float | None = None
    ready_override: bool | None = None
    phase_override: str | None = None

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def terminating(self) -> bool:
        return self.delete_at is not None  # set with metadata.deletionTimestamp

    @property
    def phase(self) -> str:
        return str(self.obj["status"].get("phase", "Pending"))

    is_ready: bool = False  # mirrors the Ready condition (kept by Cluster._write_conditions)

    @property
    def ready(self) -> bool:
        return self.is_ready

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.obj["metadata"].get("labels") or {}
        return labels


@dataclass
class DeploymentState:
    obj: dict[str, Any]
    startup: float
    pending: float
    shutdown: float | None
    container: str
    group: ConsumerGroup | None
    observed_generation: int = 1
    status_override: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        meta = self.obj["metadata"]
        return (str(meta["namespace"]), str(meta["name"]))


@dataclass
class ReplicaSetState:
    obj: dict[str, Any]
    deployment: Key
    pod_hash: str

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass
class PdbState:
    obj: dict[str, Any]
    disrupted: dict[str, float] = field(default_factory=dict)


class Cluster:
    def __init__(
        self,
        scenario: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = random.Random(scenario.get("seed", seed))
        self._rv = 1000
        self._ip = 0
        self._node = 0
        self.pods: dict[Key, PodState] = {}
        self.deployments: dict[Key, DeploymentState] = {}
        self.replicasets: dict[Key, ReplicaSetState] = {}
        self.pdbs: dict[Key, PdbState] = {}
        self.leases: dict[Key, dict[str, Any]] = {}
        self.events: dict[Key, dict[str, Any]] = {}  # stored as core/v1 Events
        metrics = scenario.get("metrics") or {}
        self.metrics_interval = float(metrics.get("intervalSeconds", 1.0))
        self.backfill_minutes = float(metrics.get("backfillMinutes", 20.0))
        with self.lock:
            self._load(scenario)

    # ------------------------------------------------------------------ bookkeeping

    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _touch(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = self.next_rv()

    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(objects.ALPHANUMS) for _ in range(length))

    def _next_ip(self) -> str:
        self._ip += 1
        return f"10.8.{(self._ip // 250) % 250}.{self._ip % 250 + 2}"

    def _next_node(self) -> str:
        self._node += 1
        return NODES[self._node % len(NODES)]

    # ------------------------------------------------------------------ scenario

    def _load(self, scenario: Mapping[str, Any]) -> None:
        now = self.clock()
        for spec in scenario.get("deployments") or []:
            labels = dict(spec.get("labels") or {"app": spec["name"]})
            created = now - float(spec.get("podAgeSeconds", 3600)) - 60
            obj = objects.deployment(spec, labels, self._uid(), created)
            self._touch(obj)
            kafka = spec.get("kafka")
            state = DeploymentState(
                obj=obj,
                startup=float(spec.get("startupSeconds", 2.0)),
                pending=float(spec.get("pendingSeconds", 0.0)),
                shutdown=(float(spec["shutdownSeconds"]) if "shutdownSeconds" in spec else None),
                container=str(spec.get("container", spec["name"])),
                group=ConsumerGroup(KafkaSpec.from_scenario(kafka)) if kafka else None,
            )
            self.deployments[state.key] = state
            rs = self._replica_set_for(state, created)
            age = float(spec.get("podAgeSeconds", 3600))
            for _ in range(int(obj["spec"]["replicas"])):
                pod = self._create_pod(state, rs, now - age)
                self._bind(pod, now - age)
                self._set_ready(pod, True, now - age + state.startup)
            self._reconcile(state, now)
        for spec in scenario.get("pdbs") or []:
            obj = objects.pdb(spec, self._uid(), now - 3600)
            self._touch(obj)
            self.pdbs[(spec["namespace"], spec["name"])] = PdbState(obj)
        for spec in scenario.get("leases") or []:
            self.create_lease(spec["metadata"]["namespace"], spec, dry_run=False)
        self._refresh(now, controller=True)

    # ------------------------------------------------------------------ pods: lifecycle

    def _create_pod(self, dep: DeploymentState, rs: ReplicaSetState, now: float) -> PodState:
        while True:
            name = f"{rs.name}-{self._suffix()}"
            if (dep.key[0], name) not in self.pods:
                break
        obj = objects.pod(rs.obj, name, self._uid(), now)
        self._touch(obj)
        state = PodState(obj=obj, deployment=dep.key, rs=rs.name, created=now)
        state.bind_at = now + dep.pending
        state.ready_at = state.bind_at + dep.startup
        self.pods[(dep.key[0], name)] = state
        if dep.pending <= 0:
            self._bind(state, now)  # scheduled and started at once
        return state

    def _bind(self, pod: PodState, now: float) -> None:
        """Scheduler and kubelet: bound to a node, containers started, not Ready yet."""
        spec, status = pod.obj["spec"], pod.obj["status"]
        spec["nodeName"] = self._next_node()
        ip = self._next_ip()
        status.update(
            {
                "phase": "Running",
                "hostIP": f"10.128.0.{NODES.index(spec['nodeName']) + 10}",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": rfc3339(now),
            }
        )
        self._write_conditions(pod, ready=False, now=now)
        pod.bind_at = None
        self._touch(pod.obj)

    def _write_conditions(self, pod: PodState, ready: bool, now: float) -> None:
        status = pod.obj["status"]
        containers = pod.obj["spec"]["containers"]
        names = ", ".join(c["name"] for c in containers)
        old = {c["type"]: c for c in status.get("conditions", ())}

        def cond(kind: str, value: bool, reason: str = "", message: str = "") -> dict[str, Any]:
            previous = old.get(kind)
            if previous and previous["status"] == ("True" if value else "False"):
                return dict(previous)
            return objects.condition(kind, value, now, reason, message)

        running = status.get("phase") == "Running"
        unready = "" if ready else "ContainersNotReady"
        unready_msg = "" if ready else f"containers with unready status: [{names}]"
        conditions = [
            cond("PodReadyToStartContainers", running),
            cond("Initialized", True),
            cond("Ready", ready, unready, unready_msg),
            cond("ContainersReady", ready, unready, unready_msg),
            cond("PodScheduled", bool(pod.obj["spec"].get("nodeName"))),
        ]
        for extra in status.get("conditions", ()):
            if extra["type"] not in {c["type"] for c in conditions}:
                conditions.append(extra)
        status["conditions"] = conditions
        state = {"Running": "running", "Succeeded": "terminated", "Failed": "terminated"}.get(
            str(status.get("phase")), "waiting"
        )
        previous = {c["name"]: c for c in status.get("containerStatuses", ())}
        statuses = []
        for container in containers:
            seed = (pod.obj["metadata"]["uid"] + container["name"]).encode()
            cid = f"containerd://{objects.fnv32a(seed):08x}"
            entry = objects.container_status(container, state, ready, now, cid)
            old_entry = previous.get(container["name"])
            if old_entry and old_entry["state"].keys() == entry["state"].keys():
                entry["state"] = old_entry["state"]
            statuses.append(entry)
        status["containerStatuses"] = statuses
        pod.is_ready = ready

    def _set_ready(self, pod: PodState, ready: bool, now: float) -> bool:
        if pod.ready == ready and pod.obj["status"].get("conditions"):
            return False
        self._write_conditions(pod, ready, now)
        self._touch(pod.obj)
        return True

    def _progress_pods(self, now: float) -> None:
        for key, pod in list(self.pods.items()):
            if pod.delete_at is not None and now >= pod.delete_at:
                del self.pods[key]
                self.next_rv()
                continue
            if pod.terminating:
                continue
            if pod.phase_override is None and pod.bind_at is not None and now >= pod.bind_at:
                self._bind(pod, now)
            if pod.phase != "Running":
                continue
            want = pod.ready_override
            if want is None:
                want = pod.ready_at is not None and now >= pod.ready_at
            if want != pod.ready:
                self._set_ready(pod, want, now)

    def _start_deletion(self, pod: PodState, grace: int, now: float) -> None:
        meta = pod.obj["metadata"]
        meta["deletionTimestamp"] = rfc3339(now + grace)
        meta["deletionGracePeriodSeconds"] = grace
        dep = self.deployments.get(pod.deployment) if pod.deployment else None
        shutdown = dep.shutdown if dep and dep.shutdown is not None else float(grace)
        pod.delete_at = now + min(float(grace), shutdown)
        if pod.ready:
            self._write_conditions(pod, False, now)
        self._touch(pod.obj)

    def _delete_pod(
        self, pod: PodState, opts: DeleteOptions, now: float, disruption: bool = False
    ) -> dict[str, Any]:
        """rest.BeforeDelete + the pod strategy's CheckGracefulDelete + the store's delete."""
        meta = pod.obj["metadata"]
        if opts.uid is not None and opts.uid != meta["uid"]:
            raise conflict(
                "Pod",
                CORE,
                pod.name,
                f"the UID in the precondition ({opts.uid}) does not match the UID in record "
                f"({meta['uid']}). The object might have been deleted and then recreated",
            )
        if opts.resource_version is not None and opts.resource_version != meta["resourceVersion"]:
            raise conflict(
                "Pod",
                CORE,
                pod.name,
                f"the ResourceVersion in the precondition ({opts.resource_version}) does not "
                f"match the ResourceVersion in record ({meta['resourceVersion']}). The object "
                "might have been modified",
            )
        grace = opts.grace
        if grace is not None and grace < 0:
            grace = 1
        saved_rv = self._rv
        try:
            return self._delete_pod_now(pod, grace, opts.dry_run, now, disruption)
        finally:
            if opts.dry_run:
                self._rv = saved_rv  # a dry run leaves no trace, not even a resourceVersion

    def _delete_pod_now(
        self, pod: PodState, grace: int | None, dry_run: bool, now: float, disruption: bool
    ) -> dict[str, Any]:
        target = copy.deepcopy(pod) if dry_run else pod
        if disruption and not dry_run:
            self._mark_disrupted(pod, now)
        immediate = self._begin_graceful_deletion(target, grace, now)
        if immediate is None:  # already terminating, and not asked to hurry
            return copy.deepcopy(target.obj)
        if immediate:
            target.obj["metadata"]["deletionTimestamp"] = rfc3339(now)
            target.obj["metadata"]["deletionGracePeriodSeconds"] = 0
            self._touch(target.obj)
            if not dry_run:
                del self.pods[(pod.namespace, pod.name)]
        if not dry_run:
            self._after_write(now)
        return copy.deepcopy(target.obj)

    def _mark_disrupted(self, pod: PodState, now: float) -> None:
        """The Eviction API's DisruptionTarget condition (PodDisruptionConditions)."""
        conditions = pod.obj["status"].setdefault("conditions", [])
        if not any(c["type"] == "DisruptionTarget" for c in conditions):
            conditions.append(
                objects.condition(
                    "DisruptionTarget", True, now, "EvictionByEvictionAPI", "Eviction API: evicting"
                )
            )
            self._touch(pod.obj)

    def _begin_graceful_deletion(self, pod: PodState, grace: int | None, now: float) -> bool | None:
        """True: delete at once; False: now Terminating; None: already Terminating, unchanged."""
        meta = pod.obj["metadata"]
        if pod.terminating:
            current = meta.get("deletionGracePeriodSeconds")
            if not current:
                return True
            if grace is None or grace >= current:
                return None  # only a shorter grace period may be given
            if grace == 0:
                return True
            started = parse_time(meta["deletionTimestamp"]) - current
            self._start_deletion(pod, grace, started)
            return False
        period = grace
        if period is None:
            period = int(pod.obj["spec"].get("terminationGracePeriodSeconds", 30))
        if not pod.obj["spec"].get("nodeName") or pod.phase in ("Succeeded", "Failed"):
            period = 0  # nothing runs it, or nothing runs any more: no kubelet to wait for
        if period == 0:
            return True
        self._start_deletion(pod, period, now)
        return False

    # ------------------------------------------------------------------ pods: API

    def _pod(self, namespace: str, name: str) -> PodState:
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise not_found("pods", CORE, name)
        return pod

    def list_pods(
        self,
        namespace: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        labels = selectors.parse_label_selector(label_selector)
        fields = selectors.parse_field_selector(field_selector, selectors.POD_FIELDS)
        with self.lock:
            items = [
                p.obj
                for (ns, _), p in sorted(self.pods.items())
                if namespace in ("", ns)
                and selectors.matches(labels, p.labels)
                and selectors.field_matches(fields, p.obj, selectors.POD_FIELDS)
            ]
            return self._list("PodList", "v1", items, limit, continue_token)

    def _list(
        self,
        kind: str,
        api_version: str,
        items: list[dict[str, Any]],
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        rv = str(self._rv)
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if continue_token:
            try:
                token = json.loads(base64.b64decode(continue_token))
                start = str(token["start"]).rstrip("\x00")
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request("continue key is not valid: illegal base64 data") from exc
            items = [i for i in items if i["metadata"]["name"] > start]
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]["name"]
            token = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": last + "\x00"}
            metadata["continue"] = base64.b64encode(json.dumps(token).encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "items": [objects.without_type_meta(i) for i in items],
        }

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._pod(namespace, name).obj)

    def delete_pod(self, namespace: str, name: str, opts: DeleteOptions) -> dict[str, Any]:
        with self.lock:
            return self._delete_pod(self._pod(namespace, name), opts, self.clock())

    def evict_pod(
        self, namespace: str, name: str, body: Any, query_dry_run: Sequence[str]
    ) -> dict[str, Any]:
        """pkg/registry/core/pod/storage/eviction.go, with the default IfHealthyBudget policy."""
        if not isinstance(body, dict):
            raise bad_request('Eviction in version "v1" cannot be handled as a Eviction')
        api_version = body.get("apiVersion", "policy/v1")
        if api_version not in ("policy/v1", "policy/v1beta1", "v1"):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                "version (policy/v1)"
            )
        if (body.get("metadata") or {}).get("name") != name:
            raise bad_request("name in URL does not match name in Eviction object")
        raw = body.get("deleteOptions")
        if raw is not None and not isinstance(raw, dict):
            raise bad_request("deleteOptions must be an object")
        opts = delete_options(raw or {}, {})
        query_dry = parse_dry_run(query_dry_run, "CreateOptions")
        body_dry = bool((raw or {}).get("dryRun"))
        if query_dry and body_dry and list(query_dry_run) != list((raw or {})["dryRun"]):
            raise internal_error(
                f"Non-matching dry-run options in request and content: {list(query_dry_run)} "
                f"and {(raw or {})['dryRun']}"
            )
        opts.dry_run = query_dry or body_dry
        with self.lock:
            now = self.clock()
            pod = self._pod(namespace, name)
            if pod.phase in ("Succeeded", "Failed", "Pending") or pod.terminating:
                self._delete_pod(pod, opts, now)
                return success(201)
            matching = [p for p in self._pdbs_for(pod)]
            if len(matching) > 1:
                raise ApiError(
                    500,
                    "",
                    "This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.",
                )
            if not matching:
                self._delete_pod(pod, opts, now, disruption=True)
                return success(201)
            budget = matching[0]
            self._set_status(budget.obj, self._pdb_status(budget, now))  # disruptedPods expire
            status = budget.obj["status"]
            if not pod.ready:
                policy = budget.obj["spec"].get("unhealthyPodEvictionPolicy")
                healthy_budget = (
                    status["currentHealthy"] >= status["desiredHealthy"]
                    and status["desiredHealthy"] > 0
                )
                if policy == "AlwaysAllow" or healthy_budget:
                    self._delete_pod(pod, opts, now, disruption=True)
                    return success(201)
            if status["disruptionsAllowed"] <= 0:
                pdb_name = budget.obj["metadata"]["name"]
                raise too_many_requests(
                    PDB_REFUSAL,
                    0,
                    [
                        {
                            "reason": "DisruptionBudget",
                            "message": (
                                f"The disruption budget {pdb_name} needs "
                                f"{status['desiredHealthy']} healthy pods and has "
                                f"{status['currentHealthy']} currently"
                            ),
                        }
                    ],
                )
            if not opts.dry_run:
                budget.disrupted[name] = now
                self._refresh(now)
            self._delete_pod(pod, opts, now, disruption=True)
            return success(201)

    # ------------------------------------------------------------------ controllers

    def tick(self) -> None:
        with self.lock:
            now = self.clock()
            self._progress_pods(now)
            for dep in self.deployments.values():
                self._reconcile(dep, now)
            self._refresh(now, controller=True)

    def _after_write(self, now: float) -> None:
        self._refresh(now)

    def _replica_set_for(self, dep: DeploymentState, now: float) -> ReplicaSetState:
        template = dep.obj["spec"]["template"]
        pod_hash = objects.template_hash(template)
        ns, name = dep.key
        key = (ns, f"{name}-{pod_hash}")
        existing = self.replicasets.get(key)
        revisions = [
            int(r.obj["metadata"]["annotations"].get(objects.REVISION, "0"))
            for r in self.replicasets.values()
            if r.deployment == dep.key
        ]
        revision = max(revisions, default=0) + 1
        if existing is not None:
            current = int(existing.obj["metadata"]["annotations"].get(objects.REVISION, "0"))
            if current != max(revisions, default=0):  # a rollback makes it the newest again
                existing.obj["metadata"]["annotations"][objects.REVISION] = str(revision)
                self._touch(existing.obj)
            rs = existing
        else:
            obj = objects.replica_set(dep.obj, pod_hash, revision, self._uid(), now)
            self._touch(obj)
            rs = ReplicaSetState(obj, dep.key, pod_hash)
            self.replicasets[key] = rs
        wanted = rs.obj["metadata"]["annotations"][objects.REVISION]
        annotations = dep.obj["metadata"].setdefault("annotations", {})
        if annotations.get(objects.REVISION) != wanted:
            annotations[objects.REVISION] = wanted
            self._touch(dep.obj)
        return rs

    def _reconcile(self, dep: DeploymentState, now: float) -> None:
        """ReplicaSet + Deployment controllers; a rollout surges one pod at a time."""
        new_rs = self._replica_set_for(dep, now)
        desired = int(dep.obj["spec"].get("replicas", 1))
        active = [p for p in self.pods.values() if p.deployment == dep.key and not p.terminating]
        new_pods = [p for p in active if p.rs == new_rs.name]
        old_pods = [p for p in active if p.rs != new_rs.name]

        def victims_order(p: PodState) -> tuple[bool, float]:
            # Not Ready first, then the newest: the pods a ReplicaSet gives up first.
            return (p.ready, -p.created)

        if not old_pods:
            for _ in range(desired - len(new_pods)):
                new_pods.append(self._create_pod(dep, new_rs, now))
            if len(new_pods) > desired:
                for victim in sorted(new_pods, key=victims_order)[: len(new_pods) - desired]:
                    self._start_deletion(victim, self._grace(victim), now)
                    new_pods.remove(victim)
        else:
            if len(new_pods) < desired and len(active) < desired + 1:
                new_pods.append(self._create_pod(dep, new_rs, now))
                active = [*new_pods, *old_pods]
            ready_total = sum(1 for p in active if p.ready)
            victim = min(old_pods, key=victims_order)
            if not victim.ready or ready_total - 1 >= desired or len(new_pods) > desired:
                self._start_deletion(victim, self._grace(victim), now)
                old_pods.remove(victim)
        counts: dict[str, int] = defaultdict(int)
        for p in [*new_pods, *old_pods]:
            counts[p.rs] += 1
        for rs in self.replicasets.values():
            if rs.deployment != dep.key:
                continue
            want = counts.get(rs.name, 0)
            if rs is new_rs and not old_pods:
                want = desired
            if rs.obj["spec"]["replicas"] != want:
                rs.obj["spec"]["replicas"] = want
                rs.obj["metadata"]["generation"] += 1
                rs.obj["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = (
                    str(desired)
                )
                self._touch(rs.obj)
        dep.observed_generation = int(dep.obj["metadata"]["generation"])

    @staticmethod
    def _grace(pod: PodState) -> int:
        return int(pod.obj["spec"].get("terminationGracePeriodSeconds", 30))

    def _refresh(self, now: float, controller: bool = False) -> None:
        """Recompute the status of Deployments, ReplicaSets and PDBs, and the consumer groups."""
        # ReplicaSet names are unique per namespace only: key them by (namespace, name).
        by_rs: dict[Key, list[PodState]] = defaultdict(list)
        members: dict[Key | None, list[str]] = defaultdict(list)
        for pod in self.pods.values():
            if not pod.terminating:
                by_rs[(pod.namespace, pod.rs)].append(pod)
                if pod.is_ready:
                    members[pod.deployment].append(pod.name)
        for rs in self.replicasets.values():
            pods = by_rs.get((rs.deployment[0], rs.name), [])
            ready = sum(1 for p in pods if p.ready)
            status: dict[str, Any] = {"replicas": len(pods)}
            if pods:
                status["fullyLabeledReplicas"] = len(pods)
            if ready:
                status["readyReplicas"] = ready
                status["availableReplicas"] = ready
            status["observedGeneration"] = rs.obj["metadata"]["generation"]
            self._set_status(rs.obj, status)
        for dep in self.deployments.values():
            self._set_status(dep.obj, self._deployment_status(dep, by_rs, now))
            if dep.group is not None:
                dep.group.update(members.get(dep.key, []))
        for budget in self.pdbs.values():
            self._set_status(budget.obj, self._pdb_status(budget, now))

    def _set_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") != status:
            obj["status"] = status
            self._touch(obj)

    def _deployment_status(
        self, dep: DeploymentState, by_rs: Mapping[Key, list[PodState]], now: float
    ) -> dict[str, Any]:
        namespace = dep.key[0]
        sets = [rs for rs in self.replicasets.values() if rs.deployment == dep.key]
        new_name = f"{dep.key[1]}-{objects.template_hash(dep.obj['spec']['template'])}"
        pods = [p for rs in sets for p in by_rs.get((namespace, rs.name), [])]
        updated = len(by_rs.get((namespace, new_name), []))
        ready = sum(1 for p in pods if p.ready)
        desired_total = sum(int(rs.obj["spec"]["replicas"]) for rs in sets)
        unavailable = max(0, desired_total - ready)
        replicas = int(dep.obj["spec"].get("replicas", 1))
        max_unavailable = objects.scaled_value(
            dep.obj["spec"]["strategy"].get("rollingUpdate", {}).get("maxUnavailable", "25%"),
            replicas,
            round_up=False,
        )
        old = {c["type"]: c for c in dep.obj.get("status", {}).get("conditions", ())}

        def cond(kind: str, value: bool, reason: str, message: str) -> dict[str, Any]:
            previous = old.get(kind)
            text = "True" if value else "False"
            if previous and (previous["status"], previous["reason"], previous["message"]) == (
                text,
                reason,
                message,
            ):
                return dict(previous)
            stamp = rfc3339(now)
            return {
                "type": kind,
                "status": text,
                "lastUpdateTime": stamp,
                "lastTransitionTime": (
                    previous["lastTransitionTime"]
                    if previous and previous["status"] == text
                    else stamp
                ),
                "reason": reason,
                "message": message,
            }

        complete = updated == replicas and len(pods) == replicas and ready == replicas
        status: dict[str, Any] = {"observedGeneration": dep.observed_generation}
        for name, value in (
            ("replicas", len(pods)),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("unavailableReplicas", unavailable),
        ):
            if value:
                status[name] = value
        status["conditions"] = [
            cond(
                "Available",
                ready >= replicas - max_unavailable,
                "MinimumReplicasAvailable"
                if ready >= replicas - max_unavailable
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if ready >= replicas - max_unavailable
                else "Deployment does not have minimum availability.",
            ),
            cond(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{new_name}" is progressing.',
            ),
        ]
        for key, value in dep.status_override.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)
        return status

    def _pdb_selector(self, budget: PdbState) -> selectors.LabelSelector | None:
        selector = selectors.from_label_selector_object(budget.obj["spec"].get("selector"))
        return selector or None  # an empty selector matches nothing for the eviction API

    def _pdbs_for(self, pod: PodState) -> Iterable[PdbState]:
        for (ns, _), budget in sorted(self.pdbs.items()):
            selector = self._pdb_selector(budget)
            if ns == pod.namespace and selector and selectors.matches(selector, pod.labels):
                yield budget

    def _pdb_status(self, budget: PdbState, now: float) -> dict[str, Any]:
        """The disruption controller's arithmetic (pkg/controller/disruption)."""
        ns = budget.obj["metadata"]["namespace"]
        selector = self._pdb_selector(budget)
        pods = [
            p
            for (pns, _), p in self.pods.items()
            if pns == ns and selector and selectors.matches(selector, p.labels)
        ]
        for name, at in list(budget.disrupted.items()):
            gone = (ns, name) not in self.pods or self.pods[(ns, name)].terminating
            if gone or at + DISRUPTED_POD_TIMEOUT <= now:
                del budget.disrupted[name]
        spec = budget.obj["spec"]
        scale = sum(
            int(self.deployments[k].obj["spec"].get("replicas", 1))
            for k in {p.deployment for p in pods if p.deployment in self.deployments}
            if k is not None
        )
        if "maxUnavailable" in spec:
            expected = scale
            desired = max(
                0, expected - objects.scaled_value(spec["maxUnavailable"], expected, True)
            )
        elif isinstance(spec.get("minAvailable"), str):
            expected = scale
            desired = objects.scaled_value(spec["minAvailable"], expected, True)
        else:
            expected = len(pods)
            desired = int(spec.get("minAvailable", 0))
        healthy = sum(
            1 for p in pods if not p.terminating and p.name not in budget.disrupted and p.ready
        )
        allowed = max(0, healthy - desired)
        old = {c["type"]: c for c in budget.obj.get("status", {}).get("conditions", ())}
        value = "True" if allowed > 0 else "False"
        previous = old.get("DisruptionAllowed")
        generation = budget.obj["metadata"]["generation"]
        status: dict[str, Any] = {"observedGeneration": generation}
        if budget.disrupted:
            status["disruptedPods"] = {n: rfc3339(t) for n, t in sorted(budget.disrupted.items())}
        status.update(
            {
                "disruptionsAllowed": allowed,
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "expectedPods": expected,
                "conditions": [
                    {
                        "type": "DisruptionAllowed",
                        "status": value,
                        "observedGeneration": generation,
                        "lastTransitionTime": (
                            previous["lastTransitionTime"]
                            if previous and previous["status"] == value
                            else rfc3339(now)
                        ),
                        "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                        "message": "",
                    }
                ],
            }
        )
        return status

    # ------------------------------------------------------------------ deployments, RS, PDBs

    def _deployment(self, namespace: str, name: str) -> DeploymentState:
        dep = self.deployments.get((namespace, name))
        if dep is None:
            raise not_found("deployments", APPS, name)
        return dep

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._deployment(namespace, name).obj)

    def list_deployments(self, namespace: str, label_selector: str | None = None) -> dict[str, Any]:
        labels = selectors.parse_label_selector(label_selector)
        with self.lock:
            items = [
                d.obj
                for (ns, _), d in sorted(self.deployments.items())
                if namespace in ("", ns)
                and selectors.matches(labels, d.obj["metadata"].get("labels"))
            ]
            return self._list("DeploymentList", "apps/v1", items)

    def patch_deployment(
        self, namespace: str, name: str, content_type: str, body: Any, dry_run: bool
    ) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            dep = self._deployment(namespace, name)
            current = dep.obj
            patched = patch.apply(content_type, current, body)
            meta = patched.get("metadata")
            if not isinstance(meta, dict):
                raise bad_request("metadata must be an object")
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise conflict("deployments", APPS, name, OPTIMISTIC_LOCK_MESSAGE)
            for key in ("name", "namespace", "uid", "creationTimestamp", "generation"):
                meta[key] = current["metadata"][key]
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
            patched["kind"], patched["apiVersion"] = "Deployment", "apps/v1"
            patched["status"] = current["status"]
            self._validate_deployment(patched, current)
            if patched == current:
                return copy.deepcopy(current)
            if patched["spec"] != current["spec"]:
                meta["generation"] = int(meta["generation"]) + 1
            if dry_run:
                return patched
            dep.obj = patched
            self._touch(dep.obj)
            self._after_write(now)
            return copy.deepcopy(dep.obj)

    def _validate_deployment(self, obj: dict[str, Any], current: Mapping[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid("Deployment", APPS, name, [field_required("spec")])
        spec.setdefault("replicas", 1)
        causes = []
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request(
                "json: cannot unmarshal into Go struct field DeploymentSpec.spec.replicas of type "
                "int32"
            )
        if replicas < 0:
            causes.append(
                field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")
            )
        if spec.get("selector") != current["spec"]["selector"]:
            causes.append(
                field_invalid(
                    "spec.selector", json.dumps(spec.get("selector")), "field is immutable"
                )
            )
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = selectors.from_label_selector_object(spec.get("selector")) or []
        if not selectors.matches(selector, labels):
            causes.append(
                field_invalid(
                    "spec.template.metadata.labels",
                    json.dumps(labels, sort_keys=True),
                    "`selector` does not match template `labels`",
                )
            )
        containers = (template.get("spec") or {}).get("containers")
        if not containers:
            causes.append(field_required("spec.template.spec.containers"))
        if causes:
            raise invalid("Deployment", APPS, name, causes)

    def list_replicasets(self, namespace: str, label_selector: str | None = None) -> dict[str, Any]:
        labels = selectors.parse_label_selector(label_selector)
        with self.lock:
            items = [
                r.obj
                for (ns, _), r in sorted(self.replicasets.items())
                if namespace in ("", ns)
                and selectors.matches(labels, r.obj["metadata"].get("labels"))
            ]
            return self._list("ReplicaSetList", "apps/v1", items)

    def get_replicaset(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            rs = self.replicasets.get((namespace, name))
            if rs is None:
                raise not_found("replicasets", APPS, name)
            return copy.deepcopy(rs.obj)

    def list_pdbs(self, namespace: str, label_selector: str | None = None) -> dict[str, Any]:
        labels = selectors.parse_label_selector(label_selector)
        with self.lock:
            items = [
                b.obj
                for (ns, _), b in sorted(self.pdbs.items())
                if namespace in ("", ns)
                and selectors.matches(labels, b.obj["metadata"].get("labels"))
            ]
            return self._list("PodDisruptionBudgetList", "policy/v1", items)

    def get_pdb(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            budget = self.pdbs.get((namespace, name))
            if budget is None:
                raise not_found("poddisruptionbudgets", POLICY, name)
            return copy.deepcopy(budget.obj)

    # ------------------------------------------------------------------ leases

    def _decode(
        self, body: Any, kind: str, api_version: str, namespace: str, accepted: Sequence[str] = ()
    ) -> dict[str, Any]:
        version = api_version.rsplit("/", 1)[-1]
        if not isinstance(body, dict):
            raise bad_request(
                f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot '
                f"unmarshal into Go value of type {kind}"
            )
        got = body.get("apiVersion", api_version)
        if got not in (api_version, *accepted):
            raise bad_request(
                f"the API version in the data ({got}) does not match the expected API version "
                f"({api_version})"
            )
        if body.get("kind", kind) != kind:
            raise bad_request(
                f'{kind} in version "{version}" cannot be handled as a {kind}: no kind '
                f'"{body.get("kind")}" is registered for version "{api_version}"'
            )
        meta = body.get("metadata") or {}
        if not isinstance(meta, dict):
            raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}')
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        return copy.deepcopy(body)

    def _new_name(self, meta: dict[str, Any], kind: str, group: str) -> str:
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{self._suffix()}"
        if not name:
            raise invalid(
                kind,
                group,
                "",
                [field_required("metadata.name", "name or generateName is required")],
            )
        if not DNS_SUBDOMAIN.match(name) or len(name) > 253:
            raise invalid(
                kind, group, name, [field_invalid("metadata.name", name, DNS_SUBDOMAIN_MESSAGE)]
            )
        return str(name)

    @staticmethod
    def _times(
        obj: dict[str, Any],
        kind: str,
        version: str,
        micro_fields: Sequence[str],
        time_fields: Sequence[str] = (),
    ) -> None:
        """Decode and re-encode time fields as the API server's serializer would."""
        for path, parse, render in (
            *((p, parse_micro, micro) for p in micro_fields),
            *((p, parse_time, rfc3339) for p in time_fields),
        ):
            *parents, leaf = path.split(".")
            holder: Any = obj
            for part in parents:
                holder = holder.get(part) if isinstance(holder, dict) else None
            if not isinstance(holder, dict) or holder.get(leaf) is None:
                continue
            try:
                holder[leaf] = render(parse(str(holder[leaf])))
            except TimeFormatError as exc:
                raise bad_request(
                    f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}'
                ) from exc

    def _lease_object(
        self, namespace: str, body: dict[str, Any], name: str, base: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        self._times(body, "Lease", "v1", ("spec.acquireTime", "spec.renewTime"))
        spec = body.get("spec") or {}
        if not isinstance(spec, dict):
            raise bad_request('Lease in version "v1" cannot be handled as a Lease')
        causes = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(
                field_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
        transitions = spec.get("leaseTransitions")
        if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
            causes.append(
                field_invalid(
                    "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
                )
            )
        if causes:
            raise invalid("Lease", COORDINATION, name, causes)
        meta_in = body.get("metadata") or {}
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": base["metadata"]["uid"] if base else self._uid(),
            "resourceVersion": base["metadata"]["resourceVersion"] if base else "",
            "creationTimestamp": (
                base["metadata"]["creationTimestamp"] if base else rfc3339(self.clock())
            ),
        }
        if meta_in.get("generateName") and not base:
            metadata["generateName"] = meta_in["generateName"]
        for key in ("labels", "annotations", "ownerReferences", "finalizers"):
            if meta_in.get(key):
                metadata[key] = copy.deepcopy(meta_in[key])
        return {
            "kind": "Lease",
            "apiVersion": "coordination.k8s.io/v1",
            "metadata": metadata,
            "spec": {k: v for k, v in spec.items() if v is not None},
        }

    def list_leases(self, namespace: str, label_selector: str | None = None) -> dict[str, Any]:
        labels = selectors.parse_label_selector(label_selector)
        with self.lock:
            items = [
                obj
                for (ns, _), obj in sorted(self.leases.items())
                if namespace in ("", ns)
                and selectors.matches(labels, obj["metadata"].get("labels"))
            ]
            return self._list("LeaseList", "coordination.k8s.io/v1", items)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.leases.get((namespace, name))
            if obj is None:
                raise not_found("leases", COORDINATION, name)
            return copy.deepcopy(obj)

    def create_lease(self, namespace: str, body: Any, dry_run: bool) -> dict[str, Any]:
        obj = self._decode(body, "Lease", "coordination.k8s.io/v1", namespace)
        meta = obj.get("metadata") or {}
        with self.lock:
            name = self._new_name(meta, "Lease", COORDINATION)
            if meta.get("resourceVersion"):
                raise internal_error("resourceVersion should not be set on objects to be created")
            lease = self._lease_object(namespace, obj, name, None)
            if (namespace, name) in self.leases:
                raise already_exists("leases", COORDINATION, name)
            if dry_run:
                return lease
            self._touch(lease)
            self.leases[(namespace, name)] = lease
            return copy.deepcopy(lease)

    def update_lease(
        self, namespace: str, name: str, body: Any, dry_run: bool
    ) -> tuple[dict[str, Any], bool]:
        """PUT; Leases may be created by an update (AllowCreateOnUpdate). Returns (obj, created)."""
        obj = self._decode(body, "Lease", "coordination.k8s.io/v1", namespace)
        meta = obj.get("metadata") or {}
        if meta.get("name", "") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on "
                f"the URL ({name})"
            )
        with self.lock:
            existing = self.leases.get((namespace, name))
            if existing is None:
                lease = self._lease_object(namespace, obj, name, None)
                if not dry_run:
                    self._touch(lease)
                    self.leases[(namespace, name)] = lease
                return copy.deepcopy(lease), True
            wanted = meta.get("resourceVersion")
            if not wanted:  # the lease strategy does not AllowUnconditionalUpdate
                raise invalid(
                    "leases",
                    COORDINATION,
                    name,
                    [
                        field_invalid(
                            "metadata.resourceVersion", 0, "must be specified for an update", "0x0"
                        )
                    ],
                )
            if wanted != existing["metadata"]["resourceVersion"]:
                raise conflict("leases", COORDINATION, name, OPTIMISTIC_LOCK_MESSAGE)
            lease = self._lease_object(namespace, obj, name, existing)
            if lease == existing or dry_run:
                return copy.deepcopy(lease), False
            self._touch(lease)
            self.leases[(namespace, name)] = lease
            return copy.deepcopy(lease), False

    def delete_lease(self, namespace: str, name: str, opts: DeleteOptions) -> dict[str, Any]:
        with self.lock:
            obj = self.leases.get((namespace, name))
            if obj is None:
                raise not_found("leases", COORDINATION, name)
            meta = obj["metadata"]
            if opts.uid is not None and opts.uid != meta["uid"]:
                raise conflict(
                    "Lease",
                    COORDINATION,
                    name,
                    f"the UID in the precondition ({opts.uid}) does not match the UID in record "
                    f"({meta['uid']}). The object might have been deleted and then recreated",
                )
            if (
                opts.resource_version is not None
                and opts.resource_version != meta["resourceVersion"]
            ):
                raise conflict(
                    "Lease",
                    COORDINATION,
                    name,
                    f"the ResourceVersion in the precondition ({opts.resource_version}) does not "
                    f"match the ResourceVersion in record ({meta['resourceVersion']}). The object "
                    "might have been modified",
                )
            if not opts.dry_run:
                del self.leases[(namespace, name)]
                self.next_rv()
            status = success(
                0,
                {
                    "details": {
                        "name": name,
                        "group": COORDINATION,
                        "kind": "leases",
                        "uid": meta["uid"],
                    }
                },
            )
            del status["code"]
            return status

    # ------------------------------------------------------------------ events

    def create_event(self, api: str, namespace: str, body: Any, dry_run: bool) -> dict[str, Any]:
        """api is "core" (v1) or "events" (events.k8s.io/v1); both views share one store."""
        if api == "events":
            obj = self._decode(body, "Event", "events.k8s.io/v1", namespace)
            self._times(
                obj,
                "Event",
                "v1",
                ("eventTime",),
                ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"),
            )
            self._validate_new_event(obj, namespace)
            core = objects.event_to_core(obj)
        else:
            core = self._decode(body, "Event", "v1", namespace)
            self._times(core, "Event", "v1", ("eventTime",), ("firstTimestamp", "lastTimestamp"))
            involved = (core.get("involvedObject") or {}).get("namespace")
            name = (core.get("metadata") or {}).get("name", "")
            if involved and involved != namespace:
                raise invalid(
                    "Event",
                    "",
                    name,
                    [
                        field_invalid(
                            "involvedObject.namespace", involved, "does not match event.namespace"
                        )
                    ],
                )
        with self.lock:
            meta = core.setdefault("metadata", {})
            name = self._new_name(meta, "Event", EVENTS if api == "events" else "")
            if (namespace, name) in self.events:
                raise already_exists("events", EVENTS if api == "events" else CORE, name)
            meta.update(
                {
                    "name": name,
                    "namespace": namespace,
                    "uid": self._uid(),
                    "creationTimestamp": rfc3339(self.clock()),
                }
            )
            core["kind"], core["apiVersion"] = "Event", "v1"
            if not dry_run:
                self._touch(core)
                self.events[(namespace, name)] = core
            return self._event_view(api, core)

    @staticmethod
    def _validate_new_event(obj: Mapping[str, Any], namespace: str) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        causes = []
        for key in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
            if not obj.get(key):
                causes.append(field_required(key))
        kind = obj.get("type")
        if kind not in ("Normal", "Warning"):
            causes.append(
                {
                    "reason": "FieldValueNotSupported" if kind else "FieldValueRequired",
                    "message": (
                        f'Unsupported value: "{kind}": supported values: "Normal", "Warning"'
                        if kind
                        else "Required value"
                    ),
                    "field": "type",
                }
            )
        regarding = (obj.get("regarding") or {}).get("namespace")
        if regarding and regarding != namespace:
            causes.append(
                field_invalid("regarding.namespace", regarding, "does not match event.namespace")
            )
        if causes:
            raise invalid("Event", EVENTS, name, causes)

    @staticmethod
    def _event_view(api: str, core: Mapping[str, Any]) -> dict[str, Any]:
        return objects.core_to_event(core) if api == "events" else copy.deepcopy(dict(core))

    def list_events(
        self, api: str, namespace: str, field_selector: str | None = None
    ) -> dict[str, Any]:
        fields = selectors.parse_field_selector(
            field_selector, EVENT_FIELDS if api == "core" else selectors.OBJECT_FIELDS
        )
        with self.lock:
            items = [
                self._event_view(api, e)
                for (ns, _), e in sorted(self.events.items())
                if namespace in ("", ns) and selectors.field_matches(fields, e, EVENT_FIELDS)
            ]
            if api == "events":
                return self._list("EventList", "events.k8s.io/v1", items)
            return self._list("EventList", "v1", items)

    # ------------------------------------------------------------------ control API

    def state(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(
                {
                    "resourceVersion": str(self._rv),
                    "pods": [p.obj for _, p in sorted(self.pods.items())],
                    "deployments": [d.obj for _, d in sorted(self.deployments.items())],
                    "replicasets": [r.obj for _, r in sorted(self.replicasets.items())],
                    "poddisruptionbudgets": [b.obj for _, b in sorted(self.pdbs.items())],
                    "leases": [obj for _, obj in sorted(self.leases.items())],
                    "events": [obj for _, obj in sorted(self.events.items())],
                }
            )

    def deployment_pods(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        with self.lock:
            self._deployment(namespace, deployment)
            return copy.deepcopy(
                [
                    p.obj
                    for _, p in sorted(self.pods.items())
                    if p.deployment == (namespace, deployment)
                ]
            )

    def control_pod(self, namespace: str, name: str, change: Mapping[str, Any]) -> dict[str, Any]:
        """Test hooks: {"ready": bool|None, "phase": str|None, "annotations": {...},
        "labels": {...}, "createdSecondsAgo": n, "nodeName": str|None}; None clears a pin."""
        with self.lock:
            now = self.clock()
            pod = self._pod(namespace, name)
            self._control_metadata(pod, change, now)
            if "phase" in change:
                self._control_phase(pod, change["phase"], now)
            if "ready" in change:
                pod.ready_override = change["ready"]
                if change["ready"] is not None and pod.phase == "Running" and not pod.terminating:
                    self._write_conditions(pod, bool(change["ready"]), now)
            self._touch(pod.obj)
            self._progress_pods(now)
            self._after_write(now)
            return copy.deepcopy(pod.obj)

    @staticmethod
    def _control_metadata(pod: PodState, change: Mapping[str, Any], now: float) -> None:
        meta, status = pod.obj["metadata"], pod.obj["status"]
        if "annotations" in change:
            merged = patch.merge_patch(meta.get("annotations") or {}, change["annotations"] or {})
            meta["annotations"] = merged
            if not merged:
                meta.pop("annotations")
        if "labels" in change:
            meta["labels"] = patch.merge_patch(meta.get("labels") or {}, change["labels"] or {})
        if "createdSecondsAgo" in change:
            pod.created = now - float(change["createdSecondsAgo"])
            meta["creationTimestamp"] = rfc3339(pod.created)
            if "startTime" in status:
                status["startTime"] = rfc3339(pod.created)
        if "nodeName" in change:
            if change["nodeName"]:
                pod.obj["spec"]["nodeName"] = change["nodeName"]
            else:
                pod.obj["spec"].pop("nodeName", None)

    def _control_phase(self, pod: PodState, phase: str | None, now: float) -> None:
        pod.phase_override = phase
        status = pod.obj["status"]
        if phase is None:  # unpinned: the kubelet takes over again
            if pod.phase != "Running":
                if pod.obj["spec"].get("nodeName"):
                    status["phase"] = "Running"
                    self._write_conditions(pod, False, now)
                else:
                    pod.bind_at = now
            return
        status["phase"] = phase
        if phase != "Running":
            pod.ready_override = None
        self._write_conditions(pod, phase == "Running" and pod.ready, now)

    def control_deployment(
        self, namespace: str, name: str, change: Mapping[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            dep = self._deployment(namespace, name)
            if "annotations" in change:
                meta = dep.obj["metadata"]
                meta["annotations"] = patch.merge_patch(
                    meta.get("annotations") or {}, change["annotations"] or {}
                )
            if "status" in change:
                if change["status"] is None:
                    dep.status_override = {}
                else:
                    dep.status_override.update(change["status"])
            for key, attr in (("startupSeconds", "startup"), ("pendingSeconds", "pending")):
                if key in change:
                    setattr(dep, attr, float(change[key]))
            self._touch(dep.obj)
            self._after_write(now)
            return copy.deepcopy(dep.obj)

    def cpu(self, namespace: str, deployment: str) -> dict[str, Any]:
        with self.lock:
            dep = self._deployment(namespace, deployment)
            group = dep.group
            pods = sorted(
                (p for p in self.pods.values() if p.deployment == dep.key), key=lambda p: p.name
            )
            out: dict[str, Any] = {
                "namespace": namespace,
                "deployment": deployment,
                "container": dep.container,
                "pods": {},
                "assignment": {},
                "members": [],
                "generation": 0,
                "variance": 0.0,
            }
            if group is None:
                return out
            ready_cpu = []
            for pod in pods:
                member = pod.name in group.assignment
                cpu = group.mean_cpu(pod.name) if member else group.spec.base_cpu
                out["pods"][pod.name] = {
                    "cpu": cpu,
                    "ready": pod.ready and not pod.terminating,
                    "terminating": pod.terminating,
                    "partitions": list(group.assignment.get(pod.name, [])),
                    "messagesPerSecond": group.messages(pod.name),
                }
                if pod.ready and not pod.terminating:
                    ready_cpu.append(cpu)
            out["assignment"] = {m: list(p) for m, p in group.assignment.items()}
            out["members"] = list(group.members)
            out["generation"] = group.generation
            out["partitionRates"] = list(group.rates)
            out["variance"] = population_variance(ready_cpu)
            return out

    def load_samples(self) -> list[dict[str, Any]]:
        """Each pod's load under the current assignment: base + busy * (1 + noise * N(0,1))."""
        with self.lock:
            samples = []
            for dep in self.deployments.values():
                if dep.group is None:
                    continue
                for pod in self.pods.values():
                    if pod.deployment != dep.key:
                        continue
                    spec = dep.group.spec
                    samples.append(
                        {
                            "namespace": dep.key[0],
                            "pod": pod.name,
                            "uid": pod.obj["metadata"]["uid"],
                            "container": dep.container,
                            "created": pod.created,
                            "base": spec.base_cpu,
                            "busy": spec.cpu_per_message * dep.group.messages(pod.name),
                            "noise": spec.noise,
                        }
                    )
            return samples
