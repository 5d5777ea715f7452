from __future__ import annotations

import json
import math
import re

import pydot
import pytest

from app.graph.export import to_cytoscape, to_dot, to_json, to_mermaid, to_table
from app.graph.model import Graph, GraphEdge, node_from_id
from tests.graph.fixtures import bookinfo, l7


def test_json_shape_has_both_layers_and_window() -> None:
    doc = to_json(bookinfo())
    json.dumps(doc, allow_nan=False)  # no NaN/Infinity anywhere
    edges = {e["id"]: e for e in doc["edges"]}
    reviews = edges["default/productpage->default/reviews"]
    assert reviews["coverage"] == "full"
    assert reviews["l7"]["requests"] == 600
    assert reviews["l7"]["rps"] == 1.0
    assert reviews["l7"]["error_rate"] == 0.01
    assert reviews["l7"]["latency_ms"] == {
        "p50": 10.0,
        "p95": 50.0,
        "p99": 80.0,
        "from": None,
        "bounds": None,
    }
    assert (reviews["l7"]["counts_from"], reviews["l7"]["exact"]) == ("spans", False)
    assert reviews["l4"]["mtls_share"] == 1.0
    ratings = edges["default/reviews->default/ratings"]
    assert ratings["coverage"] == "l4_only"
    assert ratings["l7"] is None
    assert ratings["l4"]["mtls_share"] == 0.0
    assert ratings["protocol"] == "tcp"
    assert edges["default/productpage->default/details"]["via"] == "default/waypoint"
    assert edges["default/productpage->default/details"]["exemplars"][0]["trace_id"] == "ab" * 16
    nodes = {n["id"]: n for n in doc["nodes"]}
    assert nodes["default/reviews"]["rps_in"] == 1.0
    assert nodes["default/productpage"]["rps_out"] == 2.0
    assert nodes["default/waypoint"]["kind"] == "waypoint"
    assert doc["window"] == {
        "from": "1970-01-01T00:00:00Z",
        "to": "1970-01-01T00:10:00Z",
        "seconds": 600.0,
        "observed_from": "1970-01-01T00:00:00Z",
        "observed_seconds": 600.0,
    }


def test_json_replaces_non_finite_numbers_with_null() -> None:
    edge = GraphEdge("a/x", "a/y", l7=l7(3, p99=math.inf))
    graph = Graph({"a/x": node_from_id("a/x"), "a/y": node_from_id("a/y")}, [edge], 0, 60)
    doc = to_json(graph)
    assert doc["edges"][0]["l7"]["latency_ms"]["p99"] is None
    json.dumps(doc, allow_nan=False)


def test_cytoscape_elements() -> None:
    doc = to_cytoscape(bookinfo())
    node_ids = {n["data"]["id"] for n in doc["elements"]["nodes"]}
    for edge in doc["elements"]["edges"]:
        assert {"id", "source", "target"} <= edge["data"].keys()
        assert edge["data"]["source"] in node_ids and edge["data"]["target"] in node_ids


# pydot 4 calls pyparsing APIs that pyparsing 3.3 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dot_parses_and_has_every_node_and_edge() -> None:
    graph = bookinfo()
    graph.nodes['we"ird/na\\me'] = node_from_id('we"ird/na\\me')
    (parsed,) = pydot.graph_from_dot_data(to_dot(graph))
    names = {n.get_name().strip('"') for n in parsed.get_nodes()} - {"node"}
    assert len(names) == len(graph.nodes)
    assert len(parsed.get_edges()) == len(graph.edges)
    dashed = [e for e in parsed.get_edges() if e.get_style() == "dashed"]
    assert len(dashed) == 1


MERMAID_NODE = re.compile(r'^  (n\d+_\w+)(\["[^"]*"\]|\(\["[^"]*"\]\)|\{\{"[^"]*"\}\})$')
MERMAID_EDGE = re.compile(r'^  (n\d+_\w+) (-->|-\.->)\|"[^"]*"\| (n\d+_\w+)$')


def test_mermaid_is_well_formed() -> None:
    text = to_mermaid(bookinfo())
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    declared = set()
    for line in lines[1:]:
        node, edge = MERMAID_NODE.match(line), MERMAID_EDGE.match(line)
        assert node or edge, line
        if node:
            declared.add(node.group(1))
        else:
            assert edge is not None
            assert edge.group(1) in declared and edge.group(3) in declared
    assert sum("-.->" in line for line in lines) == 1


def test_table_lists_busiest_edges_first() -> None:
    lines = to_table(bookinfo()).splitlines()
    assert lines[0].split()[:3] == ["SOURCE", "TARGET", "COVERAGE"]
    assert lines[-3].startswith("default/reviews") or "l4_only" in to_table(bookinfo())
    assert lines[1].split()[0] == "default/productpage"
    assert len(lines) == 8
    assert lines[-2:] == ["", "RPS: rates per second over the whole 10 min window"]
