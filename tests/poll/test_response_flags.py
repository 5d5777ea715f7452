"""ztunnel's connection-failure flags end to end: a loopback ztunnel printing a flagged closed
counter, scraped by the real poller into the real app's pipeline and store, read back from
/edges (`connections_failed`, `failures` by flag) and /triage (`connections_denied` for DENY and
NETWORK_POLICY, `connections_failing` for the rest).

The shape is ztunnel's (app/poll/half_edges.py, istio/ztunnel `src/proxy/metrics.rs`): a failed
connection is an opened "-" plus a closed with the flag. Newer ztunnel also prints
`istio_tcp_connections_failed_total` for the same events; it must not add to the count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.correlate.identity import NodeIdentity
from app.domain import DENIED_FLAGS, FAILURE_FLAGS
from app.main import create_app
from app.poll.poller import L4Poller, build_poller
from app.settings import Settings
from tests.poll.fake_ztunnel import LABEL_ORDER, FakeZtunnel, destination, series_labels, source
from tests.poll.fake_ztunnel import serve as serve_ztunnel

# flag -> the triage finding it must raise (README "L4 failures"): refused by policy, or failing
FLAGS = {
    "DENY": "connections_denied",
    "CONNECT": "connections_failing",
    "TLS_FAILURE": "connections_failing",
    "H2_HANDSHAKE_FAILURE": "connections_failing",
    "NETWORK_POLICY": "connections_denied",
    "IDENTITY_ERROR": "connections_failing",
    "CERT_REVOKED": "connections_failing",
}
REVIEWS = "default/reviews"
FLAGGED = "default/productpage->default/reviews"  # mostly fine, some failures
ONLY_FAILED = "default/ratings->default/reviews"  # every connection failed, no bytes
CLOSE_ONLY = "default/sleep->default/reviews"  # only the flagged close moved since the baseline
HEALTHY = "default/details->default/reviews"  # "-" only


def test_the_flags_tested_are_the_product_s_failure_flags() -> None:
    assert set(FLAGS) == FAILURE_FLAGS
    assert {f for f, kind in FLAGS.items() if kind == "connections_denied"} == DENIED_FLAGS


class NewerZtunnel(FakeZtunnel):
    """Also prints `istio_tcp_connections_failed_total`, incremented where the flagged close is
    (same labels), as newer ztunnel does."""

    def render(self) -> str:
        text = super().render().removesuffix("# EOF\n")
        with self.lock:
            items = list(self.series.items())
        lines = [
            "# HELP istio_tcp_connections_failed The total number of TCP connections failed.",
            "# TYPE istio_tcp_connections_failed counter",
        ]
        for key, counters in items:
            if dict(key)["response_flags"] != "-":
                text_labels = ",".join(f'{k}="{v}"' for k, v in key)
                lines.append(
                    f"istio_tcp_connections_failed_total{{{text_labels}}} {counters.closed}"
                )
        return text + "\n".join(lines) + "\n# EOF\n"


def _labels(src: str, flag: str = "-") -> dict[str, str]:
    return series_labels(
        "destination", response_flags=flag, **source(src), **destination("reviews-v1")
    )


def _advance(fake: FakeZtunnel, flag: str) -> None:
    """The traffic between the two scrapes, per edge."""
    fake.add(_labels("productpage-v1"), opened=20, closed=17, req=1700, resp=17_000)
    fake.add(_labels("productpage-v1", flag), closed=3)
    fake.add(_labels("ratings-v1"), opened=2)
    fake.add(_labels("ratings-v1", flag), closed=2)
    fake.add(_labels("sleep-v1", flag), closed=1)
    fake.add(_labels("details-v1"), opened=5, closed=5, req=50, resp=500)


class Clock:
    def __init__(self) -> None:
        self.now = time.time() - 60  # inside the routes' 15 min window (they use the real clock)

    def __call__(self) -> float:
        return self.now


@dataclass
class Read:
    edges: dict[str, dict[str, Any]]
    findings: list[dict[str, Any]]

    def kinds_on(self, edge: str) -> set[str]:
        return {f["kind"] for f in self.findings if f["edge"] == edge}

    def finding(self, kind: str, edge: str) -> dict[str, Any]:
        (found,) = [f for f in self.findings if f["kind"] == kind and f["edge"] == edge]
        return found


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    """The real app (pipeline, store, routes) with no L4 input of its own: each test's poller
    feeds its pipeline, so the test decides when to scrape."""
    with TestClient(create_app(Settings(database_url=sqlite_url, grpc_port=0))) as test_client:
        yield test_client


def _poller(client: TestClient, url: str, clock: Clock) -> L4Poller:
    app: Any = client.app
    settings = Settings(ztunnel_targets=url, poll_interval_s=10, poll_timeout_s=5)
    identity: NodeIdentity = app.state.identity
    poller = build_poller(settings, app.state.pipeline.add_l4, identity, clock=clock)
    assert poller is not None and poller.mode == "scrape"
    return poller


def _scrape_twice(client: TestClient, fake: FakeZtunnel, flag: str) -> Read:
    """Baseline, the traffic, the second scrape, flush; then what /edges and /triage say."""
    app: Any = client.app
    clock = Clock()
    fake.add(_labels("productpage-v1"), opened=100, closed=100, req=10, resp=10)  # before us
    fake.add(_labels("ratings-v1"), opened=1, closed=1)
    with serve_ztunnel(fake) as url:
        poller = _poller(client, url, clock)
        assert poller.poll_once_sync() == []  # the baseline
        _advance(fake, flag)
        clock.now += 30
        assert len(poller.poll_once_sync()) == 6  # one sample per moved series
        assert poller.readiness().detail["all_targets_healthy"] is True
    assert app.state.pipeline.flush()
    edges = client.get("/edges", params={"window": "15m"})
    assert edges.status_code == 200, edges.text
    triage = client.get("/triage", params={"service": REVIEWS, "window": "15m"})
    assert triage.status_code == 200, triage.text
    return Read(
        {e["id"]: e for e in edges.json()["edges"]},
        [f for f in triage.json()["findings"] if f["kind"].startswith("connections_")],
    )


@pytest.mark.parametrize("newer_ztunnel", [False, True], ids=["ztunnel", "with-failed-total"])
@pytest.mark.parametrize("flag", list(FLAGS))
def test_a_flagged_close_is_a_failed_connection_by_flag_and_a_triage_finding(
    client: TestClient, flag: str, newer_ztunnel: bool
) -> None:
    fake = NewerZtunnel() if newer_ztunnel else FakeZtunnel()
    read = _scrape_twice(client, fake, flag)
    assert set(read.edges) == {FLAGGED, ONLY_FAILED, CLOSE_ONLY, HEALTHY}, sorted(read.edges)

    flagged = read.edges[FLAGGED]["l4"]
    assert (flagged["connections_opened"], flagged["connections_closed"]) == (20, 20)
    # counted once: istio_tcp_connections_failed_total (when printed) is not added
    assert (flagged["connections_failed"], flagged["failures"]) == (3, {flag: 3})
    assert (flagged["bytes_sent"], flagged["bytes_received"]) == (1700, 17_000)

    # an edge whose every connection failed (no byte moved) is still an edge, with its failures
    only = read.edges[ONLY_FAILED]
    assert only["coverage"] == "l4_only" and only["l4"]["connections_opened"] == 2
    assert (only["l4"]["connections_failed"], only["l4"]["failures"]) == (2, {flag: 2})
    close_only = read.edges[CLOSE_ONLY]["l4"]
    assert (close_only["connections_opened"], close_only["connections_failed"]) == (0, 1)
    assert close_only["failures"] == {flag: 1}

    healthy = read.edges[HEALTHY]["l4"]  # "-" is not a failure
    assert (healthy["connections_failed"], healthy["failures"]) == (0, {})
    assert read.kinds_on(HEALTHY) == set()

    kind = FLAGS[flag]
    for edge, n in ((FLAGGED, 3), (ONLY_FAILED, 2), (CLOSE_ONLY, 1)):
        assert read.kinds_on(edge) == {kind}, read.findings
        assert read.finding(kind, edge)["evidence"]["failures"] == {flag: n}
    if kind == "connections_denied":
        assert read.finding(kind, FLAGGED)["severity"] == "warning"  # policy may be intended
    else:  # 3 of 20 connections is past the 5 % critical share
        assert read.finding(kind, FLAGGED)["severity"] == "critical"
        assert read.finding(kind, FLAGGED)["evidence"]["failed_share"] == 0.15


def test_the_newer_failed_counter_alone_is_not_a_failure(client: TestClient) -> None:
    """A failed_total series without its flagged close (as if only it moved) adds nothing:
    the flagged close is the one count of a failed connection."""

    class OnlyFailedTotal(FakeZtunnel):
        failed_total = 0

        def render(self) -> str:
            labels = dict(_labels("productpage-v1", "CONNECT"))
            text = ",".join(f'{k}="{labels[k]}"' for k in LABEL_ORDER)
            family = "istio_tcp_connections_failed"
            return super().render().removesuffix("# EOF\n") + (
                f"# TYPE {family} counter\n{family}_total{{{text}}} {self.failed_total}\n# EOF\n"
            )

    fake = OnlyFailedTotal()
    clock = Clock()
    fake.add(_labels("productpage-v1"), opened=1, closed=1)
    with serve_ztunnel(fake) as url:
        poller = _poller(client, url, clock)
        poller.poll_once_sync()
        fake.add(_labels("productpage-v1"), opened=4, closed=4, req=40, resp=400)
        fake.failed_total = 9
        clock.now += 30
        (sample,) = poller.poll_once_sync()
    assert (sample.connections_opened, sample.response_flags) == (4, "-")  # type: ignore[union-attr]
    app: Any = client.app
    assert app.state.pipeline.flush()
    (edge,) = client.get("/edges", params={"window": "15m"}).json()["edges"]
    assert (edge["l4"]["connections_failed"], edge["l4"]["failures"]) == (0, {})
