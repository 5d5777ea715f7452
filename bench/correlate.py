"""Correlate + aggregate throughput on realistic span mixes (no transport, no decode).

    .venv/bin/python -m bench.correlate                       # defaults: 100k spans, 5 repeats
    .venv/bin/python -m bench.correlate --spans 200000 --repeat 7 --profile

Spans are `app.domain.Span` records shaped like the decoder's output (tests/data/otlp/README.md):
waypoint spans carry the Envoy/Istio string tags, resource dicts are shared by the spans of one
export batch (a fresh dict per batch and sender, as `decode_protobuf` builds them). ~200 services
in 10 namespaces, one waypoint per namespace, each service calling 3-5 others.

Mixes:
- `root`: 100% root waypoint spans (uninstrumented apps: the common ambient case);
- `mix`: 70% root waypoint spans, 30% instrumented requests as client + waypoint + server triples
  (arrival order shuffled locally, as batches from several senders interleave);
- `tags`: `root` with the `istio.source_*` tags Istio >= 1.29 waypoints write (the caller is
  named by the tags, not left unknown).

Phases (medians of `--repeat` runs, fresh correlator/aggregator each run):
- `correlate`: `SpanCorrelator.add` per 512-span batch, then `drain()`;
- `aggregate`: `EdgeAggregator.add_l7` for every observation the correlator produced;
- `both`: the pipeline worker's loop (`add` then `add_l7` per observation);
- `drain`: `EdgeAggregator.drain()` after `both` (building the store batch).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from app.correlate.aggregate import EdgeAggregator
from app.correlate.correlator import SpanCorrelator
from app.domain import AttrValue, L7Observation, Span, SpanKind

BATCH = 512
BUCKET_S = 60
T0_NS = 1_748_779_200_000_000_000  # 2025-06-01, as the OTLP fixtures
NAMESPACES = [f"ns{i}" for i in range(10)]


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    pods: tuple[tuple[str, str], ...]  # (pod name, pod IP)

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


class Mesh:
    def __init__(self, services: int, rng: random.Random) -> None:
        self.services: list[Service] = []
        for i in range(services):
            ns = NAMESPACES[i % len(NAMESPACES)]
            name = f"svc{i:03d}"
            pods = tuple(
                (
                    f"{name}-v1-6b9f7c{i % 10}d9-{rng.choice('abcdefghijk')}bcd{k}",
                    f"10.{40 + k}.{i // 250}.{i % 250 + 2}",
                )
                for k in range(2)
            )
            self.services.append(Service(name, ns, pods))
        self.callees = {
            s.name: rng.sample([t for t in self.services if t is not s], rng.randint(3, 5))
            for s in self.services
        }
        self.waypoint_ip = {ns: f"10.39.0.{i + 2}" for i, ns in enumerate(NAMESPACES)}


class Generator:
    def __init__(self, mesh: Mesh, rng: random.Random) -> None:
        self.mesh, self.rng = mesh, rng
        self.t_ns = T0_NS

    def _ids(self) -> tuple[bytes, bytes]:
        return self.rng.randbytes(16), self.rng.randbytes(8)

    def _edge(self) -> tuple[Service, Service]:
        caller = self.rng.choice(self.mesh.services)
        return caller, self.rng.choice(self.mesh.callees[caller.name])

    def _status(self) -> tuple[str, str, bool]:
        r = self.rng.random()
        if r < 0.01:
            return "503", "UF", True
        if r < 0.02:
            return "404", "-", False
        return "200", "-", False

    def waypoint_span(
        self,
        caller: Service,
        callee: Service,
        trace: bytes,
        span_id: bytes,
        parent: bytes,
        end_ns: int,
        ms: float,
        peer_tags: bool = False,
    ) -> tuple[Span, str]:
        rng, ns = self.rng, callee.namespace
        code, flags, error = self._status()
        pod_ip = rng.choice(callee.pods)[1]
        attrs: dict[str, AttrValue] = {
            "node_id": f"waypoint~{self.mesh.waypoint_ip[ns]}~waypoint-6b9f7c7d9-abcde.{ns}~{ns}.svc.cluster.local",
            "guid:x-request-id": str(uuid.UUID(bytes=rng.randbytes(16))),
            "http.url": f"http://{callee.host}:9080/api/{rng.randrange(50)}",
            "http.method": rng.choice(("GET", "GET", "GET", "POST")),
            "http.protocol": "HTTP/1.1",
            "downstream_cluster": "-",
            "request_size": "0",
            "response_size": str(rng.randrange(100, 5000)),
            "component": "proxy",
            "upstream_cluster": f"inbound-vip|9080|http|{callee.host}",
            "upstream_cluster.name": f"inbound-vip|9080|http|{callee.host}",
            "upstream_address": f"envoy://connect_originate/{pod_ip}:9080",
            "http.status_code": code,
            "response_flags": flags,
            "peer.address": f"{rng.choice(caller.pods)[1]}:{rng.randrange(32768, 60999)}",
            "istio.canonical_service": "waypoint",
            "istio.canonical_revision": "latest",
            "istio.namespace": ns,
            "istio.mesh_id": "cluster.local",
        }
        if peer_tags:
            attrs["istio.source_namespace"] = caller.namespace
            attrs["istio.source_workload"] = f"{caller.name}-v1"
            attrs["istio.source_canonical_service"] = caller.name
        span = Span(
            trace_id=trace,
            span_id=span_id,
            parent_span_id=parent,
            kind=SpanKind.SERVER,
            name=f"{callee.host}:9080/*",
            start_ns=end_ns - int(ms * 1e6),
            end_ns=end_ns,
            service=f"waypoint.{ns}",
            status_error=error,
            attributes=attrs,
            resource={},  # replaced per batch
        )
        return span, f"waypoint/{ns}"

    def app_span(
        self,
        kind: SpanKind,
        svc: Service,
        peer: Service,
        trace: bytes,
        span_id: bytes,
        parent: bytes,
        end_ns: int,
        ms: float,
    ) -> tuple[Span, str]:
        attrs: dict[str, AttrValue] = {
            "http.request.method": "GET",
            "http.response.status_code": 200,
        }
        if kind is SpanKind.CLIENT:
            attrs["server.address"] = peer.host
            attrs["server.port"] = 9080
            attrs["url.full"] = f"http://{peer.host}:9080/api/1"
        else:
            attrs["client.address"] = self.rng.choice(peer.pods)[1]
        span = Span(
            trace_id=trace,
            span_id=span_id,
            parent_span_id=parent,
            kind=kind,
            name="GET /api",
            start_ns=end_ns - int(ms * 1e6),
            end_ns=end_ns,
            service=svc.name,
            status_error=False,
            attributes=attrs,
            resource={},
        )
        return span, f"app/{svc.name}/{svc.pods[0][0]}"

    def stream(self, n: int, instrumented: float, peer_tags: bool) -> list[tuple[Span, str]]:
        rng = self.rng
        out: list[tuple[Span, str]] = []
        step_ns = 300 * 10**9 // n  # n spans over 5 minutes of end times
        while len(out) < n:
            self.t_ns += step_ns
            caller, callee = self._edge()
            ms = rng.lognormvariate(1.5, 0.8)
            trace, sid = self._ids()
            if rng.random() >= instrumented:
                out.append(
                    self.waypoint_span(caller, callee, trace, sid, b"", self.t_ns, ms, peer_tags)
                )
                continue
            client_id, server_id = rng.randbytes(8), rng.randbytes(8)
            triple = [
                self.app_span(
                    SpanKind.CLIENT, caller, callee, trace, client_id, b"", self.t_ns, ms + 1
                ),
                self.waypoint_span(caller, callee, trace, sid, client_id, self.t_ns - 500_000, ms),
                self.app_span(
                    SpanKind.SERVER,
                    callee,
                    caller,
                    trace,
                    server_id,
                    sid,
                    self.t_ns - 10**6,
                    ms - 0.5,
                ),
            ]
            rng.shuffle(triple)
            out.extend(triple)
        out = out[:n]
        # Interleave senders: shuffle within windows of 64 spans.
        for i in range(0, len(out), 64):
            window = out[i : i + 64]
            rng.shuffle(window)
            out[i : i + 64] = window
        return out


def resource_for(sender: str) -> dict[str, AttrValue]:
    if sender.startswith("waypoint/"):
        ns = sender.partition("/")[2]
        return {
            "service.name": f"waypoint.{ns}",
            "telemetry.sdk.language": "cpp",
            "telemetry.sdk.name": "envoy",
            "telemetry.sdk.version": "1.34.1/Clean/RELEASE/BoringSSL",
        }
    _, service, pod = sender.split("/")
    ns = NAMESPACES[int(service[3:]) % len(NAMESPACES)]
    return {
        "service.name": service,
        "k8s.namespace.name": ns,
        "k8s.pod.name": pod,
        "k8s.deployment.name": f"{service}-v1",
    }


def batches(stream: list[tuple[Span, str]]) -> list[list[Span]]:
    """512-span batches; each batch shares one fresh resource dict per sender (like the decoder)."""
    out: list[list[Span]] = []
    for i in range(0, len(stream), BATCH):
        resources: dict[str, dict[str, AttrValue]] = {}
        batch: list[Span] = []
        for span, sender in stream[i : i + BATCH]:
            resource = resources.get(sender)
            if resource is None:
                resource = resources[sender] = resource_for(sender)
            object.__setattr__(span, "resource", resource)
            batch.append(span)
        out.append(batch)
    return out


def build(
    n: int, instrumented: float, services: int, seed: int, peer_tags: bool = False
) -> list[list[Span]]:
    rng = random.Random(seed)
    return batches(Generator(Mesh(services, rng), rng).stream(n, instrumented, peer_tags))


# ---- timing -------------------------------------------------------------------------------------
def new_correlator() -> SpanCorrelator:
    return SpanCorrelator(wait_s=10.0, max_items=100_000, bucket_s=BUCKET_S)


def new_aggregator() -> EdgeAggregator:
    return EdgeAggregator(BUCKET_S, clock_s=lambda: T0_NS / 1e9)


def now_of(batch: list[Span]) -> int:
    return max(s.end_ns for s in batch) + 10**6


def run_correlate(data: list[list[Span]]) -> list[L7Observation]:
    corr = new_correlator()
    out: list[L7Observation] = []
    for batch in data:
        out += corr.add(batch, now_of(batch))
    out += corr.drain()
    return out


def run_aggregate(observations: list[L7Observation]) -> object:
    agg = new_aggregator()
    add = agg.add_l7
    for obs in observations:
        add(obs)
    return agg


def run_both(data: list[list[Span]]) -> EdgeAggregator:
    corr, agg = new_correlator(), new_aggregator()
    add = agg.add_l7
    for batch in data:
        for obs in corr.add(batch, now_of(batch)):
            add(obs)
    for obs in corr.drain():
        add(obs)
    return agg


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_s(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeat))


def measure(name: str, data: list[list[Span]], repeat: int) -> list[tuple[str, str, int, float]]:
    spans = sum(len(b) for b in data)
    observations = run_correlate(data)
    rows = [
        (name, "correlate", spans, median_s(lambda: run_correlate(data), repeat)),
        (
            name,
            "aggregate",
            len(observations),
            median_s(lambda: run_aggregate(observations), repeat),
        ),
        (name, "both", spans, median_s(lambda: run_both(data), repeat)),
    ]
    drains = []
    for _ in range(repeat):
        agg = run_both(data)
        drains.append(timed(agg.drain))
    rows.append((name, "drain", spans, statistics.median(drains)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=("root", "mix", "tags", "all"), default="all")
    parser.add_argument("--profile", action="store_true", help="cProfile one `both` run per mix")
    args = parser.parse_args()

    # name → (share of instrumented requests, waypoint spans carry istio.source_* tags)
    mixes = {"root": (0.0, False), "mix": (0.3, False), "tags": (0.0, True)}
    chosen = mixes if args.mix == "all" else {args.mix: mixes[args.mix]}
    print(f"{args.spans} spans per mix, {args.services} services, median of {args.repeat} runs")
    print(f"{'mix':<6}{'phase':<11}{'items':>9}{'ms':>10}{'items/s':>12}")
    for name, (instrumented, peer_tags) in chosen.items():
        data = build(args.spans, instrumented, args.services, args.seed, peer_tags)
        gc.freeze()  # the input spans are a bench artifact: keep them out of the GC's scans
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(run_both, data)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        for mix, phase, items, seconds in measure(name, data, args.repeat):
            rate = f"{items / seconds / 1000:.0f}k" if phase != "drain" else "-"
            print(f"{mix:<6}{phase:<11}{items:>9}{seconds * 1000:>10.1f}{rate:>12}")
        gc.unfreeze()
    print(
        "rerun: .venv/bin/python -m bench.correlate"
        f" --spans {args.spans} --repeat {args.repeat} --services {args.services}"
    )


if __name__ == "__main__":
    main()
