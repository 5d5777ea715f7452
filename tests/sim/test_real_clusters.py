"""The wire shapes of `realistic_bookinfo()`: ztunnel labels per leg, Envoy span tags per role and
Istio release, the truth's extra nodes and edges (sources: app/sim/ztunnel_series.py,
envoy_spans.py, istio.py)."""

from __future__ import annotations

import dataclasses

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.domain import Coverage
from app.sim.invariants import TopologyError, validate
from app.sim.istio import ISTIO_VERSIONS, IstioVersion
from app.sim.realistic import OUTSIDE_CLIENT_IP, realistic_bookinfo
from app.sim.runner import MeshSimulator
from app.sim.topology import Edge
from app.sim.ztunnel_series import LABEL_NAMES

T0 = 1_748_779_200
INTERNAL = "envoy://internal_client_address/"
GATEWAY = "istio-system/istio-ingressgateway"
Series = list[dict[str, str]]


def _run(version: IstioVersion = "1.27", seed: int = 2) -> tuple[MeshSimulator, list[ReadableSpan]]:
    exporter = InMemorySpanExporter()
    sim = MeshSimulator(realistic_bookinfo(), seed=seed, exporter=exporter, istio_version=version)
    sim.tick(T0, T0 + 60)
    return sim, list(exporter.get_finished_spans())


@pytest.fixture(scope="module")
def series() -> Series:
    sim, _ = _run()
    out = []
    for node in sim.nodes.values():
        for labels in node.counters():
            out.append(dict(zip(LABEL_NAMES, labels, strict=True)))
    return out


def _one(series: Series, **match: str) -> dict[str, str]:
    found = [s for s in series if all(s[k] == v for k, v in match.items())]
    assert len(found) >= 1, match
    return found[0]


def test_service_name_canonical_service_and_app_labels_differ_as_ztunnel_prints_them(
    series: Series,
) -> None:
    client_leg = _one(
        series,
        reporter="source",
        source_workload="productpage-v1",
        destination_service_name="bookinfo-reviews",
    )
    assert client_leg["destination_service"] == "bookinfo-reviews.bookinfo.svc.cluster.local"
    # To the waypoint: workload, canonical service and app all name the waypoint.
    for key in ("destination_workload", "destination_canonical_service", "destination_app"):
        assert client_leg[key] == "bookinfo-l7"
    assert client_leg["destination_principal"].endswith("/ns/bookinfo/sa/bookinfo-l7")
    server_leg = _one(series, reporter="destination", destination_canonical_service="reviews")
    assert server_leg["source_workload"] == server_leg["source_app"] == "bookinfo-l7"
    assert server_leg["destination_service_name"] == "bookinfo-reviews"
    assert server_leg["destination_app"] == "reviews"  # app = canonical_name
    assert server_leg["destination_workload"].startswith("reviews-v")
    assert server_leg["destination_version"] == server_leg["destination_canonical_revision"]


def test_pod_addressed_traffic_through_the_workload_waypoint(series: Series) -> None:
    client_leg = _one(series, reporter="source", destination_workload="bookinfo-pods")
    assert client_leg["source_canonical_service"] == "reviews"
    for key in ("destination_service", "destination_service_name", "destination_service_namespace"):
        assert client_leg[key] == "unknown"
    server_leg = _one(series, reporter="destination", destination_workload="ledger-v1")
    assert server_leg["source_workload"] == "bookinfo-pods"
    assert server_leg["destination_service"] == "unknown"
    assert server_leg["connection_security_policy"] == "mutual_tls"


