"""The simulated cluster's state: every object under one lock, resourceVersions, preconditions
and paged lists, as etcd3 and the generic registry give them to kube-apiserver.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.kubesim import objects, selectors
from infra.kubesim.load import ConsumerGroup
from infra.kubesim.status import bad_request, conflict, expired_continue

Key = tuple[str, str]  # (namespace, name)
Obj = dict[str, Any]


@dataclass
class PodState:
    obj: Obj
    deployment: Key | None
    rs: str
    created: float
    bind_at: float | None = None
    ready_at: float | None = None
    delete_at: float | None = None
    ready_override: bool | None = None
    phase_override: str | None = None
    is_ready: bool = False  # mirrors the Ready condition (kept by kubelet.write_conditions)

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

    @property
    def ready(self) -> bool:
        return self.is_ready

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.obj["metadata"].get("labels") or {}
        return labels


@dataclass
class DeploymentState:
    obj: Obj
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
    obj: Obj
    deployment: Key
    pod_hash: str

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass
class PdbState:
    obj: Obj
    disrupted: dict[str, float] = field(default_factory=dict)  # pod name -> approved at


def _no_controllers(now: float) -> None:
    pass


# A paged list's selection lives this long (etcd's compaction interval, after which a continue
# token of that revision answers 410), and this many at once (the oldest expires first).
SNAPSHOT_SECONDS = 300.0
SNAPSHOTS = 64


@dataclass
class Snapshot:
    """The selection of a paged list at its first page: later pages slice it (O(page)), so the
    pages form one list whatever happens in between, as a list at one resourceVersion does.
    Items are the live objects: their membership is the first page's, their content current."""

    items: list[Obj]
    positions: dict[str, int]  # an item's key (namespace/name) -> its index
    taken: float


def item_key(obj: Obj) -> str:
    """Where an item sits in its list: its storage key below the resource's prefix."""
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class Store:
    """All objects and counters; callers hold `lock` for every read and write."""

    def __init__(self, clock: Callable[[], float], rng: random.Random) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = rng
        self.rv = 1000
        self.ips = 0
        self.nodes = 0
        self.pods: dict[Key, PodState] = {}
        self.deployments: dict[Key, DeploymentState] = {}
        self.replicasets: dict[Key, ReplicaSetState] = {}
        self.pdbs: dict[Key, PdbState] = {}
        self.leases: dict[Key, Obj] = {}
        self.hpas: dict[Key, Obj] = {}  # autoscaling/v2 HorizontalPodAutoscalers
        self.events: dict[Key, Obj] = {}  # stored as core/v1 Events
        # Run after every write that controllers react to (the cluster wires in their status
        # sync), as watches wake kube-controller-manager; the REST modules never import them.
        self.after_write: Callable[[float], None] = _no_controllers
        self.snapshot_seconds = SNAPSHOT_SECONDS
        self.snapshots: OrderedDict[tuple[Hashable, ...], Snapshot] = OrderedDict()
        # The last selection of each list, by the revision it was made at: at an unchanged
        # revision nothing can have changed, so a list selects once, as a watch cache serves it.
        self.selections: OrderedDict[tuple[Hashable, ...], tuple[int, list[Obj]]] = OrderedDict()

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def touch(self, obj: Obj) -> None:
        obj["metadata"]["resourceVersion"] = self.next_rv()

    def set_status(self, obj: Obj, status: dict[str, Any]) -> None:
        if obj.get("status") != status:
            obj["status"] = status
            self.touch(obj)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(objects.ALPHANUMS) for _ in range(length))

    def page(
        self,
        kind: str,
        api_version: str,
        select: Callable[[], list[Obj]],
        limit: int | None = None,
        continue_token: str | None = None,
        query: tuple[Hashable, ...] = (),
    ) -> Obj:
        """A List of `select()` (every match, in key order), one page of `limit` at a time.

        The first page selects and, if the list goes on, keeps the selection under its
        resourceVersion: a `continue` token names that revision and the key after which its page
        starts, so each later page costs O(page) as on a real server, and a token whose
        selection has expired (or was never this store's) answers 410 Expired. `query` tells
        lists of the same kind apart (namespace, selectors).
        """
        metadata: dict[str, Any] = {}
        if continue_token:
            token = ContinueToken.decode(continue_token)
            snapshot = self._snapshot((kind, *query, token.rv))
            position = snapshot.positions.get(token.start)
            if position is None:
                raise expired_continue()  # a token this list never handed out
            items, rv = snapshot.items[position + 1 :], token.rv
        else:
            # Only a list that says which it is (`query`) may reuse its selection.
            items = self._select((kind, *query), select) if query else select()
            rv = self.rv
        metadata["resourceVersion"] = str(rv)
        if limit and limit > 0 and len(items) > limit:
            if not continue_token:
                self._keep((kind, *query, rv), items)
            metadata["continue"] = ContinueToken(rv, item_key(items[limit - 1])).encode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "items": [objects.without_type_meta(i) for i in items],
        }

    def _select(self, key: tuple[Hashable, ...], select: Callable[[], list[Obj]]) -> list[Obj]:
        cached = self.selections.get(key)
        if cached is not None and cached[0] == self.rv:
            return cached[1]
        items = select()
        self.selections[key] = (self.rv, items)
        while len(self.selections) > SNAPSHOTS:
            self.selections.popitem(last=False)
        return items

    def _keep(self, key: tuple[Hashable, ...], items: list[Obj]) -> None:
        """Keep (or, listed again at the same revision, renew) the selection of a paged list."""
        kept = self.snapshots.get(key)
        if kept is not None and kept.items is items:
            kept.taken = self.clock()
            self.snapshots.move_to_end(key)
            return
        positions = {item_key(item): index for index, item in enumerate(items)}
        self.snapshots[key] = Snapshot(items, positions, self.clock())
        while len(self.snapshots) > SNAPSHOTS:
            self.snapshots.popitem(last=False)

    def _snapshot(self, key: tuple[Hashable, ...]) -> Snapshot:
        now = self.clock()
        for old, kept in list(self.snapshots.items()):
            if now - kept.taken >= self.snapshot_seconds:
                del self.snapshots[old]
        snapshot = self.snapshots.get(key)
        if snapshot is None:
            raise expired_continue()
        return snapshot


