"""A simulated Istio ambient mesh that drives meshstitch through its real interfaces (OTLP
exporters, ztunnel /metrics endpoints) and knows the right answer (`Truth`). See runner.py."""

from app.domain import Coverage
from app.sim.bookinfo import bookinfo
from app.sim.generate import generate_mesh
from app.sim.invariants import TopologyError, validate, violations
from app.sim.istio import ISTIO_VERSIONS, IstioVersion
from app.sim.realistic import realistic_bookinfo
from app.sim.runner import MeshSimulator, TickReport
from app.sim.topology import OUTSIDE, Edge, External, Service, Topology, Waypoint
from app.sim.truth import EdgeTruth, Truth

__all__ = [
    "ISTIO_VERSIONS",
    "OUTSIDE",
    "Coverage",
    "Edge",
    "EdgeTruth",
    "External",
    "IstioVersion",
    "MeshSimulator",
    "Service",
    "TickReport",
    "Topology",
    "TopologyError",
    "Truth",
    "Waypoint",
    "bookinfo",
    "generate_mesh",
    "realistic_bookinfo",
    "validate",
    "violations",
]
