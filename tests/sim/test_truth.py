from __future__ import annotations

from pathlib import Path

import pytest

from app.domain import Coverage
from app.sim.bookinfo import bookinfo
from app.sim.generate import generate_mesh
from app.sim.runner import MeshSimulator
from app.sim.truth import Truth, lower_nearest_rank

T0 = 1_748_779_200


def _run(seed: int, ticks: int = 3) -> Truth:
    with MeshSimulator(bookinfo(), seed=seed) as sim:
        for i in range(ticks):
            sim.tick(T0 + 60 * i, T0 + 60 * (i + 1))
        return sim.truth


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([], 0.5, None),
        ([3.0], 0.99, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
        ([float(i) for i in range(1, 101)], 1.0, 100.0),
    ],
)
def test_lower_nearest_rank(samples: list[float], q: float, expected: float | None) -> None:
    assert lower_nearest_rank(samples, q) == expected


def test_truth_is_deterministic_per_seed() -> None:
    assert _run(2).to_dict() == _run(2).to_dict()
    assert _run(2).to_dict() != _run(3).to_dict()


def test_truth_round_trips_through_json(tmp_path: Path) -> None:
    truth = _run(5)
    truth.to_json(tmp_path / "truth.json")
    again = Truth.from_json(tmp_path / "truth.json")
    assert again == truth
    assert again.to_dict() == truth.to_dict()
    reviews = again.edge("bookinfo/productpage", "bookinfo/reviews")
    assert reviews.via == "bookinfo/waypoint" and reviews.coverage is Coverage.FULL


def test_truth_without_samples_keeps_the_exact_quantiles(tmp_path: Path) -> None:
    truth = _run(5)
    truth.to_json(tmp_path / "t.json", include_samples=False)
    again = Truth.from_json(tmp_path / "t.json")
    for key, edge in truth.edges.items():
        other = again.edges[key]
        assert other.latencies_ms == []
        assert (other.p50_ms, other.p95_ms, other.p99_ms) == (edge.p50_ms, edge.p95_ms, edge.p99_ms)
        assert other.requests == edge.requests and other.bytes_sent == edge.bytes_sent


def test_truth_per_tick_rows_add_up_and_blind_spots_have_no_l7() -> None:
    truth = _run(6)
    assert truth.start_s == T0 and truth.end_s == T0 + 180
    for edge in truth.edges.values():
        assert len(edge.ticks) == 3
        assert sum(t.requests for t in edge.ticks) == edge.requests
        assert sum(t.errors for t in edge.ticks) == edge.errors
        assert sum(edge.status_codes.values()) == edge.requests
        if edge.coverage is Coverage.L4_ONLY:
            assert edge.l7_requests == 0
    details = truth.edge("bookinfo/productpage", "bookinfo/details")
    assert details.requests > 0 and details.l7_requests == 0
    assert {e.target for e in truth.visible_edges()} >= {"external/www.googleapis.com"}
    assert truth.nodes["unknown/caller-of-productpage.bookinfo"] == "unknown"


def test_a_large_generated_mesh_runs_a_tick() -> None:
    mesh = generate_mesh(200, seed=1)
    with MeshSimulator(mesh, seed=1) as sim:
        report = sim.tick(T0, T0 + 5)
    assert report.requests > 0 and report.spans > 0
    visible = {(e.source, e.target) for e in sim.truth.visible_edges()}
    assert visible and visible <= set(sim.truth.edges)


def test_ticks_must_move_forward() -> None:
    with MeshSimulator(bookinfo(), seed=1) as sim:
        sim.tick(T0, T0 + 10)
        with pytest.raises(ValueError, match="overlap"):
            sim.tick(T0 + 5, T0 + 20)
        with pytest.raises(ValueError, match="end_s"):
            sim.tick(T0 + 30, T0 + 30)
        sim.tick(T0 + 100, T0 + 110)  # gaps are fine
