"""Spans → roles and endpoints: which spans are waypoint spans, who is on each side of them.

Roles, from evidence, never from a substring of a name:
- `WAYPOINT`: a span written by an ambient waypoint's Envoy: `node_id` starting `waypoint~`
  (envoy `TracerImpl::startSpan` tags every downstream span with the node id; Istio's node ids are
  `<type>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`); or, without a node id, a SERVER span with
  `component=proxy` whose `upstream_cluster` is a waypoint's (`inbound-vip|…`, `encap`,
  `connect_originate`); or a span whose canonical service (or pod workload) is a waypoint identity
  knows (Gateway labels, the `waypoint_workloads` setting, the L4 half-edge shape).
- A `node_id` of `sidecar~…` (a sidecar) or `router~…` (an ingress/egress gateway), and an
  Envoy upstream span (`component=proxy`, an `outbound|…` cluster, no node id: envoy's
  `finalizeUpstreamSpan` writes no node id): **proxy spans**, which pair by kind like app spans
  (`CLIENT`/`SERVER`) but are named by the proxy's own workload (`proxy_endpoint`), and whose
  unpaired CLIENT spans name the callee from the `outbound|port|subset|fqdn` cluster.
- `CLIENT` (CLIENT, PRODUCER) and `SERVER` (SERVER, CONSUMER): application spans.
- `OTHER`: INTERNAL/unspecified spans, ignored as the servicegraph connector does.

Node naming (the contract with graph, attribution and the store; node id = `namespace/name`):
- In-mesh services: `<ns>/<canonical service>` (app/correlate/identity.py resolves every other
  name to it; the correlator names each observation's endpoints through it). An app span's namespace is resource `k8s.namespace.name`,
  else `istio.namespace`, else `service.namespace`, else `default` (Kubernetes' own default, so
  spans of uninstrumented-namespace apps still meet the waypoint's `reviews.default.svc…` names).
  A bare host (`reviews`) resolves in the caller's namespace, as Kubernetes DNS search does.
- External peers: `external/<host or IP>` (kind EXTERNAL); DB/messaging/RPC peers without a host:
  `external/<db.system>:<db name>`, `external/<messaging.system>:<destination>`,
  `external/rpc:<rpc.service>`.
- Unknown callers: `unknown/<caller IP>` when an address is known, else
  `unknown/caller-of-<service>.<ns>` (kind UNKNOWN): one node per target, never a shared sink.
  Unknown callees of a client span: `unknown/callee-of-<service>.<ns>`.
- Waypoints: `<ns>/<waypoint name>` (kind WAYPOINT), e.g. `default/waypoint`.
- Gateways and sidecars: the proxy's canonical service in its namespace (`istio.canonical_service`
  and `istio.namespace` tags, else the pod of `node_id`, else resource `service.name`, which
  Istio sets to `<canonical>.<ns>`); gateways have kind GATEWAY.

Ports are dropped from every name: ephemeral ports would make one node per connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, TypeVar

from app.correlate.identity import NodeIdentity
from app.correlate.upstream_cluster import (
    EXTERNAL_NAMESPACE,
    UNKNOWN_NAMESPACE,
    ClusterKind,
    fqdn_endpoint,
    parse_upstream_cluster,
)
from app.domain import (
    Alias,
    AliasSource,
    AttrValue,
    Endpoint,
    NodeKind,
    Provenance,
    Span,
    SpanKind,
)
from app.hot_path import BoundedMemo, IdentityMemo

DEFAULT_NAMESPACE = "default"
_CACHE_MAX = 4096
_WAYPOINT_ENDS_MAX = 4096

K = TypeVar("K")
V = TypeVar("V")


class WorkloadDirectory(Protocol):
    """Pod IP → the workload it runs (Kubernetes informer, ztunnel access logs, a test fake)."""

    def lookup(self, ip: str) -> Endpoint | None: ...


# Istio writes "unknown" for peer labels it could not resolve.
_UNKNOWN_VALUES = frozenset({"", "unknown"})
_PEER_TAG_CACHE_MAX = 10_000


_WAYPOINT_CLUSTERS = frozenset({ClusterKind.INBOUND_VIP, ClusterKind.ENCAP})


class SpanRole(IntEnum):
    OTHER = 0
    WAYPOINT = 1
    CLIENT = 2
    SERVER = 3
    # Never returned by `role`: a gateway's downstream span waiting as the client of its own
    # upstream hop (correlator.py), for gateways that write no upstream span.
    GATEWAY_HOP = 4


_KIND_ROLE = {
    SpanKind.CLIENT: SpanRole.CLIENT,
    SpanKind.PRODUCER: SpanRole.CLIENT,
    SpanKind.SERVER: SpanRole.SERVER,
    SpanKind.CONSUMER: SpanRole.SERVER,
}


def _str(value: AttrValue | None) -> str:
    return value if isinstance(value, str) else ""


def strip_port(address: str) -> str:
    """`10.0.0.1:4567` → `10.0.0.1`, `[::1]:80` → `::1`, `host:80` → `host`; bare IPv6 kept."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address[1:]
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address