@dataclass(frozen=True)
class ContinueToken:
    """A list's `continue`, encoded as etcd3's store does: its resourceVersion and the key after
    which the next page starts (staging/src/k8s.io/apiserver/pkg/storage/continue.go)."""

    rv: int
    start: str

    def encode(self) -> str:
        token = {"v": "meta.k8s.io/v1", "rv": self.rv, "start": self.start + "\x00"}
        return base64.b64encode(json.dumps(token).encode()).decode()

    @classmethod
    def decode(cls, text: str) -> ContinueToken:
        try:
            token = json.loads(base64.b64decode(text))
            start = str(token["start"]).rstrip("\x00")
        except (ValueError, KeyError, TypeError) as exc:
            raise bad_request("continue key is not valid: illegal base64 data") from exc
        rv = token.get("rv")
        return cls(rv if isinstance(rv, int) else 0, start)


def labelled(
    entries: Iterable[tuple[Key, Obj]], namespace: str, label_selector: str | None
) -> list[Obj]:
    """The objects in `namespace` ("" = all) whose labels match, in key order."""
    labels = selectors.parse_label_selector(label_selector)
    return [
        obj
        for (ns, _), obj in sorted(entries, key=lambda entry: entry[0])
        if namespace in ("", ns) and selectors.matches(labels, obj["metadata"].get("labels"))
    ]


def check_preconditions(
    kind: str, group: str, meta: Mapping[str, Any], uid: str | None, resource_version: str | None
) -> None:
    """rest.BeforeDelete's precondition check: a Conflict on the kind, not the resource
    (staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go)."""
    name = str(meta["name"])
    if uid is not None and uid != meta["uid"]:
        raise conflict(
            kind,
            group,
            name,
            f"the UID in the precondition ({uid}) does not match the UID in record "
            f"({meta['uid']}). The object might have been deleted and then recreated",
        )
    if resource_version is not None and resource_version != meta["resourceVersion"]:
        raise conflict(
            kind,
            group,
            name,
            f"the ResourceVersion in the precondition ({resource_version}) does not "
            f"match the ResourceVersion in record ({meta['resourceVersion']}). The object "
            "might have been modified",
        )
