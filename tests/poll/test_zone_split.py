from __future__ import annotations

import pytest

from app.domain import ZoneBytes
from app.poll.zone_split import (
    LABELS_SOURCE,
    NODE_TOPOLOGY_SOURCE,
    SPANS_SOURCE,
    WaypointZones,
    apportion,
    group_zones,
    series_zone,
    waypoint_zone,
    zone_sources,
)


@pytest.mark.parametrize(
    ("total", "weights", "want"),
    [
        (10, {"a": 1}, [("a", 10)]),
        (10, {"a": 1, "b": 1}, [("a", 5), ("b", 5)]),
        (10, {"a": 1, "b": 2}, [("a", 3), ("b", 7)]),  # 3.33 / 6.67: b keeps the remainder
        (1, {"a": 1, "b": 1}, [("a", 1)]),  # a tie goes to the first name
        (10, {}, []),
        (10, {"a": 0}, []),
    ],
)
def test_apportion_adds_up_to_the_total(
    total: int, weights: dict[str, int], want: list[tuple[str, int]]
) -> None:
    assert apportion(total, weights) == want


def test_a_label_zone_wins_over_node_topology_and_unknown_falls_back() -> None:
    labels = {"source_zone": "unknown", "source_workload": "w", "source_workload_namespace": "n"}
    assert series_zone(labels, "source", lambda ns, wl: f"{ns}.{wl}") == "n.w"
    assert series_zone({**labels, "source_zone": "z1"}, "source", lambda ns, wl: "other") == "z1"
    assert series_zone(labels, "source", None) == ""


def test_a_split_is_exact_with_one_server_zone_or_one_client_leg() -> None:
    group = WaypointZones()
    group.add_server_leg("b", "a", 300)
    group.add_server_leg("b", "c", 100)
    group.add_client_leg("b")
    assert group.split("a", "b", 40) == (ZoneBytes("a", "b", "a", 30), ZoneBytes("a", "b", "c", 10))
    group.add_client_leg("b")  # a second caller into zone b: whose bytes went where is unknown
    assert group.split("a", "b", 40) == (
        ZoneBytes("a", "b", "a", 30, True),
        ZoneBytes("a", "b", "c", 10, True),
    )
    single = WaypointZones()
    single.add_server_leg("b", "c", 5)
    single.add_client_leg("b")
    single.add_client_leg("b")
    assert single.split("a", "b", 8) == (ZoneBytes("a", "b", "c", 8),)


def test_a_waypoint_span_zone_names_only_the_waypoint_end_and_only_as_a_last_resort() -> None:
    labels = {
        "source_zone": "unknown",
        "source_workload": "waypoint",
        "source_workload_namespace": "n",
        "destination_zone": "unknown",
        "destination_workload": "reviews-v1",
        "destination_workload_namespace": "n",
    }
    assert waypoint_zone(labels, "source", None, "from-span") == "from-span"
    assert waypoint_zone(labels, "source", lambda ns, wl: "node", "from-span") == "node"
    assert waypoint_zone({**labels, "source_zone": "z1"}, "source", None, "from-span") == "z1"
    group = group_zones([(labels, 10)], [], None, "from-span")
    assert group.server == {"from-span": {"": 10}}  # the server's zone is not the span's


def test_zone_sources_name_node_topology_only_with_the_pod_directory() -> None:
    assert zone_sources(node_topology=False) == (LABELS_SOURCE, SPANS_SOURCE)
    assert zone_sources(node_topology=True) == (LABELS_SOURCE, NODE_TOPOLOGY_SOURCE, SPANS_SOURCE)
