"""The Kubernetes API through the official client: Deployment, pods, Lease, eviction, Events.

The client supplies configuration, authentication, TLS and connection pooling; requests go through
`ApiClient.call_api` with JSON bodies and raw JSON answers, parsed into light records, because
building full model objects for 10,000 pods costs seconds and hundreds of MiB. The pod list, the
one large answer, is decoded by msgspec straight into the few fields the decision reads: unknown
fields are skipped without building them, several times faster than `json.loads`. Every library
error is translated here, once, into KubernetesError; expected answers (404, 409, 429) become
values.
"""

from __future__ import annotations

import functools
import json
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from pod_rebalancer.core.model import (
    Deployment,
    DeploymentState,
    Effect,
    EvictionResult,
    EvictionStatus,
    HpaTarget,
    Lease,
    LeaseState,
    PodInfo,
    Target,
)
from pod_rebalancer.core.times import parse_time
from pod_rebalancer.errors import KubernetesError
from pod_rebalancer.ports import EventNote, EvictionMode

LAST_REBALANCE = "pod-rebalancer.io/last-rebalance"
LAST_SELECTION = "pod-rebalancer.io/last-selection"
# The closed loop's memory (core/effect.py): the last rebalance's expectation and measurement as
# one JSON object, and the ineffective rebalances in a row (removing it resets the back-off).
LAST_EFFECT = "pod-rebalancer.io/last-effect"
INEFFECTIVE = "pod-rebalancer.io/ineffective-rebalances"
LAST_INEFFECTIVE = "pod-rebalancer.io/last-ineffective"
ENABLED = "pod-rebalancer.io/enabled"  # opt-in to sweeps: exactly "true"
# IMBALANCE_POLICY=hpa_target: the HPA to read, when it is not named like the Deployment (the
# function may only `get` HPAs, so it cannot list them to find the one that scales the target).
HPA_ANNOTATION = "pod-rebalancer.io/hpa"
COMPONENT = "pod-rebalancer"
PAGE_SIZE = 500
MAX_PAGES = 400  # 200,000 pods: far beyond any Deployment, and a bound on the loop


def format_time(value: datetime, micro: bool = False) -> str:
    """RFC 3339 in UTC as Kubernetes writes it: `Time` in seconds, `MicroTime` in microseconds."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def excluded(annotations: object, key: str) -> bool:
    """Opt-out: the annotation with any value but "false" excludes."""
    if not isinstance(annotations, dict) or key not in annotations:
        return False
    return str(annotations[key]).strip().lower() != "false"


def enabled(annotations: object) -> bool:
    """Opt-in: the annotation set to "true" (any other value, or none, is not a yes)."""
    if not isinstance(annotations, dict):
        return False
    return str(annotations.get(ENABLED, "")).strip().lower() == "true"


def selector_string(selector: dict[str, Any]) -> str:
    """A LabelSelector (matchLabels and matchExpressions) as the `labelSelector` query string.

    ValueError for a selector that must not be used: empty (it would match every pod of the
    namespace) or with an operator this function does not know. Both are permanent.
    """
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unsupported selector operator {operator!r}")
    if not parts:
        # An empty selector matches every pod in the namespace: never act on that.
        raise ValueError("the Deployment has an empty selector, which matches every pod")
    return ",".join(parts)


def parse_deployment(target: Target, body: dict[str, Any], exclude: str) -> Deployment:
    """The Deployment as the guards see it; KeyError and friends for a body that is not one."""
    meta, spec, status = body["metadata"], body["spec"], body.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    containers = tuple(c["name"] for c in (template.get("spec") or {}).get("containers", []))
    state = DeploymentState(
        generation=int(meta.get("generation", 0)),
        observed_generation=int(status.get("observedGeneration", 0)),
        replicas=replicas,
        updated_replicas=int(status.get("updatedReplicas", 0)),
        # The server omits zero fields; pods missing from status.replicas count as unavailable.
        unavailable_replicas=int(status.get("unavailableReplicas", 0)),
        excluded=excluded(meta.get("annotations"), exclude),
    )
    try:
        selector: str | None = selector_string(spec["selector"] or {})
        problem = ""
    except ValueError as exc:
        selector, problem = None, str(exc)
    return Deployment(
        target=target,
        uid=str(meta.get("uid", "")),
        selector=selector,
        containers=containers,
        state=state,
        selector_problem=problem,
        enabled=enabled(meta.get("annotations")),
        hpa=str((meta.get("annotations") or {}).get(HPA_ANNOTATION) or "").strip(),
    )


def parse_hpa(target: Target, body: dict[str, Any]) -> HpaTarget | None:
    """An autoscaling/v2 HPA as the hpa_target policy reads it: None unless its scaleTargetRef
    names the target's Deployment; its CPU Utilization target (percent) if it has one."""
    ref = body["spec"]["scaleTargetRef"]
    group = str(ref.get("apiVersion", "apps/v1")).partition("/")[0]
    if ref.get("kind") != "Deployment" or ref.get("name") != target.deployment or group != "apps":
        return None
    utilization = None
    for metric in body["spec"].get("metrics") or ():
        resource = metric.get("resource") or {}
        goal = resource.get("target") or {}
        if (
            metric.get("type") == "Resource"
            and resource.get("name") == "cpu"
            and goal.get("type") == "Utilization"
            and isinstance(goal.get("averageUtilization"), int)
            and goal["averageUtilization"] > 0
        ):
            utilization = int(goal["averageUtilization"])
            break
    return HpaTarget(name=str(body["metadata"]["name"]), cpu_utilization=utilization)


