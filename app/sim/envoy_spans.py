"""The tags an Istio Envoy (waypoint, ingress gateway, sidecar) writes on its spans.

Every value is a string (Envoy's OpenTelemetry `Span::setTag`, tests/data/otlp/README.md). Where
each tag comes from, in envoyproxy/envoy:

* `source/common/tracing/tracer_impl.cc`, `TracerImpl::startSpan`: `node_id` and `zone` on the
  span the HCM starts (the downstream span) only; an upstream child span (`spawnChild` in
  `source/common/router/upstream_request.cc`, named `"router " + cluster observabilityName() +
  " egress"`) gets neither.
* `source/common/tracing/http_tracer_impl.cc`, `finalizeDownstreamSpan`: `guid:x-request-id`,
  `http.url` (scheme + `Host` header + path), `http.method`, `downstream_cluster`, `user_agent`,
  `http.protocol`, `request_size`, `response_size` and `peer.address` = the downstream
  `directRemoteAddress()`. `finalizeUpstreamSpan`: `http.protocol`, `upstream_address` and
  `peer.address` = the upstream host's address; no URL, method or request id.
* `TracerUtility::finalizeSpan` / `setCommonTags` (both spans): `component=proxy`,
  `upstream_cluster` (cluster `name()`), `upstream_cluster.name` (`observabilityName()`, the
  cluster's `alt_stat_name`), `http.status_code`, `response_flags`, `error=true` on 5xx or no
  response, and the HCM's custom tags, so `istio.canonical_service` etc. are on **both** the
  downstream and the upstream span (older Envoys applied custom tags in `finalizeDownstreamSpan`
  only).
* The peer address of a connection accepted on an internal listener is
  `EnvoyInternalInstance("internal_client_address")`, printed `envoy://internal_client_address/`
  (`source/extensions/bootstrap/internal_listener/client_connection_factory.cc`). A waypoint's
  HCM sits on the `main_internal` internal listener behind `connect_terminate` (istio/istio
  `pilot/pkg/networking/core/listener_waypoint.go`), so **every** waypoint span has that
  `peer.address`, never the caller's pod IP (waypoint access logs agree:
  `downstream_remote_address: envoy://internal_client_address/`). Sidecars and gateways accept
  on real sockets: `peer.address` is `ip:port` of the caller.

And in istio/istio:

* `pilot/pkg/networking/core/tracing.go`, `buildServiceTags`: `istio.canonical_service` (the
  proxy pod's `service.istio.io/canonical-name` label, which the injection templates and
  waypoint.yaml set), `istio.canonical_revision`, `istio.mesh_id`, `istio.namespace`,
  `istio.cluster_id`; resource `service.name` = `XdsNode.Cluster` (`<app>.<ns>` for sidecars and
  gateways, `<sa>.<ns>` for waypoints) or, 1.28 to 1.29, the Service host (app/sim/istio.py).
* Cluster names (`model.BuildSubsetKey`): a waypoint routes a Service's traffic to
  `inbound-vip|<port>|http|<host>` (`cluster_waypoint.go`, `buildWaypointInboundVIPCluster`) and
  pod-addressed traffic (the `direct-http` chain of `buildWaypointInternal`) to `encap`
  (`waypoint.go`, `EncapClusterName`), a static cluster to the `connect_originate` internal
  listener with no endpoint id, so `upstream_address` is `envoy://connect_originate/`.
  Sidecars and gateways use `outbound|<port>||<host>`, a sidecar's inbound `inbound|<port>||`
  (`BuildInboundSubsetKey`). `buildCluster` sets `AltStatName = name + ";"`
  (`util.DelimitedStatsPrefix`, `constants.StatPrefixDelimiter`), hence `upstream_cluster.name`.
* Span names are route decorators: `<host>:<port>/*` (`telemetry.TraceOperation`, used by
  `buildSidecarInboundHTTPRouteConfig` and `route.GetRouteOperation`); the direct-to-pod chain
  has no Service, so its decorator is `TraceOperation("", 0)` = `:0/*`.
* Sidecar outbound listeners are class `SidecarOutbound`, egress: Envoy's OTel tracer writes
  CLIENT spans there and SERVER spans on inbound, gateway and waypoint listeners
  (tests/data/otlp/README.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.sim.topology import CLUSTER_ID, TRUST_DOMAIN

USER_AGENT = "python-requests/2.32.3"
INTERNAL_CLIENT_ADDRESS = "envoy://internal_client_address/"


@dataclass(frozen=True, slots=True)
class EnvoyProxy:
    """One Envoy pod: what its node id and custom tags say about itself."""

    role: str  # node id prefix: waypoint | router | sidecar
    ip: str
    pod: str
    namespace: str
    canonical_service: str
    canonical_revision: str = "latest"
    zone: str = ""  # the node's zone: Envoy's `zone` tag (`LocalInfo::zoneName()`)

    @property
    def node_id(self) -> str:
        ns = self.namespace
        return f"{self.role}~{self.ip}~{self.pod}.{ns}~{ns}.svc.cluster.local"

    def custom_tags(self) -> dict[str, str]:
        return {
            "istio.canonical_revision": self.canonical_revision,
            "istio.canonical_service": self.canonical_service,
            "istio.cluster_id": CLUSTER_ID,
            "istio.mesh_id": TRUST_DOMAIN,
            "istio.namespace": self.namespace,
        }


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one request looked like at one proxy."""

    url: str
    cluster: str
    upstream_address: str
    status: str
    response_flags: str
    response_bytes: int


def outbound_cluster(host: str, port: int) -> str:
    return f"outbound|{port}||{host}"


def inbound_vip_cluster(host: str, port: int) -> str:
    return f"inbound-vip|{port}|http|{host}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


ENCAP_CLUSTER = "encap"
ENCAP_UPSTREAM_ADDRESS = "envoy://connect_originate/"


def hbone_address(ip: str, port: int) -> str:
    """A connect_originate endpoint carrying the tunnel destination (the fixture's shape)."""
    return f"envoy://connect_originate/{ip}:{port}"


def _common(exchange: Exchange, proxy: EnvoyProxy) -> dict[str, str]:
    tags = {
        "component": "proxy",
        "upstream_cluster": exchange.cluster,
        "upstream_cluster.name": exchange.cluster + ";",
        "upstream_address": exchange.upstream_address,
        "http.status_code": exchange.status,
        "response_flags": exchange.response_flags,
        "http.protocol": "HTTP/1.1",
        **proxy.custom_tags(),
    }
    if exchange.status.startswith("5"):
        tags["error"] = "true"
    return tags


def downstream_tags(
    proxy: EnvoyProxy, exchange: Exchange, peer_address: str, request_id: uuid.UUID
) -> dict[str, str]:
    """The span the HCM starts: the waypoint's, a gateway's SERVER, a sidecar's in or out."""
    return {
        "node_id": proxy.node_id,
        "zone": proxy.zone,
        "guid:x-request-id": str(request_id),
        "http.url": exchange.url,
        "http.method": "GET",
        "downstream_cluster": "-",
        "user_agent": USER_AGENT,
        "peer.address": peer_address,
        "request_size": "0",  # stream bytesReceived: a GET carries no body
        "response_size": str(exchange.response_bytes),
        **_common(exchange, proxy),
    }


def upstream_tags(proxy: EnvoyProxy, exchange: Exchange) -> dict[str, str]:
    """A gateway's upstream CLIENT child span (`spawn_upstream_span`)."""
    return {"peer.address": exchange.upstream_address, **_common(exchange, proxy)}


def upstream_span_name(cluster: str) -> str:
    return f"router {cluster}; egress"
