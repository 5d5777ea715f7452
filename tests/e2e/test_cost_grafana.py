"""The Grafana cost targets on a zoned simulated mesh served by a real meshstitch: the frames
carry the same figures as /cost and /advisor over the same window."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.settings import Settings
from app.sim.zoned import zoned_bookinfo
from tests.e2e.test_accuracy import run_mesh


def _query(base_url: str, params: dict[str, str], name: str) -> dict[str, Any]:
    body = {
        "range": {"from": params["from"], "to": params["to"]},
        "targets": [{"refId": "C", "target": name, "payload": {}}],
    }
    response = httpx.post(f"{base_url}/grafana/query", json=body, timeout=30)
    assert response.status_code == 200, response.text
    (frame,) = response.json()
    assert frame["name"] == name and frame["refId"] == "C"
    if name != "edges":
        assert frame["meta"]["notices"][0]["text"].startswith("estimates")
    return {f["name"]: f["values"] for f in frame["fields"]}


def test_cost_frames_match_the_cost_and_advisor_routes(settings: Settings) -> None:
    for result in run_mesh(settings, zoned_bookinfo(), seed=9, ticks=2, protocol="http"):
        url, params = result.base_url, result.params
        # Grafana sends ISO times; the window routes take epoch milliseconds
        iso = {
            k: httpx.get(f"{url}/cost", params=params).json()["window"][k] for k in ("from", "to")
        }
        cost = httpx.get(f"{url}/cost", params=params).json()
        cols = _query(url, iso, "cost")
        pairs = zip(cols["cpu_millicores"], cols["usd"], strict=True)
        rows = dict(zip(cols["item"], pairs, strict=True))
        sidecars = cost["proxies"]["sidecars"]["cpu_millicores"]
        assert rows["sidecars"][0] == sidecars > 0
        assert rows["ambient: total"][0] == cost["proxies"]["ambient"]["cpu_millicores"]
        assert rows["cross-zone traffic"][1] == cost["cross_zone"]["cross_zone_usd"] > 0
        assert rows["waypoint detours"][1] == cost["cross_zone"]["detour_usd"] > 0
        ztunnel = json.loads(cols["inputs"][cols["item"].index("ambient: ztunnel")])
        # the harness polls with a poller of its own, so the app scrapes no ztunnel: null in
        # both, and both say why
        served = cost["proxies"]["ambient"]["ztunnel"]
        assert ztunnel["nodes"] is served["nodes"] is None
        assert ztunnel["nodes_counted_from"] == served["nodes_counted_from"]
        assert served["nodes_counted_from"].startswith("no L4 input configured")
        edges = _query(url, iso, "edges")
        by_edge = dict(zip(edges["edge"], edges["detour_bytes"], strict=True))
        truth = result.truth.edge("bookinfo/productpage", "bookinfo/reviews")
        assert by_edge["bookinfo/productpage->bookinfo/reviews"] == truth.detour_bytes > 0

        advisor = httpx.get(f"{url}/advisor", params=params).json()
        cols = _query(url, iso, "waypoint_advisor")
        assert cols["service"] == [c["service"] for c in advisor["candidates"]]
        assert "bookinfo/details" in cols["service"]  # the blind spot
        cols = _query(url, iso, "waypoint_detours")
        assert cols["waypoint"] == ["bookinfo/waypoint"]
        assert cols["detour_bytes"] == [advisor["waypoints"][0]["detour_bytes"]]
        assert cols["replica_zones"] == ["zone-b"]  # only productpage (zone-b) detours
