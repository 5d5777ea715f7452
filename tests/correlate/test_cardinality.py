"""Cardinality caps: overflow names past the caps, totals conserved, state bounded by the caps."""

from __future__ import annotations

import pytest

from app.correlate.aggregate import EdgeAggregator
from app.correlate.cardinality import (
    MESH_OVERFLOW,
    CardinalityCaps,
    CardinalityGuard,
    domain_group,
)
from app.domain import Endpoint, ErrorCause, L4Sample, L7Observation, Level, NodeKind, Reporter

S = 1_000_000_000
CLIENT = Endpoint("shop", "checkout", "checkout-v1")


def external(host: str) -> Endpoint:
    return Endpoint("external", host, kind=NodeKind.EXTERNAL)


@pytest.mark.parametrize(
    ("host", "group"),
    [
        ("my-bucket.s3.amazonaws.com", "*.s3.amazonaws.com"),
        ("a.b.s3.us-east-1.amazonaws.com", "*.us-east-1.amazonaws.com"),
        ("api.github.com", "*.github.com"),
        ("github.com", None),
        ("10.1.2.3", None),
        ("[2001:db8::1]", None),
        ("2001:db8::1", None),
        ("::ffff:10.1.2.3", None),
        ("*.s3.amazonaws.com", None),
        # numeric last labels that are not IPs are grouped (only real IPs are left alone)
        ("1.2.3.4.5", "*.3.4.5"),
        ("svc.ns.10", "*.ns.10"),
    ],
)
def test_domain_group(host: str, group: str | None) -> None:
    assert domain_group(host) == group


def test_within_caps_endpoints_are_kept_as_they_are() -> None:
    guard = CardinalityGuard(CardinalityCaps(max_nodes=10, max_edges=10))
    target = Endpoint("shop", "cart", "cart-v1")
    assert guard.admit(0, CLIENT, target) == (CLIENT, target)
    assert guard.admit(0, CLIENT, target)[1] is target
    assert guard.snapshot().nodes == guard.snapshot().edges == 0


def test_new_nodes_past_the_cap_go_to_their_namespace_overflow_node() -> None:
    guard = CardinalityGuard(CardinalityCaps(max_nodes=3, max_edges=100))
    kept = [guard.admit(0, CLIENT, Endpoint("shop", f"svc-{i}"))[1] for i in range(4)]
    # CLIENT is the first node; svc-0 and svc-1 fill the cap of 3.
    assert [e.node_id() for e in kept] == [
        "shop/svc-0",
        "shop/svc-1",
        "shop/__overflow__",
        "shop/__overflow__",
    ]
    assert kept[-1].kind is NodeKind.OVERFLOW
    counts = guard.snapshot()
    assert counts.nodes == 2
    assert counts.by_sender == {"shop/checkout": 2}
    assert counts.by_namespace == {"shop": 2}
    # A node admitted before the cap was reached stays itself.
    assert guard.admit(0, CLIENT, Endpoint("shop", "svc-1"))[1].node_id() == "shop/svc-1"


def test_new_edges_past_the_cap_move_to_the_target_namespace_overflow() -> None:
    guard = CardinalityGuard(CardinalityCaps(max_nodes=1000, max_edges=2))
    sources = [Endpoint("shop", f"caller-{i}") for i in range(3)]
    target = Endpoint("pay", "ledger")
    answers = [guard.admit(0, s, target) for s in sources]
    assert [(s.node_id(), t.node_id()) for s, t in answers] == [
        ("shop/caller-0", "pay/ledger"),
        ("shop/caller-1", "pay/ledger"),
        ("shop/caller-2", "pay/__overflow__"),
    ]
    assert guard.snapshot().edges == 1


def test_overflow_is_bounded_by_the_reserve_then_mesh_wide() -> None:
    caps = CardinalityCaps(max_nodes=5, max_edges=5)
    guard = CardinalityGuard(caps)
    seen = set()
    for i in range(500):
        s, t = guard.admit(0, Endpoint(f"ns-{i}", "a"), Endpoint(f"ns-{i}", "b"))
        seen.add((s.node_id(), t.node_id()))
    usage = guard.usage()
    assert usage["nodes_service"] <= caps.max_nodes + caps.node_reserve
    assert usage["edges_service"] <= caps.max_edges + caps.edge_reserve + 1
    assert (MESH_OVERFLOW.node_id(), MESH_OVERFLOW.node_id()) in seen
    assert len(seen) <= caps.max_edges + caps.edge_reserve + 1


