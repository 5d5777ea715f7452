"""Simulated ztunnels: per-node counters and their Prometheus text on a loopback HTTP endpoint.

Counters only move in `advance` (one call per tick), so a scrape between ticks sees a consistent
interval. A series is printed from the tick that first carries traffic on it (ztunnel's
`get_or_create` on first use). A restart sets every counter of the node to the tick's increments
(the post-restart delta); it is applied only when meshstitch can detect it, i.e. when each
restarted counter that was non-zero ends lower than before — otherwise it waits for a later tick
(`advance` returns whether it happened). Exact L4 truth needs meshstitch to scrape once before the
first tick (its baseline) and once after every tick.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from app.sim.endpoint import MetricsEndpoint
from app.sim.ztunnel_series import LABEL_NAMES, LOCALITY_NAMES, Labels

# (printed family, HELP) in ztunnel's order; counter index = position here.
FAMILIES = (
    ("istio_tcp_connections_opened", "The total number of TCP connections opened."),
    ("istio_tcp_connections_closed", "The total number of TCP connections closed."),
    (
        "istio_tcp_received_bytes",
        "The size of total bytes received during request in case of a TCP connection.",
    ),
    (
        "istio_tcp_sent_bytes",
        "The size of total bytes sent during response in case of a TCP connection.",
    ),
    # ztunnel since istio/ztunnel#1695 (src/proxy/metrics.rs `connection_failures`): incremented
    # with the closed counter when the close carries a failure flag.
    (
        "istio_tcp_connections_failed",
        "The total number of TCP connections that failed to establish (unstable)",
    ),
)
OPENED, CLOSED, RECEIVED, SENT, FAILED = range(5)
Counts = tuple[int, int, int, int, int]  # opened, closed, received (request), sent, failed
_ZERO: Counts = (0, 0, 0, 0, 0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: Labels) -> str:
    names = LABEL_NAMES if len(labels) == len(LABEL_NAMES) else (*LABEL_NAMES, *LOCALITY_NAMES)
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, labels, strict=True))


class ZtunnelNode:
    """The counters one node's ztunnel holds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.restarts = 0
        self._lock = threading.Lock()
        self._counters: dict[Labels, list[int]] = {}
        self._label_text: dict[Labels, str] = {}

    def advance(self, increments: Mapping[Labels, Counts], restart: bool = False) -> bool:
        """Add one tick's increments; with `restart`, reset first if detectable. True if reset."""
        with self._lock:
            if restart and self._restart_detectable(increments):
                for labels, counters in self._counters.items():
                    counters[:] = increments.get(labels, _ZERO)
                for labels, counts in increments.items():
                    if labels not in self._counters:
                        self._add_series(labels, list(counts))
                self.restarts += 1
                return True
            for labels, counts in increments.items():
                current = self._counters.get(labels)
                if current is None:
                    self._add_series(labels, list(counts))
                else:
                    for i in range(len(FAMILIES)):
                        current[i] += counts[i]
            return False

    def _restart_detectable(self, increments: Mapping[Labels, Counts]) -> bool:
        for labels, counters in self._counters.items():
            delta = increments.get(labels, _ZERO)
            if any(0 < before <= after for before, after in zip(counters, delta, strict=True)):
                return False
        return True

    def _add_series(self, labels: Labels, counts: list[int]) -> None:
        self._counters[labels] = counts
        self._label_text[labels] = _label_text(labels)

    def counters(self) -> dict[Labels, Counts]:
        with self._lock:
            return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in self._counters.items()}

    def exposition(self) -> str:
        lines = ["# HELP istio_build Istio component build info", "# TYPE istio_build gauge"]
        lines.append('istio_build{component="ztunnel",tag="1.24.0"} 1')
        with self._lock:
            for index, (family, help_text) in enumerate(FAMILIES):
                lines.append(f"# HELP {family} {help_text}")
                lines.append(f"# TYPE {family} counter")
                for labels, counters in self._counters.items():
                    if index == FAILED and not counters[FAILED]:
                        continue  # a series is created on first failure (`get_or_create`)
                    text = self._label_text[labels]
                    lines.append(f"{family}_total{{{text}}} {counters[index]}")
        return "\n".join(lines) + "\n"


class ZtunnelEndpoint(MetricsEndpoint):
    """`GET /metrics` for one node on 127.0.0.1:<ephemeral port>, served from a daemon thread."""

    def __init__(self, node: ZtunnelNode, host: str = "127.0.0.1") -> None:
        self.node = node
        super().__init__(f"ztunnel-{node.name}", "/metrics", node.exposition, host)
