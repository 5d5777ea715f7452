"""What the cardinality guard tells /readyz and /metrics: caps, use, and who overflowed.

Overflow never makes meshstitch unready (nothing is lost, traffic is counted under overflow
names); /readyz says `overflowing` and names the senders and namespaces, so an operator sees it
where they look first.
"""

from __future__ import annotations

from typing import Any

from app.correlate.cardinality import CardinalityGuard
from app.self_report import MetricFamily, PartState

TOP = 5


def _top(counts: dict[str, int]) -> list[dict[str, Any]]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return [{"name": name, "decisions": n} for name, n in ranked]


def cardinality_state(guard: CardinalityGuard) -> PartState:
    counts, caps = guard.snapshot(), guard.caps
    overflowing = bool(counts.nodes or counts.edges)
    return PartState(
        True,
        {
            "overflowing": overflowing,
            "grouping_external_hosts": bool(counts.external_grouped),
            "caps": {
                "max_nodes_per_window": caps.max_nodes,
                "max_edges_per_window": caps.max_edges,
                "max_external_hosts_per_namespace": caps.max_external_hosts_per_namespace,
                "window_s": caps.window_s,
            },
            "in_use": guard.usage(),
            "overflow_requests": guard.overflow_requests,
            "overflow_samples": guard.overflow_samples,
            "top_senders": _top(counts.by_sender),
            "top_namespaces": _top(counts.by_namespace),
        },
    )


def cardinality_families(guard: CardinalityGuard) -> list[MetricFamily]:
    counts, caps, usage = guard.snapshot(), guard.caps, guard.usage()
    in_use = MetricFamily(
        "meshstitch_cardinality_in_use",
        "gauge",
        "Distinct nodes and edges admitted in the newest cardinality window, by level.",
    )
    limit = MetricFamily(
        "meshstitch_cardinality_limit", "gauge", "Distinct nodes and edges kept per window."
    )
    for kind, cap in (("nodes", caps.max_nodes), ("edges", caps.max_edges)):
        for level in ("service", "workload"):
            in_use.add(usage[f"{kind}_{level}"], kind=kind, level=level)
            limit.add(cap, kind=kind, level=level)
    decisions = MetricFamily(
        "meshstitch_cardinality_overflow_decisions",
        "counter",
        "New (bucket, source, target) routes renamed by a cap, by cause.",
    )
    decisions.add(counts.nodes, cause="node_cap")
    decisions.add(counts.edges, cause="edge_cap")
    decisions.add(counts.external_grouped, cause="external_hosts_grouped")
    counted = MetricFamily(
        "meshstitch_cardinality_overflow",
        "counter",
        "Requests and polled samples counted under an overflow name or domain group.",
    )
    counted.add(guard.overflow_requests, input="l7_observation")
    counted.add(guard.overflow_samples, input="polled_sample")
    return [in_use, limit, decisions, counted]
