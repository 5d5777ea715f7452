"""SpanCorrelator: exactly one observation per request, whatever the arrival order."""

from __future__ import annotations

import itertools

import pytest

from app.correlate.correlator import SpanCorrelator
from app.domain import Endpoint, ErrorCause, L7Observation, NodeKind, Provenance, Span, SpanKind
from tests.correlate.spans import T1, S, client, server, sid, span, waypoint_span

PP, REVIEWS = Endpoint("default", "productpage"), Endpoint("default", "reviews")
VIA = "default/waypoint"


class FakeDirectory:
    def __init__(self, by_ip: dict[str, Endpoint]) -> None:
        self.by_ip = by_ip

    def lookup(self, ip: str) -> Endpoint | None:
        return self.by_ip.get(ip)


def correlator(**kw: object) -> SpanCorrelator:
    return SpanCorrelator(wait_s=10.0, max_items=kw.pop("max_items", 1000), bucket_s=60, **kw)  # type: ignore[arg-type]


def run(
    spans: list[Span], c: SpanCorrelator | None = None, now_s: float = 0
) -> list[L7Observation]:
    c = c or correlator()
    out = []
    for s in spans:  # one span per batch: arrival order matters, not batching
        out += c.add([s], int(now_s * S))
    return out + c.drain()


