from __future__ import annotations

import pytest

from app.edge.zones import ZonePath, zone_key, zone_stats


@pytest.mark.parametrize(
    ("client", "waypoint", "server", "via", "crossings", "detour"),
    [
        ("a", "", "a", False, 0, 0),
        ("a", "", "b", False, 1, 0),
        ("a", "a", "a", True, 0, 0),
        ("a", "b", "a", True, 2, 2),  # the waypoint elsewhere: there and back
        ("a", "a", "b", True, 1, 0),  # the waypoint beside the caller: crossing anyway
        ("a", "b", "b", True, 1, 0),  # beside the server
        ("a", "b", "c", True, 2, 1),  # a third zone: one crossing more than direct
        ("", "b", "a", True, 1, 0),  # unknown caller: the known hop counts, no detour
        ("a", "", "b", True, 0, 0),  # waypoint zone unknown: nothing known to cross
    ],
)
def test_a_path_crosses_its_known_hops_and_a_detour_needs_every_zone(
    client: str, waypoint: str, server: str, via: bool, crossings: int, detour: int
) -> None:
    path = ZonePath(client, waypoint, server, via, bytes=100)
    assert (path.crossings, path.cross_zone_bytes, path.detour_bytes) == (
        crossings,
        100 * crossings,
        100 * detour,
    )


def test_zone_stats_read_the_chosen_sides_and_count_estimates() -> None:
    stored = {
        zone_key("destination", "a", "", "b", via=False, estimated=False): 300,
        zone_key("source", "a", "", "b", via=False, estimated=False): 300,  # the other reporter
        zone_key("sole", "a", "c", "a", via=True, estimated=True): 50,
        zone_key("sole", "a", "c", "a", via=True, estimated=False): 50,
        zone_key("sole", "", "", "b", via=True, estimated=False): 7,  # waypoint zone unknown
    }
    stats = zone_stats(stored, ("destination", "sole"))
    assert stats is not None
    assert [
        (p.client_zone, p.waypoint_zone, p.server_zone, p.via, p.bytes) for p in stats.paths
    ] == [
        ("", "", "b", True, 7),
        ("a", "", "b", False, 300),
        ("a", "c", "a", True, 100),
    ]
    assert stats.bytes == 407 and stats.unknown_bytes == 7 and stats.estimated_bytes == 50
    assert stats.cross_zone_bytes == 300 + 200
    assert stats.detour_bytes == 200
    assert stats.cross_zone_share == 1.0
    assert zone_stats(stored, ("nobody",)) is None
