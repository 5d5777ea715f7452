"""The rules a topology must follow for its truth to be decidable from the wire alone."""

from __future__ import annotations

from collections import defaultdict

from app.sim.topology import OUTSIDE, Edge, Service, Topology


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
       Calls through a sidecar or gateway Envoy are exempt: its span names both ends.
    6. **Envoys outside ambient.** Sidecar and gateway workloads are not captured (ztunnel skips
       sidecar pods; an ingress gateway is not enrolled). A gateway is never called by a mesh
       edge (its callers are outside: `client_ip` names the one whose `peer.address` its SERVER
       span carries); it and sidecars call HTTP services in the mesh that no waypoint serves
       (a gateway uses a waypoint only with `istio.io/ingress-use-waypoint`, not modelled), or
       sidecar services. Ambient callers do not call sidecar services (not modelled).
    7. **Waypoints match their addressing.** `waypoint` names a Gateway with `waypoint-for:
       service`, `workload_waypoint` one with `waypoint-for: workload`. The client leg of
       pod-addressed traffic names no destination (`destination_service="unknown"`) and the
       server leg's source is the waypoint, so the join is exact only when every pod-addressed
       edge through one workload waypoint goes to one service.
    8. **Kubernetes Service names are unique per namespace.**
    9. **Denied edges** (`Edge.denied`) go to a captured service that no waypoint serves (the
       destination's ztunnel enforces the policy) from a captured, uninstrumented caller that is
       no Envoy (an app's or proxy's own failed span is not modelled).
    """
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    callers: dict[str, set[str]] = defaultdict(set)
    unattributed_into: set[str] = set()
    k8s_names: set[tuple[str, str]] = set()
    pod_targets: dict[str, set[str]] = defaultdict(set)
    for service in topology.services:
        key = (service.namespace, service.service_name)
        if key in k8s_names:
            found.append(f"{service.id}: Kubernetes Service {service.service_name} is not unique")
        k8s_names.add(key)
        if service.envoy and service.captured:
            found.append(
                f"{service.id}: a {service.envoy} is not captured by ztunnel (invariant 6)"
            )
        for name, wanted in (
            (service.waypoint, "service"),
            (service.workload_waypoint, "workload"),
        ):
            if not name:
                continue
            try:
                waypoint = topology.waypoint(service.namespace, name)
            except KeyError:
                found.append(f"{service.id}: waypoint {name} is not deployed")
                continue
            if waypoint.waypoint_for != wanted:
                found.append(f"{service.id}: waypoint {name} is not for {wanted}s (invariant 7)")
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
        seen_by = (cls.source_reporter, cls.destination_reporter, cls.client_spans)
        if not (any(seen_by) or cls.source_envoy or cls.target_sidecar):
            found.append(f"{name}: invisible (neither end captured nor instrumented)")
        source = None if edge.source == OUTSIDE else topology.service(edge.source)
        target = topology.service(edge.target) if topology.has_service(edge.target) else None
        found.extend(f"{name}: {p}" for p in _envoy_problems(edge, source, target))
        if edge.denied and not (
            source is not None
            and source.captured
            and not source.instrumented
            and not source.envoy
            and target is not None
            and target.captured
            and not (target.waypoint or target.workload_waypoint)
        ):
            found.append(f"{name}: a denied edge breaks invariant 9")
        if target is None:
            continue
        if cls.via and cls.pod_addressed:
            pod_targets[cls.via].add(target.id)
        callers[edge.target].update(f"{edge.source}/{w.name}" for w in workloads)
        if edge.source == OUTSIDE:
            callers[edge.target].add(OUTSIDE)
        if cls.via and not cls.client_spans:
            unattributed_into.add(edge.target)
        source_instrumented = source is not None and source.instrumented
        envoy_spans = bool(cls.source_envoy or cls.target_sidecar)
        if (
            cls.protocol == "http"
            and not (cls.via or envoy_spans)
            and source_instrumented != target.instrumented
        ):
            found.append(f"{name}: direct HTTP call with only one side instrumented (invariant 5)")
    for via, targets in sorted(pod_targets.items()):
        if len(targets) > 1:
            found.append(f"{via}: pod-addressed traffic to {len(targets)} services (invariant 7)")
    for target_id in sorted(unattributed_into):
        if len(callers[target_id]) != 1:
            found.append(
                f"{target_id}: uninstrumented callers through its waypoint but "
                f"{len(callers[target_id])} caller workloads (invariant 4)"
            )
    return found


def _envoy_problems(edge: Edge, source: Service | None, target: Service | None) -> list[str]:
    """Invariant 6 for one edge."""
    out: list[str] = []
    if target is not None and target.envoy == "gateway":
        out.append("a gateway is called from outside only, via `client_ip` (invariant 6)")
    if source is not None and source.envoy:
        if target is None or target.protocol != "http":
            out.append(f"a {source.envoy} calls HTTP services in the mesh only (invariant 6)")
        elif target.captured and (target.waypoint or edge.address == "pod"):
            out.append(f"a {source.envoy} bypasses waypoints: call a service without one (6)")
    if source is not None and source.envoy == "gateway" and not edge.client_ip:
        out.append("an edge from a gateway needs the outside `client_ip` (invariant 6)")
    if source is not None and source.captured and target is not None and target.envoy:
        out.append("ambient callers of sidecar services are not modelled (invariant 6)")
    return out


def validate(topology: Topology) -> Topology:
    problems = violations(topology)
    if problems:
        raise TopologyError("; ".join(problems))
    return topology