def test_external_hosts_past_the_namespace_cap_are_grouped_by_domain_suffix() -> None:
    guard = CardinalityGuard(CardinalityCaps(max_external_hosts_per_namespace=2))
    hosts = ["a.s3.amazonaws.com", "b.s3.amazonaws.com", "c.s3.amazonaws.com", "d.example.org"]
    got = [guard.admit(0, CLIENT, external(h))[1].node_id() for h in hosts]
    assert got == [
        "external/a.s3.amazonaws.com",
        "external/b.s3.amazonaws.com",
        "external/*.s3.amazonaws.com",
        "external/*.example.org",
    ]
    # The cap is per caller namespace: another namespace still sees its own hosts.
    other = Endpoint("batch", "exporter")
    assert guard.admit(0, other, external("c.s3.amazonaws.com"))[1].service == "c.s3.amazonaws.com"
    assert guard.snapshot().external_grouped == 2


def test_a_new_window_starts_counting_again_and_only_two_are_kept() -> None:
    caps = CardinalityCaps(max_nodes=2, max_edges=100, window_s=3600)
    guard = CardinalityGuard(caps)
    assert guard.admit(0, CLIENT, Endpoint("shop", "x"))[1].service == "x"
    assert guard.admit(0, CLIENT, Endpoint("shop", "y"))[1].service == "__overflow__"
    assert guard.admit(3600, CLIENT, Endpoint("shop", "y"))[1].service == "y"
    guard.admit(7200, CLIENT, Endpoint("shop", "z"))
    assert len(guard._windows) == 2
    # Later than the oldest kept window: counted against the oldest kept window.
    assert guard.admit(0, CLIENT, Endpoint("shop", "w"))[1].service == "__overflow__"


def _obs(i: int, target: Endpoint, error: bool) -> L7Observation:
    return L7Observation(
        source=CLIENT,
        target=target,
        end_ns=(i % 120) * S,
        duration_ms=1.0 + i % 7,
        trace_id=(i + 1).to_bytes(16, "big"),
        status_code="503" if error else "200",
        error_cause=ErrorCause.HTTP_5XX if error else None,
    )


def _l4(i: int, target: Endpoint) -> L4Sample:
    return L4Sample(
        source=CLIENT,
        target=target,
        reporter=Reporter.SOURCE,
        start_s=float(i % 120),
        end_s=float(i % 120),
        connections_opened=1,
        connections_closed=1,
        bytes_sent=100 + i,
        bytes_received=7 * i,
    )


def _totals(agg: EdgeAggregator) -> dict[tuple[Level, str], int]:
    out: dict[tuple[Level, str], int] = {}
    batch = agg.drain()
    for key, b in batch.edges.items():
        for name, value in (
            ("requests", b.l7_requests),
            ("errors", b.l7_errors),
            ("bytes_sent", sum(c.bytes_sent for c in b.l4.values())),
            ("bytes_received", sum(c.bytes_received for c in b.l4.values())),
            ("connections", sum(c.connections_opened for c in b.l4.values())),
        ):
            out[(key.level, name)] = out.get((key.level, name), 0) + value
    out[(Level.SERVICE, "edges")] = sum(k.level is Level.SERVICE for k in batch.edges)
    return out


def test_totals_are_unchanged_by_overflow() -> None:
    """The same traffic with and without tight caps: every request, error and byte counted."""
    targets = [
        Endpoint("shop", f"svc-{i}", f"svc-{i}-v1") if i % 3 else external(f"b{i}.s3.amazonaws.com")
        for i in range(400)
    ]
    loose = EdgeAggregator(60, guard=CardinalityGuard())
    tight = EdgeAggregator(
        60,
        guard=CardinalityGuard(
            CardinalityCaps(max_nodes=20, max_edges=30, max_external_hosts_per_namespace=5)
        ),
    )
    for agg in (loose, tight):
        for i in range(2000):
            agg.add_l7(_obs(i, targets[i % len(targets)], error=i % 11 == 0))
            agg.add_l4(_l4(i, targets[(i * 7) % len(targets)]))
    assert tight.guard.overflow_requests > 0 and tight.guard.overflow_samples > 0
    assert loose.guard.overflow_requests == loose.guard.overflow_samples == 0
    before, after = _totals(loose), _totals(tight)
    assert after.pop((Level.SERVICE, "edges")) < before.pop((Level.SERVICE, "edges"))
    assert after == before
    assert before[(Level.SERVICE, "requests")] == 2000


def test_aggregated_state_is_bounded_by_the_caps() -> None:
    caps = CardinalityCaps(max_nodes=50, max_edges=80)
    agg = EdgeAggregator(60, guard=CardinalityGuard(caps))
    for i in range(5000):  # a new destination almost every request, in one bucket
        agg.add_l7(_obs(i * 120, Endpoint(f"ns-{i % 40}", f"dest-{i}"), error=False))
    batch = agg.drain()
    per_level = caps.max_edges + caps.edge_reserve + 1
    assert sum(k.level is Level.SERVICE for k in batch.edges) <= per_level
    assert len({n for n, level in batch.nodes if level is Level.SERVICE}) <= (
        caps.max_nodes + caps.node_reserve + 1
    )
    assert sum(b.l7_requests for k, b in batch.edges.items() if k.level is Level.SERVICE) == 5000
