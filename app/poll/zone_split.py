"""Which zones a ztunnel series' bytes ran between, and a waypoint call's path through them.

Where a zone comes from, in order:

1. ztunnel's locality labels. istio/ztunnel `src/proxy/metrics.rs` (`LocalityLabels`, added in
   istio/ztunnel#1441, first released in Istio 1.26) prints `source_region`, `source_zone`,
   `destination_region`, `destination_zone` after `connection_security_policy`, filled from the
   workload's `locality` that istiod sends over xDS (the pod's node's
   `topology.kubernetes.io/region` / `zone` labels); empty is printed `unknown`. Older ztunnels
   print none of them. Only the zone is used: crossing a region also crosses a zone.
2. Kubernetes node topology (`WorkloadZones`): the zone of the nodes a workload's pods run on,
   when they all share one (app/poll/pod_directory.py).
3. For the waypoint hop only: the `zone` tag Envoy writes on the waypoint's own spans
   (`TracerImpl::startSpan`), remembered per waypoint workload by node identity
   (app/correlate/span_zones.py) and passed here as `waypoint_span_zone`. It names the
   waypoint's zone, never a caller's or a server's.

A waypoint call is two half-edges (app/poll/half_edges.py). The client leg names the caller's
zone and the waypoint's (`destination_zone` is the waypoint pod's); the server legs of the same
(waypoint, service) name the waypoint's zone (`source_zone`) and each server pod's. No series
says which client's bytes went to which server pod, so a client leg's bytes are split over the
server zones in proportion to the server legs' bytes from its waypoint zone. The split is exact
when those server legs reach one zone, or when this client leg is the only one into that
waypoint zone (then the server legs carry its bytes and no one else's); otherwise the paths are
marked estimated (`ZoneBytes.estimated`). The waypoint re-originates each request, so its server
leg's bytes differ from the client leg's by HTTP framing; the path is counted at the client
leg's bytes, those the caller sent and received.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from app.domain import ZoneBytes

UNKNOWN = "unknown"
LOCALITY_LABELS = ("source_region", "source_zone", "destination_region", "destination_zone")
# (namespace, workload) -> zone or "": the Kubernetes node topology fallback.
WorkloadZones = Callable[[str, str], str]


LABELS_SOURCE = "ztunnel source_zone/destination_zone labels"
NODE_TOPOLOGY_SOURCE = "Kubernetes node topology (pod directory)"
SPANS_SOURCE = "waypoint spans' zone tag (the waypoint hop only)"


def zone_sources(node_topology: bool) -> tuple[str, ...]:
    """The sources above that this process uses, in order: node topology only with the pod
    directory (in either L4 mode, app/poll/pod_directory.py `directory_choice`)."""
    return (LABELS_SOURCE, *((NODE_TOPOLOGY_SOURCE,) if node_topology else ()), SPANS_SOURCE)


def _known(value: str | None) -> str:
    return "" if value is None or value == UNKNOWN else value


def series_zone(labels: Mapping[str, str], side: str, fallback: WorkloadZones | None) -> str:
    """The zone of `side` ("source" | "destination") of one series, "" when unknown."""
    zone = _known(labels.get(f"{side}_zone"))
    if zone or fallback is None:
        return zone
    ns = _known(labels.get(f"{side}_workload_namespace"))
    workload = _known(labels.get(f"{side}_workload"))
    return fallback(ns, workload) if ns and workload else ""


def direct_zones(client_zone: str, server_zone: str, total: int) -> tuple[ZoneBytes, ...]:
    if not total or not (client_zone or server_zone):
        return ()
    return (ZoneBytes(client_zone, "", server_zone, total),)


def apportion(total: int, weights: Mapping[str, int]) -> list[tuple[str, int]]:
    """`total` split over `weights`' keys in proportion, in integers that add up to `total`
    (largest remainder; ties go to the zone name that sorts first)."""
    keys = sorted(k for k, w in weights.items() if w > 0)
    whole = sum(weights[k] for k in keys)
    if not keys or not whole:
        return []
    shares = [(k, total * weights[k] // whole, total * weights[k] % whole) for k in keys]
    left = total - sum(n for _, n, _ in shares)
    order = sorted(range(len(shares)), key=lambda i: (-shares[i][2], shares[i][0]))
    bonus = set(order[:left])
    return [(k, n + (i in bonus)) for i, (k, n, _) in enumerate(shares) if n + (i in bonus)]


class WaypointZones:
    """One (waypoint, service) group's server legs: bytes by (waypoint zone, server zone), and
    how many client legs enter each waypoint zone."""

    def __init__(self) -> None:
        self.server: dict[str, dict[str, int]] = {}  # waypoint zone -> server zone -> bytes
        self.clients: dict[str, int] = {}  # waypoint zone -> client legs into it

    def add_server_leg(self, waypoint_zone: str, server_zone: str, total: int) -> None:
        by_zone = self.server.setdefault(waypoint_zone, {})
        by_zone[server_zone] = by_zone.get(server_zone, 0) + total

    def add_client_leg(self, waypoint_zone: str) -> None:
        self.clients[waypoint_zone] = self.clients.get(waypoint_zone, 0) + 1

    def split(self, client_zone: str, waypoint_zone: str, total: int) -> tuple[ZoneBytes, ...]:
        """A client leg's bytes over the server zones its waypoint zone reached."""
        if not total:
            return ()
        servers = self.server.get(waypoint_zone)
        if servers is None:  # no server leg from that zone: the zones' union
            servers = {}
            for by_zone in self.server.values():
                for zone, n in by_zone.items():
                    servers[zone] = servers.get(zone, 0) + n
        parts = apportion(total, servers) or [("", total)]
        estimated = len(parts) > 1 and self.clients.get(waypoint_zone, 0) > 1
        if not (client_zone or waypoint_zone or any(zone for zone, _ in parts)):
            return ()
        return tuple(ZoneBytes(client_zone, waypoint_zone, s, n, estimated) for s, n in parts)


def waypoint_zone(
    labels: Mapping[str, str], side: str, fallback: WorkloadZones | None, waypoint_span_zone: str
) -> str:
    """The zone of the waypoint `side` of a half-edge: sources 1 and 2, else source 3."""
    return series_zone(labels, side, fallback) or waypoint_span_zone


def group_zones(
    server_legs: Iterable[tuple[Mapping[str, str], int]],
    client_legs: Iterable[Mapping[str, str]],
    fallback: WorkloadZones | None,
    waypoint_span_zone: str = "",
) -> WaypointZones:
    """One (waypoint, service) group's legs; `waypoint_span_zone`: the group's waypoint's zone
    from its spans, used where a leg's labels and node topology name none."""
    out = WaypointZones()
    for labels, total in server_legs:
        out.add_server_leg(
            waypoint_zone(labels, "source", fallback, waypoint_span_zone),
            series_zone(labels, "destination", fallback),
            total,
        )
    for labels in client_legs:
        out.add_client_leg(waypoint_zone(labels, "destination", fallback, waypoint_span_zone))
    return out
