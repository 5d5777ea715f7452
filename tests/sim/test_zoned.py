from __future__ import annotations

from app.poll.exposition import ExpositionParser
from app.sim import MeshSimulator, bookinfo
from app.sim.zoned import zoned_bookinfo
from app.sim.ztunnel_series import LABEL_NAMES, LOCALITY_NAMES


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
