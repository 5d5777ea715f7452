"""Span roles, waypoint identity, app endpoints and the naming of peers without a span."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.correlate.normalize import (
    SpanNormalizer,
    SpanRole,
    address_of,
    pod_workload,
    strip_port,
    unknown_caller,
    url_host,
)
from app.domain import AttrValue, Endpoint, NodeKind, Provenance, SpanKind
from tests.correlate.spans import app_resource, client, server, span, waypoint_span

NODE_ID = "waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.default~default.svc.cluster.local"
REVIEWS = Endpoint("default", "reviews")


class FakeDirectory:
    def __init__(self, by_ip: dict[str, Endpoint]) -> None:
        self.by_ip = by_ip

    def lookup(self, ip: str) -> Endpoint | None:
        return self.by_ip.get(ip)


@pytest.mark.parametrize(
    ("kind", "service", "attrs", "names", "role"),
    [
        (SpanKind.SERVER, "x", {"node_id": NODE_ID}, (), SpanRole.WAYPOINT),
        # without a node id, a waypoint's cluster on a proxy SERVER span marks a waypoint
        (
            SpanKind.SERVER,
            "x",
            {"component": "proxy", "upstream_cluster": "inbound-vip|80|http|a.b.svc.cluster.local"},
            (),
            SpanRole.WAYPOINT,
        ),
        (
            SpanKind.SERVER,
            "x",
            {"component": "proxy", "upstream_cluster": "encap"},
            (),
            SpanRole.WAYPOINT,
        ),
        # a sidecar's inbound cluster is a sidecar's span, not a waypoint's
        (
            SpanKind.SERVER,
            "x",
            {"component": "proxy", "upstream_cluster": "inbound|80||"},
            (),
            SpanRole.SERVER,
        ),
        # names never make a waypoint: an Envoy upstream span of a proxy named waypoint is a client
        (SpanKind.CLIENT, "waypoint.default", {"component": "proxy"}, (), SpanRole.CLIENT),
        (SpanKind.SERVER, "my-gw", {}, ("my-gw",), SpanRole.WAYPOINT),
        (SpanKind.SERVER, "x", {"istio.canonical_service": "my-gw"}, ("my-gw",), SpanRole.WAYPOINT),
        # a service merely named like a waypoint, with no proxy mark, is an app
        (SpanKind.SERVER, "waypoint-tracker", {}, (), SpanRole.SERVER),
        # sidecar and gateway Envoys pair by kind
        (
            SpanKind.CLIENT,
            "x",
            {
                "node_id": "sidecar~10.0.0.1~p.ns~ns.svc.cluster.local",
                "component": "proxy",
                "upstream_cluster": "outbound|80||a.b.svc.cluster.local",
            },
            (),
            SpanRole.CLIENT,
        ),
        (
            SpanKind.CLIENT,
            "x",
            {"node_id": "router~10.0.0.1~gw.ns~ns.svc.cluster.local"},
            (),
            SpanRole.CLIENT,
        ),
        (SpanKind.CLIENT, "x", {}, (), SpanRole.CLIENT),
        (SpanKind.PRODUCER, "x", {}, (), SpanRole.CLIENT),
        (SpanKind.SERVER, "x", {}, (), SpanRole.SERVER),
        (SpanKind.CONSUMER, "x", {}, (), SpanRole.SERVER),
        (SpanKind.INTERNAL, "x", {}, (), SpanRole.OTHER),
    ],
)
def test_roles(
    kind: SpanKind,
    service: str,
    attrs: dict[str, AttrValue],
    names: tuple[str, ...],
    role: SpanRole,
) -> None:
    s = span(kind, 1, service=service, attrs=attrs)
    assert SpanNormalizer(frozenset(names)).role(s) is role


WAYPOINT = Endpoint("default", "waypoint", "waypoint", kind=NodeKind.WAYPOINT)


@pytest.mark.parametrize(
    ("service", "attrs", "expected"),
    [
        # canonical service + namespace
        ("waypoint.default", {}, WAYPOINT),
        # node_id only (no Istio custom tags), old resource naming
        ("waypoint.default", {"istio.canonical_service": "", "istio.namespace": ""}, WAYPOINT),
        # Istio 1.29: service.name names the destination; node_id still names the waypoint
        ("reviews.default", {"istio.canonical_service": "", "istio.namespace": ""}, WAYPOINT),
        # Istio 1.29 without node_id or tags: the destination's name is not taken for the waypoint
        (
            "reviews.default",
            {"istio.canonical_service": "", "istio.namespace": "", "node_id": ""},
            Endpoint("default", "waypoint", "waypoint", kind=NodeKind.WAYPOINT),
        ),
        # old Istio without node_id: service.name is the waypoint's
        (
            "ns-waypoint.shop",
            {
                "istio.canonical_service": "",
                "istio.namespace": "",
                "node_id": "",
                "upstream_cluster": "inbound-vip|80|http|cart.shop.svc.cluster.local",
            },
            Endpoint("shop", "ns-waypoint", "ns-waypoint", kind=NodeKind.WAYPOINT),
        ),
        (
            "x",
            {"istio.canonical_service": "shop-waypoint", "istio.namespace": "shop"},
            Endpoint("shop", "shop-waypoint", "waypoint", kind=NodeKind.WAYPOINT),
        ),
    ],
)
def test_waypoint_identity(service: str, attrs: dict[str, AttrValue], expected: Endpoint) -> None:
    w = waypoint_span(1, service=service, attrs=attrs)
    norm = SpanNormalizer()
    assert norm.waypoint(w, norm.waypoint_target(w)) == expected


@pytest.mark.parametrize(
    ("attrs", "directory", "expected"),
    [
        ({}, {}, REVIEWS),
        (
            {"upstream_address": "10.42.0.74:9080"},
            {"10.42.0.74": Endpoint("default", "reviews", "reviews-v2")},
            Endpoint("default", "reviews", "reviews-v2"),
        ),
        (
            {
                "upstream_cluster": "PassthroughCluster",
                "upstream_address": "203.0.113.7:443",
                "http.url": "https://api.example.com/x",
            },
            {},
            Endpoint("external", "api.example.com", kind=NodeKind.EXTERNAL),
        ),
        (
            {
                "upstream_cluster": "PassthroughCluster",
                "upstream_address": "203.0.113.7:443",
                "http.url": "",
            },
            {},
            Endpoint("external", "203.0.113.7", kind=NodeKind.EXTERNAL),
        ),
        (
            {"upstream_cluster": "PassthroughCluster", "upstream_address": "10.42.1.5:8080"},
            {"10.42.1.5": Endpoint("shop", "cart", "cart-v1")},
            Endpoint("shop", "cart", "cart-v1"),
        ),
        (
            {"upstream_cluster": "BlackHoleCluster", "http.url": "http://evil.example.org/"},
            {},
            Endpoint("external", "evil.example.org", kind=NodeKind.EXTERNAL),
        ),
        (
            {"upstream_cluster": "BlackHoleCluster"},
            {},
            Endpoint("unknown", "blackhole-of-waypoint.default", kind=NodeKind.UNKNOWN),
        ),
        (
            {"upstream_cluster": "inbound|9080||"},
            {},
            Endpoint("unknown", "callee-of-waypoint.default", kind=NodeKind.UNKNOWN),
        ),
        (
            {"upstream_cluster": "", "http.url": "http://ratings:9080/r/1"},
            {},
            Endpoint("default", "ratings"),
        ),
    ],
)
def test_waypoint_target(
    attrs: dict[str, AttrValue], directory: dict[str, Endpoint], expected: Endpoint
) -> None:
    w = waypoint_span(1, attrs=attrs)
    assert SpanNormalizer(directory=FakeDirectory(directory)).waypoint_target(w) == expected


def test_inbound_cluster_names_the_proxy_own_service_from_1_29_resource() -> None:
    w = waypoint_span(1, service="reviews.default", attrs={"upstream_cluster": "inbound|9080||"})
    assert SpanNormalizer().waypoint_target(w) == REVIEWS


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (app_resource("productpage", "shop"), Endpoint("shop", "productpage")),
        (
            app_resource("productpage", "shop", pod="productpage-v1-5f6d7c8b9-x2x4z"),
            Endpoint("shop", "productpage", "productpage-v1"),
        ),
        (
            {"service.name": "productpage", "service.namespace": "team-a"},
            Endpoint("team-a", "productpage"),
        ),
        ({"service.name": "productpage"}, Endpoint("default", "productpage")),
        (
            {"service.name": "p", "k8s.deployment.name": "p-v1", "k8s.namespace.name": "n"},
            Endpoint("n", "p", "p-v1"),
        ),
    ],
)
def test_app_endpoint(resource: dict[str, AttrValue], expected: Endpoint) -> None:
    s = client(1, service=str(resource["service.name"]), resource=resource)
    assert SpanNormalizer().app_endpoint(s) == expected


PP = Endpoint("default", "productpage")


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"peer.service": "ratings"}, Endpoint("default", "ratings")),
        (
            {"server.address": "ratings.shop.svc.cluster.local", "peer.service": ""},
            Endpoint("shop", "ratings"),
        ),
        (
            {"server.address": "api.stripe.com"},
            Endpoint("external", "api.stripe.com", kind=NodeKind.EXTERNAL),
        ),
        ({"net.peer.name": "Ratings:9080"}, Endpoint("default", "ratings")),
        (
            {"db.system": "postgresql", "db.name": "orders"},
            Endpoint("external", "postgresql:orders", kind=NodeKind.EXTERNAL),
        ),
        ({"db.system": "redis"}, Endpoint("external", "redis", kind=NodeKind.EXTERNAL)),
        (
            {"db.system": "postgresql", "server.address": "pg.data.svc.cluster.local"},
            Endpoint("data", "pg"),
        ),
        (
            {"messaging.system": "kafka", "messaging.destination.name": "orders"},
            Endpoint("external", "kafka:orders", kind=NodeKind.EXTERNAL),
        ),
        (
            {"rpc.service": "helloworld.Greeter"},
            Endpoint("external", "rpc:helloworld.Greeter", kind=NodeKind.EXTERNAL),
        ),
        (
            {"http.url": "https://user@api.example.com:8443/v1?q=1"},
            Endpoint("external", "api.example.com", kind=NodeKind.EXTERNAL),
        ),
        (
            {"network.peer.address": "10.1.2.3"},
            Endpoint("external", "10.1.2.3", kind=NodeKind.EXTERNAL),
        ),
        ({"network.peer.address": "10.9.9.9"}, Endpoint("shop", "cart", "cart-v1")),
        ({}, Endpoint("unknown", "callee-of-productpage.default", kind=NodeKind.UNKNOWN)),
    ],
)
def test_client_peer_named_by_best_attribute(
    attrs: dict[str, AttrValue], expected: Endpoint
) -> None:
    directory = FakeDirectory({"10.9.9.9": Endpoint("shop", "cart", "cart-v1")})
    assert SpanNormalizer(directory=directory).client_peer(client(1, attrs=attrs), PP) == expected


@pytest.mark.parametrize(
    ("attrs", "expected", "provenance"),
    [
        (
            {"client.address": "10.0.0.7"},
            Endpoint("unknown", "10.0.0.7", kind=NodeKind.UNKNOWN),
            Provenance.UNATTRIBUTED,
        ),
        (
            {"net.sock.peer.addr": "10.0.0.8:5555"},
            Endpoint("unknown", "10.0.0.8", kind=NodeKind.UNKNOWN),
            Provenance.UNATTRIBUTED,
        ),
        (
            {"network.peer.address": "10.9.9.9"},
            Endpoint("shop", "cart", "cart-v1"),
            Provenance.PEER_ADDRESS,
        ),
        (
            {},
            Endpoint("unknown", "caller-of-reviews.default", kind=NodeKind.UNKNOWN),
            Provenance.UNATTRIBUTED,
        ),
        (
            {"messaging.system": "kafka", "messaging.destination.name": "orders"},
            Endpoint("external", "kafka:orders", kind=NodeKind.EXTERNAL),
            Provenance.PEER_ATTRIBUTE,
        ),
    ],
)
def test_server_caller(
    attrs: dict[str, AttrValue], expected: Endpoint, provenance: Provenance
) -> None:
    directory = FakeDirectory({"10.9.9.9": Endpoint("shop", "cart", "cart-v1")})
    assert SpanNormalizer(directory=directory).server_caller(server(1, attrs=attrs), REVIEWS) == (
        expected,
        provenance,
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1:4567", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("[fd00::1]:80", "fd00::1"),
        ("fd00::1", "fd00::1"),
        ("reviews:9080", "reviews"),
    ],
)
def test_strip_port(address: str, expected: str) -> None:
    assert strip_port(address) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://reviews:9080/reviews/0", "reviews"),
        ("https://u:p@API.example.com/x?y", "api.example.com"),
        ("reviews.default.svc.cluster.local:9080/*", "reviews.default.svc.cluster.local"),
        ("", ""),
    ],
)
def test_url_host(url: str, host: str) -> None:
    assert url_host(url) == host


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("waypoint-6b9f7c7d9-abcde", "waypoint"),
        ("reviews-v1-545db77b95-2x4z9", "reviews-v1"),
        ("ztunnel-abcde", "ztunnel-abcde"),
        ("standalone", "standalone"),
    ],
)
def test_pod_workload(pod: str, workload: str) -> None:
    assert pod_workload(pod) == workload


def test_unknown_callers_are_named_per_evidence_never_one_sink() -> None:
    a = unknown_caller("", Endpoint("default", "reviews"))
    b = unknown_caller("", Endpoint("default", "ratings"))
    c = unknown_caller("10.0.0.9", Endpoint("default", "reviews"))
    assert len({a.node_id(), b.node_id(), c.node_id()}) == 3
    assert {a.kind, b.kind, c.kind} == {NodeKind.UNKNOWN}


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(alphabet="[]:.1a/envoy"),
        st.sampled_from(
            [
                "envoy://internal_client_address/",
                "10.42.0.7:5555",
                "[fd00::1]:80",
                "fd00::1",
                "host",
            ]
        ),
    )
)
def test_address_of_is_strip_port_of_a_string_attribute(value: object) -> None:
    text = value if isinstance(value, str) else ""
    expected = "" if not text or text.startswith("envoy://") else strip_port(text)
    assert address_of(value) == expected  # type: ignore[arg-type]
