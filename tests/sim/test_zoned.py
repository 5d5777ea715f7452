from __future__ import annotations

from app.poll.exposition import ExpositionParser
from app.sim import MeshSimulator, bookinfo
from app.sim.zoned import zoned_bookinfo
from app.sim.ztunnel_series import LABEL_NAMES, LOCALITY_NAMES
from tests.sim.otlp_receiver import HttpReceiver


def _label_names(sim: MeshSimulator) -> set[tuple[str, ...]]:
    names = set()
    for node in sim.nodes.values():
        for sample in ExpositionParser().parse(node.exposition()):
            if "reporter" in sample.labels:  # the traffic families, not build info
                names.add(tuple(sample.labels))
    return names


def test_a_zoned_mesh_prints_ztunnel_locality_labels_after_the_policy() -> None:
    sim = MeshSimulator(zoned_bookinfo(), seed=1)
    sim.tick(0.0, 60.0)
    assert _label_names(sim) == {(*LABEL_NAMES, *LOCALITY_NAMES)}
    series = [
        s.labels for n in sim.nodes.values() for s in ExpositionParser().parse(n.exposition())
    ]
    client_legs = [
        s
        for s in series
        if s.get("reporter") == "source"
        and s["destination_workload"] == "waypoint"
        and s["source_workload"] == "productpage-v1"
    ]
    assert client_legs and all(
        (s["source_zone"], s["destination_zone"], s["destination_region"])
        == ("zone-b", "zone-a", "sim-region-1")
        for s in client_legs
    )
    truth = sim.truth.edge("bookinfo/productpage", "bookinfo/reviews")
    assert sum(truth.zone_bytes.values()) == truth.bytes_sent + truth.bytes_received


def test_an_unzoned_mesh_prints_no_locality_labels() -> None:
    sim = MeshSimulator(bookinfo(), seed=1)
    sim.tick(0.0, 60.0)
    assert _label_names(sim) == {LABEL_NAMES}
    assert all(not e.zone_bytes for e in sim.truth.edges.values())


def test_waypoint_zones_from_spans_hide_the_waypoint_end_from_ztunnel_only() -> None:
    receiver = HttpReceiver()
    sim = MeshSimulator(
        zoned_bookinfo(waypoint_zone_from_spans=True),
        seed=1,
        otlp_endpoint=receiver.endpoint,
        protocol="http",
    )
    try:
        sim.tick(0.0, 60.0)
        series = [
            s.labels for n in sim.nodes.values() for s in ExpositionParser().parse(n.exposition())
        ]
        received = list(receiver.service.spans())
    finally:
        sim.stop()
        receiver.close()
    zones = {
        (s["reporter"], s["source_workload"], s["destination_workload"]): (
            s["source_zone"],
            s["destination_zone"],
        )
        for s in series
        if "reporter" in s
    }
    # the waypoint's end says nothing; the caller's and the servers' still do
    assert zones[("source", "productpage-v1", "waypoint")] == ("zone-b", "unknown")
    assert zones[("destination", "waypoint", "reviews-v3")] == ("unknown", "zone-c")
    assert zones[("source", "productpage-v1", "details-v1")] == ("zone-b", "zone-c")
    waypoint_zones = {
        kv.value.string_value
        for _, span in received
        for kv in span.attributes
        if kv.key == "zone"
        and any(a.value.string_value.startswith("waypoint~") for a in span.attributes)
    }
    assert waypoint_zones == {"zone-a"}  # Envoy's `zone` tag: the waypoint's node's zone
