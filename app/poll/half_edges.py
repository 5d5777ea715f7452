"""One poll's ztunnel series → `L4Sample`s: one logical edge per call, waypoints from evidence.

A call through a waypoint is two half-edges (tests/data/ztunnel/README.md, istio/ztunnel
`src/proxy/outbound.rs`, `inbound.rs`): the **client leg** (reporter=source, printed by the
caller's ztunnel: destination_workload = the waypoint, destination_service = the real service)
and the **server leg** (reporter=destination, printed by the server's ztunnel: source_workload =
the waypoint). There is no client → server series. Rules, per poll (all targets together, so the
two legs of one call meet even when different ztunnels print them):

* **Which workloads are waypoints** comes from evidence, never from a name: identity already
  knows them (Envoy `node_id` `waypoint~…` of their spans, the waypoint pods' Gateway labels,
  the `waypoint_workloads` setting), or the L4 shape shows one: W is the destination workload of
  a client leg for service S *and* the source of a server leg for S to another workload, and W's
  canonical service is not the one S's pods have (a pod of S calling S again keeps its name).
* **Service-addressed legs**, grouped by (waypoint, service): the client legs count (they name
  the caller). A server leg counts only when no ztunnel printed a client leg for its group in the
  poll: the caller opened HBONE to the waypoint itself (an ingress gateway, a sidecar) or is
  outside the mesh. It becomes traffic into the destination via the waypoint from an unknown
  caller `unknown/caller-of-<svc>.<ns>`, which read-time attribution names from the waypoint's
  spans (app/graph/attribution.py).
* **Pod-IP legs** (`destination_service="unknown"`, a workload waypoint): the client legs are
  joined through the waypoint's server legs to the destination workload when those name exactly
  one; with several destinations the server legs count instead (from an unknown caller), as they
  do when no client leg was printed. A client leg whose waypoint printed no server leg names no
  destination and is not an edge.
* Direct legs: both reporters are kept, tagged; readers count one (app/edge/stats.choose_l4).
  Every other counted leg is the only report of its traffic (`L4Sample.sole`): readers add it to
  the chosen reporter's view, so source-only traffic is never dropped because the destination
  reporter saw other traffic on the same edge.
* Failed connections: ztunnel puts the failure flag (DENY, CONNECT, TLS_FAILURE, …) on the
  closed counter's series (the opened counter always says "-"; istio/ztunnel
  `src/proxy/metrics.rs` `record_internal`), so a failed connection is one opened "-" plus one
  closed with the flag, under each reporter that saw it. `istio_tcp_connections_failed_total`
  (newer ztunnel) is incremented at the same place with the same labels, so it is not read:
  counting it too would count each failure twice.
* `reporter="waypoint"` and other reporters are not ztunnel's view: ignored.

Every series also teaches identity its names (ztunnel_labels.aliases_of).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.domain import Endpoint, IdentityEvidence, L4Sample, NodeKind, Reporter, ZoneBytes
from app.poll.zone_split import (
    WaypointZones,
    WorkloadZones,
    direct_zones,
    group_zones,
    series_zone,
    waypoint_zone,
)
from app.poll.ztunnel_labels import (
    UNKNOWN,
    Counts,
    aliases_of,
    parse_principal,
    source_endpoint,
    target_endpoint,
    unknown_caller_of,
)

# (labels, increases, interval start): one series' change since its previous poll.
SeriesIncrease = tuple[Mapping[str, str], Counts, float]
_REPORTERS = {"source": Reporter.SOURCE, "destination": Reporter.DESTINATION}


def _known(labels: Mapping[str, str], name: str) -> str:
    value = labels.get(name, "")
    return "" if value == UNKNOWN else value


@dataclass(slots=True)
class _Leg:
    labels: Mapping[str, str]
    counts: Counts
    start_s: float
    reporter: Reporter
    service: str  # destination_service host, "" when unknown (a pod IP was dialled)


def _waypoint_of(identity: IdentityEvidence, labels: Mapping[str, str], side: str) -> str:
    """`<ns>/<workload>` when this side of the series is a known waypoint, else ""."""
    ns = _known(labels, f"{side}_workload_namespace")
    workload = _known(labels, f"{side}_workload")
    if identity.is_waypoint(ns, workload):
        return f"{ns}/{workload}"
    sa_ns, sa = parse_principal(_known(labels, f"{side}_principal"))
    if sa and identity.is_waypoint(sa_ns, sa):
        return f"{sa_ns}/{sa}"
    return ""


def learn_waypoints_by_shape(legs: Iterable[_Leg], identity: IdentityEvidence) -> None:
    """Mark W a waypoint when the two half-edges of one service meet in it (module docstring)."""
    client: dict[tuple[str, str, str], set[str]] = {}  # (ns, W, service) -> W's canonical
    server: dict[tuple[str, str, str], set[str]] = {}  # (ns, W, service) -> callees' canonical
    for leg in legs:
        if not leg.service:
            continue
        labels = leg.labels
        if leg.reporter is Reporter.SOURCE:
            ns, wl = (
                _known(labels, "destination_workload_namespace"),
                _known(labels, "destination_workload"),
            )
            if ns and wl:
                client.setdefault((ns, wl, leg.service), set()).add(
                    _known(labels, "destination_canonical_service")
                )
        else:
            ns, wl = _known(labels, "source_workload_namespace"), _known(labels, "source_workload")
            callee = _known(labels, "destination_workload")
            if ns and wl and callee and callee != wl:
                server.setdefault((ns, wl, leg.service), set()).add(
                    _known(labels, "destination_canonical_service")
                )
    for key, own in client.items():
        callees = server.get(key)
        if callees and not (own & callees):
            identity.learn_waypoint(key[0], key[1])


def _sample(
    leg: _Leg,
    source: Endpoint,
    target: Endpoint,
    end_s: float,
    via: str,
    sole: bool = True,
    zones: tuple[ZoneBytes, ...] = (),
) -> L4Sample:
    counts, labels = leg.counts, leg.labels
    return L4Sample(
        source=source,
        target=target,
        reporter=leg.reporter,
        start_s=leg.start_s,
        end_s=end_s,
        connections_opened=counts.opened,
        connections_closed=counts.closed,
        bytes_sent=counts.request_bytes,
        bytes_received=counts.response_bytes,
        mutual_tls=labels.get("connection_security_policy") == "mutual_tls",
        response_flags=labels.get("response_flags", "-") or "-",
        via_waypoint=via,
        sole=sole,
        zones=zones,
    )


def _total(leg: _Leg) -> int:
    return leg.counts.request_bytes + leg.counts.response_bytes


def _span_zone(identity: IdentityEvidence, via: str) -> str:
    """The waypoint `<ns>/<workload>`'s zone as its own spans state it (zone_split source 3)."""
    namespace, _, workload = via.partition("/")
    return identity.waypoint_span_zone(namespace, workload)


