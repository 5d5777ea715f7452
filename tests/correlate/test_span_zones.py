"""A waypoint's zone from its own spans' `zone` tag: one zone per waypoint workload while its
remembered pods agree, learned by the span normalizer, bounded."""

from __future__ import annotations

from app.correlate.identity import NodeIdentity
from app.correlate.normalize import SpanNormalizer
from app.correlate.span_zones import WaypointSpanZones
from tests.correlate.spans import waypoint_span

POD_A = "waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.default~default.svc.cluster.local"
POD_B = "waypoint~10.42.1.7~waypoint-6b9f7c7d9-fghij.default~default.svc.cluster.local"


def test_a_waypoint_has_a_zone_while_its_pods_agree() -> None:
    zones = WaypointSpanZones()
    zones.learn("default", "waypoint", "waypoint-1", "zone-a")
    zones.learn("default", "waypoint", "waypoint-2", "zone-a")
    zones.learn("default", "waypoint", "waypoint-3", "")  # no locality: says nothing
    assert zones.zone_of("default", "waypoint") == "zone-a"
    assert zones.zone_of("other", "waypoint") == ""
    zones.learn("default", "waypoint", "waypoint-4", "zone-b")  # replicas in two zones: none
    assert zones.zone_of("default", "waypoint") == ""


def test_the_maps_are_bounded_and_forget_the_oldest() -> None:
    zones = WaypointSpanZones(max_waypoints=2, max_pods=2)
    zones.learn("ns", "w", "old", "zone-a")
    zones.learn("ns", "w", "new-1", "zone-b")
    assert zones.zone_of("ns", "w") == ""
    zones.learn("ns", "w", "new-2", "zone-b")  # the rescheduled waypoint's old pod is forgotten
    assert zones.zone_of("ns", "w") == "zone-b"
    zones.learn("ns", "x", "x-1", "zone-c")
    zones.learn("ns", "y", "y-1", "zone-a")  # a third waypoint: the first learned goes
    assert len(zones) == 2
    assert (zones.zone_of("ns", "w"), zones.zone_of("ns", "y")) == ("", "zone-a")


def test_the_normalizer_learns_a_waypoint_zone_from_its_spans_only() -> None:
    identity = NodeIdentity()
    norm = SpanNormalizer(identity=identity)
    norm.waypoint(waypoint_span(1, attrs={"zone": "zone-a"}), None)
    assert identity.waypoint_span_zone("default", "waypoint") == "zone-a"
    # a sidecar's zone tag is its pod's, not a waypoint's
    sidecar = "sidecar~10.42.0.15~productpage-v1-7c6f5d8b9-xk2lp.default~default.svc.cluster.local"
    norm.waypoint(waypoint_span(2, attrs={"node_id": sidecar, "zone": "zone-c"}), None)
    assert identity.waypoint_span_zone("default", "productpage-v1") == ""
    # a second replica of the same waypoint in another zone: the workload has no single zone
    norm.waypoint(waypoint_span(3, attrs={"node_id": POD_B, "zone": "zone-b"}), None)
    assert identity.waypoint_span_zone("default", "waypoint") == ""
