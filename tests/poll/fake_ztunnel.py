"""A fake ztunnel: counters printed as ztunnel prints them, served on loopback.

Label order and `unknown` defaults follow tests/data/ztunnel/README.md (ztunnel's
`CommonTrafficLabels`). Tests advance counters with `add(...)`, restart it with `reset()`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL_ORDER = (
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_service",
    "destination_service_namespace",
    "destination_service_name",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
)
FAMILIES = (
    ("istio_tcp_connections_opened", "The total number of TCP connections opened"),
    ("istio_tcp_connections_closed", "The total number of TCP connections closed"),
    (
        "istio_tcp_received_bytes",
        "The size of total bytes received during request in case of a TCP connection",
    ),
    (
        "istio_tcp_sent_bytes",
        "The size of total bytes sent during response in case of a TCP connection",
    ),
)
TD = "cluster.local"


def principal(ns: str, sa: str, td: str = TD) -> str:
    return f"spiffe://{td}/ns/{ns}/sa/{sa}"


def series_labels(reporter: str, **given: str) -> dict[str, str]:
    labels = {name: "unknown" for name in LABEL_ORDER}
    labels.update(reporter=reporter, request_protocol="tcp", response_flags="-")
    labels["connection_security_policy"] = "mutual_tls"
    labels.update(given)
    return labels


def source(workload: str, ns: str = "default", svc: str = "", sa: str = "") -> dict[str, str]:
    svc = svc or workload.rsplit("-", 1)[0]
    return {
        "source_workload": workload,
        "source_canonical_service": svc,
        "source_canonical_revision": "v1",
        "source_workload_namespace": ns,
        "source_principal": principal(ns, sa or svc),
        "source_app": svc,
        "source_version": "v1",
        "source_cluster": "Kubernetes",
    }


def destination(
    workload: str, ns: str = "default", svc: str = "", sa: str = "", service: str = ""
) -> dict[str, str]:
    svc = svc or workload.rsplit("-", 1)[0]
    service = service or svc
    return {
        "destination_service": f"{service}.{ns}.svc.cluster.local",
        "destination_service_namespace": ns,
        "destination_service_name": service,
        "destination_workload": workload,
        "destination_canonical_service": svc,
        "destination_canonical_revision": "v1",
        "destination_workload_namespace": ns,
        "destination_principal": principal(ns, sa or svc),
        "destination_app": svc,
        "destination_version": "v1",
        "destination_cluster": "Kubernetes",
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class Counters:
    opened: int = 0
    closed: int = 0
    received: int = 0  # request bytes, client → server
    sent: int = 0  # response bytes, server → client


@dataclass
class FakeZtunnel:
    series: dict[tuple[tuple[str, str], ...], Counters] = field(default_factory=dict)
    garbage: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, labels: dict[str, str], opened: int = 0, closed: int = 0, req: int = 0, resp: int = 0
    ) -> None:
        # ztunnel's order, then labels it prints after them (the locality labels of ≥ 1.26)
        key = tuple((name, labels[name]) for name in LABEL_ORDER)
        key += tuple((k, v) for k, v in labels.items() if k not in LABEL_ORDER)
        with self.lock:
            c = self.series.setdefault(key, Counters())
            c.opened += opened
            c.closed += closed
            c.received += req
            c.sent += resp

    def reset(self) -> None:
        """A ztunnel restart: every counter starts again from nothing."""
        with self.lock:
            self.series.clear()

    def render(self) -> str:
        if self.garbage:
            return "<html>this is not a metrics page {{{</html>\n"
        lines = ["# HELP istio_build Istio component build info", "# TYPE istio_build gauge"]
        lines.append('istio_build{component="ztunnel",tag="1.24.0"} 1')
        with self.lock:
            items = list(self.series.items())
        for (family, help_text), attr in zip(
            FAMILIES, ("opened", "closed", "received", "sent"), strict=True
        ):
            lines.append(f"# HELP {family} {help_text}.")
            lines.append(f"# TYPE {family} counter")
            for key, counters in items:
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                lines.append(f"{family}_total{{{text}}} {getattr(counters, attr)}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def synthetic_exposition(n_series: int, seed: int = 7) -> str:
    """`n_series` istio_tcp_* samples (n/4 label sets x 4 families), ztunnel-shaped."""
    rng = random.Random(seed)
    fake = FakeZtunnel()
    for i in range(max(1, n_series // 4)):
        ns_a, ns_b = f"ns{rng.randrange(40)}", f"ns{rng.randrange(40)}"
        a, b = f"svc{i % 997}-v{rng.randrange(3)}", f"svc{(i * 7 + 3) % 991}-v1"
        reporter = "source" if i % 2 else "destination"
        labels = series_labels(reporter, **source(a, ns_a), **destination(b, ns_b))
        fake.add(
            labels,
            opened=rng.randrange(1, 10**4),
            closed=rng.randrange(10**4),
            req=rng.randrange(10**9),
            resp=rng.randrange(10**9),
        )
    return fake.render()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.server.delay_s:
            self.server.release.wait(self.server.delay_s)
        body = fake.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeZtunnel
    delay_s: float = 0.0
    release: threading.Event


@contextmanager
def serve(fake: FakeZtunnel, delay_s: float = 0.0) -> Iterator[str]:
    """Serve `fake` on 127.0.0.1:<free port>; yields its metrics URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake, server.delay_s, server.release = fake, delay_s, threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
