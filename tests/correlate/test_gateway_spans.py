"""Gateway spans: a gateway is a node of kind gateway with one edge to what it routes to, whether
its Envoy writes an upstream span (Istio ≥ 1.28) or only its downstream span (1.27)."""

from __future__ import annotations

from app.correlate.correlator import SpanCorrelator
from app.domain import AttrValue, L7Observation, NodeKind, SpanKind
from tests.correlate.spans import span

GW_NODE = "router~10.42.0.5~istio-ingressgateway-5d9f7c7d9-abcde.istio-system~istio-system.svc.cluster.local"
CLUSTER = "outbound|9080||bookinfo-productpage.bookinfo.svc.cluster.local"
TAGS: dict[str, AttrValue] = {
    "istio.canonical_service": "istio-ingressgateway",
    "istio.namespace": "istio-system",
    "component": "proxy",
}


def _gateway_server(upstream_cluster: bool) -> object:
    attrs = {**TAGS, "node_id": GW_NODE, "peer.address": "198.51.100.23", "http.status_code": "200"}
    if upstream_cluster:
        attrs["upstream_cluster"] = CLUSTER
    return span(SpanKind.SERVER, 1, service="istio-ingressgateway.istio-system", attrs=attrs)


def _pairs(observations: list[L7Observation]) -> list[tuple[str, str]]:
    return sorted((o.source.node_id(), o.target.node_id()) for o in observations)


def test_a_gateway_without_an_upstream_span_gives_its_hop_from_the_downstream_span() -> None:
    correlator = SpanCorrelator(wait_s=10.0, max_items=100, bucket_s=60)
    out = correlator.add([_gateway_server(True)], now_ns=0)  # type: ignore[list-item]
    out += correlator.drain()
    assert _pairs(out) == [
        ("istio-system/istio-ingressgateway", "bookinfo/bookinfo-productpage"),
        ("unknown/198.51.100.23", "istio-system/istio-ingressgateway"),
    ]
    gateway = next(o for o in out if o.source.node_id().startswith("istio-system"))
    assert gateway.source.kind is NodeKind.GATEWAY and not gateway.unpaired


def test_an_upstream_span_is_the_hop_in_either_order_and_nothing_counts_twice() -> None:
    upstream = span(
        SpanKind.CLIENT,
        2,
        parent=1,
        service="istio-ingressgateway.istio-system",
        attrs={**TAGS, "upstream_cluster": CLUSTER, "http.status_code": "200"},
    )
    for order in ([_gateway_server(True), upstream], [upstream, _gateway_server(True)]):
        correlator = SpanCorrelator(wait_s=10.0, max_items=100, bucket_s=60)
        out = correlator.add(order, now_ns=0)  # type: ignore[arg-type]
        out += correlator.drain()
        assert _pairs(out) == [
            ("istio-system/istio-ingressgateway", "bookinfo/bookinfo-productpage"),
            ("unknown/198.51.100.23", "istio-system/istio-ingressgateway"),
        ], order