def _group_zones(
    servers: list[tuple[_Leg, str]],
    clients: list[tuple[_Leg, str]],
    zones: WorkloadZones | None,
    span_zone: str,
) -> WaypointZones:
    return group_zones(
        ((leg.labels, _total(leg)) for leg, _ in servers),
        (leg.labels for leg, _ in clients),
        zones,
        span_zone,
    )


def _via_zones(
    leg: _Leg, group: WaypointZones, zones: WorkloadZones | None, span_zone: str
) -> tuple[ZoneBytes, ...]:
    """A client leg's zone paths: caller zone → waypoint zone → the server zones."""
    client = series_zone(leg.labels, "source", zones)
    waypoint = waypoint_zone(leg.labels, "destination", zones, span_zone)
    return group.split(client, waypoint, _total(leg))


def to_samples(
    series: Iterable[SeriesIncrease],
    end_s: float,
    identity: IdentityEvidence,
    zones: WorkloadZones | None = None,
) -> list[L4Sample]:
    """One poll's increases (every target's) as samples; see the module docstring. `zones`
    names a workload's zone where ztunnel's labels do not (app/poll/zone_split.py)."""
    legs = []
    for labels, counts, start_s in series:
        reporter = _REPORTERS.get(labels.get("reporter", ""))
        if reporter is not None and counts:
            legs.append(
                _Leg(labels, counts, start_s, reporter, _known(labels, "destination_service"))
            )
    learn_waypoints_by_shape(legs, identity)
    out: list[L4Sample] = []
    clients: dict[tuple[str, str], list[tuple[_Leg, str]]] = {}  # (waypoint, service) -> legs
    servers: dict[tuple[str, str], list[tuple[_Leg, str]]] = {}
    for leg in legs:
        labels = leg.labels
        src_wp = _waypoint_of(identity, labels, "source")
        dst_wp = "" if src_wp else _waypoint_of(identity, labels, "destination")
        if not src_wp:
            for alias in aliases_of(labels, destination=False):
                identity.learn(alias)
        if not dst_wp:
            for alias in aliases_of(labels, destination=True):
                identity.learn(alias)
        if src_wp:
            servers.setdefault((src_wp, leg.service), []).append((leg, src_wp))
        elif dst_wp:
            clients.setdefault((dst_wp, leg.service), []).append((leg, dst_wp))
        else:
            out.extend(_direct(leg, end_s, zones))
    for key, group in clients.items():
        if key[1]:
            span_zone = _span_zone(identity, key[0])
            split = _group_zones(servers.get(key, []), group, zones, span_zone)
            for leg, via in group:
                sample = _client_leg(leg, end_s, via, _via_zones(leg, split, zones, span_zone))
                if sample is not None:
                    out.append(sample)
    for key, group in servers.items():
        service = key[1]
        if service and key in clients:
            continue  # the client legs counted these calls
        span_zone = _span_zone(identity, key[0])
        if not service:
            dests = {target_endpoint(leg.labels, via_waypoint=False) for leg, _ in group}
            callers = clients.get(key, [])
            if len(dests) == 1 and callers:
                (dest,) = dests
                split = _group_zones(group, callers, zones, span_zone)
                out.extend(
                    _sample(
                        leg,
                        source_endpoint(leg.labels, dest),
                        dest,
                        end_s,
                        via,
                        zones=_via_zones(leg, split, zones, span_zone),
                    )
                    for leg, via in callers
                )
                continue
        for leg, via in group:
            target = target_endpoint(leg.labels, via_waypoint=False)
            # The caller is unknown, so is its zone: only the waypoint → server hop is known.
            path = group_zones([(leg.labels, _total(leg))], [], zones, span_zone).split(
                "", waypoint_zone(leg.labels, "source", zones, span_zone), _total(leg)
            )
            out.append(_sample(leg, unknown_caller_of(target), target, end_s, via, zones=path))
    return out


def _direct(leg: _Leg, end_s: float, zones: WorkloadZones | None) -> list[L4Sample]:
    target = target_endpoint(leg.labels, via_waypoint=False)
    if target.kind is NodeKind.UNKNOWN and target.service == "unknown-destination":
        src = source_endpoint(leg.labels, target)
        target = Endpoint(
            "external", f"unknown-from-{src.namespace}.{src.service}", "", NodeKind.UNKNOWN
        )
    path = direct_zones(
        series_zone(leg.labels, "source", zones),
        series_zone(leg.labels, "destination", zones),
        _total(leg),
    )
    source = source_endpoint(leg.labels, target)
    return [_sample(leg, source, target, end_s, "", sole=False, zones=path)]


def _client_leg(leg: _Leg, end_s: float, via: str, zones: tuple[ZoneBytes, ...]) -> L4Sample | None:
    target = target_endpoint(leg.labels, via_waypoint=True)
    if target.node_id() == via:
        return None  # addressed to the waypoint's own Service: no intended service, no edge
    return _sample(leg, source_endpoint(leg.labels, target), target, end_s, via, zones=zones)
