"""A fake waypoint pod: Envoy's Istio request metrics as a waypoint's agent serves them on
`:15020/stats/prometheus`, on loopback.

The label names, their order and the productpage → reviews values are read from
tests/data/waypoint/waypoint-sample.prom (shape and sources in its README); the families are the
ones that sample and README name: `istio_requests_total`, and the histograms
`istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes` (`_bucket`
with cumulative `le`, `_sum`, `_count`), filled as Istio and Envoy fill them (whole
milliseconds, Envoy's default buckets and bins for all three: app/sim/envoy_histogram.py, which
cites the istio/proxy and Envoy sources). Tests record requests with `observe(...)` and restart
the pod with `reset()`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from app.sim.envoy_histogram import EnvoyHistogram, bin_of
from tests.conftest import DATA
from tests.poll.fake_ztunnel import serve

SAMPLE = (DATA / "waypoint" / "waypoint-sample.prom").read_text()
_FIRST_SERIES = next(line for line in SAMPLE.splitlines() if line.startswith("istio_requests_"))
_LABEL = re.compile(r'(\w+)="([^"]*)"')
LABEL_ORDER = tuple(name for name, _ in _LABEL.findall(_FIRST_SERIES))
# productpage-v1 → reviews-v2 in namespace default, 200, response_flags "-", reporter waypoint
BASE_LABELS = dict(_LABEL.findall(_FIRST_SERIES))


def summed(value: float) -> float:
    """What one value adds to Envoy's `_sum`: its bin's midpoint (whole ms for durations)."""
    lower, width = bin_of(int(value))
    return lower + width / 2


def envoy_number(value: float) -> str:
    return f"{value:.32g}"


def call(
    source_workload: str = "",
    destination_workload: str = "",
    *,
    namespace: str = "default",
    **given: str,
) -> dict[str, str]:
    """The sample's label set, with another caller/backend (`<svc>-<version>` workloads) and any
    label overridden (`response_code`, `response_flags`, `grpc_response_status`, `reporter`, …)."""
    labels = dict(BASE_LABELS)
    for side, workload in (("source", source_workload), ("destination", destination_workload)):
        if not workload:
            continue
        svc, _, version = workload.rpartition("-")
        labels.update(
            {
                f"{side}_workload": workload,
                f"{side}_workload_namespace": namespace,
                f"{side}_principal": f"spiffe://cluster.local/ns/{namespace}/sa/bookinfo-{svc}",
                f"{side}_app": svc,
                f"{side}_version": version,
                f"{side}_canonical_service": svc,
                f"{side}_canonical_revision": version,
            }
        )
        if side == "destination":
            labels.update(
                destination_service=f"{svc}.{namespace}.svc.cluster.local",
                destination_service_name=svc,
                destination_service_namespace=namespace,
            )
    labels.update(given)
    assert set(labels) == set(LABEL_ORDER), sorted(set(labels) ^ set(LABEL_ORDER))
    return labels


@dataclass
class Series:
    requests: int = 0
    duration: EnvoyHistogram = field(default_factory=EnvoyHistogram)
    request_bytes: EnvoyHistogram = field(default_factory=EnvoyHistogram)
    response_bytes: EnvoyHistogram = field(default_factory=EnvoyHistogram)


@dataclass
class FakeWaypoint:
    series: dict[tuple[tuple[str, str], ...], Series] = field(default_factory=dict)
    garbage: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(
        self,
        labels: dict[str, str],
        n: int = 1,
        *,
        duration_ms: float = 1.0,
        request_bytes: int = 0,
        response_bytes: int = 0,
    ) -> None:
        """`n` requests of `labels`, each taking `duration_ms` and carrying the bytes given."""
        key = tuple((name, labels[name]) for name in LABEL_ORDER)
        with self.lock:
            s = self.series.setdefault(key, Series())
            s.requests += n
            s.duration.record(int(duration_ms), n)  # Istio records whole ms, truncated
            s.request_bytes.record(request_bytes, n)
            s.response_bytes.record(response_bytes, n)

    def reset(self) -> None:
        """The waypoint pod restarted: Envoy's counters start again from nothing."""
        with self.lock:
            self.series.clear()

    def render(self) -> str:
        if self.garbage:
            return "<html>this is not a metrics page {{{</html>\n"
        with self.lock:
            items = [(",".join(f'{k}="{v}"' for k, v in key), s) for key, s in self.series.items()]
        lines = [
            "# TYPE istio_agent_go_goroutines gauge",  # the agent merges its own metrics in
            "istio_agent_go_goroutines 41",
            "# TYPE envoy_cluster_upstream_rq_total counter",
            'envoy_cluster_upstream_rq_total{cluster_name="xds-grpc"} 3',
            "# TYPE istio_requests_total counter",
        ]
        lines += [f"istio_requests_total{{{text}}} {s.requests}" for text, s in items]
        for family, attr in (
            ("istio_request_bytes", "request_bytes"),
            ("istio_request_duration_milliseconds", "duration"),
            ("istio_response_bytes", "response_bytes"),
        ):
            lines.append(f"# TYPE {family} histogram")
            for text, s in items:
                lines += getattr(s, attr).lines(family, text)
        return "\n".join(lines) + "\n"


@contextmanager
def serve_waypoint(fake: FakeWaypoint) -> Iterator[str]:
    """Serve `fake` on 127.0.0.1:<free port>; yields its `/stats/prometheus` URL."""
    with serve(fake) as url:  # type: ignore[arg-type]  # the handler only calls render()
        yield url.removesuffix("/metrics") + "/stats/prometheus"