def url_host(url: str) -> str:
    """Host of `http://user@reviews:9080/path` (or of an authority `reviews:9080/path`)."""
    rest = url.partition("://")[2] if "://" in url else url
    authority = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    return strip_port(authority).lower()


def is_ip(host: str) -> bool:
    return ":" in host or (host[:1].isdigit() and host.replace(".", "").isdigit())


def address_of(value: AttrValue | None) -> str:
    """A peer address without port; `envoy://internal_client_address/` and the like name no pod."""
    if not isinstance(value, str) or not value or value.startswith("envoy://"):
        return ""
    if value.startswith("["):
        return strip_port(value)
    # strip_port inlined for `ip:port` (every waypoint span's peer.address): one call, not three
    host, colon, rest = value.partition(":")
    return host if colon and ":" not in rest else value


def pod_workload(pod: str) -> str:
    """`reviews-v1-6b9f7c7d9-abcde` → `reviews-v1`: drop the ReplicaSet hash and pod suffix."""
    parts = pod.split("-")
    if len(parts) >= 3 and len(parts[-1]) == 5 and 5 <= len(parts[-2]) <= 10:
        return "-".join(parts[:-2])
    return pod


def host_endpoint(host: str, namespace: str, directory: WorkloadDirectory | None) -> Endpoint:
    if is_ip(host):
        if directory is not None:
            found = directory.lookup(host)
            if found is not None:
                return found
        return Endpoint(namespace=EXTERNAL_NAMESPACE, service=host, kind=NodeKind.EXTERNAL)
    if "." not in host:
        return Endpoint(namespace=namespace, service=host)
    return fqdn_endpoint(host)


_unknown_callers: BoundedMemo[tuple[str, str, str], Endpoint] = BoundedMemo(_CACHE_MAX)


def unknown_caller(address: str, target: Endpoint) -> Endpoint:
    # Memoised so repeated callers reuse one Endpoint: the aggregator caches ids per object.
    key = (address, target.service, target.namespace)
    endpoint = _unknown_callers.get(key)
    if endpoint is None:
        name = address or f"caller-of-{target.service}.{target.namespace}"
        endpoint = _unknown_callers.set(
            key, Endpoint(namespace=UNKNOWN_NAMESPACE, service=name, kind=NodeKind.UNKNOWN)
        )
    return endpoint


def unknown_callee(source: Endpoint) -> Endpoint:
    name = f"callee-of-{source.service}.{source.namespace}"
    return Endpoint(namespace=UNKNOWN_NAMESPACE, service=name, kind=NodeKind.UNKNOWN)


def _node_pod(node_id: str) -> tuple[str, str]:
    """(pod, namespace) of an Envoy node id `<type>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`."""
    fields = node_id.split("~")
    if len(fields) >= 3:
        pod, _, namespace = fields[2].partition(".")
        return pod, namespace
    return "", ""


def _external(name: str) -> Endpoint:
    return Endpoint(namespace=EXTERNAL_NAMESPACE, service=name, kind=NodeKind.EXTERNAL)


