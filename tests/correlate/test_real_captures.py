"""Real captured Istio spans (tests/data/real/README.md) through decode → correlate → aggregate.

What is asserted is what the captured data says the graph is, not what today's code emits:
node ids are Istio canonical services in their namespace, gateways (Envoy `router~` node ids)
are nodes of kind `gateway`, waypoints (`waypoint~` node ids) never appear as an edge's end but
as its `via`, every request is counted once, and no `unknown` node stands where the data names
the peer.

The captures are Tempo API responses (kiali/kiali fixtures). They are committed verbatim beside
their OTLP/JSON conversion; `test_conversions_are_mechanical` re-derives each conversion from its
verbatim file with the functions below, so the converted files can hold nothing the capture
does not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.correlate.aggregate import EdgeAggregator
from app.correlate.correlator import SpanCorrelator
from app.domain import Level, NodeKind, Span
from app.edge.batch import AggregateBatch
from app.ingest.otlp_json import decode_json
from tests.conftest import DATA

REAL = DATA / "real"
NOW_NS = 1_767_225_600 * 10**9  # 2026-01-01: after every capture, for the decoder's window
MAX_ATTRIBUTES = 1024

SIDECAR_TRACE = "kiali-tempo-sidecar-trace"
AMBIENT_SEARCH = "kiali-tempo-ambient-search"


# ---- the documented conversions (README.md, "Conversions") -------------------------------------
def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


def tempo_trace_to_otlp(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Tempo `GET /api/traces/<id>` → one OTLP/JSON export request.

    Tempo answers with protobuf's JSON mapping of its trace (`batches` = `resourceSpans`; ids in
    base64). Only the key `batches` and the id encoding change; every other byte of meaning
    (attributes, kinds as enum names, times, events, status) is kept.
    """
    batches = json.loads(json.dumps(document["batches"]))  # a deep copy
    for batch in batches:
        for scope_spans in batch["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _hex(span[key])
    return [{"resourceSpans": batches}]


# Tempo's search response has no span kind. The only inference in these files: a `waypoint~`
# proxy writes SERVER spans (../shared/reference/istio-ambient.md), and a `router~` (gateway)
# proxy's span is CLIENT, as the gateway span of the verbatim sidecar trace is.
_KIND_BY_NODE_PREFIX = {"waypoint~": "SPAN_KIND_SERVER", "router~": "SPAN_KIND_CLIENT"}


def tempo_search_to_otlp(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Tempo `GET /api/search` (TraceQL) → one OTLP/JSON export request per trace.

    Per matched span: one `resourceSpans` whose resource holds the span's `service.name`
    (Tempo lists that resource attribute among the span's), trace id left-padded to 32 hex
    digits (Tempo prints it without leading zeros), end = start + `durationNanos`, kind from
    the `node_id` prefix (above). Every other attribute is kept as the span's, in order.
    """
    requests = []
    for trace in document["traces"]:
        trace_id = trace["traceID"].rjust(32, "0")
        resource_spans = []
        for span_set in trace.get("spanSets") or [trace["spanSet"]]:
            for span in span_set["spans"]:
                resource_attrs = [a for a in span["attributes"] if a["key"] == "service.name"]
                span_attrs = [a for a in span["attributes"] if a["key"] != "service.name"]
                node_id = next(
                    (a["value"]["stringValue"] for a in span_attrs if a["key"] == "node_id"), ""
                )
                kind = next(
                    (k for p, k in _KIND_BY_NODE_PREFIX.items() if node_id.startswith(p)),
                    "SPAN_KIND_UNSPECIFIED",
                )
                start = int(span["startTimeUnixNano"])
                resource_spans.append(
                    {
                        "resource": {"attributes": resource_attrs},
                        "scopeSpans": [
                            {
                                "scope": {},
                                "spans": [
                                    {
                                        "traceId": trace_id,
                                        "spanId": span["spanID"],
                                        "name": span["name"],
                                        "kind": kind,
                                        "startTimeUnixNano": str(start),
                                        "endTimeUnixNano": str(start + int(span["durationNanos"])),
                                        "attributes": span_attrs,
                                    }
                                ],
                            }
                        ],
                    }
                )
        requests.append({"resourceSpans": resource_spans})
    return requests


def as_json_lines(requests: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in requests)


# ---- the pipeline -------------------------------------------------------------------------------
def decoded(name: str) -> list[Span]:
    spans: list[Span] = []
    for line in (REAL / f"{name}.otlp.json").read_text().splitlines():
        result = decode_json(line.encode(), MAX_ATTRIBUTES, now_ns=NOW_NS)
        assert (result.rejected, result.error_message) == (0, "")
        spans += result.spans
    return spans


@dataclass
class Edge:
    requests: int = 0
    unpaired: int = 0
    via: set[str] = field(default_factory=set)


@dataclass
class Graph:
    edges: dict[tuple[str, str], Edge]
    kinds: dict[str, NodeKind]  # node id → kind, at the graph's level


def graph(batch: AggregateBatch, level: Level) -> Graph:
    """The batch's edges at one level, summed over buckets (a trace may straddle two)."""
    edges: dict[tuple[str, str], Edge] = {}
    for key, bucket in batch.edges.items():
        if key.level is level:
            edge = edges.setdefault((key.source, key.target), Edge())
            edge.requests += bucket.l7_requests
            edge.unpaired += bucket.l7_unpaired
            edge.via.add(bucket.via)
    kinds = {node_id: seen.kind for (node_id, lvl), seen in batch.nodes.items() if lvl is level}
    return Graph(edges, kinds)


def correlate(spans: list[Span]) -> AggregateBatch:
    """Spans in the order captured, one batch, then drained: the public pipeline's path."""
    correlator = SpanCorrelator(wait_s=10.0, max_items=1000, bucket_s=60)
    aggregator = EdgeAggregator(bucket_s=60, clock_s=lambda: NOW_NS / 1e9)
    for obs in correlator.add(spans, NOW_NS) + correlator.drain():
        aggregator.add_l7(obs)
    return aggregator.drain()


@pytest.fixture(scope="module")
def sidecar() -> AggregateBatch:
    return correlate(decoded(SIDECAR_TRACE))


@pytest.fixture(scope="module")
def ambient() -> AggregateBatch:
    return correlate(decoded(AMBIENT_SEARCH))


def endpoint_ids(g: Graph) -> set[str]:
    return {node for pair in g.edges for node in pair}


# ---- the captures themselves --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "convert"),
    [(SIDECAR_TRACE, tempo_trace_to_otlp), (AMBIENT_SEARCH, tempo_search_to_otlp)],
)
def test_conversions_are_mechanical(name: str, convert: Any) -> None:
    verbatim = json.loads((REAL / f"{name}.json").read_text())
    assert (REAL / f"{name}.otlp.json").read_text() == as_json_lines(convert(verbatim))


@pytest.mark.parametrize(("name", "count"), [(SIDECAR_TRACE, 8), (AMBIENT_SEARCH, 4)])
def test_every_captured_span_decodes(name: str, count: int) -> None:
    spans = decoded(name)
    assert len(spans) == count
    assert all(s.attributes.get("component") == "proxy" for s in spans)


# ---- Istio sidecar + ingress gateway trace (bookinfo, Tempo, Dec 2023) -------------------------
SIDECAR_SERVICE_EDGES = {
    ("istio-system/istio-ingressgateway", "bookinfo/productpage"),
    ("bookinfo/productpage", "bookinfo/reviews"),
    ("bookinfo/productpage", "bookinfo/details"),
    ("bookinfo/reviews", "bookinfo/ratings"),
}


def test_sidecar_trace_is_the_four_bookinfo_calls_by_canonical_service(
    sidecar: AggregateBatch,
) -> None:
    """The trace is gateway → productpage → {reviews → ratings, details}: 4 CLIENT/SERVER pairs
    (each CLIENT span's id is its SERVER span's parent). Resource `service.name` is
    `productpage.bookinfo` (the proxy's `<svc>.<ns>` cluster); the node is the canonical service
    `istio.canonical_service` in `istio.namespace`: `bookinfo/productpage`. One request each, no
    waypoint, nothing unpaired."""
    g = graph(sidecar, Level.SERVICE)
    assert set(g.edges) == SIDECAR_SERVICE_EDGES
    assert {pair: (e.requests, e.unpaired, e.via) for pair, e in g.edges.items()} == {
        pair: (1, 0, {""}) for pair in SIDECAR_SERVICE_EDGES
    }


def test_sidecar_trace_gateway_is_a_gateway_node_and_nothing_is_unknown(
    sidecar: AggregateBatch,
) -> None:
    """`router~10.244.0.14~istio-ingressgateway-79788cd94-wgmsp.istio-system~…` is Envoy's node id
    of a gateway: its node is kind `gateway`. The four bookinfo services are services; every peer
    is named by the data, so no node is `unknown` or `external`."""
    g = graph(sidecar, Level.SERVICE)
    assert {node: g.kinds.get(node) for node in endpoint_ids(g)} == {
        "istio-system/istio-ingressgateway": NodeKind.GATEWAY,
        "bookinfo/productpage": NodeKind.SERVICE,
        "bookinfo/reviews": NodeKind.SERVICE,
        "bookinfo/details": NodeKind.SERVICE,
        "bookinfo/ratings": NodeKind.SERVICE,
    }
    assert not {n for n, kind in g.kinds.items() if kind in (NodeKind.UNKNOWN, NodeKind.EXTERNAL)}


def test_sidecar_trace_workload_level_names_the_pods_workloads(sidecar: AggregateBatch) -> None:
    """Every span's `node_id` names its pod (`reviews-v2-6f76498fc8-58wpn.bookinfo`), so at
    level=workload the edges are between the workloads the trace went through: reviews-v2, not
    reviews-v1 or reviews-v3."""
    g = graph(sidecar, Level.WORKLOAD)
    assert set(g.edges) == {
        ("istio-system/istio-ingressgateway", "bookinfo/productpage-v1"),
        ("bookinfo/productpage-v1", "bookinfo/reviews-v2"),
        ("bookinfo/productpage-v1", "bookinfo/details-v1"),
        ("bookinfo/reviews-v2", "bookinfo/ratings-v1"),
    }
    assert sum(e.requests for e in g.edges.values()) == 4


# ---- Istio ambient waypoint + Gateway API gateway (bookinfo, Tempo TraceQL search, Jan 2025) ----
VIA = "bookinfo/waypoint"
GATEWAY = "bookinfo/bookinfo-gateway-istio"


def test_ambient_waypoint_spans_collapse_into_via(ambient: AggregateBatch) -> None:
    """Three spans of `waypoint~10.244.0.28~waypoint-5b7c754ccb-55jwk.bookinfo~…` (resource
    `service.name` `waypoint.bookinfo`) route to `inbound-vip|…|reviews`, `…|details` and
    `…|bookinfo-gateway-istio`. Each is one edge into that service with `via` = the waypoint; the
    waypoint is never an edge's end, and no node is named after a service FQDN."""
    g = graph(ambient, Level.SERVICE)
    into = {target: e for (_, target), e in g.edges.items() if e.via == {VIA}}
    assert {t: e.requests for t, e in into.items()} == {
        "bookinfo/reviews": 1,
        "bookinfo/details": 1,
        GATEWAY: 1,
    }
    ends = endpoint_ids(g)
    assert VIA not in ends
    assert not {n for n in ends if g.kinds.get(n) is NodeKind.WAYPOINT}
    assert not {n for n in ends if ".svc.cluster.local" in n or "waypoint" in n}


def test_ambient_gateway_span_is_an_edge_from_the_gateway(ambient: AggregateBatch) -> None:
    """The `router~10.244.0.27~bookinfo-gateway-istio-6754756766-pmxnn.bookinfo~…` span routes to
    `outbound|9080||productpage.bookinfo.svc.cluster.local`: the edge
    bookinfo/bookinfo-gateway-istio → bookinfo/productpage, once, not through the waypoint. The
    span carries no `service.name`; the node id names the gateway's pod, so its caller is not
    `unknown`. The waypoint's span to `bookinfo-gateway-istio.bookinfo.svc.cluster.local:80`
    routes to this same gateway: one node, kind `gateway`."""
    g = graph(ambient, Level.SERVICE)
    assert {pair: (e.requests, e.via) for pair, e in g.edges.items() if pair[0] == GATEWAY} == {
        (GATEWAY, "bookinfo/productpage"): (1, {""})
    }
    assert g.kinds.get(GATEWAY) is NodeKind.GATEWAY
    assert g.kinds.get("bookinfo/productpage") is NodeKind.SERVICE


def test_ambient_callers_the_data_does_not_name_are_not_one_sink(ambient: AggregateBatch) -> None:
    """TraceQL search results carry no parent span ids and no `peer.address`, so the callers of
    the three waypoint spans are not in the data: they may be unknown, but one per target (never
    a shared catch-all), and four spans make four requests."""
    g = graph(ambient, Level.SERVICE)
    unknown_callers = [s for (s, _), e in g.edges.items() if e.via == {VIA}]
    assert len(unknown_callers) == len(set(unknown_callers)) == 3
    assert sum(e.requests for e in g.edges.values()) == 4
