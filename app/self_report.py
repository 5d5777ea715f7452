"""How a part reports on itself: readiness (`PartState`) and self-metrics (`MetricFamily`).

Plain values shared by the parts that report (pipeline, poller, …) and the routes that serve
them (app/api/health.py → /readyz, app/api/metrics_route.py → /metrics), so no part imports a
route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PartState:
    ready: bool
    detail: dict[str, Any] = field(default_factory=dict)


Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Labels
    value: float
    suffix: str = ""  # "_bucket", "_sum", "_count" for histograms


@dataclass(slots=True)
class MetricFamily:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> MetricFamily:
        self.samples.append(Sample(tuple(labels.items()), value, suffix))
        return self


Collector = Callable[[], Iterable[MetricFamily]]
