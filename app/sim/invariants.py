"""The rules a topology must follow for its truth to be decidable from the wire alone."""

from __future__ import annotations

from collections import defaultdict

from app.sim.topology import OUTSIDE, Topology


class TopologyError(ValueError):
    """The topology breaks an invariant; the message lists every violation."""


def violations(topology: Topology) -> list[str]:
    """Every broken invariant, as readable sentences (empty when the topology is sound).

    1. Names resolve: edges name known services (or OUTSIDE / a known external host), caller
       workloads exist, waypoints exist in the service's namespace; no duplicate edges.
    2. Waypoints serve only captured HTTP services.
    3. Every edge is observable: ztunnel sees it (one end captured) or both ends emit spans.
    4. **Single L4 candidate.** A waypoint span from an uninstrumented caller has no parent, so the
       correlator attributes it from the L4 edges into the destination at query time. That is exact
       only when the destination has exactly one caller workload over all its edges (outside
       callers count as one); otherwise the caller must be instrumented.
    5. **No half-instrumented direct calls.** Without a waypoint, an HTTP call's L7 evidence is a
       CLIENT/SERVER pair; with only one side instrumented the lone span names no peer reliably,
       so both sides are instrumented or neither is (callers outside the mesh count as not).
    """
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    callers: dict[str, set[str]] = defaultdict(set)
    unattributed_into: set[str] = set()
    for service in topology.services:
        if service.waypoint:
            try:
                topology.waypoint(service.namespace, service.waypoint)
            except KeyError:
                found.append(f"{service.id}: waypoint {service.waypoint} is not deployed")
            if service.protocol != "http" or not service.captured:
                found.append(f"{service.id}: a waypoint serves only captured HTTP services")
    for edge in topology.edges:
        name = f"{edge.source} -> {edge.target}"
        if (edge.source, edge.target) in seen:
            found.append(f"{name}: duplicate edge")
        seen.add((edge.source, edge.target))
        if edge.source != OUTSIDE and not topology.has_service(edge.source):
            found.append(f"{name}: unknown source")
            continue
        if not topology.has_service(edge.target) and topology.external(edge.target) is None:
            found.append(f"{name}: unknown target")
            continue
        if edge.source == OUTSIDE and not topology.has_service(edge.target):
            found.append(f"{name}: a caller outside the mesh must call a mesh service")
            continue
        try:
            workloads = topology.caller_workloads(edge)
        except KeyError as exc:
            found.append(f"{name}: {exc.args[0]}")
            continue
        if edge.rate_rps < 0 or not 0 <= edge.error_rate + edge.not_found_rate <= 1:
            found.append(f"{name}: rates out of range")
        if edge.requests_per_connection < 1:
            found.append(f"{name}: requests_per_connection must be >= 1")
        cls = topology.classify(edge)
        if not (cls.source_reporter or cls.destination_reporter or cls.client_spans):
            found.append(f"{name}: invisible (neither end captured nor instrumented)")
        if not topology.has_service(edge.target):
            continue
        target = topology.service(edge.target)
        callers[edge.target].update(f"{edge.source}/{w.name}" for w in workloads)
        if edge.source == OUTSIDE:
            callers[edge.target].add(OUTSIDE)
        if cls.via and not cls.client_spans:
            unattributed_into.add(edge.target)
        source_instrumented = edge.source != OUTSIDE and topology.service(edge.source).instrumented
        if cls.protocol == "http" and not cls.via and source_instrumented != target.instrumented:
            found.append(f"{name}: direct HTTP call with only one side instrumented (invariant 5)")
    for target_id in sorted(unattributed_into):
        if len(callers[target_id]) != 1:
            found.append(
                f"{target_id}: uninstrumented callers through its waypoint but "
                f"{len(callers[target_id])} caller workloads (invariant 4)"
            )
    return found


def validate(topology: Topology) -> Topology:
    problems = violations(topology)
    if problems:
        raise TopologyError("; ".join(problems))
    return topology
