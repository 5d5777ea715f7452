from __future__ import annotations

import dataclasses

import pytest

from app.domain import Coverage
from app.sim.bookinfo import bookinfo
from app.sim.generate import generate_mesh
from app.sim.invariants import TopologyError, validate, violations
from app.sim.topology import OUTSIDE, Edge, Topology


def test_bookinfo_has_a_blind_spot_a_plaintext_link_and_both_waypoint_paths() -> None:
    mesh = bookinfo()
    classes = {
        (mesh.source_node_id(e), mesh.target_node_id(e)): c for e, c in mesh.iter_classified()
    }
    assert any(c.coverage is Coverage.L4_ONLY and c.protocol == "http" for c in classes.values())
    assert any(c.plaintext for c in classes.values())
    details = classes[("bookinfo/productpage", "bookinfo/details")]
    assert details.coverage is Coverage.L4_ONLY and not details.plaintext
    reviews = classes[("bookinfo/productpage", "bookinfo/reviews")]
    assert reviews.via == "bookinfo/waypoint" and not reviews.client_spans  # attributed from L4
    ratings = classes[("bookinfo/reviews", "bookinfo/ratings")]
    assert ratings.via == "bookinfo/waypoint" and ratings.client_spans  # attributed by parent
    assert classes[("bookinfo/ratings", "bookinfo/mongodb")].plaintext
    assert ("unknown/caller-of-productpage.bookinfo", "bookinfo/productpage") in classes
    assert ("bookinfo/details", "external/www.googleapis.com") in classes
    assert [w.name for w in mesh.service("bookinfo/reviews").workloads] == [
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
    ]


def test_generator_is_deterministic_per_seed() -> None:
    assert generate_mesh(120, seed=5) == generate_mesh(120, seed=5)
    assert generate_mesh(120, seed=5) != generate_mesh(120, seed=6)


@pytest.mark.parametrize("seed", range(4))
def test_generated_meshes_keep_every_invariant(seed: int) -> None:
    mesh = generate_mesh(300, seed=seed)
    assert violations(mesh) == []
    assert len(mesh.services) == 300
    coverage = {c.coverage for _, c in mesh.iter_classified()}
    assert {Coverage.FULL, Coverage.L4_ONLY} <= coverage
    assert any(c.plaintext for _, c in mesh.iter_classified())
    assert any(c.via and not c.client_spans for _, c in mesh.iter_classified())
    assert any(e.source == OUTSIDE for e in mesh.edges)
    assert mesh.externals


def test_generated_waypoint_targets_with_unattributed_spans_have_one_caller_workload() -> None:
    mesh = generate_mesh(300, seed=11)
    for edge, cls in mesh.iter_classified():
        if cls.via and not cls.client_spans:
            into = [e for e in mesh.edges if e.target == edge.target]
            assert into == [edge]
            assert len(mesh.caller_workloads(edge)) == 1


def _with(mesh: Topology, **changes: object) -> Topology:
    return dataclasses.replace(mesh, **changes)  # type: ignore[arg-type]


def _svc(mesh: Topology, service_id: str, **changes: object) -> Topology:
    services = tuple(
        dataclasses.replace(s, **changes) if s.id == service_id else s  # type: ignore[arg-type]
        for s in mesh.services
    )
    return _with(mesh, services=services)


def _breaks(mesh: Topology, fragment: str) -> None:
    problems = violations(mesh)
    assert any(fragment in p for p in problems), problems
    with pytest.raises(TopologyError):
        validate(mesh)


def test_a_second_caller_into_a_waypoint_with_an_uninstrumented_caller_is_rejected() -> None:
    mesh = bookinfo()
    extra = Edge("bookinfo/details", "bookinfo/reviews", rate_rps=1.0)
    _breaks(_with(mesh, edges=(*mesh.edges, extra)), "invariant 4")


def test_all_workloads_of_reviews_calling_ratings_is_fine_when_reviews_is_instrumented() -> None:
    mesh = bookinfo()
    edges = tuple(
        dataclasses.replace(e, source_workloads=()) if e.target == "bookinfo/ratings" else e
        for e in mesh.edges
    )
    assert violations(_with(mesh, edges=edges)) == []
    _breaks(_svc(_with(mesh, edges=edges), "bookinfo/reviews", instrumented=False), "invariant 4")


@pytest.mark.parametrize(
    ("service_id", "changes", "fragment"),
    [
        ("bookinfo/details", {"instrumented": True}, "invariant 5"),
        ("bookinfo/mongodb", {"waypoint": "waypoint"}, "captured HTTP"),
        ("bookinfo/details", {"waypoint": "nope"}, "not deployed"),
    ],
)
def test_invalid_service_settings_are_rejected(
    service_id: str, changes: dict[str, object], fragment: str
) -> None:
    _breaks(_svc(bookinfo(), service_id, **changes), fragment)


@pytest.mark.parametrize(
    ("edge", "fragment"),
    [
        (Edge("bookinfo/nope", "bookinfo/details", rate_rps=1), "unknown source"),
        (Edge("bookinfo/details", "nowhere.example", rate_rps=1), "unknown target"),
        (Edge("bookinfo/productpage", "bookinfo/details", rate_rps=1), "duplicate"),
        (Edge(OUTSIDE, "www.googleapis.com", rate_rps=1), "outside the mesh"),
        (
            Edge("bookinfo/details", "bookinfo/ratings", rate_rps=1, source_workloads=("x",)),
            "no workload",
        ),
    ],
)
def test_invalid_edges_are_rejected(edge: Edge, fragment: str) -> None:
    mesh = bookinfo()
    _breaks(_with(mesh, edges=(*mesh.edges, edge)), fragment)


def test_a_call_between_two_uncaptured_uninstrumented_pods_is_invisible_and_rejected() -> None:
    mesh = _svc(bookinfo(), "bookinfo/ratings", captured=False, waypoint="")
    _breaks(mesh, "invisible")
