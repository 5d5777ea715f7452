"""The default simulated mesh: Istio's bookinfo in ambient mode, namespace `bookinfo`.

| edge | coverage | why |
|---|---|---|
| outside → productpage | l4_only, plaintext | users outside the mesh (ztunnel README case d) |
| productpage → details | l4_only | details has no waypoint and neither side is instrumented: the blind spot |
| productpage → reviews (v1, v2, v3) | full via waypoint | productpage is not instrumented: the waypoint span is a root, attributed from the single L4 caller |
| reviews-v2, reviews-v3 → ratings | full via waypoint | reviews is instrumented: the waypoint span's parent is reviews' CLIENT span |
| ratings → mongodb | l4_only, plaintext | TCP to a database pod not enrolled in ambient (ztunnel README case c, mirror) |
| details → www.googleapis.com | l4_only, plaintext | traffic leaving the mesh (ztunnel README case e) |
"""

from __future__ import annotations

import random

from app.sim.invariants import validate
from app.sim.placement import Placement
from app.sim.topology import OUTSIDE, Edge, External, Service, Topology

NAMESPACE = "bookinfo"


def bookinfo(namespace: str = NAMESPACE, nodes: int = 3, seed: int = 7) -> Topology:
    place = Placement(nodes, random.Random(seed))
    ns = namespace

    def svc(
        name: str,
        versions: tuple[str, ...] = ("v1",),
        *,
        instrumented: bool = False,
        waypoint: str = "",
    ) -> Service:
        workloads = tuple(place.workload(name, v) for v in versions)
        return Service(
            namespace=ns,
            name=name,
            workloads=workloads,
            service_account=f"bookinfo-{name}",
            instrumented=instrumented,
            waypoint=waypoint,
        )

    waypoint = place.waypoint(ns)
    services = (
        svc("productpage"),
        svc("details"),
        svc("reviews", ("v1", "v2", "v3"), instrumented=True, waypoint=waypoint.name),
        svc("ratings", waypoint=waypoint.name),
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
    edges = (
        Edge(OUTSIDE, f"{ns}/productpage", rate_rps=8.0, latency_median_ms=40.0),
        Edge(f"{ns}/productpage", f"{ns}/details", rate_rps=8.0, latency_median_ms=4.0),
        Edge(
            f"{ns}/productpage",
            f"{ns}/reviews",
            rate_rps=8.0,
            latency_median_ms=18.0,
            latency_sigma=0.6,
            error_rate=0.02,
            path="/reviews/0",
        ),
        Edge(
            f"{ns}/reviews",
            f"{ns}/ratings",
            rate_rps=6.0,
            latency_median_ms=3.0,
            latency_sigma=0.4,
            error_rate=0.01,
            not_found_rate=0.01,
            source_workloads=("reviews-v2", "reviews-v3"),
            path="/ratings/0",
        ),
        Edge(
            f"{ns}/ratings",
            f"{ns}/mongodb",
            rate_rps=6.0,
            latency_median_ms=1.0,
            requests_per_connection=50,
            request_bytes=120,
            response_bytes=600,
        ),
        Edge(
            f"{ns}/details",
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
            waypoints=(waypoint,),
            externals=(googleapis,),
            nodes=place.nodes,
        )
    )