# A (client 1) → waypoint (span 2, parent 1) → B (server 3, parent 2)
COLLAPSE = [client(1), waypoint_span(2, 1), server(3, 2)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_waypoint_collapse_is_one_observation_in_any_order(order: tuple[int, ...]) -> None:
    (obs,) = run([COLLAPSE[i] for i in order])
    assert (obs.source, obs.target, obs.via) == (PP, REVIEWS, VIA)
    assert obs.provenance is Provenance.PARENT_SPAN
    assert (obs.span_id, obs.unpaired, obs.evicted) == (sid(2), False, False)


def test_envoy_upstream_span_under_the_waypoint_span_is_not_counted_again() -> None:
    inner = waypoint_span(4, 2)
    for spans in ([*COLLAPSE, inner], [inner, *COLLAPSE], [COLLAPSE[1], inner, server(3, 4)]):
        assert len(run(spans)) == 1


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_client_and_server_pair(order: tuple[int, int]) -> None:
    pair = [client(1, ms=12.0), server(2, 1, ms=8.0, attrs={"http.status_code": 500})]
    (obs,) = run([pair[i] for i in order])
    assert (obs.source, obs.target, obs.via) == (PP, REVIEWS, "")
    assert obs.provenance is Provenance.PAIRED_SPANS
    assert (obs.duration_ms, obs.status_code, obs.error_cause) == (12.0, "500", ErrorCause.HTTP_5XX)
    assert not obs.unpaired


def test_unpaired_client_after_the_wait_goes_to_its_peer_attribute() -> None:
    c = correlator()
    assert c.add([client(1, attrs={"peer.service": "ratings"})], 0) == []
    assert c.expire(9 * S) == []
    (obs,) = c.expire(10 * S)
    assert obs.target == Endpoint("default", "ratings")
    assert (obs.provenance, obs.unpaired, obs.evicted) == (Provenance.PEER_ATTRIBUTE, True, False)
    assert len(c) == 0


def test_unpaired_server_gets_an_unknown_caller_named_by_its_address() -> None:
    c = correlator()
    c.add([server(2, 1, attrs={"client.address": "10.0.0.7"})], 0)
    (obs,) = c.expire(10 * S)
    assert obs.source == Endpoint("unknown", "10.0.0.7", kind=NodeKind.UNKNOWN)
    assert (obs.provenance, obs.unpaired) == (Provenance.UNATTRIBUTED, True)


def test_root_server_and_db_client_resolve_at_once_and_are_not_unpaired() -> None:
    c = correlator()
    out = c.add([server(2), client(3, attrs={"db.system": "redis"})], 0)
    assert [o.unpaired for o in out] == [False, False]
    assert out[0].source == Endpoint("unknown", "caller-of-reviews.default", kind=NodeKind.UNKNOWN)
    assert out[1].target == Endpoint("external", "redis", kind=NodeKind.EXTERNAL)
    assert len(c) == 0


def test_full_store_evicts_the_oldest_as_an_evicted_unpaired_observation() -> None:
    c = correlator(max_items=2)
    assert c.add([client(1), client(2)], 0) == []
    (obs,) = c.add([client(3)], 0)
    assert (obs.span_id, obs.unpaired, obs.evicted) == (sid(1), True, True)
    assert (len(c), c.evicted) == (2, 1)
    (paired,) = c.add([server(9, 3)], 0)  # the newest still pairs
    assert paired.provenance is Provenance.PAIRED_SPANS


def test_root_waypoint_span_resolves_at_once_unattributed_with_target_and_via() -> None:
    c = correlator()
    (obs,) = c.add([waypoint_span(2, attrs={"peer.address": "10.42.0.30:51234"})], 0)
    assert obs.source == Endpoint("unknown", "10.42.0.30", kind=NodeKind.UNKNOWN)
    assert (obs.target, obs.via, obs.provenance) == (REVIEWS, VIA, Provenance.UNATTRIBUTED)
    assert not obs.unpaired


def test_waypoint_span_waits_for_its_parent_then_falls_back() -> None:
    c = correlator()
    assert (
        c.add([waypoint_span(2, 1, attrs={"peer.address": "envoy://internal_client_address/"})], 0)
        == []
    )
    (obs,) = c.expire(10 * S)
    assert obs.source == Endpoint("unknown", "caller-of-reviews.default", kind=NodeKind.UNKNOWN)
    assert (obs.provenance, obs.unpaired, obs.via) == (Provenance.UNATTRIBUTED, True, VIA)


def test_waypoint_peer_address_resolved_by_the_directory() -> None:
    caller = Endpoint("shop", "cart", "cart-v1")
    c = correlator(directory=FakeDirectory({"10.42.0.30": caller}))
    (obs,) = c.add([waypoint_span(2, attrs={"peer.address": "10.42.0.30:5123"})], 0)
    assert (obs.source, obs.provenance) == (caller, Provenance.PEER_ADDRESS)


def test_unattributed_callers_of_different_targets_are_different_nodes() -> None:
    out = run([waypoint_span(2, dest="reviews"), waypoint_span(3, dest="ratings")])
    assert len({o.source.node_id() for o in out}) == 2


def test_two_requests_under_one_client_span_both_attributed_to_it() -> None:
    out = run([client(1), waypoint_span(2, 1), waypoint_span(3, 1, dest="ratings")])
    assert [(o.source, o.provenance) for o in out] == [(PP, Provenance.PARENT_SPAN)] * 2


def test_waypoint_failure_cause_and_internal_spans_skipped() -> None:
    c = correlator()
    w = waypoint_span(2, attrs={"http.status_code": "503", "response_flags": "UF"})
    out = c.add([w, span(SpanKind.INTERNAL, 5, service="x")], 0)
    assert [(o.status_code, o.error_cause) for o in out] == [("503", ErrorCause.RESPONSE_FLAGS)]
    assert c.stats.skipped == 1


def test_traces_do_not_mix() -> None:
    other = b"\x02" * 16
    out = run([client(1), server(2, 1, trace=other)])
    assert len(out) == 2 and all(o.unpaired for o in out)
    assert {o.trace_id for o in out} == {T1, other}


PEER_TAGS = {
    "istio.source_workload": "productpage-v1",
    "istio.source_namespace": "default",
    "istio.source_canonical_service": "productpage",
    "peer.address": "10.42.0.30:5123",
}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (PEER_TAGS, (Endpoint("default", "productpage", "productpage-v1"), Provenance.PEER_TAGS)),
        (
            {**PEER_TAGS, "istio.source_canonical_service": "unknown"},
            (Endpoint("default", "productpage-v1", "productpage-v1"), Provenance.PEER_TAGS),
        ),
        (
            {**PEER_TAGS, "istio.source_namespace": "unknown"},
            (
                Endpoint("unknown", "10.42.0.30", kind=NodeKind.UNKNOWN),
                Provenance.UNATTRIBUTED,
            ),
        ),
    ],
)
def test_istio_1_29_peer_tags_name_the_caller_of_a_root_waypoint_span(
    tags: dict[str, str], expected: tuple[Endpoint, Provenance]
) -> None:
    (obs,) = correlator().add([waypoint_span(2, attrs=tags)], 0)
    assert (obs.source, obs.provenance) == expected
    assert (obs.target, obs.via) == (REVIEWS, VIA)


def test_a_parent_client_span_still_wins_over_peer_tags() -> None:
    c = correlator()
    out = c.add([client(1, service="productpage"), waypoint_span(2, 1, attrs=PEER_TAGS)], 0)
    (obs,) = out
    assert obs.provenance is Provenance.PARENT_SPAN
