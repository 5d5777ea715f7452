"""The five cases of tests/data/ztunnel/README.md, series → L4Sample."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from app.correlate.identity import NodeIdentity
from app.domain import Endpoint, L4Sample, NodeKind, Reporter
from app.poll.half_edges import to_samples
from app.poll.ztunnel_labels import Counts
from tests.poll.fake_ztunnel import destination, principal, series_labels, source

COUNTS = Counts(opened=2, closed=1, request_bytes=300, response_bytes=5000)


def waypoints() -> NodeIdentity:
    return NodeIdentity(waypoints=["istio-system/ingress-hop", "default/waypoint", "ns-waypoint"])


def to_sample(
    labels: Mapping[str, str], counts: Counts, start_s: float, end_s: float, wp: NodeIdentity
) -> L4Sample | None:
    """One series alone, as app/poll/half_edges.py turns it into samples (0 or 1)."""
    samples = to_samples([(labels, counts, start_s)], end_s, wp)
    assert len(samples) <= 1
    return samples[0] if samples else None


WP = waypoints()
A = Endpoint(
    "default", "productpage", "productpage-v1", principal=principal("default", "productpage")
)
B = Endpoint("default", "details", "details-v1", principal=principal("default", "details"))


@pytest.mark.parametrize("reporter", ["source", "destination"])
def test_direct_call_keeps_reporter_and_request_direction(reporter: str) -> None:
    labels = series_labels(reporter, **source("productpage-v1"), **destination("details-v1"))
    sample = to_sample(labels, COUNTS, 0, 60, WP)
    assert sample is not None
    assert (sample.source, sample.target, sample.reporter) == (A, B, Reporter(reporter))
    assert (sample.bytes_sent, sample.bytes_received) == (300, 5000)
    assert sample.mutual_tls and sample.via_waypoint == ""


def test_waypoint_client_leg_kept_server_leg_dropped() -> None:
    wp = destination("waypoint", svc="waypoint", sa="waypoint") | {
        "destination_service": "details.default.svc.cluster.local",
        "destination_service_name": "details",
    }
    client_leg = series_labels("source", **source("productpage-v1"), **wp)
    sample = to_sample(client_leg, COUNTS, 0, 60, WP)
    assert sample is not None
    assert sample.target == Endpoint("default", "details")
    assert sample.source == A and sample.via_waypoint == "default/waypoint"
    server_leg = series_labels(
        "destination", **source("waypoint", sa="waypoint"), **destination("details-v1")
    )
    both = to_samples([(client_leg, COUNTS, 0), (server_leg, COUNTS, 0)], 60, WP)
    assert [s.source for s in both] == [A]  # the client leg counted the call
    # the waypoint Envoy's own stats never count
    assert (
        to_sample(
            series_labels("waypoint", **source("productpage-v1"), **destination("details-v1")),
            COUNTS,
            0,
            60,
            WP,
        )
        is None
    )


def test_waypoint_by_setting_and_by_principal() -> None:
    # A server leg alone (the caller opened HBONE itself) counts, from an unknown caller.
    by_setting = series_labels(
        "destination", **source("ingress-hop", ns="istio-system"), **destination("details-v1")
    )
    sample = to_sample(by_setting, COUNTS, 0, 60, WP)
    assert sample is not None and sample.via_waypoint == "istio-system/ingress-hop"
    assert sample.source.kind is NodeKind.UNKNOWN
    by_sa = series_labels(
        "destination", **source("gw-abc", sa="ns-waypoint"), **destination("details-v1")
    )
    sample = to_sample(by_sa, COUNTS, 0, 60, WP)
    assert sample is not None and sample.via_waypoint == "default/ns-waypoint"


def test_plaintext_from_uncaptured_pod() -> None:
    labels = series_labels(
        "destination",
        **source("legacy-v1") | {"source_principal": "unknown"},
        **destination("details-v1"),
        connection_security_policy="unknown",
    )
    sample = to_sample(labels, COUNTS, 0, 60, WP)
    assert sample is not None and not sample.mutual_tls
    assert sample.source == Endpoint("default", "legacy", "legacy-v1")


def test_unknown_callers_are_per_destination_not_one_sink() -> None:
    def caller_of(workload: str) -> Endpoint:
        labels = series_labels(
            "destination", **destination(workload), connection_security_policy="unknown"
        )
        sample = to_sample(labels, COUNTS, 0, 60, WP)
        assert sample is not None
        return sample.source

    a, b = caller_of("details-v1"), caller_of("reviews-v1")
    assert a.kind is NodeKind.UNKNOWN and a != b
    other_td = series_labels(
        "destination",
        source_principal=principal("shop", "cart", "other"),
        **destination("details-v1"),
    )
    sample = to_sample(other_td, COUNTS, 0, 60, WP)
    assert sample is not None and sample.source == Endpoint(
        "shop", "cart", "", NodeKind.EXTERNAL, principal("shop", "cart", "other")
    )


def test_traffic_leaving_the_mesh() -> None:
    labels = series_labels(
        "source",
        **source("productpage-v1"),
        destination_service="api.example.com",
        destination_service_name="api.example.com",
        connection_security_policy="unknown",
    )
    sample = to_sample(labels, COUNTS, 0, 60, WP)
    assert sample is not None and sample.target == Endpoint(
        "external", "api.example.com", kind=NodeKind.EXTERNAL
    )
    nothing = series_labels(
        "source", **source("productpage-v1"), connection_security_policy="unknown"
    )
    sample = to_sample(nothing, COUNTS, 0, 60, WP)
    assert sample is not None and sample.target.kind is NodeKind.UNKNOWN
    assert sample.target.service == "unknown-from-default.productpage"


def test_pod_ip_dialled_destination_service_unknown_is_resolved() -> None:
    labels = series_labels(
        "source",
        **source("productpage-v1"),
        **destination("details-v1")
        | {
            "destination_service": "unknown",
            "destination_service_name": "unknown",
            "destination_service_namespace": "unknown",
        },
    )
    sample = to_sample(labels, COUNTS, 0, 60, WP)
    assert sample is not None and sample.target == B
