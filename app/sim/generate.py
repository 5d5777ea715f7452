"""Seeded random meshes of any size whose truth stays decidable (see app/sim/invariants.py).

Services sit in tiers; a service calls 1 to 4 services of later tiers, so the graph is a DAG. Edges
are chosen greedily and a candidate target is skipped when the call would break an invariant:

* through a waypoint, an uninstrumented caller may only be the *first and only* caller of the
  target, from a single workload; the target is then closed to further callers;
* without a waypoint, an HTTP call needs both ends instrumented or neither;
* an uncaptured caller needs a captured or instrumented peer (otherwise nothing sees the call).

Tier-0 services that are not instrumented get callers outside the mesh; some captured services
call external hosts (opaque TLS: l4_only); the last tier holds TCP databases, some not enrolled in
ambient (plaintext links). The same seed always gives the same topology.
"""

from __future__ import annotations

import random

from app.sim.invariants import validate
from app.sim.placement import Placement
from app.sim.topology import OUTSIDE, Edge, External, Service, Topology


def generate_mesh(
    services: int = 200,
    seed: int = 0,
    *,
    namespaces: int = 8,
    nodes: int = 12,
    tiers: int = 5,
    waypoint_namespace_share: float = 0.6,
    waypoint_service_share: float = 0.7,
    instrumented_share: float = 0.5,
    uncaptured_share: float = 0.05,
    database_share: float = 0.3,
    external_hosts: int = 3,
    mean_rate_rps: float = 2.0,
) -> Topology:
    if services < 2 or tiers < 2:
        raise ValueError("a mesh needs at least 2 services in 2 tiers")
    rng = random.Random(f"mesh:{seed}")
    place = Placement(nodes, rng)
    ns_names = [f"ns-{i:02d}" for i in range(namespaces)]
    waypoints = {
        ns: place.waypoint(ns) for ns in ns_names if rng.random() < waypoint_namespace_share
    }

    tier_of: list[int] = [min(tiers - 1, i * tiers // services) for i in range(services)]
    built: list[Service] = []
    for i in range(services):
        name = f"svc-{i:03d}"
        ns = rng.choice(ns_names)
        last_tier = tier_of[i] == tiers - 1
        database = last_tier and rng.random() < database_share
        captured = rng.random() >= uncaptured_share
        instrumented = not database and rng.random() < instrumented_share
        waypoint = ""
        if not database and captured and ns in waypoints and rng.random() < waypoint_service_share:
            waypoint = waypoints[ns].name
        versions = ("v1",) if database else tuple(f"v{v + 1}" for v in range(rng.randint(1, 3)))
        built.append(
            Service(
                namespace=ns,
                name=name,
                workloads=tuple(place.workload(name, v) for v in versions),
                service_account=name,
                port=5432 if database else 8080,
                protocol="tcp" if database else "http",
                instrumented=instrumented,
                captured=captured,
                waypoint=waypoint,
            )
        )
    externals = tuple(External(f"api-{i}.example.com") for i in range(external_hosts))

    edges: list[Edge] = []
    callers: dict[str, int] = {}  # target id -> caller workloads so far
    closed: set[str] = set()  # targets with an unattributable caller: no one else may join

    def rate() -> float:
        return round(mean_rate_rps * rng.lognormvariate(0, 0.5), 3)

    def add(source: Service | None, target: Service, workloads: tuple[str, ...]) -> None:
        edges.append(
            Edge(
                source=source.id if source else OUTSIDE,
                target=target.id,
                rate_rps=rate(),
                latency_median_ms=round(rng.uniform(1, 60), 2),
                latency_sigma=round(rng.uniform(0.2, 0.8), 2),
                error_rate=0.0 if rng.random() < 0.6 else round(rng.uniform(0.001, 0.05), 4),
                not_found_rate=0.0 if rng.random() < 0.8 else 0.01,
                source_workloads=workloads,
                requests_per_connection=rng.choice((1, 5, 10, 50)),
                request_bytes=rng.randint(100, 2000),
                response_bytes=rng.randint(200, 20000),
                path=f"/api/{target.name}",
            )
        )
        n = len(workloads) if workloads else (len(source.workloads) if source else 1)
        callers[target.id] = callers.get(target.id, 0) + n

    def placement_for(source: Service | None, target: Service) -> tuple[str, ...] | None:
        """Caller workloads for a call source -> target, or None when it would break a rule."""
        if target.id in closed:
            return None
        source_captured = source is not None and source.captured
        source_instrumented = source is not None and source.instrumented
        span_pair = source_instrumented and target.instrumented and target.protocol == "http"
        if not (source_captured or target.captured or span_pair):
            return None  # invisible to ztunnel and no span pair
        if target.protocol == "tcp":
            return ()
        via = bool(target.waypoint) and source_captured
        if via and not source_instrumented:
            if callers.get(target.id):
                return None
            closed.add(target.id)
            assert source is not None
            return (source.workloads[0].name,)
        if not via and source_instrumented != target.instrumented:
            return None
        return ()

    for i, service in enumerate(built):
        if tier_of[i] == 0 and not service.instrumented:
            workloads = placement_for(None, service)
            if workloads is not None and rng.random() < 0.7:
                add(None, service, workloads)
                closed.add(service.id)  # outside callers are unattributable: keep them alone

    by_tier: dict[int, list[Service]] = {}
    for i, service in enumerate(built):
        by_tier.setdefault(tier_of[i], []).append(service)
    for i, source in enumerate(built):
        if source.protocol == "tcp":
            continue
        later = [s for t in range(tier_of[i] + 1, tiers) for s in by_tier.get(t, [])]
        rng.shuffle(later)
        wanted = rng.randint(1, 4)
        for target in later:
            if wanted == 0:
                break
            workloads = placement_for(source, target)
            if workloads is not None:
                add(source, target, workloads)
                wanted -= 1
        if externals and source.captured and rng.random() < 0.1:
            host = rng.choice(externals).host
            edges.append(
                Edge(
                    source.id,
                    host,
                    rate_rps=rate(),
                    latency_median_ms=round(rng.uniform(20, 200), 2),
                    requests_per_connection=1,
                    request_bytes=rng.randint(300, 3000),
                    response_bytes=rng.randint(1000, 50000),
                )
            )
    used_hosts = {e.target for e in edges}
    return validate(
        Topology(
            services=tuple(built),
            edges=tuple(edges),
            waypoints=tuple(waypoints.values()),
            externals=tuple(x for x in externals if x.host in used_hosts),
            nodes=place.nodes,
        )
    )
