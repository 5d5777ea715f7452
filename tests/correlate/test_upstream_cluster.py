"""upstream_cluster values → destination."""

from __future__ import annotations

import pytest

from app.correlate.upstream_cluster import ClusterKind, fqdn_endpoint, parse_upstream_cluster
from app.domain import Endpoint, NodeKind

REVIEWS = Endpoint("default", "reviews")


@pytest.mark.parametrize(
    ("raw", "kind", "port", "subset", "target"),
    [
        (
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            ClusterKind.OUTBOUND,
            9080,
            "v1",
            REVIEWS,
        ),
        (
            "outbound|9080||reviews.default.svc.cluster.local",
            ClusterKind.OUTBOUND,
            9080,
            "",
            REVIEWS,
        ),
        (
            "inbound-vip|9080|http|reviews.default.svc.cluster.local",
            ClusterKind.INBOUND_VIP,
            9080,
            "http",
            REVIEWS,
        ),
        (
            "inbound-vip|9080|http|reviews.default.svc.cluster.local;",
            ClusterKind.INBOUND_VIP,
            9080,
            "http",
            REVIEWS,
        ),
        (
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
            ClusterKind.OUTBOUND,
            9080,
            "v1",
            REVIEWS,
        ),
        (
            "outbound_.9080_._.reviews.default.svc.cluster.local",
            ClusterKind.OUTBOUND,
            9080,
            "",
            REVIEWS,
        ),
        ("inbound|9080||", ClusterKind.INBOUND, 9080, "", None),
        ("inbound|9080||;", ClusterKind.INBOUND, 9080, "", None),
        (
            "outbound|443||api.example.com",
            ClusterKind.OUTBOUND,
            443,
            "",
            Endpoint("external", "api.example.com", kind=NodeKind.EXTERNAL),
        ),
        (
            "outbound|5432||db.data.svc.cluster.local",
            ClusterKind.OUTBOUND,
            5432,
            "",
            Endpoint("data", "db"),
        ),
        ("PassthroughCluster", ClusterKind.PASSTHROUGH, 0, "", None),
        ("PassthroughCluster;", ClusterKind.PASSTHROUGH, 0, "", None),
        ("InboundPassthroughClusterIpv4", ClusterKind.PASSTHROUGH, 0, "", None),
        ("BlackHoleCluster", ClusterKind.BLACKHOLE, 0, "", None),
        ("BlackHoleCluster;", ClusterKind.BLACKHOLE, 0, "", None),
        ("connect_originate", ClusterKind.OTHER, 0, "", None),
        ("", ClusterKind.OTHER, 0, "", None),
        ("outbound|x|v1|reviews.default.svc.cluster.local", ClusterKind.OUTBOUND, 0, "v1", REVIEWS),
    ],
)
def test_parse(
    raw: str, kind: ClusterKind, port: int, subset: str, target: Endpoint | None
) -> None:
    parsed = parse_upstream_cluster(raw)
    assert (parsed.kind, parsed.port, parsed.subset, parsed.target) == (kind, port, subset, target)


def test_parses_are_cached() -> None:
    raw = "outbound|9080||ratings.default.svc.cluster.local"
    assert parse_upstream_cluster(raw) is parse_upstream_cluster(raw)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("reviews.default.svc.cluster.local", REVIEWS),
        ("Reviews.Default.svc.cluster.local.", REVIEWS),
        ("reviews.default.svc.corp.example", REVIEWS),
        ("example.com", Endpoint("external", "example.com", kind=NodeKind.EXTERNAL)),
        ("a.b.c.d", Endpoint("external", "a.b.c.d", kind=NodeKind.EXTERNAL)),
    ],
)
def test_fqdn_endpoint(host: str, expected: Endpoint) -> None:
    assert fqdn_endpoint(host) == expected
