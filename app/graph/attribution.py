"""Query-time L4 attribution of waypoint traffic whose caller is unknown (DESIGN.md, Attribution).

The correlator stores a waypoint span with no known caller as an L7 edge `U → B` from an
`unknown`-kind node U (named by its evidence) with provenance `unattributed`. Here, per window:
the L4 edges into B (with traffic, from another node, through the same waypoint when both name
one) are the candidate callers.
- exactly one candidate A: the requests move onto `A → B` (provenance `l4_single`), which
  therefore becomes `full` coverage; U's edge disappears;
- several: U's edge stays, provenance `l4_ambiguous`, `candidates` = each source's share of the
  L4 bytes into B (of connections when no bytes were counted);
- none: the edge stays unattributed.
The callee side, for pod-addressed traffic through a workload waypoint (`encap` cluster) that no
tag or directory names: a waypoint edge `A → P` to an unknown-kind pod P moves onto `A → B` when
the L4 edges from A through the same waypoint reach exactly one named destination B (ztunnel
joined A's client leg to B through the waypoint's server leg, app/poll/half_edges.py).
Candidates for either side are restricted to L4 through the same waypoint when the span names one.
Pure: works on `GraphEdge` lists; percentiles of merged L7 come from the caller's `merge_l7`
(queries.py merges the latency sketches exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from app.domain import Provenance
from app.edge.exemplars import top_exemplars
from app.edge.stats import L7Stats, added, sum_l7
from app.graph.model import GraphEdge

Pair = tuple[str, str]
# merge_l7(into, other) -> the L7 of both edges' requests (other's moved onto into)
MergeL7 = Callable[[GraphEdge, GraphEdge], L7Stats | None]
__all__ = ["Attribution", "attribute", "is_unattributed", "merge_l7_approx", "sum_l7"]


def merge_l7_approx(into: GraphEdge, other: GraphEdge) -> L7Stats | None:
    """Without sketches: exact counters; percentiles of the busier side (exact when one is empty)."""
    a, b = into.l7, other.l7
    if a is None or not a.requests or b is None or not b.requests:
        return b if a is None or not a.requests else a
    busier = a if a.requests >= b.requests else b
    return sum_l7(a, b, (busier.p50_ms, busier.p95_ms, busier.p99_ms))


@dataclass(frozen=True, slots=True)
class Attribution:
    edges: list[GraphEdge]
    # unattributed edge -> the edge its requests were merged into (single candidate)
    moved: dict[Pair, Pair] = field(default_factory=dict)


def is_unattributed(edge: GraphEdge, unknown_nodes: set[str]) -> bool:
    return (
        edge.source in unknown_nodes
        and edge.provenance.get(Provenance.UNATTRIBUTED.value, 0) > 0
        and edge.l7 is not None
        and edge.l7.requests > 0
    )


def _candidates(unattributed: GraphEdge, into_target: list[GraphEdge]) -> dict[str, float]:
    volumes: dict[str, tuple[int, int]] = {}
    for edge in into_target:
        if edge.source == unattributed.source or edge.l4 is None or not edge.l4.has_traffic:
            continue
        if unattributed.via and edge.via != unattributed.via:
            continue  # L7 through a waypoint is explained only by L4 through that waypoint
        volumes[edge.source] = (edge.l4.bytes_total, edge.l4.connections_opened)
    total_bytes = sum(b for b, _ in volumes.values())
    total_connections = sum(c for _, c in volumes.values())
    if total_bytes:
        return {s: b / total_bytes for s, (b, _) in volumes.items()}
    if total_connections:
        return {s: c / total_connections for s, (_, c) in volumes.items()}
    return dict.fromkeys(volumes, 1.0 / len(volumes)) if volumes else {}


def _counted_exactly(
    u: GraphEdge, shares: dict[str, float], by_pair: dict[Pair, GraphEdge], target: str
) -> bool:
    """Every candidate edge has unsampled waypoint request metrics and `u` has none."""
    if u.l7 is None or u.l7.exact:
        return False
    for source in shares:
        edge = by_pair.get((source, target))
        if edge is None or edge.l7 is None or not edge.l7.exact:
            return False
    return True


def _moved_provenance(provenance: dict[str, int], to: str) -> dict[str, int]:
    out = dict(provenance)
    out[to] = out.get(to, 0) + out.pop(Provenance.UNATTRIBUTED.value, 0)
    return out


def attribute(
    edges: Iterable[GraphEdge], unknown_nodes: set[str], merge_l7: MergeL7 = merge_l7_approx
) -> Attribution:
    """Apply the L4 attribution rule to every unattributed edge whose target's in-edges are in
    `edges` (the caller must pass all edges into such a target, or the choice may be wrong)."""
    by_pair: dict[Pair, GraphEdge] = {}
    for edge in edges:
        by_pair[(edge.source, edge.target)] = edge
    into: dict[str, list[GraphEdge]] = {}
    for edge in by_pair.values():
        into.setdefault(edge.target, []).append(edge)
    moved: dict[Pair, Pair] = {}
    for target, incoming in into.items():
        for u in [e for e in incoming if is_unattributed(e, unknown_nodes)]:
            shares = _candidates(u, incoming)
            if not shares:
                continue
            if len(shares) > 1 and _counted_exactly(u, shares, by_pair, target):
                # Every candidate's requests are counted by the waypoint's own metrics, which
                # name each caller: the unattributed spans are among those requests, so a
                # separate edge would count them twice. It leaves the graph (its traces stay
                # reachable by id); candidates keep their exact counts.
                del by_pair[(u.source, target)]
                incoming = [e for e in incoming if e is not u]
                continue
            if len(shares) > 1:
                by_pair[(u.source, target)] = replace(
                    u,
                    provenance=_moved_provenance(u.provenance, Provenance.L4_AMBIGUOUS.value),
                    candidates=shares,
                )
                continue
            (source,) = shares
            a = by_pair[(source, target)]
            by_pair[(source, target)] = replace(
                a,
                l7=merge_l7(a, u),
                protocol=a.protocol if a.protocol not in ("", "tcp") else u.protocol,
                via=a.via or u.via,
                provenance=added(
                    a.provenance, _moved_provenance(u.provenance, Provenance.L4_SINGLE.value)
                ),
                exemplars=tuple(top_exemplars([*a.exemplars, *u.exemplars])),
            )
            del by_pair[(u.source, target)]
            moved[(u.source, target)] = (source, target)
            incoming = [e for e in incoming if e is not u]
    _attribute_callees(by_pair, unknown_nodes, merge_l7, moved)
    return Attribution(list(by_pair.values()), moved)


def _attribute_callees(
    by_pair: dict[Pair, GraphEdge],
    unknown_nodes: set[str],
    merge_l7: MergeL7,
    moved: dict[Pair, Pair],
) -> None:
    out_of: dict[str, list[GraphEdge]] = {}
    for edge in by_pair.values():
        out_of.setdefault(edge.source, []).append(edge)
    for source, outgoing in out_of.items():
        for u in outgoing:
            if not (u.via and u.target in unknown_nodes and u.l7 is not None and u.l7.requests):
                continue
            named = {
                e.target
                for e in outgoing
                if e.via == u.via
                and e.target not in unknown_nodes
                and e.l4 is not None
                and e.l4.has_traffic
            }
            if len(named) != 1:
                continue
            (target,) = named
            a = by_pair[(source, target)]
            by_pair[(source, target)] = replace(
                a,
                l7=merge_l7(a, u),
                protocol=a.protocol if a.protocol not in ("", "tcp") else u.protocol,
                provenance=added(a.provenance, u.provenance),
                exemplars=tuple(top_exemplars([*a.exemplars, *u.exemplars])),
            )
            del by_pair[(source, u.target)]
            moved[(source, u.target)] = (source, target)
