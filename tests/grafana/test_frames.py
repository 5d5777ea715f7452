"""Node Graph frame contract (grafana nodeGraph/utils.ts): the panel throws or crashes otherwise."""

from __future__ import annotations

import json
import math

from app.grafana.frames import node_graph_frames
from app.graph.model import Graph, GraphEdge, node_from_id
from tests.graph.fixtures import bookinfo, l7


def columns(frame: dict) -> dict[str, list]:  # type: ignore[type-arg]
    return {f["name"]: f["values"] for f in frame["fields"]}


def test_contract_lengths_ids_endpoints_arcs_and_meta() -> None:
    nodes, edges = node_graph_frames(bookinfo(), ref_id="B")
    json.dumps([nodes, edges], allow_nan=False)
    for frame, name in ((nodes, "nodes"), (edges, "edges")):
        assert frame["name"] == name
        assert frame["refId"] == "B"
        assert frame["meta"]["preferredVisualisationType"] == "nodeGraph"
        lengths = {len(f["values"]) for f in frame["fields"]}
        assert len(lengths) == 1
        assert all(f["name"] == f["name"].lower() for f in frame["fields"])
    # Grafana shows a QueryResultMeta notice on the panel: what the rates divide by.
    assert nodes["meta"]["notices"] == [
        {"severity": "info", "text": "rates per second over the whole 10 min window"}
    ]
    n, e = columns(nodes), columns(edges)
    assert len(set(n["id"])) == len(n["id"])
    assert len(set(e["id"])) == len(e["id"])
    assert set(e["source"]) | set(e["target"]) <= set(n["id"])
    for ok, bad in zip(n["arc__success"], n["arc__failed"], strict=True):
        assert math.isclose(ok + bad, 1.0, abs_tol=1e-9)
    dashed = [i for i, d in zip(e["id"], e["strokedasharray"], strict=True) if d]
    assert dashed == ["default/reviews->default/ratings"]


def test_failing_node_arc_and_red_edge() -> None:
    edge = GraphEdge("ns/a", "ns/b", l7=l7(100, errors=25))
    graph = Graph({"ns/a": node_from_id("ns/a"), "ns/b": node_from_id("ns/b")}, [edge], 0, 100)
    nodes, edges = node_graph_frames(graph)
    n = columns(nodes)
    index = n["id"].index("ns/b")
    assert n["arc__failed"][index] == 0.25
    assert n["secondarystat"][index] == "25.0% errors"
    assert columns(edges)["color"] == ["#F2495C"]


def test_non_finite_numbers_become_null() -> None:
    edge = GraphEdge("ns/a", "ns/b", l7=l7(10, p99=math.nan))
    graph = Graph({"ns/a": node_from_id("ns/a"), "ns/b": node_from_id("ns/b")}, [edge], 0, 100)
    _, edges = node_graph_frames(graph)
    assert columns(edges)["detail__p99_ms"] == [None]
    json.dumps(edges, allow_nan=False)
