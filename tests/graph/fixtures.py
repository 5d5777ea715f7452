"""Small graphs shared by the graph tests."""

from __future__ import annotations

from app.domain import NodeKind
from app.graph.model import Exemplar, Graph, GraphEdge, L4Stats, L7Stats, node_from_id


def l7(requests: int, errors: int = 0, p99: float = 80.0) -> L7Stats:
    return L7Stats(
        requests=requests,
        errors=errors,
        errors_by_cause={"http_5xx": errors} if errors else {},
        status_codes={"200": requests - errors, **({"503": errors} if errors else {})},
        latency_sum_ms=requests * 10.0,
        p50_ms=10.0,
        p95_ms=50.0,
        p99_ms=p99,
    )


def l4(connections: int, mtls: int | None = None, nbytes: int = 1000) -> L4Stats:
    return L4Stats(
        connections_opened=connections,
        connections_closed=connections,
        bytes_sent=nbytes,
        bytes_received=nbytes * 2,
        mtls_connections=connections if mtls is None else mtls,
        principals=("spiffe://cluster.local/ns/default/sa/x",),
    )


def bookinfo() -> Graph:
    edges = [
        GraphEdge("istio-system/ingress", "default/productpage", l7=l7(600), l4=l4(60)),
        GraphEdge(
            "default/productpage",
            "default/details",
            l7=l7(600),
            l4=l4(60),
            via="default/waypoint",
            exemplars=(Exemplar("slowest", "ab" * 16, 120.0, 1),),
        ),
        GraphEdge("default/productpage", "default/reviews", l7=l7(600, errors=6), l4=l4(60)),
        GraphEdge("default/reviews", "default/ratings", l4=l4(40, mtls=0)),
        GraphEdge("default/ratings", "external/mysql.example.com", l7=l7(30)),
    ]
    nodes = {}
    for edge in edges:
        for node_id in (edge.source, edge.target):
            kind = NodeKind.EXTERNAL if node_id.startswith("external/") else NodeKind.SERVICE
            nodes[node_id] = node_from_id(node_id, kind)
    nodes["default/waypoint"] = node_from_id("default/waypoint", NodeKind.WAYPOINT)
    return Graph(nodes=nodes, edges=edges, window_start_s=0.0, window_end_s=600.0)