@pytest.mark.parametrize(
    ("source_workload", "principal"),
    [
        (
            "istio-ingressgateway",
            "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        ),
        ("notifier-v1", "spiffe://cluster.local/ns/legacy/sa/notifier"),
    ],
)
def test_gateway_and_sidecar_callers_appear_only_under_the_destination_reporter(
    series: Series, source_workload: str, principal: str
) -> None:
    mine = [s for s in series if s["source_workload"] == source_workload]
    assert mine and {s["reporter"] for s in mine} == {"destination"}
    assert {s["source_principal"] for s in mine} == {principal}
    assert {s["connection_security_policy"] for s in mine} == {"mutual_tls"}


def test_a_workload_named_waypoint_is_an_ordinary_source(series: Series) -> None:
    to_mongo = _one(
        series, source_workload="waypoint-ui-v1", destination_canonical_service="mongodb"
    )
    assert to_mongo["reporter"] == "source"
    assert to_mongo["connection_security_policy"] == "unknown"  # mongodb is not enrolled


def _proxy_spans(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if str((s.attributes or {}).get("node_id", "")).startswith(prefix)]


@pytest.mark.parametrize("version", ISTIO_VERSIONS)
def test_waypoint_spans_per_istio_release(version: IstioVersion) -> None:
    _, spans = _run(version)
    waypoint = _proxy_spans(spans, "waypoint~")
    assert waypoint
    by_service = [s for s in waypoint if s.attributes["upstream_cluster"] != "encap"]
    names = {s.resource.attributes["service.name"] for s in by_service}
    if version in {"1.28", "1.29"}:
        assert names == {
            "bookinfo-reviews.bookinfo.svc.cluster.local",
            "bookinfo-ratings.bookinfo.svc.cluster.local",
            "waypoint-ui.bookinfo.svc.cluster.local",
        }
    else:
        assert names == {"bookinfo-l7.bookinfo"}
    for span in waypoint:
        attrs = span.attributes or {}
        assert attrs["peer.address"] == INTERNAL
        assert span.kind is SpanKind.SERVER
        assert attrs["upstream_cluster.name"] == f"{attrs['upstream_cluster']};"
        has_tags = "istio.source_workload" in attrs
        assert has_tags == (version in {"1.29", "1.30"})
        if has_tags:
            assert attrs["istio.destination_workload"].startswith(  # type: ignore[union-attr]
                str(attrs["istio.destination_canonical_service"])
            )
            assert attrs["istio.source_namespace"] == "bookinfo"
    reviews = next(s for s in by_service if "reviews" in str(s.attributes["upstream_cluster"]))
    assert reviews.name == "bookinfo-reviews.bookinfo.svc.cluster.local:9080/*"
    assert reviews.attributes["istio.canonical_service"] == "bookinfo-l7"


@pytest.mark.parametrize("version", ISTIO_VERSIONS)
def test_pod_addressed_waypoint_span_goes_to_encap(version: IstioVersion) -> None:
    _, spans = _run(version)
    encap = [
        s for s in _proxy_spans(spans, "waypoint~") if s.attributes["upstream_cluster"] == "encap"
    ]
    assert encap
    for span in encap:
        attrs = span.attributes or {}
        assert span.name == ":0/*"
        assert attrs["upstream_address"] == "envoy://connect_originate/"
        assert str(attrs["http.url"]).startswith("http://10.42.")
        assert span.resource.attributes["service.name"] == "bookinfo-pods.bookinfo"  # no Service


@pytest.mark.parametrize("version", ISTIO_VERSIONS)
def test_gateway_spans_per_istio_release(version: IstioVersion) -> None:
    _, spans = _run(version)
    servers = _proxy_spans(spans, "router~")
    assert servers and {s.kind for s in servers} == {SpanKind.SERVER}
    for span in servers:
        attrs = span.attributes or {}
        assert span.parent is None  # the outside client propagates no traceparent
        assert str(attrs["peer.address"]).startswith(f"{OUTSIDE_CLIENT_IP}:")
        assert str(attrs["upstream_cluster"]).startswith("outbound|9080||")
        assert attrs["istio.canonical_service"] == "istio-ingressgateway"
        assert span.resource.attributes["service.name"] == "istio-ingressgateway.istio-system"
    children = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT
        and s.resource.attributes["service.name"] == "istio-ingressgateway.istio-system"
    ]
    assert bool(children) == (version != "1.27")
    server_ids = {s.context.span_id for s in servers}
    for child in children:
        attrs = child.attributes or {}
        assert "node_id" not in attrs and "http.url" not in attrs
        assert child.parent is not None and child.parent.span_id in server_ids
        assert attrs["istio.canonical_service"] == "istio-ingressgateway"  # custom tags: both
        assert attrs["peer.address"] == attrs["upstream_address"]
        assert child.name == f"router {attrs['upstream_cluster']}; egress"
    to_productpage = next(
        s for s in servers if "productpage" in str(s.attributes["upstream_cluster"])
    )
    assert (
        to_productpage.attributes["upstream_cluster"]
        == "outbound|9080||productpage.bookinfo.svc.cluster.local"
    )


