"""Zoned meshes: the same topologies with their nodes placed in availability zones.

`zoned(topology, zones)` puts node i in `zones[i % len(zones)]`; a waypoint then often runs in a
zone other than its callers' or its servers', which is the case the cost figures are about.
`zoned_bookinfo()` is bookinfo on three nodes in three zones; with its round-robin placement
(app/sim/placement.py) the waypoint is in zone-a, productpage in zone-b, details in zone-c,
reviews v1/v2/v3 in a/b/c, ratings in a and mongodb in b, so productpage → reviews through the
waypoint takes the paths b→a→a (no detour), b→a→b (two crossings that a direct call would not
make) and b→a→c (one crossing more than the direct b→c).

`waypoint_zone_from_spans=True` hides the waypoints' zones from everything but their own spans:
ztunnel prints `unknown` for a half-edge's waypoint end (as when no locality reaches ztunnel for
the waypoint, or ztunnel predates the locality labels, and node topology does not name it either:
the simulated run serves no Kubernetes API), while each waypoint span carries Envoy's `zone` tag,
its node's zone (app/sim/envoy_spans.py). Callers' and servers' zones still come from ztunnel's
labels, so a detour can only come out right if the waypoint's zone is taken from its spans.

`locality_labels=False` is a ztunnel older than Istio 1.26: no series carries a zone, and the
zones exist only on the nodes of the Kubernetes API (app/sim/kubernetes.py).
"""

from __future__ import annotations

from dataclasses import replace

from app.sim.bookinfo import bookinfo
from app.sim.topology import Topology

ZONES = ("zone-a", "zone-b", "zone-c")


def zoned(
    topology: Topology,
    zones: tuple[str, ...] = ZONES,
    *,
    waypoint_zone_from_spans: bool = False,
    locality_labels: bool = True,
) -> Topology:
    nodes = topology.nodes
    return replace(
        topology,
        node_zones=tuple((n, zones[i % len(zones)]) for i, n in enumerate(nodes)),
        waypoint_zone_labels=not waypoint_zone_from_spans,
        ztunnel_locality_labels=locality_labels,
    )


def zoned_bookinfo(
    *, waypoint_zone_from_spans: bool = False, locality_labels: bool = True
) -> Topology:
    return zoned(
        bookinfo(nodes=3),
        waypoint_zone_from_spans=waypoint_zone_from_spans,
        locality_labels=locality_labels,
    )