_CPU_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3}


@functools.lru_cache(maxsize=256)
def cpu_cores(quantity: str) -> float | None:
    """A CPU quantity (`500m`, `2`, `0.25`) in cores; None for one this does not read."""
    text = quantity.strip()
    suffix = text[-1:] if text[-1:] in _CPU_SUFFIX else ""
    number = text[: len(text) - len(suffix)]
    try:
        value = float(number) * _CPU_SUFFIX[suffix]
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class _Condition(msgspec.Struct):
    type: str = ""
    status: str = ""
    lastTransitionTime: str | None = None  # noqa: N815


class _Resources(msgspec.Struct):
    # Quantities are strings on the wire; a number is read too rather than failing the list.
    requests: dict[str, str | int | float] | None = None


class _Container(msgspec.Struct):
    resources: _Resources | None = None


class _PodSpec(msgspec.Struct):
    containers: list[_Container] | None = None


class _PodStatus(msgspec.Struct):
    phase: str = ""
    startTime: str | None = None  # noqa: N815  (the API's field names)
    conditions: list[_Condition] | None = None


class _PodMeta(msgspec.Struct):
    name: str
    uid: str = ""
    creationTimestamp: str | None = None  # noqa: N815
    deletionTimestamp: str | None = None  # noqa: N815
    annotations: dict[str, str] | None = None


class _Pod(msgspec.Struct):
    metadata: _PodMeta
    spec: _PodSpec | None = None
    status: _PodStatus | None = None


class _ListMeta(msgspec.Struct):
    continue_: str | None = msgspec.field(default=None, name="continue")


class _PodList(msgspec.Struct):
    items: list[_Pod] | None = None
    metadata: _ListMeta | None = None


_POD_LIST = msgspec.json.Decoder(_PodList)


def pod_page(raw: bytes, exclude: str) -> tuple[list[PodInfo], str]:
    """One page of a pod list: its pods as the decision needs them, and its continue token.
    ValueError (msgspec's errors are ValueErrors) for a body that is not a pod list."""
    page = _POD_LIST.decode(raw)
    token = (page.metadata.continue_ if page.metadata else None) or ""
    return [_pod_info(item, exclude) for item in page.items or ()], token


