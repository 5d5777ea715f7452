"""One Prometheus target on loopback serving recorded expositions with explicit sample timestamps,
so a real Prometheus holds exactly the counter values a simulated mesh had at each tick's end.

Why timestamps: PromQL mode asks `increase(x[60s])` at each bucket end, and Prometheus
extrapolates `increase()` from the first and last samples in the range to the range's ends
(promql/functions.go `extrapolatedRate`). A counter sampled exactly at both ends of a closed
range (Prometheus 2.x selects [t - 60s, t]) needs no extrapolation, so the answer is the
counter's exact increase; with scrape-time stamps it would be off by part of a scrape interval.
Every series is published at every tick end, at 0 before its first traffic: Prometheus cannot
count a series' first sample, a real ztunnel's series would have existed before the test's window.

Each recorded exposition gets a `sim_target="<name>"` label, the distinction Prometheus' own
`instance` label makes between two ztunnels printing the same series.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TARGET_LABEL = "sim_target"


def samples_of(name: str, exposition: str) -> dict[str, float]:
    """`series → value` of a text exposition, each series labelled `sim_target=name`."""
    out = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        metric, brace, rest = series.partition("{")
        label = f'{TARGET_LABEL}="{name}"'
        out[f"{metric}{{{label},{rest}" if brace else f"{metric}{{{label}}}"] = float(value)
    return out


class StampedExposition(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._body = b""
        self._served = 0
        self._changed = threading.Condition()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def publish(self, samples: Mapping[str, float], at_s: float) -> None:
        """Serve `samples` stamped `at_s` from now on."""
        stamp = round(at_s * 1000)
        lines = [f"{series} {value:.17g} {stamp}" for series, value in sorted(samples.items())]
        with self._changed:
            self._body = ("\n".join(lines) + "\n").encode()
            self._served = 0

    def wait_ingested(self, timeout_s: float = 30.0) -> None:
        """Until Prometheus has scraped the latest publication and started another scrape,
        which it does only after the first one's samples are committed."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._served >= 2, timeout_s):
                raise AssertionError("Prometheus did not scrape the published samples")

    def serve_body(self) -> bytes:
        with self._changed:
            self._served += 1
            self._changed.notify_all()
            return self._body


class _Handler(BaseHTTPRequestHandler):
    server: StampedExposition

    def do_GET(self) -> None:
        body = self.server.serve_body()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def stamped_exposition() -> Iterator[StampedExposition]:
    server = StampedExposition()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
