from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.sim.bookinfo import bookinfo
from app.sim.runner import MeshSimulator
from app.sim.ztunnel import ZtunnelNode
from app.sim.ztunnel_series import LABEL_NAMES

T0 = 1_748_779_200
FAMILIES = {
    "istio_tcp_connections_opened",
    "istio_tcp_connections_closed",
    "istio_tcp_received_bytes",
    "istio_tcp_sent_bytes",
}
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def sim() -> Iterator[MeshSimulator]:
    with MeshSimulator(bookinfo(), seed=3) as simulator:
        simulator.start_ztunnels()
        yield simulator


def _scrape(url: str) -> Series:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    # Like ztunnel, `# TYPE istio_tcp_sent_bytes counter` precedes samples named `..._total`
    # (tests/data/ztunnel/README.md); the 0.0.4 parser files those samples under their own name.
    for family in FAMILIES:
        assert f"# TYPE {family} counter\n" in text
    out: Series = {}
    for parsed in text_string_to_metric_families(text):
        for sample in parsed.samples:
            if sample.name.removesuffix("_total") in FAMILIES and sample.name.endswith("_total"):
                assert list(sample.labels) == list(LABEL_NAMES)
                out[(sample.name, tuple(sample.labels.items()))] = sample.value
    return out


def _scrape_all(sim: MeshSimulator) -> list[Series]:
    return [_scrape(url) for url in sim.ztunnel_urls]


def test_endpoints_start_without_traffic_series(sim: MeshSimulator) -> None:
    assert len(sim.ztunnel_urls) == 3
    assert all(series == {} for series in _scrape_all(sim))


def test_exposition_parses_and_carries_both_reporters_with_documented_labels(
    sim: MeshSimulator,
) -> None:
    sim.tick(T0, T0 + 60)
    labels = [dict(k[1]) for node in _scrape_all(sim) for k in node]
    assert {lab["reporter"] for lab in labels} == {"source", "destination"}
    assert all(lab["request_protocol"] == "tcp" and lab["response_flags"] == "-" for lab in labels)
    assert all(v != "" for lab in labels for v in lab.values())
    # waypoint call: client leg names the waypoint as destination, server leg as source
    client_leg = [
        lab
        for lab in labels
        if lab["reporter"] == "source" and lab["destination_workload"] == "waypoint"
    ]
    assert {lab["destination_service"] for lab in client_leg} == {
        "reviews.bookinfo.svc.cluster.local",
        "ratings.bookinfo.svc.cluster.local",
    }
    assert {lab["destination_principal"] for lab in client_leg} == {
        "spiffe://cluster.local/ns/bookinfo/sa/waypoint"
    }
    server_leg = [lab for lab in labels if lab["source_workload"] == "waypoint"]
    assert server_leg and {lab["reporter"] for lab in server_leg} == {"destination"}
    # outside caller: destination reporter only, source unknown, plaintext
    outside = [lab for lab in labels if lab["source_workload"] == "unknown"]
    assert outside and all(
        lab["reporter"] == "destination"
        and lab["source_principal"] == "unknown"
        and lab["connection_security_policy"] == "unknown"
        and lab["destination_service_name"] == "productpage"
        for lab in outside
    )
    # leaving the mesh and the uncaptured database: source reporter only, plaintext
    egress = [lab for lab in labels if lab["destination_service"] == "www.googleapis.com"]
    assert egress and all(
        lab["reporter"] == "source"
        and lab["destination_service_namespace"] == "unknown"
        and lab["connection_security_policy"] == "unknown"
        for lab in egress
    )
    mongo = [lab for lab in labels if lab["destination_service_name"] == "mongodb"]
    assert {(lab["reporter"], lab["connection_security_policy"]) for lab in mongo} == {
        ("source", "unknown")
    }
    direct = [lab for lab in labels if lab["destination_service_name"] == "details"]
    assert {lab["reporter"] for lab in direct} == {"source", "destination"}
    assert {lab["connection_security_policy"] for lab in direct} == {"mutual_tls"}


