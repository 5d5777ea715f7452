"""Caps on distinct nodes and edges per window, with overflow instead of loss.

A sender that names a new destination on almost every request (egress to many hosts, pod-IP
destinations, a misconfigured client) must not grow meshstitch's memory and store without bound.
`CardinalityGuard.admit` is asked once per (bucket, source, target) the aggregator creates state
for, and answers the endpoints to count the traffic under:

1. An external endpoint (kind EXTERNAL) whose host is new to the *other* end's namespace after
   that namespace already reached `max_external_hosts_per_namespace` hosts is grouped by domain
   suffix: `bucket-7.s3.amazonaws.com` → `external/*.s3.amazonaws.com` (`domain_group`). IPs and
   two-label names have no useful suffix and are not grouped.
2. A node new to the window once `max_nodes` distinct nodes were admitted at its level becomes
   its namespace's overflow node `<ns>/__overflow__` (kind OVERFLOW).
3. An edge new to the window once `max_edges` distinct edges were admitted at its level is moved
   to `source → <target ns>/__overflow__`, then `<source ns>/__overflow__ → <target ns>/__overflow__`.
   Overflow nodes and edges have a reserve of a tenth of the cap on top of it; past the reserve,
   everything left goes to the mesh-wide `__overflow__/__overflow__ → __overflow__/__overflow__`.

Only names change: every request, error and byte is still counted, under the overflow names, so
mesh totals are unchanged (tests/correlate/test_cardinality.py). Nodes and edges are counted per
level, so each level holds at most `max_nodes * 1.1 + 1` nodes and `max_edges * 1.1 + 1` edges
per window.

Windows are aligned on `window_s` by bucket start (the end time of the traffic, not arrival), and
the two newest are kept (late spans land in the previous one); what a window admitted is kept as
hashes of node ids and id pairs, so the guard's own memory is bounded by the caps too. Who caused
overflow is counted by sender (the source's node id as sent) and namespace, bounded.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field

from app.domain import OVERFLOW_NAME, Endpoint, Level, NodeKind

MESH_OVERFLOW_NAMESPACE = OVERFLOW_NAME
MAX_TRACKED_SENDERS = 1000
_KEPT_WINDOWS = 2


def overflow_endpoint(namespace: str) -> Endpoint:
    return Endpoint(namespace=namespace, service=OVERFLOW_NAME, kind=NodeKind.OVERFLOW)


MESH_OVERFLOW = overflow_endpoint(MESH_OVERFLOW_NAMESPACE)


def domain_group(host: str) -> str | None:
    """`*.` + the host's last three labels (four or more labels) or last two (three labels):
    `a.s3.amazonaws.com` → `*.s3.amazonaws.com`, `api.github.com` → `*.github.com`;
    None for IPs and names of fewer than three labels."""
    bare = host.strip("[]")
    # Only a name with a colon or a numeric last label can be an IP: parsing every other name
    # (raising ValueError) was a third of `admit` on all-new external hosts.
    if ":" in bare or bare.rpartition(".")[2].isdigit():
        try:
            ipaddress.ip_address(bare)
            return None
        except ValueError:
            pass
    labels = [part for part in host.split(".") if part]
    if len(labels) < 3 or host.startswith("*."):
        return None
    return "*." + ".".join(labels[-3:] if len(labels) >= 4 else labels[-2:])


@dataclass(frozen=True, slots=True)
class CardinalityCaps:
    """Defaults are the settings' (app/settings.py `max_nodes_per_window`, …)."""

    max_nodes: int = 20_000
    max_edges: int = 100_000
    max_external_hosts_per_namespace: int = 1_000
    window_s: int = 3600

    @property
    def node_reserve(self) -> int:
        return max(10, self.max_nodes // 10)

    @property
    def edge_reserve(self) -> int:
        return max(10, self.max_edges // 10)


class _Window:
    __slots__ = ("edges", "external", "nodes")

    def __init__(self) -> None:
        self.nodes: dict[Level, set[int]] = {Level.SERVICE: set(), Level.WORKLOAD: set()}
        self.edges: dict[Level, set[int]] = {Level.SERVICE: set(), Level.WORKLOAD: set()}
        self.external: dict[str, set[int]] = {}  # caller namespace -> hashes of external hosts


@dataclass(slots=True)
class OverflowCounts:
    """Decisions that renamed traffic, by cause, namespace and sender (bounded)."""

    nodes: int = 0  # a node past max_nodes
    edges: int = 0  # an edge past max_edges
    external_grouped: int = 0  # an external host grouped by domain suffix
    by_namespace: dict[str, int] = field(default_factory=dict)
    by_sender: dict[str, int] = field(default_factory=dict)


class CardinalityGuard:
    """See the module docstring. Called from the pipeline's worker thread only; `snapshot` and
    `usage` may be called from any thread."""

    def __init__(self, caps: CardinalityCaps | None = None) -> None:
        self.caps = caps or CardinalityCaps()
        self._windows: dict[int, _Window] = {}
        self._lock = threading.Lock()
        self._counts = OverflowCounts()
        self.overflow_requests = 0  # L7 observations counted under a renamed end (aggregator)
        self.overflow_samples = 0  # polled samples counted under a renamed end (aggregator)
        # One Endpoint per overflow node (the aggregator memoises node ids per object).
        self._overflow_endpoints: dict[str, Endpoint] = {}

    # ---- the decision -------------------------------------------------------------------------
    def admit(
        self, bucket_start_s: int, source: Endpoint, target: Endpoint
    ) -> tuple[Endpoint, Endpoint]:
        """The endpoints to count `source → target` under (the same objects when within caps)."""
        w = self._window(bucket_start_s)
        src = self._grouped(w, source, target.namespace)
        tgt = self._grouped(w, target, source.namespace)
        if src is not source or tgt is not target:
            self._count("external_grouped", source, target)
        src_node, tgt_node = self._node(w, src), self._node(w, tgt)
        if src_node is not src or tgt_node is not tgt:
            self._count("nodes", source, target)
        src, tgt = src_node, tgt_node
        caps = self.caps
        if self._edge(w, src, tgt, caps.max_edges):
            return src, tgt
        self._count("edges", source, target)
        limit = caps.max_edges + caps.edge_reserve
        tgt = self._overflow_node(w, tgt.namespace)
        if self._edge(w, src, tgt, limit):
            return src, tgt
        src = self._overflow_node(w, src.namespace)
        if self._edge(w, src, tgt, limit):
            return src, tgt
        self._edge(w, MESH_OVERFLOW, MESH_OVERFLOW, None)
        return MESH_OVERFLOW, MESH_OVERFLOW

    def _window(self, bucket_start_s: int) -> _Window:
        index = bucket_start_s // self.caps.window_s
        windows = self._windows
        w = windows.get(index)
        if w is not None:
            return w
        newest = max(windows, default=index)
        if index < newest - (_KEPT_WINDOWS - 1):  # older than every kept window: the oldest kept
            return windows[min(windows)]
        w = _Window()
        with self._lock:
            windows[index] = w
            for old in [i for i in windows if i <= index - _KEPT_WINDOWS]:
                del windows[old]
        return w

    def _grouped(self, w: _Window, endpoint: Endpoint, caller_ns: str) -> Endpoint:
        if endpoint.kind is not NodeKind.EXTERNAL:
            return endpoint
        hosts = w.external.get(caller_ns)
        if hosts is None:
            hosts = w.external[caller_ns] = set()
        key = hash(endpoint.service)
        if key in hosts:
            return endpoint
        if len(hosts) < self.caps.max_external_hosts_per_namespace:
            hosts.add(key)
            return endpoint
        group = domain_group(endpoint.service)
        if group is None:
            return endpoint  # nothing to group by: the node cap decides
        return Endpoint(namespace=endpoint.namespace, service=group, kind=NodeKind.EXTERNAL)

    def _node(self, w: _Window, endpoint: Endpoint) -> Endpoint:
        """`endpoint` if its nodes (service level, and workload level when it names a workload)
        are admitted in `w`, else its namespace's overflow node."""
        if endpoint.kind is NodeKind.OVERFLOW:
            return endpoint
        services, workloads = w.nodes[Level.SERVICE], w.nodes[Level.WORKLOAD]
        service_key = hash(f"{endpoint.namespace}/{endpoint.service}")  # node_id(SERVICE)
        workload = endpoint.workload
        workload_key = hash(f"{endpoint.namespace}/{workload}") if workload else service_key
        new_service, new_workload = service_key not in services, workload_key not in workloads
        if not (new_service or new_workload):
            return endpoint
        cap = self.caps.max_nodes
        if (not new_service or len(services) < cap) and (not new_workload or len(workloads) < cap):
            if new_service:
                services.add(service_key)
            if new_workload:
                workloads.add(workload_key)
            return endpoint
        return self._overflow_node(w, endpoint.namespace)

    def _overflow_node(self, w: _Window, namespace: str) -> Endpoint:
        endpoint = self._overflow_endpoints.get(namespace)
        if endpoint is None:
            if len(self._overflow_endpoints) >= self.caps.node_reserve:
                self._overflow_endpoints.clear()
            endpoint = self._overflow_endpoints[namespace] = overflow_endpoint(namespace)
        key = hash(endpoint.node_id())
        limit = self.caps.max_nodes + self.caps.node_reserve
        for nodes in w.nodes.values():
            if key not in nodes:
                if len(nodes) >= limit:
                    return MESH_OVERFLOW
                nodes.add(key)
        return endpoint

    @staticmethod
    def _edge(w: _Window, source: Endpoint, target: Endpoint, limit: int | None) -> bool:
        """Whether `source → target` is (or now becomes) an admitted edge at both levels."""
        services = w.edges[Level.SERVICE]
        service_key = hash((source.node_id(), target.node_id()))
        new_service = service_key not in services
        if not (source.workload or target.workload):  # no workload-level edge
            if new_service:
                if limit is not None and len(services) >= limit:
                    return False
                services.add(service_key)
            return True
        workloads = w.edges[Level.WORKLOAD]
        wl = Level.WORKLOAD
        workload_key = hash((source.node_id(wl), target.node_id(wl)))
        new_workload = workload_key not in workloads
        if limit is not None and (
            (new_service and len(services) >= limit) or (new_workload and len(workloads) >= limit)
        ):
            return False
        if new_service:
            services.add(service_key)
        if new_workload:
            workloads.add(workload_key)
        return True

    def _count(self, cause: str, source: Endpoint, target: Endpoint) -> None:
        counts = self._counts
        with self._lock:
            setattr(counts, cause, getattr(counts, cause) + 1)
            for key, into in (
                (target.namespace, counts.by_namespace),
                (source.node_id(), counts.by_sender),
            ):
                if key in into or len(into) < MAX_TRACKED_SENDERS:
                    into[key] = into.get(key, 0) + 1

    # ---- reports ------------------------------------------------------------------------------
    def snapshot(self) -> OverflowCounts:
        with self._lock:
            c = self._counts
            return OverflowCounts(
                c.nodes, c.edges, c.external_grouped, dict(c.by_namespace), dict(c.by_sender)
            )

    def usage(self) -> dict[str, int]:
        """Distinct nodes and edges admitted per level in the newest window."""
        with self._lock:
            windows = dict(self._windows)
        if not windows:
            return {
                "nodes_service": 0,
                "nodes_workload": 0,
                "edges_service": 0,
                "edges_workload": 0,
            }
        w = windows[max(windows)]
        return {
            f"{what}_{level.value}": len(sets[level])
            for what, sets in (("nodes", w.nodes), ("edges", w.edges))
            for level in (Level.SERVICE, Level.WORKLOAD)
        }