def _destination_tags(attrs: Mapping[str, object]) -> tuple[str, str, str] | None:
    """(namespace, canonical service, workload) of the `istio.destination_*` tags, if they name one."""
    namespace = attrs.get("istio.destination_namespace")
    service = attrs.get("istio.destination_canonical_service")
    workload = attrs.get("istio.destination_workload")
    if not isinstance(namespace, str) or not isinstance(service, str):
        return None
    if namespace in _UNKNOWN_VALUES or service in _UNKNOWN_VALUES:
        return None
    workload = workload if isinstance(workload, str) and workload not in _UNKNOWN_VALUES else ""
    return namespace, service, workload


@dataclass(frozen=True, slots=True)
class WaypointEnds:
    """The parts of a waypoint span's observation that its rules derive from a few raw values
    (`SpanNormalizer.waypoint_ends`): what stays the same from span to span of one route."""

    target: Endpoint  # canonical (identity as of the memo's generation)
    raw_target: Endpoint  # as the rules name it; before the directory's refinement
    via: str
    # The directory names the chosen pod (`upstream_address`, per span): its workload refines
    # `raw_target` on each span, as `_with_upstream_workload` does.
    refine: bool
    # The Service → canonical-service alias the plain rules learn on every span (the cluster's
    # host beside the `istio.destination_*` tags): learned again on every span here too.
    alias: Alias | None


# Memoised "these values need the plain rules" (a target named by a per-span value).
_PLAIN_RULES = WaypointEnds(Endpoint("", ""), Endpoint("", ""), "", False, None)


class _WatchedMemo(BoundedMemo[K, V]):
    """A `BoundedMemo` that calls `on_clear` just before it empties itself."""

    __slots__ = ("on_clear",)

    def __init__(self, max_entries: int, on_clear: Callable[[], None]) -> None:
        super().__init__(max_entries)
        self.on_clear = on_clear

    def set(self, key: K, value: V) -> V:
        if len(self) >= self.max_entries:
            self.on_clear()
        return super().set(key, value)


