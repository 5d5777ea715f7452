"""A simulated Istio ambient mesh that drives meshstitch through its real interfaces (OTLP
exporters, ztunnel /metrics endpoints) and knows the right answer (`Truth`). See runner.py."""

from app.domain import Coverage
from app.sim.bookinfo import bookinfo
from app.sim.generate import generate_mesh
from app.sim.invariants import TopologyError, validate, violations
from app.sim.runner import MeshSimulator, TickReport
from app.sim.topology import OUTSIDE, Edge, External, Service, Topology, Waypoint
from app.sim.truth import EdgeTruth, Truth

__all__ = [
    "OUTSIDE",
    "Coverage",
    "Edge",
    "EdgeTruth",
    "External",
    "MeshSimulator",
    "Service",
    "TickReport",
    "Topology",
    "TopologyError",
    "Truth",
    "Waypoint",
    "bookinfo",
    "generate_mesh",
    "validate",
    "violations",
]
