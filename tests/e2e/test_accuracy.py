"""End to end against ground truth: a simulated ambient mesh drives a real meshstitch through OTLP
exporters and scraped ztunnel endpoints; the graph it serves must equal the simulator's truth.

Scores (precision, recall, exact-count share, coverage-class share, p99 error) are printed, so
`pytest -s tests/e2e` shows them.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from app.settings import Settings
from app.sim import Coverage, EdgeTruth, Topology, Truth, bookinfo, generate_mesh
from app.sim.harness import SimulatedRun, aligned_start, serve_meshstitch
from tests.e2e.conftest import BUCKET_S


@dataclass
class Scores:
    precision: float
    recall: float
    exact_counts: float
    exact_coverage: float
    worst_p99_error: float
    problems: list[str]
    # split of worst_p99_error: edges a waypoint counts (bounded by their bucket) and the rest
    worst_p99_error_metrics: float = 0.0
    worst_p99_error_spans: float = 0.0

    def line(self, name: str) -> str:
        return (
            f"{name}: precision {self.precision:.3f} recall {self.recall:.3f} "
            f"exact counts {self.exact_counts:.3f} coverage {self.exact_coverage:.3f} "
            f"worst p99 rel. error {100 * self.worst_p99_error:.3f}% "
            f"(waypoint-metrics edges {100 * self.worst_p99_error_metrics:.3f}%, "
            f"span-only edges {100 * self.worst_p99_error_spans:.3f}%)"
        )


def _p99_problem(t: EdgeTruth, l7: dict[str, Any]) -> tuple[float, str | None]:
    """(relative error of the shown p99 against the true one, a problem or None).

    A p99 from spans must be the sampled spans' quantile within the sketch's 1 %; a p99 from an
    edge with waypoint metrics must have the true p99 of all requests inside its stated bound."""
    latency = l7.get("latency_ms") or {}
    p99, true_p99 = latency.get("p99"), t.p99_ms
    if true_p99 is None:
        return 0.0, None
    if p99 is None:
        return 1.0, f"no p99 (true {true_p99:.3f})"
    error = abs(p99 - true_p99) / true_p99
    if t.metrics:
        lo, hi = (latency.get("bounds") or {}).get("p99") or (None, None)
        if lo is None or not (lo <= true_p99 < (hi if hi is not None else math.inf)):
            return error, f"true p99 {true_p99:.3f} outside the bound [{lo}, {hi})"
    if latency.get("from") == "spans":
        sampled = t.sampled_quantile(0.99)
        if sampled is None or abs(p99 - sampled) > 0.01 * sampled:
            return error, f"p99 {p99} vs sampled spans' {sampled}"
    return error, None


def _source_problems(t: EdgeTruth, l7: dict[str, Any]) -> list[str]:
    """Where the counts come from and what the sampled spans add."""
    want = "metrics" if t.metrics else "spans"
    problems = []
    if l7.get("counts_from") != want or l7.get("exact") is not t.metrics:
        problems.append(f"counts_from {l7.get('counts_from')} exact {l7.get('exact')}")
    if l7.get("spans") != t.sampled_requests:
        problems.append(f"spans {l7.get('spans')} != sampled {t.sampled_requests}")
    if t.metrics and t.requests:
        share = t.sampled_requests / t.requests
        if abs((l7.get("sampling_share") or 0.0) - share) > 1e-6:
            problems.append(f"sampling_share {l7.get('sampling_share')} != {share:.6f}")
    return problems


def score(truth: Truth, served: list[dict[str, Any]]) -> Scores:
    expected = {(e.source, e.target): e for e in truth.visible_edges()}
    got = {(e["source"], e["target"]): e for e in served}
    hits = expected.keys() & got.keys()
    problems = [f"missing edge {k}" for k in sorted(expected.keys() - got.keys())]
    problems += [f"unexpected edge {k}: {got[k]['coverage']}" for k in sorted(got.keys() - hits)]
    exact = coverage_ok = 0
    worst = {True: 0.0, False: 0.0}  # by t.metrics
    for key in sorted(hits):
        t, e = expected[key], got[key]
        l7, l4 = e["l7"] or {}, e["l4"] or {}
        counts = {
            "requests": (t.l7_requests, l7.get("requests", 0)),
            "errors": (t.l7_errors, l7.get("errors", 0)),
            "bytes_sent": (t.bytes_sent, l4.get("bytes_sent", 0)),
            "bytes_received": (t.bytes_received, l4.get("bytes_received", 0)),
            "connections_opened": (t.connections_opened, l4.get("connections_opened", 0)),
            "connections_closed": (t.connections_closed, l4.get("connections_closed", 0)),
            "connections_failed": (t.connections_failed, l4.get("connections_failed", 0)),
        }
        wrong = {k: v for k, v in counts.items() if v[0] != v[1]}
        if wrong:
            problems.append(f"{key}: (truth, served) {wrong}")
        else:
            exact += 1
        coverage = t.observed_coverage
        if coverage is not None and e["coverage"] == coverage.value:
            coverage_ok += 1
        else:
            problems.append(f"{key}: coverage {e['coverage']} != {coverage}")
        if t.l7_requests:
            problems += [f"{key}: {p}" for p in _source_problems(t, l7)]
            error, problem = _p99_problem(t, l7)
            worst[t.metrics] = max(worst[t.metrics], error)
            if problem:
                problems.append(f"{key}: {problem}")
    n = max(len(hits), 1)
    return Scores(
        precision=len(hits) / max(len(got), 1),
        recall=len(hits) / max(len(expected), 1),
        exact_counts=exact / n,
        exact_coverage=coverage_ok / n,
        worst_p99_error=max(worst.values()),
        problems=problems,
        worst_p99_error_metrics=worst[True],
        worst_p99_error_spans=worst[False],
    )


@dataclass
class Result:
    truth: Truth
    base_url: str
    params: dict[str, str]
    edges: list[dict[str, Any]]


def run_mesh(
    settings: Settings,
    topology: Topology,
    seed: int,
    ticks: int,
    protocol: str,
    **sim_options: Any,
) -> Iterator[Result]:
    with serve_meshstitch(settings) as running:
        run = SimulatedRun(
            running, topology, seed=seed, protocol=protocol, tick_s=BUCKET_S, **sim_options
        )
        try:
            start = aligned_start(ticks, BUCKET_S, BUCKET_S)
            run.run_ticks(ticks, start)
            assert run.settle(), running.pipeline.stats.last_flush_error
            params = {
                "from": str(int(start * 1000)),
                "to": str(int((time.time() + 2 * BUCKET_S) * 1000)),
            }
            response = httpx.get(
                f"{running.base_url}/edges", params={**params, "limit": "50000"}, timeout=60
            )
            assert response.status_code == 200, response.text
            yield Result(run.sim.truth, running.base_url, params, response.json()["edges"])
        finally:
            run.stop()


def assert_perfect(name: str, truth: Truth, served: list[dict[str, Any]]) -> None:
    scores = score(truth, served)
    print("\n" + scores.line(name))
    assert scores.problems == [], "\n".join(scores.problems[:40])
    assert scores.precision == scores.recall == 1.0


def test_bookinfo_graph_equals_truth_and_blind_spots_are_reported(settings: Settings) -> None:
    for result in run_mesh(settings, bookinfo(), seed=1, ticks=3, protocol="grpc"):
        assert_perfect("bookinfo", result.truth, result.edges)
        blind = {
            (e.source, e.target)
            for e in result.truth.visible_edges()
            if e.coverage is Coverage.L4_ONLY
        }
        plaintext = {(e.source, e.target) for e in result.truth.visible_edges() if e.plaintext}
        assert blind and plaintext

        coverage = httpx.get(f"{result.base_url}/coverage", params=result.params, timeout=30)
        assert coverage.status_code == 200, coverage.text
        reported = {(b["source"], b["target"]) for b in coverage.json()["blind_spots"]}
        assert blind <= reported, blind - reported

        findings: list[dict[str, Any]] = []
        for service in {s for pair in blind | plaintext for s in pair if "/" in s}:
            if service.startswith(("unknown/", "external/")):
                continue
            triage = httpx.get(
                f"{result.base_url}/triage",
                params={**result.params, "service": service},
                timeout=30,
            )
            assert triage.status_code == 200, triage.text
            findings.extend(triage.json()["findings"])
        flagged = {f["edge"] for f in findings if f["kind"] in {"blind_spot", "plaintext_link"}}
        for source, target in blind | plaintext:
            assert f"{source}->{target}" in flagged, (source, target, sorted(flagged))

        # `meshstitch graph` prints the same neighbourhood from the running server.
        printed = subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "graph",
                "--service",
                "productpage",
                "--depth",
                "2",
                "--window",
                "1h",
                "--url",
                result.base_url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert printed.returncode == 0, printed.stderr
        table, _, note = printed.stdout.partition("\n\n")
        assert note.startswith("RPS: rates per second over the "), printed.stdout
        rows = [line.split() for line in table.splitlines()[1:]]
        shown = {(r[0], r[1]): r[2] for r in rows}
        for edge in result.truth.visible_edges():
            if "bookinfo/productpage" in (edge.source, edge.target):
                assert shown[(edge.source, edge.target)] == edge.coverage.value, printed.stdout
        missing = subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "graph",
                "--service",
                "productpag",
                "--url",
                result.base_url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert missing.returncode == 1 and "productpage" in missing.stderr, missing.stderr


def test_random_mesh_of_120_services_graph_equals_truth(settings: Settings) -> None:
    topology = generate_mesh(120, seed=11)
    assert len({s.id for s in topology.services}) >= 100
    for result in run_mesh(settings, topology, seed=11, ticks=2, protocol="http"):
        assert_perfect("random-120", result.truth, result.edges)


def test_istio_1_29_waypoints_name_their_callers_with_peer_tags(settings: Settings) -> None:
    """Istio ≥ 1.29: resource service.name is the destination and the waypoint tags the caller
    (istio.source_*): the same truth, and the uninstrumented productpage is named by the tags."""
    for result in run_mesh(
        settings, bookinfo(), seed=3, ticks=2, protocol="http", istio_version="1.29"
    ):
        assert_perfect("bookinfo, Istio 1.29 waypoints", result.truth, result.edges)
        edge = next(
            e
            for e in result.edges
            if (e["source"], e["target"]) == ("bookinfo/productpage", "bookinfo/reviews")
        )
        # spans name it by the peer tags; the waypoint's request metrics count the same requests
        evidence = edge["provenance"]["evidence"]
        assert set(evidence) == {"peer_tags", "waypoint_metrics"}, edge["provenance"]
        assert evidence["peer_tags"] == evidence["waypoint_metrics"] == edge["l7"]["requests"]