class SpanNormalizer:
    """Roles and endpoints of spans; caches per resource and per waypoint identity, bounded."""

    __slots__ = (
        "_app_cache",
        "_directory",
        "_ends",
        "_ends_generation",
        "_identity",
        "_named_waypoint",
        "_names",
        "_peer_tag_cache",
        "_proxy_cache",
        "_waypoint_cache",
    )

    def __init__(
        self,
        waypoint_names: frozenset[str] = frozenset(),
        directory: WorkloadDirectory | None = None,
        identity: NodeIdentity | None = None,
    ) -> None:
        self._names = waypoint_names
        self._directory = directory
        self._identity = identity if identity is not None else NodeIdentity()
        self._named_waypoint: BoundedMemo[tuple[str, str, str, str, int], bool] = BoundedMemo(
            _CACHE_MAX
        )
        self._proxy_cache: BoundedMemo[tuple[str, str, str, str], Endpoint] = BoundedMemo(
            _CACHE_MAX
        )
        # resource (by identity) → (service.name, endpoint): the decoder shares one resource dict
        # among a batch's spans, and one endpoint object lets the aggregator's per-object caches
        # hit (bench/correlate, mix at 50k spans: aggregate 1.3x slower without this memo).
        self._app_cache: IdentityMemo[dict[str, AttrValue], tuple[str, Endpoint]] = IdentityMemo(
            _CACHE_MAX
        )
        # The two memos whose misses learn (aliases, waypoints, zones) tell `_ends` when they
        # empty themselves: see `waypoint_ends`.
        self._peer_tag_cache: BoundedMemo[tuple[str, str, str], Endpoint] = _WatchedMemo(
            _PEER_TAG_CACHE_MAX, self._forget_waypoint_ends
        )
        self._waypoint_cache: BoundedMemo[
            tuple[str, str, str, str, str, str, str, str], tuple[Endpoint, str]
        ] = _WatchedMemo(_CACHE_MAX, self._forget_waypoint_ends)
        self._ends: BoundedMemo[tuple[AttrValue | None, ...], WaypointEnds] = BoundedMemo(
            _WAYPOINT_ENDS_MAX
        )
        self._ends_generation = self._identity.generation

    # ---- roles ------------------------------------------------------------------------------
    def role(self, span: Span) -> SpanRole:
        attrs = span.attributes
        node_id = attrs.get("node_id")
        if isinstance(node_id, str) and node_id:
            if node_id.startswith("waypoint~"):
                return SpanRole.WAYPOINT
            if node_id.startswith(("sidecar~", "router~")):
                return _KIND_ROLE.get(span.kind, SpanRole.OTHER)
        elif attrs.get("component") == "proxy" and span.kind is SpanKind.SERVER:
            raw = _str(attrs.get("upstream_cluster")) or _str(attrs.get("upstream_cluster.name"))
            if raw and parse_upstream_cluster(raw).kind in _WAYPOINT_CLUSTERS:
                return SpanRole.WAYPOINT
        if self._names or self._identity.has_waypoints:
            resource = span.resource
            key = (
                _str(attrs.get("istio.canonical_service"))
                or _str(resource.get("istio.canonical_service")),
                _str(attrs.get("istio.namespace")) or _str(resource.get("istio.namespace")),
                _str(resource.get("k8s.pod.name")),
                span.service,
                self._identity.generation,
            )
            named = self._named_waypoint.get(key)
            if named is None:
                named = self._named_waypoint.set(key, self._names_waypoint(*key[:4]))
            if named:
                return SpanRole.WAYPOINT
        return _KIND_ROLE.get(span.kind, SpanRole.OTHER)

    def _names_waypoint(self, canonical: str, namespace: str, pod: str, service: str) -> bool:
        for name in (canonical, pod_workload(pod)):
            if name and (name in self._names or self._identity.is_waypoint(namespace, name)):
                return True
        # The setting may name a waypoint by its resource service.name (`<name>.<ns>` ≤ 1.27).
        return bool(self._names) and service.partition(".")[0] in self._names

    @staticmethod
    def is_gateway_with_upstream(span: Span) -> bool:
        """A gateway's downstream span whose `upstream_cluster` names the in-mesh callee."""
        node_id = span.attributes.get("node_id")
        if not (isinstance(node_id, str) and node_id.startswith("router~")):
            return False
        raw = _str(span.attributes.get("upstream_cluster")) or _str(
            span.attributes.get("upstream_cluster.name")
        )
        cluster = parse_upstream_cluster(raw) if raw else None
        return cluster is not None and cluster.kind is ClusterKind.OUTBOUND and bool(cluster.fqdn)

    @staticmethod
    def is_proxy(span: Span) -> bool:
        """An Envoy span (sidecar, gateway or an upstream span): named by the proxy itself."""
        attrs = span.attributes
        node_id = attrs.get("node_id")
        if isinstance(node_id, str) and node_id:
            return node_id.startswith(("sidecar~", "router~"))
        return attrs.get("component") == "proxy"

    # ---- application spans ------------------------------------------------------------------
    def app_endpoint(self, span: Span) -> Endpoint:
        """The endpoint an app or proxy span belongs to (as written: not yet canonical)."""
        if self.is_proxy(span):
            return self.proxy_endpoint(span)
        resource = span.resource
        cached = self._app_cache.get(resource)
        if cached is not None and cached[0] == span.service:
            return cached[1]
        namespace = (
            _str(resource.get("k8s.namespace.name"))
            or _str(resource.get("istio.namespace"))
            or _str(resource.get("service.namespace"))
            or _str(span.attributes.get("k8s.namespace.name"))
            or DEFAULT_NAMESPACE
        )
        service = (
            span.service
            or _str(resource.get("istio.canonical_service"))
            or _str(resource.get("k8s.deployment.name"))
            or "unknown_service"
        )
        workload = _str(resource.get("k8s.deployment.name")) or pod_workload(
            _str(resource.get("k8s.pod.name"))
        )
        # An OTel name beside its workload: an alias of the workload's canonical service.
        self._identity.note_app_name(namespace, service, workload)
        endpoint = Endpoint(namespace=namespace, service=service, workload=workload)
        self._app_cache.set(resource, (span.service, endpoint))
        return endpoint

    def proxy_endpoint(self, span: Span) -> Endpoint:
        """A sidecar's or gateway's own node: `istio.canonical_service` in `istio.namespace`,
        else the pod in `node_id`, else resource `service.name` (`<canonical>.<ns>`, the proxy's
        service cluster); kind GATEWAY for a `router~` node id or a gateway identity knows."""
        attrs, resource = span.attributes, span.resource
        canonical = _str(attrs.get("istio.canonical_service")) or _str(
            resource.get("istio.canonical_service")
        )
        namespace = _str(attrs.get("istio.namespace")) or _str(resource.get("istio.namespace"))
        node_id = _str(attrs.get("node_id"))
        key = (canonical, namespace, node_id, span.service)
        found = self._proxy_cache.get(key)
        if found is not None:
            return found
        pod, pod_ns = _node_pod(node_id)
        workload = pod_workload(pod) if pod else ""
        if not canonical:
            own, _, own_ns = span.service.partition(".")
            canonical, namespace = own or workload, namespace or own_ns
        namespace = namespace or pod_ns or DEFAULT_NAMESPACE
        canonical = canonical or "unknown_service"
        kind = NodeKind.SERVICE
        if node_id.startswith("router~"):
            self._identity.learn_gateway(namespace, canonical)
            if workload:
                self._identity.learn_gateway(namespace, workload)
        if self._identity.is_gateway(namespace, canonical):
            kind = NodeKind.GATEWAY
        if workload:
            self._identity.learn(Alias(namespace, workload, canonical, AliasSource.SPAN))
        endpoint = Endpoint(namespace, canonical, workload, kind)
        return self._proxy_cache.set(key, endpoint)

    def client_peer(self, span: Span, source: Endpoint) -> Endpoint:
        """The callee of an unpaired client span, named by the best attribute present."""
        attrs, ns = span.attributes, source.namespace
        raw = _str(attrs.get("upstream_cluster")) or _str(attrs.get("upstream_cluster.name"))
        if raw:  # an Envoy span: `outbound|9080|v1|reviews.bookinfo.svc.cluster.local`
            cluster = parse_upstream_cluster(raw)
            if cluster.target is not None:
                return cluster.target
        for key in ("peer.service", "server.address", "net.peer.name"):
            host = _str(attrs.get(key))
            if host:
                return host_endpoint(strip_port(host).lower(), ns, self._directory)
        db = _str(attrs.get("db.system"))
        if db:
            name = _str(attrs.get("db.namespace")) or _str(attrs.get("db.name"))
            return _external(f"{db}:{name}" if name else db)
        messaging = _str(attrs.get("messaging.system"))
        if messaging:
            dest = _str(attrs.get("messaging.destination.name")) or _str(
                attrs.get("messaging.destination")
            )
            return _external(f"{messaging}:{dest}" if dest else messaging)
        rpc = _str(attrs.get("rpc.service"))
        if rpc:
            return _external(f"rpc:{rpc}")
        for key in ("url.full", "http.url"):
            host = url_host(_str(attrs.get(key)))
            if host:
                return host_endpoint(host, ns, self._directory)
        for key in ("network.peer.address", "net.peer.ip", "net.sock.peer.addr"):
            address = address_of(attrs.get(key))
            if address:
                return host_endpoint(address, ns, self._directory)
        return unknown_callee(source)

    def server_caller(self, span: Span, target: Endpoint) -> tuple[Endpoint, Provenance]:
        """The caller of an unpaired server span: its address's workload, the broker, or UNKNOWN."""
        attrs = span.attributes
        address = ""
        tagged = self.caller_by_peer_tags(attrs)
        if tagged is not None:
            return tagged, Provenance.PEER_TAGS
        for key in (
            "client.address",
            "net.sock.peer.addr",
            "network.peer.address",
            "net.peer.ip",
            "peer.address",  # Envoy's
        ):
            address = address_of(attrs.get(key))
            if address:
                break
        found = self.caller_by_address(address)
        if found is not None:
            return found, Provenance.PEER_ADDRESS
        messaging = _str(attrs.get("messaging.system"))
        if messaging and not address:
            dest = _str(attrs.get("messaging.destination.name")) or _str(
                attrs.get("messaging.destination")
            )
            return _external(
                f"{messaging}:{dest}" if dest else messaging
            ), Provenance.PEER_ATTRIBUTE
        return unknown_caller(address, target), Provenance.UNATTRIBUTED

    def caller_by_peer_tags(self, attrs: Mapping[str, object]) -> Endpoint | None:
        """The caller an Istio ≥ 1.29 waypoint names in its `istio.source_*` span tags (from the
        HBONE peer metadata; istio/istio#58348), named as ztunnel names it: canonical service in
        its namespace, with the workload."""
        namespace = attrs.get("istio.source_namespace")
        workload = attrs.get("istio.source_workload")
        if workload in _UNKNOWN_VALUES:
            workload = None
        service = attrs.get("istio.source_canonical_service")
        if service in _UNKNOWN_VALUES:
            service = workload
        if not isinstance(namespace, str) or not isinstance(service, str):
            return None
        if namespace in _UNKNOWN_VALUES or service in _UNKNOWN_VALUES:
            return None
        key = (namespace, service, workload if isinstance(workload, str) else "")
        found = self._peer_tag_cache.get(key)
        if found is None:
            found = self._peer_tag_cache.set(key, Endpoint(key[0], key[1], workload=key[2]))
        return found

    def callee_by_peer_tags(self, attrs: Mapping[str, object]) -> Endpoint | None:
        """The destination an Istio ≥ 1.29 waypoint names in its `istio.destination_*` tags: the
        canonical service in its namespace, with the chosen pod's workload."""
        tags = _destination_tags(attrs)
        if tags is None:
            return None
        namespace, service, workload = tags
        key = ("dst:" + namespace, service, workload)
        found = self._peer_tag_cache.get(key)
        if found is None:
            if workload:
                self._identity.learn(Alias(namespace, workload, service, AliasSource.SPAN))
            found = self._peer_tag_cache.set(key, Endpoint(namespace, service, workload=workload))
        return found

    def caller_by_address(self, address: str) -> Endpoint | None:
        """The workload behind a caller's pod IP, when a directory knows it."""
        if not address or self._directory is None:
            return None
        return self._directory.lookup(address)

    # ---- waypoint spans -----------------------------------------------------------------------
    def waypoint_target(self, span: Span) -> Endpoint:
        """The destination of a waypoint span: the `istio.destination_*` tags (Istio ≥ 1.29: the
        canonical service and the chosen pod's workload), else the `upstream_cluster` host (a
        Service name, resolved by identity), else the chosen pod (`encap`: pod-addressed traffic
        through a workload waypoint, istio/istio pilot/pkg/networking/core/listener_waypoint.go
        "direct pod access chain"), else the URL host."""
        attrs = span.attributes
        tagged = self.callee_by_peer_tags(attrs)
        raw = _str(attrs.get("upstream_cluster")) or _str(attrs.get("upstream_cluster.name"))
        cluster = parse_upstream_cluster(raw) if raw else None
        if cluster is not None and cluster.target is not None:
            target = cluster.target
            if tagged is not None and tagged.namespace == target.namespace:
                # The cluster names the Kubernetes Service; the tags its canonical service.
                self._identity.learn(
                    Alias(target.namespace, target.service, tagged.service, AliasSource.SPAN)
                )
                return tagged
            if self._directory is None:  # the common case: the cluster's (cached) endpoint
                return target
            return self._with_upstream_workload(span, target)
        if tagged is not None:
            return tagged
        kind = cluster.kind if cluster is not None else ClusterKind.OTHER
        if kind is ClusterKind.INBOUND:
            return self._proxy_own_service(span)
        if kind is ClusterKind.ENCAP:
            upstream = _str(attrs.get("upstream_address")).removeprefix(
                "envoy://connect_originate/"
            )
            pod = address_of(upstream) or url_host(_str(attrs.get("http.url")))
            found = self.caller_by_address(pod)
            if found is not None:
                return found
            if pod:
                return Endpoint(UNKNOWN_NAMESPACE, f"pod-{pod}", kind=NodeKind.UNKNOWN)
            return unknown_callee(self.waypoint(span, None))
        if kind is ClusterKind.PASSTHROUGH:
            upstream = address_of(attrs.get("upstream_address"))
            found = self.caller_by_address(upstream)
            if found is not None:
                return found
            host = url_host(_str(attrs.get("http.url")))
            if host and not is_ip(host):
                return host_endpoint(host, self._waypoint_namespace(span), None)
            if upstream or host:
                return _external(upstream or host)
            return unknown_callee(self.waypoint(span, None))
        host = url_host(_str(attrs.get("http.url")))
        operation = span.name.split(" ", 1)[0]
        if not host and ":" in operation:  # Envoy names operations `<host>:<port>/<path>`
            host = url_host(operation)
        if kind is ClusterKind.BLACKHOLE:
            if host:
                return host_endpoint(host, self._waypoint_namespace(span), None)
            wp = self.waypoint(span, None)
            return Endpoint(
                UNKNOWN_NAMESPACE,
                f"blackhole-of-{wp.service}.{wp.namespace}",
                kind=NodeKind.UNKNOWN,
            )
        if host:
            return host_endpoint(host, self._waypoint_namespace(span), self._directory)
        return unknown_callee(self.waypoint(span, None))

    # ---- waypoint spans, memoised ------------------------------------------------------------
    def waypoint_ends(self, span: Span) -> WaypointEnds | None:
        """`waypoint_target` and `waypoint_via` of `span`, memoised by the raw values they read;
        None when the target comes from a per-span value (a pod or URL): then use them.

        Exactly what the plain calls give, learning included: the memo is keyed by every value
        those rules read for a cluster- or tag-named target, and is emptied when identity changes
        (the canonical target) and when a memo whose misses learn (`_peer_tag_cache`,
        `_waypoint_cache`) empties itself, so a hit here is a hit there, where nothing is learned.
        (A derivation adds at most one entry to each of those, after any emptying, so what it
        derives may be kept.) The one thing the plain rules learn on every span, the alias, is
        learned here on every hit too. tests/correlate/test_waypoint_ends.py checks all this.
        """
        identity = self._identity
        if identity.generation != self._ends_generation:
            self._ends.clear()
            self._ends_generation = identity.generation
        attrs, resource = span.attributes, span.resource
        get = attrs.get
        key = (
            get("upstream_cluster"),
            get("upstream_cluster.name"),
            get("istio.destination_namespace"),
            get("istio.destination_canonical_service"),
            get("istio.destination_workload"),
            get("istio.canonical_service"),
            get("istio.namespace"),
            get("node_id"),
            get("zone"),
            span.service,
            resource.get("istio.canonical_service"),
            resource.get("istio.namespace"),
            resource.get("k8s.namespace.name"),
        )
        ends = self._ends.get(key)
        if ends is None or (ends.alias is not None and identity.learn(ends.alias)):
            # (An alias that changed something may change the canonical target: derive anew.)
            ends = self._derive_waypoint_ends(span, key)
        return None if ends is _PLAIN_RULES else ends

    def _derive_waypoint_ends(self, span: Span, key: tuple[AttrValue | None, ...]) -> WaypointEnds:
        attrs = span.attributes
        raw = _str(attrs.get("upstream_cluster")) or _str(attrs.get("upstream_cluster.name"))
        cluster = parse_upstream_cluster(raw).target if raw else None
        tags = _destination_tags(attrs)
        if cluster is None and tags is None:
            return self._remember_ends(key, _PLAIN_RULES)
        raw_target = self.waypoint_target(span)  # the plain rules, learning included
        via = self.waypoint_via(span, raw_target)
        alias: Alias | None = None
        refine = False
        if cluster is not None:
            if tags is not None and tags[0] == cluster.namespace:
                alias = Alias(cluster.namespace, cluster.service, tags[1], AliasSource.SPAN)
            elif self._directory is not None and cluster.kind is NodeKind.SERVICE:
                refine, raw_target = True, cluster
        ends = WaypointEnds(self._identity.canonical(raw_target), raw_target, via, refine, alias)
        return self._remember_ends(key, ends)

    def _remember_ends(self, key: tuple[AttrValue | None, ...], ends: WaypointEnds) -> WaypointEnds:
        if self._identity.generation != self._ends_generation:  # learned while deriving
            self._ends.clear()
            self._ends_generation = self._identity.generation
        return self._ends.set(key, ends)

    def _forget_waypoint_ends(self) -> None:
        self._ends.clear()

    def refined_target(self, span: Span, ends: WaypointEnds) -> Endpoint:
        """`ends.target`, or the canonical target refined by the chosen pod's workload."""
        refined = self._with_upstream_workload(span, ends.raw_target)
        return ends.target if refined is ends.raw_target else self._identity.canonical(refined)

    def _with_upstream_workload(self, span: Span, target: Endpoint) -> Endpoint:
        # `upstream_address` is the chosen pod (10.42.0.74:8080): its workload refines the target.
        if self._directory is None or target.kind is not NodeKind.SERVICE:
            return target
        address = address_of(span.attributes.get("upstream_address"))
        found = self._directory.lookup(address) if address else None
        if found is None or not found.workload or found.namespace != target.namespace:
            return target
        return Endpoint(
            namespace=target.namespace,
            service=target.service,
            workload=found.workload,
            principal=found.principal,
        )

    def _waypoint_namespace(self, span: Span) -> str:
        return (
            _str(span.attributes.get("istio.namespace"))
            or _str(span.resource.get("istio.namespace"))
            or _str(span.resource.get("k8s.namespace.name"))
            or DEFAULT_NAMESPACE
        )

    def _proxy_own_service(self, span: Span) -> Endpoint:
        service, _, namespace = span.service.partition(".")
        namespace = namespace or self._waypoint_namespace(span)
        own = self.waypoint(span, None)
        if (
            service
            and service != own.service
            and service not in self._names
            and not self._identity.is_waypoint(namespace, service)
        ):
            return Endpoint(namespace=namespace, service=service)
        return unknown_callee(own)

    def waypoint(self, span: Span, target: Endpoint | None) -> Endpoint:
        """The waypoint's own identity (kind WAYPOINT), never the destination's.

        From, in order: `istio.canonical_service` + `istio.namespace`; `node_id`
        (`waypoint~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`); resource `service.name`
        (`waypoint.default` before Istio 1.29; from 1.29 it names the destination, so a name equal
        to the target's is skipped); else `<target ns>/waypoint`.
        """
        return self._waypoint_entry(span, target)[0]

    def waypoint_via(self, span: Span, target: Endpoint | None) -> str:
        """`waypoint(span, target).node_id()`, cached with it."""
        return self._waypoint_entry(span, target)[1]

    def _waypoint_entry(self, span: Span, target: Endpoint | None) -> tuple[Endpoint, str]:
        attrs, resource = span.attributes, span.resource
        get = attrs.get
        canonical = _str(get("istio.canonical_service")) or _str(
            resource.get("istio.canonical_service")
        )
        namespace = _str(get("istio.namespace")) or _str(resource.get("istio.namespace"))
        node_id = _str(get("node_id"))
        target_service = target.service if target is not None else ""
        target_ns = target.namespace if target is not None else ""
        k8s_ns = _str(resource.get("k8s.namespace.name"))
        zone = _str(get("zone"))
        key = (canonical, namespace, node_id, span.service, target_service, target_ns, k8s_ns, zone)
        cached = self._waypoint_cache.get(key)
        if cached is not None:
            return cached
        pod, pod_ns = _node_pod(node_id)
        workload = pod_workload(pod) if pod else ""
        if workload and node_id.startswith("waypoint~"):
            self._identity.learn_waypoint(pod_ns or namespace, workload)
            # Envoy's `zone` tag (app/correlate/span_zones.py); learned once per cache entry,
            # and a pod's zone does not change while it lives.
            self._identity.learn_waypoint_zone(pod_ns or namespace, workload, pod, zone)
        name = ""
        if canonical and not (
            canonical == target_service and (namespace or target_ns) == target_ns
        ):
            name = canonical
        elif workload:
            name = workload
        else:
            service, _, service_ns = span.service.partition(".")
            if service and not (
                service == target_service and (service_ns or target_ns) == target_ns
            ):
                name, namespace = service, namespace or service_ns
        namespace = namespace or pod_ns or k8s_ns or target_ns
        endpoint = Endpoint(
            namespace=namespace or DEFAULT_NAMESPACE,
            service=name or "waypoint",
            workload=workload or name or "waypoint",
            kind=NodeKind.WAYPOINT,
        )
        return self._waypoint_cache.set(key, (endpoint, endpoint.node_id()))
