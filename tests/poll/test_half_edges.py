"""Waypoint half-edges → one logical edge: the shape rule, server legs alone, pod-IP joins."""

from __future__ import annotations

from app.correlate.identity import NodeIdentity
from app.domain import NodeKind, Reporter, ZoneBytes
from app.poll.half_edges import to_samples
from app.poll.ztunnel_labels import Counts
from tests.poll.fake_ztunnel import destination, series_labels, source

C = Counts(opened=3, closed=3, request_bytes=400, response_bytes=1800)
NS = "bookinfo"


def _client_leg(caller: str, waypoint: str, service: str) -> dict[str, str]:
    wp = destination(waypoint, ns=NS, svc=waypoint, sa=waypoint)
    wp |= {
        "destination_service": f"{service}.{NS}.svc.cluster.local",
        "destination_service_name": service,
    }
    return series_labels("source", **source(caller, ns=NS), **wp)


def _server_leg(waypoint: str, pod: str, canonical: str, service: str) -> dict[str, str]:
    return series_labels(
        "destination",
        **source(waypoint, ns=NS, svc=waypoint, sa=waypoint),
        **destination(pod, ns=NS, svc=canonical, service=service),
    )


def test_a_waypoint_of_any_name_is_recognised_by_the_half_edge_shape() -> None:
    identity = NodeIdentity()
    legs = [
        (_client_leg("productpage-v1", "bookinfo-l7", "bookinfo-reviews"), C, 0.0),
        (_server_leg("bookinfo-l7", "reviews-v1", "reviews", "bookinfo-reviews"), C, 0.0),
    ]
    samples = to_samples(legs, 60.0, identity)
    assert identity.is_waypoint(NS, "bookinfo-l7")
    assert len(samples) == 1  # the client leg counts the call, the server leg does not
    (sample,) = samples
    assert sample.via_waypoint == f"{NS}/bookinfo-l7" and sample.reporter is Reporter.SOURCE
    # the server leg taught that the Service is an alias of the canonical service
    assert identity.canonical(sample.target).node_id() == f"{NS}/reviews"


def test_an_ordinary_workload_named_waypoint_keeps_its_traffic() -> None:
    identity = NodeIdentity()
    direct = series_labels(
        "source",
        **source("waypoint-ui-v1", ns=NS, svc="waypoint-ui"),
        **destination("details-v1", ns=NS),
    )
    (sample,) = to_samples([(direct, C, 0.0)], 60.0, identity)
    assert sample.source.node_id() == f"{NS}/waypoint-ui" and sample.via_waypoint == ""
    assert not identity.is_waypoint(NS, "waypoint-ui-v1")


def test_a_pod_calling_its_own_service_is_not_a_waypoint() -> None:
    identity = NodeIdentity()
    to_self = (_client_leg("productpage-v1", "reviews-v1", "reviews"), C, 0.0)
    # reviews-v1 is a pod of reviews (its canonical service is reviews), calling reviews again
    to_self[0]["destination_canonical_service"] = "reviews"
    onward = (_server_leg("reviews-v1", "reviews-v2", "reviews", "reviews"), C, 0.0)
    onward[0]["source_canonical_service"] = "reviews"
    to_samples([to_self, onward], 60.0, identity)
    assert not identity.is_waypoint(NS, "reviews-v1")


def test_a_server_leg_without_a_client_leg_is_traffic_into_the_destination() -> None:
    identity = NodeIdentity(waypoints=[f"{NS}/bookinfo-l7"])
    leg = _server_leg("bookinfo-l7", "reviews-v1", "reviews", "bookinfo-reviews")
    (sample,) = to_samples([(leg, C, 0.0)], 60.0, identity)
    assert sample.target.node_id() == f"{NS}/reviews"
    assert sample.source.kind is NodeKind.UNKNOWN
    assert sample.via_waypoint == f"{NS}/bookinfo-l7"
    assert (sample.bytes_sent, sample.reporter) == (400, Reporter.DESTINATION)


def test_pod_ip_traffic_through_a_workload_waypoint_joins_to_the_one_destination() -> None:
    identity = NodeIdentity(waypoints=[f"{NS}/pods-l7"])
    client = _client_leg("reviews-v1", "pods-l7", "unknown")
    client |= {k: "unknown" for k in ("destination_service", "destination_service_name")}
    client["destination_service_namespace"] = "unknown"
    server = _server_leg("pods-l7", "ledger-0", "ledger", "unknown")
    server |= {k: "unknown" for k in ("destination_service", "destination_service_name")}
    server["destination_service_namespace"] = "unknown"
    (sample,) = to_samples([(client, C, 0.0), (server, C, 0.0)], 60.0, identity)
    assert (sample.source.node_id(), sample.target.node_id()) == (f"{NS}/reviews", f"{NS}/ledger")
    assert sample.reporter is Reporter.SOURCE and sample.via_waypoint == f"{NS}/pods-l7"
    # a client leg whose waypoint printed no server leg names no destination
    assert to_samples([(client, C, 0.0)], 60.0, identity) == []


def test_the_waypoint_zone_comes_from_its_spans_when_no_label_or_node_names_it() -> None:
    identity = NodeIdentity(waypoints=[f"{NS}/waypoint"])
    identity.learn_waypoint_zone(NS, "waypoint", "waypoint-6b9f-abcde", "zone-a")
    client = _client_leg("productpage-v1", "waypoint", "reviews")
    client |= {"source_zone": "zone-b", "destination_zone": "unknown"}
    server = _server_leg("waypoint", "reviews-v2", "reviews", "reviews")
    server |= {"source_zone": "unknown", "destination_zone": "zone-b"}
    (sample,) = to_samples([(client, C, 0.0), (server, C, 0.0)], 60.0, identity)
    assert sample.zones == (ZoneBytes("zone-b", "zone-a", "zone-b", 2200),)
    # ztunnel's label for the waypoint wins over the spans; so does node topology
    labelled = {**client, "destination_zone": "zone-c"}
    (sample,) = to_samples([(labelled, C, 0.0), (server, C, 0.0)], 60.0, identity)
    assert [z.waypoint_zone for z in sample.zones] == ["zone-c"]

    def node_topology(ns: str, workload: str) -> str:
        return "zone-d" if workload == "waypoint" else ""

    (sample,) = to_samples([(client, C, 0.0), (server, C, 0.0)], 60.0, identity, node_topology)
    assert [z.waypoint_zone for z in sample.zones] == ["zone-d"]
    # a server leg alone (caller unknown): its waypoint hop is still placed
    (alone,) = to_samples([(server, C, 0.0)], 60.0, identity)
    assert alone.zones == (ZoneBytes("", "zone-a", "zone-b", 2200),)
