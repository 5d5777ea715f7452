"""What meshstitch should report for a simulated run, edge by edge, at service level.

Counts are what happened on the wire, whatever meshstitch can see: `coverage` says which layers
it should find. For `l4_only` edges `requests`/`errors`/latency are the real HTTP traffic that no
span reports (meshstitch must show no L7 for them); TCP edges have no requests at all. For
`l7_only` edges the L4 fields are zero. L4 counts are those of the series meshstitch keeps (one
reporter; the client leg of a waypoint call), bytes normalised to client → server
(`bytes_sent`, request) and server → client (`bytes_received`, response), like `L4Sample`.

With trace sampling below 100 % (`MeshSimulator(trace_sampling=…)`) what meshstitch can count
exactly depends on the source: an edge through a waypoint (`metrics`) has the waypoint's
unsampled request metrics, so its L7 counts are the real ones; any other L7 edge is seen only
through its sampled traces, so the counts meshstitch must show are the sampled ones
(`sampled_requests`, `sampled_errors`), and a span-only edge none of whose traces was sampled
shows no L7 (`observed_coverage`). At 100 % the sampled counts are the counts.

Latency samples are the span durations in ms, computed as meshstitch does
(`(end_ns - start_ns) / 1e6`); every span of one request has the same start and end, so it does
not matter which span a correlator reads. Quantiles use the lower nearest rank
(`sorted[floor(q * (n - 1))]`), as `LatencySketch.quantile`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.domain import Coverage

_FORMAT = 1


def lower_nearest_rank(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[math.floor(min(max(q, 0.0), 1.0) * (len(ordered) - 1))]


@dataclass(slots=True)
class TickTruth:
    start_s: float
    end_s: float
    requests: int = 0
    errors: int = 0


@dataclass(slots=True)
class EdgeTruth:
    # node id: "<ns>/<canonical svc>", "unknown/caller-of-<svc>.<ns>", "unknown/<ip>" (a gateway's
    # outside client) or "external/<host>"
    source: str
    target: str
    coverage: Coverage
    plaintext: bool
    via: str  # "<ns>/<waypoint>" or ""
    protocol: str  # http | tcp
    metrics: bool = False  # a waypoint counts every request (its request metrics are scraped)
    requests: int = 0
    errors: int = 0
    status_codes: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    connections_opened: int = 0
    connections_closed: int = 0
    # connections refused (kept reporter), by the cause meshstitch must name: "DENY" for an
    # AuthorizationPolicy denial, whichever ztunnel's flag it is read from
    connections_failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    sampled_requests: int = 0  # requests whose trace was recorded
    sampled_errors: int = 0
    sampled_latencies_ms: list[float] = field(default_factory=list)
    ticks: list[TickTruth] = field(default_factory=list)
    # Zones (a zoned topology, of the calls ztunnel carries): bytes both ways by the zone path
    # each call took, "<client zone>|<waypoint zone>|<server zone>" ("" where a zone is unknown
    # or there is no waypoint); the bytes times the zone boundaries they crossed; and the
    # crossings the waypoint added over the direct path client zone → server zone.
    zone_bytes: dict[str, int] = field(default_factory=dict)
    cross_zone_bytes: int = 0
    detour_bytes: int = 0
    # Quantiles read from a file written without samples (`include_samples=False`).
    stored_quantiles_ms: dict[str, float | None] = field(default_factory=dict, compare=False)

    @property
    def has_l7(self) -> bool:
        return self.coverage is not Coverage.L4_ONLY

    @property
    def has_l4(self) -> bool:
        return self.coverage is not Coverage.L7_ONLY

    @property
    def l7_requests(self) -> int:
        """Requests meshstitch should count (0 on a blind spot; sampled ones without metrics)."""
        if not self.has_l7:
            return 0
        return self.requests if self.metrics else self.sampled_requests

    @property
    def l7_errors(self) -> int:
        if not self.has_l7:
            return 0
        return self.errors if self.metrics else self.sampled_errors

    @property
    def observed_coverage(self) -> Coverage | None:
        """The coverage meshstitch can decide from the wire; None: the edge is invisible."""
        if self.coverage is Coverage.L4_ONLY or self.metrics or self.sampled_requests:
            return self.coverage
        return Coverage.L4_ONLY if self.has_l4 else None

    def sampled_quantile(self, q: float) -> float | None:
        """The quantile of the sampled requests (what a sketch of the spans can know)."""
        return lower_nearest_rank(self.sampled_latencies_ms, q)

    def quantile(self, q: float) -> float | None:
        """Exact lower-nearest-rank quantile of the samples (needs samples in memory)."""
        return lower_nearest_rank(self.latencies_ms, q)

    def _summary(self, key: str, q: float) -> float | None:
        if self.latencies_ms or key not in self.stored_quantiles_ms:
            return self.quantile(q)
        return self.stored_quantiles_ms[key]

    @property
    def p50_ms(self) -> float | None:
        return self._summary("p50_ms", 0.5)

    @property
    def p95_ms(self) -> float | None:
        return self._summary("p95_ms", 0.95)

    @property
    def p99_ms(self) -> float | None:
        return self._summary("p99_ms", 0.99)

    def to_dict(self, include_samples: bool = True) -> dict[str, Any]:
        out = asdict(self)
        del out["stored_quantiles_ms"]
        out["coverage"] = self.coverage.value
        out["p50_ms"], out["p95_ms"], out["p99_ms"] = self.p50_ms, self.p95_ms, self.p99_ms
        if not include_samples:
            del out["latencies_ms"]
            del out["sampled_latencies_ms"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeTruth:
        summary_keys = ("p50_ms", "p95_ms", "p99_ms")
        fields = {k: v for k, v in data.items() if k not in summary_keys}
        fields["coverage"] = Coverage(fields["coverage"])
        fields["ticks"] = [TickTruth(**t) for t in fields.get("ticks", [])]
        edge = cls(**fields)
        if "latencies_ms" not in data:
            edge.stored_quantiles_ms = {k: data.get(k) for k in summary_keys}
        return edge


@dataclass(slots=True)
class Truth:
    edges: dict[tuple[str, str], EdgeTruth] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)  # node id -> kind
    # node id -> names that must resolve to it (`<ns>/<k8s Service>`, `<ns>/<OTel service.name>`)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    ticks: list[tuple[float, float]] = field(default_factory=list)

    def edge(self, source: str, target: str) -> EdgeTruth:
        return self.edges[(source, target)]

    @property
    def start_s(self) -> float | None:
        return self.ticks[0][0] if self.ticks else None

    @property
    def end_s(self) -> float | None:
        return self.ticks[-1][1] if self.ticks else None

    def visible_edges(self) -> list[EdgeTruth]:
        """Edges that carried traffic in the run (what /edges should list)."""
        return [
            e
            for e in self.edges.values()
            if e.observed_coverage is not None
            and (e.l7_requests or e.connections_opened or e.bytes_sent or e.bytes_received)
        ]

    def to_dict(self, include_samples: bool = True) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "ticks": [list(t) for t in self.ticks],
            "nodes": dict(sorted(self.nodes.items())),
            "aliases": dict(sorted(self.aliases.items())),
            "edges": [self.edges[k].to_dict(include_samples) for k in sorted(self.edges)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Truth:
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown truth format {data.get('format')!r}")
        truth = cls(
            nodes=dict(data["nodes"]),
            aliases={k: list(v) for k, v in data.get("aliases", {}).items()},
            ticks=[(float(a), float(b)) for a, b in data["ticks"]],
        )
        for item in data["edges"]:
            edge = EdgeTruth.from_dict(item)
            truth.edges[(edge.source, edge.target)] = edge
        return truth

    def to_json(self, path: str | Path, include_samples: bool = True) -> None:
        Path(path).write_text(json.dumps(self.to_dict(include_samples), indent=1) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> Truth:
        return cls.from_dict(json.loads(Path(path).read_text()))