def _pod_info(item: _Pod, exclude: str) -> PodInfo:
    meta, status = item.metadata, item.status or _PodStatus()
    ready, ready_since = False, None
    for condition in status.conditions or ():
        if condition.type == "Ready":
            ready = condition.status == "True"
            ready_since = parse_time(condition.lastTransitionTime) if ready else None
            break
    # Age counts from the start: a pod that sat Pending has no metrics for that time.
    started = parse_time(status.startTime) or parse_time(meta.creationTimestamp)
    return PodInfo(
        name=meta.name,
        uid=meta.uid,
        ready=ready and status.phase == "Running",
        started_at=started,
        excluded=excluded(meta.annotations, exclude),
        terminating=bool(meta.deletionTimestamp),
        ready_since=ready_since,
        cpu_request=_cpu_request(item.spec),
    )


def _cpu_request(spec: _PodSpec | None) -> float | None:
    """The sum of the containers' CPU requests; None if any container requests none."""
    total = 0.0
    for container in (spec.containers if spec else None) or ():
        requests = container.resources.requests if container.resources else None
        cores = cpu_cores(str(requests["cpu"])) if requests and "cpu" in requests else None
        if cores is None:
            return None
        total += cores
    return total or None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Any


class Cluster:
    """The slice of the Kubernetes API pod-rebalancer uses."""

    def __init__(
        self,
        api: ApiClient,
        *,
        exclude_annotation: str,
        timeout: float = 15.0,
    ) -> None:
        self._api = api
        self._exclude = exclude_annotation
        self._timeout = timeout

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # Reads

    def deployment(self, target: Target) -> Deployment | None:
        path = (
            f"/apis/apps/v1/namespaces/{_q(target.namespace)}/deployments/{_q(target.deployment)}"
        )
        answer = self.call("GET", path, expect=(200, 404))
        if answer.status == 404:
            return None
        try:
            return parse_deployment(target, answer.body, self._exclude)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KubernetesError(f"unreadable Deployment {target}: {exc!r}") from exc

    def hpa(self, target: Target, name: str) -> HpaTarget | None:
        """The autoscaling/v2 HPA `name`, if it scales the target's Deployment (404: None)."""
        path = (
            f"/apis/autoscaling/v2/namespaces/{_q(target.namespace)}"
            f"/horizontalpodautoscalers/{_q(name)}"
        )
        answer = self.call("GET", path, expect=(200, 404))
        if answer.status == 404:
            return None
        try:
            return parse_hpa(target, answer.body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KubernetesError(f"unreadable HorizontalPodAutoscaler {name}: {exc!r}") from exc

    def deployments(self, namespace: str) -> list[Deployment]:
        """Every Deployment of the namespace, read in pages as pods are. Annotations cannot be
        selected by the server, so the opted-in ones are found by the caller."""
        path = f"/apis/apps/v1/namespaces/{_q(namespace)}/deployments"
        found: list[Deployment] = []
        for page in self._pages(path, {}, f"Deployment list in {namespace}"):
            try:
                for item in page:
                    name = item["metadata"]["name"]
                    found.append(parse_deployment(Target(namespace, name), item, self._exclude))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise KubernetesError(
                    f"unreadable Deployment list in {namespace}: {exc!r}"
                ) from exc
        return found

    def _pages(self, path: str, query: dict[str, str], what: str) -> Iterator[list[Any]]:
        """The items of a paged list, one page at a time (`limit` and `continue`); the server
        keeps the pages one snapshot, or answers 410 and the run fails closed."""
        token = ""
        for _ in range(MAX_PAGES):
            page_query = {**query, "limit": str(PAGE_SIZE)}
            if token:
                page_query["continue"] = token
            body = self.call("GET", path, query=page_query).body
            try:
                items = list(body["items"] or ())
                token = (body.get("metadata") or {}).get("continue") or ""
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise KubernetesError(f"unreadable {what}: {exc!r}") from exc
            yield items
            if not token:
                return
        raise KubernetesError(f"{what} exceeds {MAX_PAGES * PAGE_SIZE} items")

    def pods(self, namespace: str, selector: str) -> list[PodInfo]:
        """The pods matching `selector`, read in pages so a large list never sits whole in memory.

        Each page is parsed into light records and dropped before the next one is fetched; the
        server guarantees the pages form one consistent snapshot (or answers 410 Gone, and the
        run fails closed).
        """
        path = f"/api/v1/namespaces/{_q(namespace)}/pods"
        pods: list[PodInfo] = []
        token = ""
        for _ in range(MAX_PAGES):
            query = {"labelSelector": selector, "limit": str(PAGE_SIZE)}
            if token:
                query["continue"] = token
            answer = self.call("GET", path, query=query, raw=True)
            try:
                page, token = pod_page(answer.body, self._exclude)
            except ValueError as exc:
                raise KubernetesError(f"unreadable pod list in {namespace}: {exc}") from exc
            pods.extend(page)
            if not token:
                return pods
        raise KubernetesError(f"pod list in {namespace} exceeds {MAX_PAGES * PAGE_SIZE} pods")

    # The Lease: lock and cooldown memory, with optimistic concurrency on resourceVersion

    def lease(self, namespace: str, name: str) -> Lease | None:
        answer = self.call("GET", _lease_path(namespace, name), expect=(200, 404))
        return None if answer.status == 404 else parse_lease(answer.body)

    def create_lease(self, namespace: str, name: str, state: LeaseState) -> Lease | None:
        """Create the Lease; None when another invocation created it first (409)."""
        body = lease_body(namespace, name, state)
        answer = self.call("POST", _lease_path(namespace), body=body, expect=(200, 201, 409))
        return None if answer.status == 409 else parse_lease(answer.body)

    def replace_lease(self, lease: Lease, state: LeaseState) -> Lease | None:
        """Replace the Lease if nobody changed it since it was read; None on a 409 Conflict."""
        body = lease_body(lease.namespace, lease.name, state, lease)
        answer = self.call(
            "PUT", _lease_path(lease.namespace, lease.name), body=body, expect=(200, 409)
        )
        return None if answer.status == 409 else parse_lease(answer.body)

    # Writes to pods

    def remover(self, mode: EvictionMode, *, dry_run: bool) -> PodWriter:
        return PodWriter(self, mode, dry_run=dry_run)

    # Events

    def event(
        self, deployment: Deployment, note: EventNote, *, now: datetime, instance: str
    ) -> None:
        target = deployment.target
        stamp = format_time(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{target.deployment}.{secrets.token_hex(8)}"[-253:].lstrip(".-"),
                "namespace": target.namespace,
            },
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": target.deployment,
                "namespace": target.namespace,
                "uid": deployment.uid,
            },
            "reason": note.reason,
            "message": note.message[:1024],
            "type": "Warning" if note.warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": instance[:128],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self.call(
            "POST",
            f"/api/v1/namespaces/{_q(target.namespace)}/events",
            body=body,
            expect=(200, 201),
        )

    # The one place library errors are translated

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
        raw: bool = False,
    ) -> _Answer:
        """One request; an expected answer's body as JSON, or (`raw`) as the bytes it came in."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            request = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request, _request_timeout=self._timeout)
            data: bytes = response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise KubernetesError(
                f"Kubernetes API {method} {path} failed: {exc.reason or exc}",
                exc.status,
                unsure=not 400 <= (exc.status or 0) < 500,
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Sent, perhaps carried out, but no answer came back (or none could be read).
            raise KubernetesError(
                f"Kubernetes API unreachable ({method} {path}): {exc}", unsure=True
            ) from exc
        status = int(response.status)
        if raw and status in expect:
            return _Answer(status, data)
        try:
            parsed = json.loads(data) if data else None
        except ValueError as exc:
            raise KubernetesError(
                f"Kubernetes API {method} {path} answered HTTP {status} with a non-JSON body",
                status,
                unsure=True,
            ) from exc
        if status not in expect:
            reason = parsed.get("reason") if isinstance(parsed, dict) else None
            raise KubernetesError(
                f"Kubernetes API {method} {path} answered HTTP {status}: "
                f"{_status_message(parsed) or 'no message'}",
                status,
                reason,
                unsure=status >= 500,
            )
        return _Answer(status, parsed)


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _lease_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases"
    return base if name is None else f"{base}/{_q(name)}"


def _status_message(body: object) -> str:
    if isinstance(body, dict) and body.get("kind") == "Status":
        message = str(body.get("message", ""))
        causes = (body.get("details") or {}).get("causes") or []
        extra = "; ".join(str(c.get("message", "")) for c in causes if c.get("message"))
        return f"{message} ({extra})" if extra else message
    return ""


def parse_lease(body: dict[str, Any]) -> Lease:
    try:
        meta, spec = body["metadata"], body.get("spec") or {}
        annotations = dict(meta.get("annotations") or {})
        selection = annotations.get(LAST_SELECTION) or ""
        state = LeaseState(
            holder=spec.get("holderIdentity") or None,
            renewed_at=parse_time(spec.get("renewTime") or spec.get("acquireTime")),
            duration=timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)),
            last_rebalance=parse_time(annotations.get(LAST_REBALANCE)),
            selection=tuple(name for name in selection.split(",") if name),
            effect=parse_effect(annotations.get(LAST_EFFECT)),
            ineffective=_count(annotations.get(INEFFECTIVE)),
            last_ineffective=parse_time(annotations.get(LAST_INEFFECTIVE)),
        )
        return Lease(
            namespace=meta["namespace"],
            name=meta["name"],
            version=str(meta["resourceVersion"]),
            state=state,
            labels=dict(meta.get("labels") or {}),
            annotations=annotations,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KubernetesError(f"unreadable Lease: {exc!r}") from exc


def _count(text: object) -> int:
    """The ineffective-rebalance count: absent is 0; anything but a small count is unreadable."""
    if text is None or text == "":
        return 0
    if not isinstance(text, str) or not text.isdigit() or len(text) > 6:
        raise ValueError(f"{INEFFECTIVE} is {text!r}, not a count")
    return int(text)


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def parse_effect(text: object) -> Effect | None:
    """The last rebalance's effect from its annotation; None when absent. ValueError when it is
    there but unreadable (someone edited it): the Lease is then unreadable, and nothing acts."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError(f"{LAST_EFFECT} is not text")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{LAST_EFFECT} is not an object")
    evicted = data.get("evicted") or []
    effective = data.get("effective")
    before, expected = _number(data.get("before")), _number(data.get("expected_after"))
    if before is None or expected is None:
        raise ValueError(f"{LAST_EFFECT} lacks before or expected_after")
    if not isinstance(evicted, list) or not all(isinstance(n, str) for n in evicted):
        raise ValueError(f"{LAST_EFFECT} evicted is not a list of names")
    if effective is not None and not isinstance(effective, bool):
        raise ValueError(f"{LAST_EFFECT} effective is not true, false or null")
    return Effect(
        statistic=str(data.get("statistic") or ""),
        before=before,
        expected_after=expected,
        evicted=tuple(evicted),
        achieved=_number(data.get("achieved")),
        improvement_percent=_number(data.get("improvement_percent")),
        effective=effective,
        measured_at=parse_time(data.get("measured_at")),
    )


