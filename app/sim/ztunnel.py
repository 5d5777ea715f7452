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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.sim.ztunnel_series import LABEL_NAMES, Labels

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
)
OPENED, CLOSED, RECEIVED, SENT = range(4)
Counts = tuple[int, int, int, int]  # opened, closed, received (request), sent (response)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: Labels) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(LABEL_NAMES, labels, strict=True))


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
                    counters[:] = increments.get(labels, (0, 0, 0, 0))
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
                    for i in range(4):
                        current[i] += counts[i]
            return False

    def _restart_detectable(self, increments: Mapping[Labels, Counts]) -> bool:
        for labels, counters in self._counters.items():
            delta = increments.get(labels, (0, 0, 0, 0))
            if any(0 < before <= after for before, after in zip(counters, delta, strict=True)):
                return False
        return True

    def _add_series(self, labels: Labels, counts: list[int]) -> None:
        self._counters[labels] = counts
        self._label_text[labels] = _label_text(labels)

    def counters(self) -> dict[Labels, Counts]:
        with self._lock:
            return {k: (v[0], v[1], v[2], v[3]) for k, v in self._counters.items()}

    def exposition(self) -> str:
        lines = ["# HELP istio_build Istio component build info", "# TYPE istio_build gauge"]
        lines.append('istio_build{component="ztunnel",tag="1.24.0"} 1')
        with self._lock:
            for index, (family, help_text) in enumerate(FAMILIES):
                lines.append(f"# HELP {family} {help_text}")
                lines.append(f"# TYPE {family} counter")
                for labels, counters in self._counters.items():
                    text = self._label_text[labels]
                    lines.append(f"{family}_total{{{text}}} {counters[index]}")
        return "\n".join(lines) + "\n"


class ZtunnelEndpoint:
    """`GET /metrics` for one node on 127.0.0.1:<ephemeral port>, served from a daemon thread."""

    def __init__(self, node: ZtunnelNode, host: str = "127.0.0.1") -> None:
        self.node = node
        handler = _handler_for(node)
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sim-ztunnel-{node.name}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(node: ZtunnelNode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = node.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape per tick per node would flood stderr

    return Handler
