"""Bookinfo as a real ambient cluster shows it: names that disagree, proxies outside ambient.

What today's `bookinfo()` leaves out, each from a source (see app/sim/topology.py,
ztunnel_series.py, envoy_spans.py and istio.py for the wire facts):

| feature | where |
|---|---|
| Kubernetes Service, canonical service and OTel `service.name` all differ | `reviews` (Service `bookinfo-reviews`, pods `app=reviews`, OTel `reviews-svc`), `ratings` (`bookinfo-ratings`, `ratings-svc`) |
| a waypoint named without "waypoint" | Gateway `bookinfo-l7` serving reviews, ratings, waypoint-ui |
| an ordinary workload named with "waypoint" | `waypoint-ui`: called through `bookinfo-l7` by productpage, calls ratings (through it) and mongodb (direct) |
| an ingress gateway (not captured) in front of productpage | `istio-system/istio-ingressgateway` → productpage (full: gateway spans + productpage's ztunnel, reporter=destination); the outside client `198.51.100.23` → gateway (l7_only, from the gateway's SERVER span `peer.address`) |
| a sidecar workload | `legacy/notifier`: calls details (full: its outbound CLIENT span + details' ztunnel), called by the gateway (l7_only: gateway spans + its inbound SERVER span) |
| a workload waypoint with pod-IP traffic | `bookinfo-pods` (`istio.io/waypoint-for: workload`) serving `ledger`'s pods; reviews dials ledger's pod IPs (client leg `destination_service="unknown"`, waypoint span to `encap`) |
| the blind spot, plaintext links, egress | productpage → details (l4_only), ratings/waypoint-ui → mongodb (not enrolled), details → www.googleapis.com |

The gateway routes to services without a waypoint: by default a gateway bypasses waypoints unless
the Service or namespace has `istio.io/ingress-use-waypoint=true` (istio/istio
`pilot/pkg/serviceregistry/ambient/services.go`, `ingressUseWaypointFromLabels`). The gateway's
service account is the `istio-ingress` chart's `<gateway name>-service-account`
(`manifests/charts/gateways/istio-ingress/templates/deployment.yaml`).
"""

from __future__ import annotations

import random

from app.sim.invariants import validate
from app.sim.placement import Placement
from app.sim.topology import Edge, External, Service, Topology

NAMESPACE = "bookinfo"
GATEWAY_NAMESPACE = "istio-system"
LEGACY_NAMESPACE = "legacy"
OUTSIDE_CLIENT_IP = "198.51.100.23"  # TEST-NET-2: the one client in front of the gateway


def realistic_bookinfo(namespace: str = NAMESPACE, nodes: int = 3, seed: int = 7) -> Topology:
    place = Placement(nodes, random.Random(f"realistic:{seed}"))
    ns = namespace
    l7 = place.waypoint(ns, "bookinfo-l7")
    pods = place.waypoint(ns, "bookinfo-pods", waypoint_for="workload")

    def svc(name: str, versions: tuple[str, ...] = ("v1",), **options: object) -> Service:
        return Service(
            namespace=ns,
            name=name,
            workloads=tuple(place.workload(name, v) for v in versions),
            service_account=f"bookinfo-{name}",
            **options,  # type: ignore[arg-type]
        )

    gateway = Service(
        namespace=GATEWAY_NAMESPACE,
        name="istio-ingressgateway",
        workloads=(place.deployment("istio-ingressgateway"),),
        service_account="istio-ingressgateway-service-account",
        port=8080,
        captured=False,
        envoy="gateway",
    )
    notifier = Service(
        namespace=LEGACY_NAMESPACE,
        name="notifier",
        workloads=(place.workload("notifier"),),
        service_account="notifier",
        captured=False,
        envoy="sidecar",
    )
    services = (
        gateway,
        notifier,
        svc("productpage"),
        svc("details"),
        svc(
            "reviews",
            ("v1", "v2", "v3"),
            k8s_service="bookinfo-reviews",
            otel_service_name="reviews-svc",
            instrumented=True,
            waypoint=l7.name,
        ),
        svc(
            "ratings",
            k8s_service="bookinfo-ratings",
            otel_service_name="ratings-svc",
            instrumented=True,
            waypoint=l7.name,
        ),
        svc("waypoint-ui", instrumented=True, waypoint=l7.name),
        svc("ledger", port=8080, workload_waypoint=pods.name),
        Service(
            namespace=ns,
            name="mongodb",
            workloads=(place.workload("mongodb"),),
            service_account="bookinfo-mongodb",
            port=27017,
            protocol="tcp",
            captured=False,
        ),
    )
    googleapis = External("www.googleapis.com")
    b = f"{ns}/"
    edges = (
        Edge(
            gateway.id,
            b + "productpage",
            rate_rps=8.0,
            latency_median_ms=40.0,
            path="/productpage",
            client_ip=OUTSIDE_CLIENT_IP,
        ),
        Edge(
            gateway.id,
            notifier.id,
            rate_rps=1.0,
            latency_median_ms=12.0,
            error_rate=0.02,
            path="/notify",
            client_ip=OUTSIDE_CLIENT_IP,
        ),
        Edge(b + "productpage", b + "details", rate_rps=8.0, latency_median_ms=4.0),
        Edge(
            b + "productpage",
            b + "reviews",
            rate_rps=8.0,
            latency_median_ms=18.0,
            latency_sigma=0.6,
            error_rate=0.02,
            path="/reviews/0",
        ),
        Edge(b + "productpage", b + "waypoint-ui", rate_rps=3.0, latency_median_ms=9.0, path="/ui"),
        Edge(
            b + "reviews",
            b + "ratings",
            rate_rps=6.0,
            latency_median_ms=3.0,
            latency_sigma=0.4,
            error_rate=0.01,
            not_found_rate=0.01,
            source_workloads=("reviews-v2", "reviews-v3"),
            path="/ratings/0",
        ),
        Edge(
            b + "waypoint-ui", b + "ratings", rate_rps=2.0, latency_median_ms=3.5, path="/ratings/1"
        ),
        Edge(
            b + "reviews",
            b + "ledger",
            rate_rps=2.0,
            latency_median_ms=6.0,
            error_rate=0.01,
            path="/ledger/entries",
            address="pod",
        ),
        Edge(
            b + "ratings",
            b + "mongodb",
            rate_rps=6.0,
            latency_median_ms=1.0,
            requests_per_connection=50,
            request_bytes=120,
            response_bytes=600,
        ),
        Edge(
            b + "waypoint-ui",
            b + "mongodb",
            rate_rps=1.0,
            latency_median_ms=1.0,
            requests_per_connection=20,
            request_bytes=90,
            response_bytes=300,
        ),
        Edge(notifier.id, b + "details", rate_rps=1.0, latency_median_ms=5.0, path="/details/1"),
        Edge(
            b + "details",
            googleapis.host,
            rate_rps=1.0,
            latency_median_ms=90.0,
            requests_per_connection=1,
            request_bytes=900,
            response_bytes=5200,
        ),
    )
    return validate(
        Topology(
            services=services,
            edges=edges,
            waypoints=(l7, pods),
            externals=(googleapis,),
            nodes=place.nodes,
        )
    )