def _kept_totals(sim: MeshSimulator, family: str) -> dict[tuple[str, str], float]:
    """Sum one family over the series meshstitch keeps, keyed like the truth."""
    out: dict[tuple[str, str], float] = {}
    for node in _scrape_all(sim):
        for (name, items), value in node.items():
            lab = dict(items)
            if name != family + "_total" or lab["source_workload"] == "waypoint":
                continue
            direct_pair = lab["reporter"] == "destination" and lab["source_principal"].startswith(
                "spiffe://"
            )
            if direct_pair:
                continue  # the source reporter's copy is the one counted
            source = (
                f"{lab['source_workload_namespace']}/{lab['source_canonical_service']}"
                if lab["source_workload"] != "unknown"
                else f"unknown/caller-of-{lab['destination_service_name']}.{lab['destination_service_namespace']}"
            )
            target = (
                f"external/{lab['destination_service_name']}"
                if lab["destination_service_namespace"] == "unknown"
                else f"{lab['destination_service_namespace']}/{lab['destination_service_name']}"
            )
            out[(source, target)] = out.get((source, target), 0) + value
    return out


def test_counters_match_truth_with_request_bytes_in_received(sim: MeshSimulator) -> None:
    for i in range(3):
        sim.tick(T0 + 60 * i, T0 + 60 * (i + 1))
    truth = sim.truth
    received = _kept_totals(sim, "istio_tcp_received_bytes")
    sent = _kept_totals(sim, "istio_tcp_sent_bytes")
    opened = _kept_totals(sim, "istio_tcp_connections_opened")
    closed = _kept_totals(sim, "istio_tcp_connections_closed")
    assert set(received) == {k for k, e in truth.edges.items() if e.has_l4}
    for key, edge in truth.edges.items():
        if not edge.has_l4:
            continue
        assert received[key] == edge.bytes_sent  # request direction
        assert sent[key] == edge.bytes_received  # response direction
        assert opened[key] == edge.connections_opened
        assert closed[key] == edge.connections_closed
    tcp = truth.edge("bookinfo/ratings", "bookinfo/mongodb")
    assert tcp.connections_closed < tcp.connections_opened  # pooled connections close later


def test_counters_only_grow_except_at_detectable_restarts(sim: MeshSimulator) -> None:
    previous = _scrape_all(sim)
    restarts = 0
    for i in range(8):
        if i in (2, 5):
            sim.restart_ztunnel("node-0")
        report = sim.tick(T0 + 60 * i, T0 + 60 * (i + 1))
        current = _scrape_all(sim)
        for node_index, (before, after) in enumerate(zip(previous, current, strict=True)):
            restarted = f"node-{node_index}" in report.restarted_nodes
            assert set(before) <= set(after)  # series never vanish
            dropped = [k for k in before if after[k] < before[k]]
            if restarted:
                restarts += 1
                # every counter that had counted something drops: the reset is detectable
                assert dropped == [k for k in before if before[k] > 0]
            else:
                assert dropped == []
        previous = current
    assert restarts == 2 == sim.nodes["node-0"].restarts


def test_an_undetectable_restart_waits_for_a_later_tick() -> None:
    node = ZtunnelNode("n")
    labels = tuple("x" for _ in LABEL_NAMES)
    node.advance({labels: (1, 1, 10, 10, 0)})
    assert node.advance({labels: (1, 1, 20, 20, 0)}, restart=True) is False  # 20 >= 10: hidden
    assert node.counters()[labels] == (2, 2, 30, 30, 0)
    assert node.advance({labels: (0, 0, 5, 5, 0)}, restart=True) is True
    assert node.counters()[labels] == (0, 0, 5, 5, 0)


def test_random_restarts_are_seeded() -> None:
    def run() -> list[tuple[str, ...]]:
        with MeshSimulator(bookinfo(), seed=9, restart_probability=0.3) as s:
            return [s.tick(T0 + 60 * i, T0 + 60 * (i + 1)).restarted_nodes for i in range(6)]

    first = run()
    assert first == run()
    assert any(first)
