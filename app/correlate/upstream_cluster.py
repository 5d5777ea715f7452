"""Envoy `upstream_cluster` values → the destination they name.

Istio names Envoy clusters `<direction>|<port>|<subset or protocol>|<fqdn>`:
`outbound|9080|v1|reviews.default.svc.cluster.local` (sidecars, gateways),
`inbound-vip|9080|http|reviews.default.svc.cluster.local` (ambient waypoints: the service VIP),
`inbound|9080||` (a proxy's own workload; no host). Access logs print a trailing `;`, and stat
names use the alternative form `outbound_.9080_.v1_.reviews.default.svc.cluster.local` (each `|`
written as `_.`).
`encap` is a waypoint's cluster for pod-addressed traffic (istio/istio
pilot/pkg/networking/core/waypoint.go `EncapClusterName`; the pod is in `upstream_address`).
`PassthroughCluster` (and `InboundPassthroughCluster*`) carries traffic to destinations Istio does
not know, `BlackHoleCluster` traffic it refuses; neither names a host.

A Kubernetes fqdn `<svc>.<ns>.svc.<cluster domain>` names an in-mesh service; any other host (a
ServiceEntry such as `api.example.com`) becomes an `external` node named by that host.

Waypoints send a handful of distinct values, so parses are cached in a bounded dict: a split per
distinct value, not per span.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain import Endpoint, NodeKind
from app.hot_path import BoundedMemo

EXTERNAL_NAMESPACE = "external"
UNKNOWN_NAMESPACE = "unknown"
_CACHE_MAX = 4096


class ClusterKind(StrEnum):
    OUTBOUND = "outbound"
    INBOUND_VIP = "inbound-vip"
    INBOUND = "inbound"
    PASSTHROUGH = "passthrough"
    BLACKHOLE = "blackhole"
    ENCAP = "encap"  # a waypoint's pod-addressed traffic (to its connect_originate listener)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class UpstreamCluster:
    kind: ClusterKind
    port: int = 0
    subset: str = ""  # outbound: the DestinationRule subset; inbound-vip: the protocol
    fqdn: str = ""
    target: Endpoint | None = None  # the destination the fqdn names; None when it names none
    raw: str = ""


_DIRECTIONS = {
    "outbound": ClusterKind.OUTBOUND,
    "inbound-vip": ClusterKind.INBOUND_VIP,
    "inbound": ClusterKind.INBOUND,
}
_PASSTHROUGH = frozenset(
    {
        "PassthroughCluster",
        "InboundPassthroughCluster",
        "InboundPassthroughClusterIpv4",
        "InboundPassthroughClusterIpv6",
    }
)
# Distinct values are few; bounded so that a flood of junk costs misses, not memory.
_cache: BoundedMemo[str, UpstreamCluster] = BoundedMemo(_CACHE_MAX)


def fqdn_endpoint(host: str) -> Endpoint:
    """`reviews.default.svc.cluster.local` → default/reviews; other hosts → external/<host>."""
    host = host.lower().rstrip(".")
    labels = host.split(".")
    if len(labels) >= 3 and labels[2] == "svc" and labels[0] and labels[1]:
        return Endpoint(namespace=labels[1], service=labels[0])
    return Endpoint(namespace=EXTERNAL_NAMESPACE, service=host, kind=NodeKind.EXTERNAL)


def parse_upstream_cluster(raw: str) -> UpstreamCluster:
    cached = _cache.get(raw)
    if cached is not None:
        return cached
    return _cache.set(raw, _parse(raw))


def _parse(raw: str) -> UpstreamCluster:
    value = raw.strip().rstrip(";").strip()
    parts = value.split("|")
    if len(parts) != 4 and (value.startswith(("outbound_.", "inbound_."))):
        parts = value.split("_.")
    if len(parts) == 4 and parts[0] in _DIRECTIONS:
        direction, port, subset, fqdn = parts
        target = fqdn_endpoint(fqdn) if fqdn else None
        return UpstreamCluster(
            kind=_DIRECTIONS[direction],
            port=int(port) if port.isdigit() else 0,
            subset=subset,
            fqdn=fqdn,
            target=target,
            raw=raw,
        )
    if value in _PASSTHROUGH:
        return UpstreamCluster(kind=ClusterKind.PASSTHROUGH, raw=raw)
    if value == "encap":
        return UpstreamCluster(kind=ClusterKind.ENCAP, raw=raw)
    if value == "BlackHoleCluster":
        return UpstreamCluster(kind=ClusterKind.BLACKHOLE, raw=raw)
    return UpstreamCluster(kind=ClusterKind.OTHER, raw=raw)
