"""Node identity: one node per service whatever name each source uses (DESIGN.md, Node identity).

The rule: at `level=service` a node is the **Istio canonical service in its namespace**
(`service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`: what ztunnel prints
as `*_canonical_service`). Every other name a source uses for it is an alias in that namespace:
the Kubernetes Service name (and its FQDN forms `reviews.bookinfo.svc.cluster.local`,
`reviews.bookinfo`, `reviews:9080`, reduced to the name before lookup), the OTel `service.name`,
workload and pod names, pod IPs.

Aliases are learned from the data itself (a ztunnel series names the Service, the canonical
service and the workload together; a waypoint span its `upstream_cluster` host beside the 1.29
`istio.destination_*` tags; an app span its `service.name` beside `k8s.deployment.name`), from
Kubernetes (Services → selectors → pods → canonical labels) and from the `aliases` setting.
When two sources disagree, the stronger wins: setting > kubernetes > ztunnel > span; among equals
the latest. An OTel name whose workload is not known yet is remembered (bounded) and becomes an
alias as soon as the workload's canonical service is learned.

Aliases are written to the store with each flush (`drain_new`), loaded at start (`load`), and
applied twice: here, when an edge is aggregated (`canonical`), and at read time to edges stored
before the alias was known (app/graph/aliases.py). `generation` grows with every change, so
per-object caches downstream know when to forget.

Proxies are recognised from evidence, never from a substring of a name: waypoints from Envoy
`node_id` `waypoint~…`, the waypoint pods' Gateway labels, the ztunnel half-edge shape
(app/poll/waypoint_shape.py) and the `waypoint_workloads` setting; gateways from `router~…`.

Thread-safe: the poller learns on its thread while the pipeline resolves on its own; reads are
plain dict lookups (atomic in CPython), writes hold a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from app.correlate.span_zones import WaypointSpanZones
from app.domain import ALIAS_PRIORITY, Alias, AliasSource, Endpoint, NodeKind
from app.hot_path import IdentityMemo

MAX_ALIASES = 200_000
MAX_PENDING = 20_000
_RESOLVED_KINDS = frozenset({NodeKind.SERVICE, NodeKind.GATEWAY})


@dataclass(frozen=True, slots=True)
class _Known:
    service: str
    source: AliasSource


class NodeIdentity:
    """Aliases and proxies learned so far; see the module docstring."""

    def __init__(self, aliases: Iterable[Alias] = (), waypoints: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._aliases: dict[tuple[str, str], _Known] = {}
        self._new: dict[tuple[str, str], Alias] = {}
        # (namespace, workload) -> OTel names seen on it before the workload's service was known
        self._pending: dict[tuple[str, str], set[str]] = {}
        self._waypoints: set[tuple[str, str]] = set()
        self._waypoint_names: set[str] = set()  # setting entries without a namespace
        self._gateways: set[tuple[str, str]] = set()
        self.waypoint_span_zones = WaypointSpanZones()
        self._canonical: IdentityMemo[Endpoint, Endpoint] = IdentityMemo(8192)
        self._memo_generation = 0
        self.generation = 0
        for item in waypoints:
            namespace, slash, name = item.strip().rpartition("/")
            if slash:
                self._waypoints.add((namespace, name))
            elif name:
                self._waypoint_names.add(name)
        self.load(aliases, new=True)

    # ---- aliases ------------------------------------------------------------------------------
    def load(self, aliases: Iterable[Alias], *, new: bool = False) -> None:
        """Aliases read back from the store (or the setting when `new`: they are stored too)."""
        for alias in aliases:
            self.learn(alias, persist=new)

    def learn(self, alias: Alias, *, persist: bool = True) -> bool:
        """Record `alias`; True when it changed what a name resolves to. A workload learned here
        also turns the OTel names seen on it (`note_app_name`) into aliases."""
        namespace, name, service = alias.namespace, alias.name, alias.service
        if not name or not service or not namespace:
            return False
        key = (namespace, name)
        if key in self._pending:
            with self._lock:
                waiting = self._pending.pop(key, set())
            for other in waiting:
                self.learn(Alias(namespace, other, service, AliasSource.SPAN))
        if name == service:
            return False
        known = self._aliases.get(key)
        if known is not None and (
            known.service == service or ALIAS_PRIORITY[known.source] > ALIAS_PRIORITY[alias.source]
        ):
            return False
        with self._lock:
            if known is None and len(self._aliases) >= MAX_ALIASES:
                return False
            self._aliases[key] = _Known(service, alias.source)
            if persist:
                self._new[key] = alias
            self.generation += 1
        return True

    def note_app_name(self, namespace: str, name: str, workload: str) -> str:
        """An app span's `service.name` on `workload`: its canonical service when the workload's is
        known (learning the alias), else `name` (remembered until the workload is learned)."""
        service = self.service_of(namespace, workload) if workload else None
        if service is not None:
            self.learn(Alias(namespace, name, service, AliasSource.SPAN))
            return service
        if workload and name != workload:
            key = (namespace, workload)
            waiting = self._pending.get(key)
            if waiting is None or name not in waiting:
                with self._lock:
                    if len(self._pending) < MAX_PENDING or key in self._pending:
                        self._pending.setdefault(key, set()).add(name)
        return self.resolve(namespace, name)

    def service_of(self, namespace: str, name: str) -> str | None:
        known = self._aliases.get((namespace, name))
        return known.service if known is not None else None

    def resolve(self, namespace: str, name: str) -> str:
        """The canonical service `name` is an alias of, or `name` itself."""
        known = self._aliases.get((namespace, name))
        return known.service if known is not None else name

    def canonical(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` named by its canonical service (the same object when it already is);
        external, unknown and waypoint endpoints are left as they are."""
        if endpoint.kind not in _RESOLVED_KINDS:
            return endpoint
        if self._memo_generation != self.generation:
            self._canonical.clear()
            self._memo_generation = self.generation
        cached = self._canonical.get(endpoint)
        if cached is not None:
            return cached
        service = self.resolve(endpoint.namespace, endpoint.service)
        kind = endpoint.kind
        if self.is_gateway(endpoint.namespace, service) or self.is_gateway(
            endpoint.namespace, endpoint.workload
        ):
            kind = NodeKind.GATEWAY
        out = endpoint
        if service != endpoint.service or kind is not endpoint.kind:
            out = replace(endpoint, service=service, kind=kind)
        return self._canonical.set(endpoint, out)

    def drain_new(self) -> list[Alias]:
        """Aliases learned since the last drain, for the store."""
        with self._lock:
            out, self._new = list(self._new.values()), {}
        return out

    @property
    def new_count(self) -> int:
        return len(self._new)

    def aliases(self) -> list[Alias]:
        return [Alias(ns, name, k.service, k.source) for (ns, name), k in self._aliases.items()]

    # ---- proxies ------------------------------------------------------------------------------
    def learn_waypoint(self, namespace: str, workload: str) -> None:
        if workload and (namespace, workload) not in self._waypoints:
            with self._lock:
                self._waypoints.add((namespace, workload))
                self.generation += 1

    def is_waypoint(self, namespace: str, workload: str) -> bool:
        return bool(workload) and (
            (namespace, workload) in self._waypoints or workload in self._waypoint_names
        )

    def learn_waypoint_zone(self, namespace: str, workload: str, pod: str, zone: str) -> None:
        """A waypoint pod's own spans said which zone it runs in (app/correlate/span_zones.py)."""
        self.waypoint_span_zones.learn(namespace, workload, pod, zone)

    def waypoint_span_zone(self, namespace: str, workload: str) -> str:
        return self.waypoint_span_zones.zone_of(namespace, workload)

    @property
    def has_waypoints(self) -> bool:
        return bool(self._waypoints or self._waypoint_names)

    def waypoints(self) -> set[tuple[str, str]]:
        return set(self._waypoints)

    def learn_gateway(self, namespace: str, name: str) -> None:
        if name and (namespace, name) not in self._gateways:
            with self._lock:
                self._gateways.add((namespace, name))
                self.generation += 1

    def is_gateway(self, namespace: str, name: str) -> bool:
        return bool(name) and (namespace, name) in self._gateways
