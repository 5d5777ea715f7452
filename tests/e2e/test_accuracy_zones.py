"""Zones end to end: a zoned simulated mesh (pods and waypoints placed in zones, ztunnel printing
its locality labels) drives a real meshstitch; every edge's bytes by zone path, cross-zone bytes
and waypoint detour bytes must equal the simulator's truth, which it records call by call from
where each call's pods ran (app/sim/runner.py `_record_zones`), not from the series."""

from __future__ import annotations

from typing import Any

import httpx

from app.settings import Settings
from app.sim import Truth, generate_mesh
from app.sim.zoned import zoned, zoned_bookinfo
from tests.e2e.test_accuracy import assert_perfect, run_mesh


def _served_paths(zones: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in zones["paths"]:
        key = "|".join(p[k] or "" for k in ("client_zone", "waypoint_zone", "server_zone"))
        out[key] = out.get(key, 0) + p["bytes"]
    return out


def _first_hops(paths: dict[str, int]) -> dict[str, int]:
    """Bytes by (client zone, waypoint zone): the client leg's, exact whatever the split."""
    out: dict[str, int] = {}
    for key, n in paths.items():
        client, waypoint, _ = key.split("|")
        out[f"{client}|{waypoint}"] = out.get(f"{client}|{waypoint}", 0) + n
    return out


def zone_problems(truth: Truth, served: list[dict[str, Any]], *, exact: bool) -> list[str]:
    """With `exact`, every edge's paths must be exact; otherwise an edge whose split was
    estimated must still have the exact bytes, first hops and, summed per waypoint group
    (caller-independent), ... see the callers."""
    got = {(e["source"], e["target"]): e for e in served}
    problems = []
    for t in truth.visible_edges():
        if not t.zone_bytes:
            continue
        e = got.get((t.source, t.target))
        zones = (e or {}).get("zones")
        if zones is None:
            problems.append(f"{t.source}->{t.target}: no zones (truth {t.zone_bytes})")
            continue
        paths = _served_paths(zones)
        if zones["bytes"] != sum(t.zone_bytes.values()):
            problems.append(f"{t.source}->{t.target}: bytes {zones['bytes']} != truth")
        if zones["estimated_bytes"] and not exact:
            if _first_hops(paths) != _first_hops(t.zone_bytes):
                problems.append(f"{t.source}->{t.target}: first hops {paths} != {t.zone_bytes}")
            continue
        if zones["estimated_bytes"]:
            problems.append(f"{t.source}->{t.target}: estimated {zones['estimated_bytes']}")
        if paths != t.zone_bytes:
            problems.append(f"{t.source}->{t.target}: paths {paths} != {t.zone_bytes}")
        want = (t.cross_zone_bytes, t.detour_bytes)
        if (zones["cross_zone_bytes"], zones["detour_bytes"]) != want:
            problems.append(
                f"{t.source}->{t.target}: cross/detour "
                f"{zones['cross_zone_bytes']}/{zones['detour_bytes']} != {want}"
            )
    return problems


def test_zoned_bookinfo_cross_zone_and_detour_bytes_equal_truth(settings: Settings) -> None:
    for result in run_mesh(settings, zoned_bookinfo(), seed=5, ticks=2, protocol="grpc"):
        assert_perfect("zoned bookinfo", result.truth, result.edges)
        assert zone_problems(result.truth, result.edges, exact=True) == []
        reviews = result.truth.edge("bookinfo/productpage", "bookinfo/reviews")
        # the waypoint (zone-a) between productpage (zone-b) and reviews v1/v2/v3 (a/b/c)
        assert set(reviews.zone_bytes) == {
            "zone-b|zone-a|zone-a",
            "zone-b|zone-a|zone-b",
            "zone-b|zone-a|zone-c",
        }
        assert reviews.detour_bytes > 0
        direct = result.truth.edge("bookinfo/productpage", "bookinfo/details")
        assert direct.cross_zone_bytes == sum(direct.zone_bytes.values()) > 0
        assert direct.detour_bytes == 0
        # /cost over the same window: the truth's sums, priced by hand at the defaults
        cost = httpx.get(f"{result.base_url}/cost", params=result.params, timeout=30).json()
        cross = sum(e.cross_zone_bytes for e in result.truth.edges.values())
        detour = sum(e.detour_bytes for e in result.truth.edges.values())
        assert cost["cross_zone"]["cross_zone_bytes"] == cross
        assert cost["cross_zone"]["detour_bytes"] == detour > 0
        assert cost["cross_zone"]["cross_zone_usd"] == round(cross / 1e9 * (0.01 + 0.01), 6)
        (waypoint,) = cost["cross_zone"]["by_waypoint"]
        assert (waypoint["waypoint"], waypoint["zones"]) == ("bookinfo/waypoint", ["zone-a"])
        assert waypoint["detour_bytes"] == detour
        triage = httpx.get(
            f"{result.base_url}/triage",
            params={**result.params, "service": "bookinfo/reviews"},
            timeout=30,
        ).json()
        found = {f["edge"]: f for f in triage["findings"] if f["kind"] == "waypoint_detour"}
        assert found["bookinfo/productpage->bookinfo/reviews"]["evidence"]["detour_bytes"] == (
            reviews.detour_bytes
        )


def test_zoned_random_mesh_bytes_by_zone_equal_truth(settings: Settings) -> None:
    """Callers in several zones behind one waypoint: where the server zone of a caller's bytes
    cannot be told from the series, the edge says so (`estimated_bytes`) and its first hops are
    still exact; every other edge is exact."""
    topology = zoned(generate_mesh(40, seed=23))
    for result in run_mesh(settings, topology, seed=23, ticks=2, protocol="http"):
        assert_perfect("zoned random-40", result.truth, result.edges)
        assert zone_problems(result.truth, result.edges, exact=False) == []
        exact_edges = [
            e for e in result.edges if e.get("zones") and not e["zones"]["estimated_bytes"]
        ]
        detoured = [e for e in exact_edges if e["zones"]["detour_bytes"]]
        assert exact_edges and detoured


def test_waypoint_zone_from_its_spans_gives_exact_detour_bytes(settings: Settings) -> None:
    """ztunnel names no zone for the waypoint's end and no node topology is served: only the
    waypoint's spans (Envoy's `zone` tag) place it, and the detours still equal the truth."""
    topology = zoned_bookinfo(waypoint_zone_from_spans=True)
    for result in run_mesh(settings, topology, seed=5, ticks=2, protocol="http"):
        assert_perfect("zoned bookinfo, waypoint zone from spans", result.truth, result.edges)
        assert zone_problems(result.truth, result.edges, exact=True) == []
        reviews = result.truth.edge("bookinfo/productpage", "bookinfo/reviews")
        assert reviews.detour_bytes > 0
        served = {(e["source"], e["target"]): e for e in result.edges}
        zones = served[("bookinfo/productpage", "bookinfo/reviews")]["zones"]
        assert {p["waypoint_zone"] for p in zones["paths"]} == {"zone-a"}
        assert (zones["detour_bytes"], zones["unknown_bytes"]) == (reviews.detour_bytes, 0)
