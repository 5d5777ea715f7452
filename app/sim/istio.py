"""What changes on the wire between Istio releases, as read from istio/istio's release tags.

| release | waypoint resource `service.name` | `istio.source_*` / `istio.destination_*` tags | gateway upstream CLIENT span |
|---|---|---|---|
| 1.27 | `<waypoint sa>.<ns>` | no | no (`PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY` defaults to false) |
| 1.28 | the destination Service FQDN | no | yes (the default became true) |
| 1.29 | the destination Service FQDN | yes | yes |
| 1.30 | `<waypoint sa>.<ns>` | yes | yes |

Sources (`git show <tag>:<path>` in istio/istio):

* `pilot/pkg/networking/core/tracing.go`, `configureFromProviderConfig`: 1.27.0 sets
  `serviceCluster = proxy.XdsNode.Cluster`; 1.28.0 … 1.29.6 set `serviceCluster =
  svc.Hostname.String()` when the HCM serves a Service (a waypoint's per-Service chain, istio#57024)
  and fall back to `XdsNode.Cluster` otherwise (a waypoint's direct-to-pod chain, sidecars,
  gateways); 1.30.0 is back to `XdsNode.Cluster` ("Span service name must identify the producer
  of the span (the proxy), not the destination"). The waypoint's `XdsNode.Cluster` is its
  `--serviceCluster {{.ServiceAccount}}.$(POD_NAMESPACE)` argument
  (`manifests/charts/istio-control/istio-discovery/files/waypoint.yaml`).
* Same file, `buildWaypointSourceTags` (first in 1.29.0, istio#58348 / #58818): on
  `node.Type == model.Waypoint` only, `istio.destination_{workload,namespace,cluster_id,
  canonical_service,canonical_revision,app,app_version,workload_type,instance_name}` from
  `%FILTER_STATE(upstream_peer_obj:FIELD:…)%` and the same `istio.source_*` keys from
  `downstream_peer_obj`.
* Same file: `startChildSpan = features.SpawnUpstreamSpanForGateway` for `model.Router` proxies
  (1.27 to 1.30; `HEAD` makes it unconditional); `pilot/pkg/features/telemetry.go` registers
  `PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY` with default `false` in 1.27.0 and `true` from 1.28.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

IstioVersion = Literal["1.27", "1.28", "1.29", "1.30"]
ISTIO_VERSIONS: tuple[IstioVersion, ...] = ("1.27", "1.28", "1.29", "1.30")


@dataclass(frozen=True, slots=True)
class IstioWire:
    """The release-dependent choices a span builder makes."""

    version: IstioVersion

    @property
    def waypoint_service_name_is_destination(self) -> bool:
        """Resource `service.name` of a waypoint's per-Service chain is the Service FQDN."""
        return self.version in {"1.28", "1.29"}

    @property
    def waypoint_peer_tags(self) -> bool:
        """Waypoint spans carry `istio.source_*` and `istio.destination_*`."""
        return self.version in {"1.29", "1.30"}

    @property
    def gateway_upstream_span(self) -> bool:
        """A gateway writes a CLIENT child span per upstream request (`spawn_upstream_span`)."""
        return self.version != "1.27"
