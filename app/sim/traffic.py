"""The requests of one simulated interval: a seeded Poisson process per edge, in integer ns."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from app.sim.topology import Edge, Topology, Workload

NS_PER_S = 1_000_000_000
_MIN_DURATION_NS = 20_000  # 20 µs: nothing a proxy reports is faster


@dataclass(frozen=True, slots=True)
class Request:
    """One call (an HTTP request, or a query on a TCP edge) ending inside a tick."""

    edge_index: int
    source_workload: Workload | None  # None: caller outside the mesh
    target_workload: Workload | None  # None: external host
    end_ns: int
    duration_ns: int
    status: str  # "200", "404", "500", "503"; "" on TCP edges
    response_flags: str  # Envoy short flags: "-" or "UF"
    request_bytes: int
    response_bytes: int

    @property
    def start_ns(self) -> int:
        return self.end_ns - self.duration_ns

    @property
    def error(self) -> bool:
        return self.status.startswith("5") or self.response_flags != "-"

    @property
    def duration_ms(self) -> float:
        # Exactly what meshstitch computes from a span (app.domain.Span.duration_ms).
        return max(0, self.duration_ns) / 1e6


class TrafficGenerator:
    def __init__(self, topology: Topology, rng: random.Random) -> None:
        self._topology = topology
        self._rng = rng
        self._next_ns: list[int | None] = [None] * len(topology.edges)
        self._callers = [topology.caller_workloads(e) for e in topology.edges]
        self._targets = [
            topology.service(e.target).workloads if topology.has_service(e.target) else ()
            for e in topology.edges
        ]
        self._protocols = [topology.classify(e).protocol for e in topology.edges]

    def _gap_ns(self, rate_rps: float) -> int:
        return max(1, int(self._rng.expovariate(rate_rps) * NS_PER_S))

    def requests(self, start_ns: int, end_ns: int) -> list[Request]:
        """Every request ending in [start_ns, end_ns), ordered by edge then time."""
        out: list[Request] = []
        for i, edge in enumerate(self._topology.edges):
            if edge.rate_rps <= 0:
                continue
            next_ns = self._next_ns[i]
            if next_ns is None or next_ns < start_ns:
                next_ns = start_ns + self._gap_ns(edge.rate_rps)
            while next_ns < end_ns:
                out.append(self._request(i, edge, next_ns))
                next_ns += self._gap_ns(edge.rate_rps)
            self._next_ns[i] = next_ns
        return out

    def _request(self, index: int, edge: Edge, end_ns: int) -> Request:
        rng = self._rng
        callers, targets = self._callers[index], self._targets[index]
        duration_ms = rng.lognormvariate(math.log(edge.latency_median_ms), edge.latency_sigma)
        status, flags = "", "-"
        if self._protocols[index] == "http":
            u = rng.random()
            if u < edge.error_rate:
                status, flags = ("503", "UF") if rng.random() < 0.5 else ("500", "-")
            elif u < edge.error_rate + edge.not_found_rate:
                status = "404"
            else:
                status = "200"
        return Request(
            edge_index=index,
            source_workload=rng.choice(callers) if callers else None,
            target_workload=rng.choice(targets) if targets else None,
            end_ns=end_ns,
            duration_ns=max(_MIN_DURATION_NS, int(duration_ms * 1e6)),
            status=status,
            response_flags=flags,
            request_bytes=_jitter(rng, edge.request_bytes),
            response_bytes=_jitter(rng, edge.response_bytes),
        )


def _jitter(rng: random.Random, mean: int) -> int:
    return max(1, round(mean * (0.75 + 0.5 * rng.random())))