def effect_text(effect: Effect | None) -> str:
    if effect is None:
        return ""
    data = {
        "statistic": effect.statistic,
        "before": effect.before,
        "expected_after": effect.expected_after,
        "evicted": list(effect.evicted),
        "achieved": effect.achieved,
        "improvement_percent": effect.improvement_percent,
        "effective": effect.effective,
        "measured_at": format_time(effect.measured_at) if effect.measured_at else None,
    }
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def lease_body(
    namespace: str, name: str, state: LeaseState, previous: Lease | None = None
) -> dict[str, Any]:
    """The Lease as JSON; the previous Lease's labels and annotations are kept, ours replaced,
    and its resourceVersion named so that the write fails if anyone wrote in between."""
    annotations = dict(previous.annotations) if previous else {}
    for key, value in (
        (
            LAST_REBALANCE,
            format_time(state.last_rebalance, micro=True) if state.last_rebalance else "",
        ),
        (LAST_SELECTION, ",".join(state.selection)),
        (LAST_EFFECT, effect_text(state.effect)),
        (INEFFECTIVE, str(state.ineffective) if state.ineffective else ""),
        (
            LAST_INEFFECTIVE,
            format_time(state.last_ineffective, micro=True) if state.last_ineffective else "",
        ),
    ):
        if value:
            annotations[key] = value
        else:
            annotations.pop(key, None)
    labels = {**(previous.labels if previous else {}), "app.kubernetes.io/managed-by": COMPONENT}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if previous is not None:
        metadata["resourceVersion"] = previous.version
    spec: dict[str, Any] = {
        "holderIdentity": state.holder,
        "leaseDurationSeconds": max(1, int(state.duration.total_seconds())),
    }
    if state.renewed_at is not None:
        spec["renewTime"] = format_time(state.renewed_at, micro=True)
        if state.holder is not None:
            spec["acquireTime"] = spec["renewTime"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


class PodWriter:
    """Removes pods by eviction (honours PDBs) or deletion, each with the pod's UID as a
    precondition; a dry-run writer sends the same requests with dryRun=All."""

    def __init__(self, cluster: Cluster, mode: EvictionMode, *, dry_run: bool) -> None:
        self._cluster = cluster
        self._mode = mode
        self._dry_run = dry_run

    def remove(self, namespace: str, pod: str, uid: str) -> EvictionResult:
        query = {"dryRun": "All"} if self._dry_run else None
        dry = {"dryRun": ["All"]} if self._dry_run else {}
        if self._mode == "evict":
            method, path = "POST", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(pod)}/eviction"
            body: dict[str, Any] = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod, "namespace": namespace},
                "deleteOptions": {"preconditions": {"uid": uid}, **dry},
            }
        else:
            method, path = "DELETE", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(pod)}"
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "preconditions": {"uid": uid},
                **dry,
            }
        answer = self._cluster.call(
            method, path, query=query, body=body, expect=(200, 201, 404, 409, 429)
        )
        message = _status_message(answer.body)
        if answer.status in (200, 201):
            return EvictionResult(pod, EvictionStatus.EVICTED)
        if answer.status == 429:
            return EvictionResult(pod, EvictionStatus.BLOCKED, message)
        if answer.status == 404:
            return EvictionResult(pod, EvictionStatus.GONE, message)
        return EvictionResult(pod, EvictionStatus.CHANGED, message)

    def gone(self, namespace: str, pod: str, uid: str) -> bool:
        """Whether the pod `uid` is gone or on its way out (terminating), for a removal whose
        answer was lost. A dry run removes nothing, so it never asks."""
        if self._dry_run:
            return False
        answer = self._cluster.call(
            "GET",
            f"/api/v1/namespaces/{_q(namespace)}/pods",
            query={"fieldSelector": f"metadata.name={pod}"},
        )
        try:
            items = answer.body["items"] or ()
            still = [
                item
                for item in items
                if item["metadata"].get("uid") == uid
                and not item["metadata"].get("deletionTimestamp")
            ]
        except (KeyError, TypeError, AttributeError) as exc:
            raise KubernetesError(f"unreadable pod list in {namespace}: {exc!r}") from exc
        return not still