def test_sidecar_spans_outbound_client_and_inbound_server() -> None:
    _, spans = _run()
    sidecar = _proxy_spans(spans, "sidecar~")
    outbound = [s for s in sidecar if s.kind is SpanKind.CLIENT]
    inbound = [s for s in sidecar if s.kind is SpanKind.SERVER]
    assert outbound and inbound
    for span in outbound:
        assert (
            span.attributes["upstream_cluster"]
            == "outbound|9080||details.bookinfo.svc.cluster.local"
        )
        assert span.resource.attributes["service.name"] == "notifier.legacy"
    for span in inbound:
        assert span.attributes["upstream_cluster"] == "inbound|9080||"
        assert span.parent is not None  # the gateway's span context


def test_app_spans_carry_the_otel_service_name_and_k8s_attributes() -> None:
    _, spans = _run()
    apps = {
        s.resource.attributes["service.name"]: s.resource.attributes
        for s in spans
        if s.resource.attributes.get("telemetry.sdk.name") == "opentelemetry"
    }
    assert {"reviews-svc", "ratings-svc", "waypoint-ui"} <= set(apps)
    reviews = apps["reviews-svc"]
    assert reviews["k8s.namespace.name"] == "bookinfo"
    assert str(reviews["k8s.deployment.name"]).startswith("reviews-v")
    assert str(reviews["k8s.pod.name"]).startswith(str(reviews["k8s.deployment.name"]))


def test_truth_names_canonical_nodes_gateway_ingress_and_aliases() -> None:
    sim, _ = _run()
    truth = sim.truth
    assert truth.nodes[GATEWAY] == "gateway"
    assert truth.nodes[f"unknown/{OUTSIDE_CLIENT_IP}"] == "unknown"
    assert not {n for n in truth.nodes if "bookinfo-l7" in n or "bookinfo-pods" in n}
    ingress = truth.edge(f"unknown/{OUTSIDE_CLIENT_IP}", GATEWAY)
    assert ingress.coverage is Coverage.L7_ONLY and ingress.connections_opened == 0
    from_gateway = [e for (s, _), e in truth.edges.items() if s == GATEWAY]
    assert ingress.requests == sum(e.requests for e in from_gateway) > 0
    assert truth.edge(GATEWAY, "bookinfo/productpage").coverage is Coverage.FULL
    assert truth.edge(GATEWAY, "legacy/notifier").coverage is Coverage.L7_ONLY
    assert truth.edge("bookinfo/reviews", "bookinfo/ledger").via == "bookinfo/bookinfo-pods"
    assert truth.edge("bookinfo/productpage", "bookinfo/waypoint-ui").via == "bookinfo/bookinfo-l7"
    assert truth.aliases["bookinfo/reviews"] == [
        "bookinfo/bookinfo-reviews",
        "bookinfo/reviews-svc",
    ]


def test_truth_is_the_same_for_every_istio_release() -> None:
    truths = [_run(v, seed=3)[0].truth.to_dict() for v in ISTIO_VERSIONS]
    assert all(t == truths[0] for t in truths)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda t: dataclasses.replace(
                t,
                edges=(*t.edges, Edge(GATEWAY, "bookinfo/reviews", 1.0, client_ip="192.0.2.1")),
            ),
            "bypasses waypoints",
        ),
        (
            lambda t: dataclasses.replace(
                t, edges=(*t.edges, Edge(GATEWAY, "bookinfo/details", 1.0))
            ),
            "client_ip",
        ),
        (
            lambda t: dataclasses.replace(
                t,
                edges=(*t.edges, Edge("bookinfo/productpage", "legacy/notifier", 1.0)),
            ),
            "sidecar services",
        ),
        (
            lambda t: dataclasses.replace(
                t,
                services=tuple(
                    dataclasses.replace(s, workload_waypoint="bookinfo-pods")
                    if s.name == "details"
                    else s
                    for s in t.services
                ),
                edges=(
                    *t.edges,
                    Edge("bookinfo/reviews", "bookinfo/details", 1.0, address="pod"),
                ),
            ),
            "pod-addressed traffic to 2 services",
        ),
        (
            lambda t: dataclasses.replace(
                t,
                services=tuple(
                    dataclasses.replace(s, waypoint="bookinfo-pods") if s.name == "details" else s
                    for s in t.services
                ),
            ),
            "not for services",
        ),
    ],
)
def test_real_cluster_invariants(change: object, fragment: str) -> None:
    with pytest.raises(TopologyError, match=fragment):
        validate(change(realistic_bookinfo()))  # type: ignore[operator]
