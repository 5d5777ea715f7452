"""Real ztunnel `/metrics` text (tests/data/real/README.md, tests/data/ztunnel/README.md) through
the scrape path: parse → counter deltas → group → `to_samples` → `EdgeAggregator`.

Asserted from what the captured series say: nodes are canonical services in their namespace
(never a workload name such as `istio-ingressgateway-1-22`, never `unknown` when the labels name
the peer), request bytes are `istio_tcp_received_bytes_total`, and a direct connection that
both reporters print is one edge whose traffic is counted once.
"""

from __future__ import annotations

from app.correlate.aggregate import EdgeAggregator
from app.correlate.identity import NodeIdentity
from app.domain import Endpoint, L4Sample, Level, NodeKind, Reporter
from app.edge.stats import choose_l4
from app.poll.deltas import CounterDeltas
from app.poll.exposition import ExpositionParser
from app.poll.half_edges import to_samples
from app.poll.scrape import group_increases
from app.poll.ztunnel_labels import is_traffic_family
from tests.conftest import DATA

START_S, END_S = 1_700_000_000.0, 1_700_000_015.0


def first_scrape_of_a_new_ztunnel(text: str) -> list[L4Sample]:
    """What one scrape yields when every series counts in full (a ztunnel pod that started after
    the poller: `count_first_scrape`), so the captured values are the traffic."""
    deltas = CounterDeltas()
    deltas.update(())  # the empty baseline
    increases = deltas.update(ExpositionParser(keep=is_traffic_family).parse(text))
    series = [(labels, counts, START_S) for labels, counts in group_increases(increases)]
    return to_samples(series, END_S, NodeIdentity())


def test_issue_404_series_names_both_services_although_destination_service_is_unknown() -> None:
    """ztunnel (Feb 2023) printed `destination_service="unknown"` with the destination's
    workload `helloworld-v1-cross-node`, canonical service `helloworld`, namespace `default` and
    principal known: the target is `default/helloworld` (workload helloworld-v1-cross-node), not
    an unknown or external node; the source is `default/sleep`. 352 request bytes."""
    text = (DATA / "real" / "ztunnel-issue-404-sleep-helloworld.prom").read_text()
    (sample,) = first_scrape_of_a_new_ztunnel(text)
    assert sample.source == Endpoint(
        "default", "sleep", "sleep", principal="spiffe://cluster.local/ns/default/sa/sleep"
    )
    assert sample.target == Endpoint(
        "default",
        "helloworld",
        "helloworld-v1-cross-node",
        principal="spiffe://cluster.local/ns/default/sa/helloworld",
    )
    assert (sample.reporter, sample.bytes_sent, sample.bytes_received) == (Reporter.SOURCE, 352, 0)
    assert sample.mutual_tls and sample.via_waypoint == ""


def workshop_edges() -> dict[tuple[str, str], dict[str, object]]:
    text = (DATA / "ztunnel" / "ztunnel-metrics-sample.prom").read_text()
    aggregator = EdgeAggregator(bucket_s=60, clock_s=lambda: END_S)
    for sample in first_scrape_of_a_new_ztunnel(text):
        aggregator.add_l4(sample)
    batch = aggregator.drain()
    edges: dict[tuple[str, str], dict[str, object]] = {}
    for key, bucket in batch.edges.items():
        if key.level is Level.SERVICE:
            chosen = choose_l4(bucket.l4)
            edges[(key.source, key.target)] = {
                "reporters": sorted(bucket.l4),
                "response_bytes": chosen.bytes_received if chosen else None,
                "via": bucket.via,
            }
    kinds = {node_id: seen.kind for (node_id, lvl), seen in batch.nodes.items()}
    assert NodeKind.UNKNOWN not in kinds.values()
    assert NodeKind.WAYPOINT not in kinds.values()
    return edges


def test_workshop_direct_connection_seen_by_both_reporters_is_one_edge_counted_once() -> None:
    """The capture prints productpage-v1 → details-v1 under `reporter="source"` and
    `reporter="destination"`, both `istio_tcp_sent_bytes_total` 16826: one connection seen by two
    ztunnels. One edge between the canonical services, 16826 response bytes (not 33652); the
    gateway's series names its canonical service `istio-ingressgateway`, not its workload
    `istio-ingressgateway-1-22`."""
    assert workshop_edges() == {
        ("bookinfo-frontends/productpage", "bookinfo-backends/details"): {
            "reporters": [Reporter.DESTINATION, Reporter.SOURCE],
            "response_bytes": 16826,
            "via": "",
        },
        ("istio-gateways/istio-ingressgateway", "bookinfo-frontends/productpage"): {
            "reporters": [Reporter.DESTINATION],
            "response_bytes": 8178,
            "via": "",
        },
    }
