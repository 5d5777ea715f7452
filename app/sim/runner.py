"""`MeshSimulator`: drives a running meshstitch through its real interfaces and keeps the truth.

    sim = MeshSimulator(bookinfo(), seed=1, otlp_endpoint="127.0.0.1:4317", protocol="grpc")
    urls = sim.start_ztunnels()          # -> MESHSTITCH_ZTUNNEL_TARGETS=",".join(urls)
    waypoints = sim.start_waypoints()    # -> MESHSTITCH_WAYPOINT_TARGETS="<ns>/<waypoint>=<url>,…"
    poller.poll_once()                   # baseline scrape BEFORE the first tick
    for t in range(t0, t0 + 600, 60):
        sim.tick(t, t + 60)              # spans acknowledged by the receiver, counters advanced
        poller.poll_once()               # one scrape per tick keeps L4 exact across restarts
    pipeline.flush(); truth = sim.truth  # compare /graph, /edges with truth.edges
    sim.stop()

A tick emits the traffic of one simulated interval [start_s, end_s): every request ends inside it
(spans carry explicit timestamps; nothing sleeps), its spans are exported synchronously with the
OpenTelemetry SDK's OTLP exporter (gRPC or HTTP), its ztunnel counters and its waypoints'
request metrics are advanced. Ticks must not overlap; gaps are allowed. Everything random comes
from `seed`.

`trace_sampling` is the share of requests whose trace is recorded (Istio's
`PILOT_TRACE_SAMPLING` / Telemetry `randomSamplingPercentage`, 1 % by default in Istio). The
decision is per trace: every span of a request is sent or none is, as a parent-based sampler
behind the first proxy gives. Waypoint request metrics and ztunnel counters see every request.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from app.domain import Coverage
from app.sim.endpoint import MetricsEndpoint
from app.sim.export import Protocol, export_all, make_exporter
from app.sim.invariants import validate
from app.sim.istio import IstioVersion
from app.sim.spans import SpanFactory
from app.sim.topology import OUTSIDE, Edge, Topology
from app.sim.traffic import NS_PER_S, Request, TrafficGenerator
from app.sim.truth import EdgeTruth, TickTruth, Truth
from app.sim.waypoint import WaypointProxy, request_labels
from app.sim.ztunnel import Counts, ZtunnelEndpoint, ZtunnelNode
from app.sim.ztunnel_series import DENIAL_FLAGS, Labels, series_for, with_flag

SeriesKey = tuple[str, Labels]  # (node, labels)


@dataclass(frozen=True, slots=True)
class TickReport:
    requests: int
    spans: int
    export_requests: int
    restarted_nodes: tuple[str, ...] = ()


@dataclass(slots=True)
class _SeriesTick:
    edge_index: int
    kept: bool
    denied: bool = False  # a denied edge's series: connections counted, not derived from calls
    denied_opened: int = 0
    denied_closed: int = 0
    calls: int = 0
    received: int = 0  # request bytes
    sent: int = 0  # response bytes
    extra: dict[str, int] = field(default_factory=dict)


class MeshSimulator:
    """See the module docstring. `exporter` overrides `otlp_endpoint`/`protocol` (tests);
    with neither, spans are built but not sent.

    `restart_probability`: per node and tick, the chance that its ztunnel restarts (counters drop
    to the tick's increments); `restart_ztunnel(node)` asks for one. `server_spans_behind_waypoint`
    turns off the SERVER spans of instrumented servers behind a waypoint. `istio_version` picks
    the release whose span shapes are sent (app/sim/istio.py); the truth is the same for all.
    """

    def __init__(
        self,
        topology: Topology,
        seed: int = 0,
        otlp_endpoint: str | None = None,
        protocol: Protocol = "grpc",
        *,
        headers: Mapping[str, str] | None = None,
        exporter: SpanExporter | None = None,
        batch_spans: int = 1000,
        timeout_s: float = 10.0,
        restart_probability: float = 0.0,
        istio_version: IstioVersion = "1.27",
        server_spans_behind_waypoint: bool = True,
        trace_sampling: float = 1.0,
    ) -> None:
        if not 0.0 <= trace_sampling <= 1.0:
            raise ValueError("trace_sampling is a share in [0, 1]")
        self.topology = validate(topology)
        self._trace_sampling = trace_sampling
        self._sampling_rng = random.Random(f"{seed}:sampling")
        if exporter is None and otlp_endpoint:
            exporter = make_exporter(otlp_endpoint, protocol, headers, timeout_s)
        self._exporter = exporter
        self._batch_spans = batch_spans
        self._restart_probability = restart_probability
        self._traffic = TrafficGenerator(topology, random.Random(f"{seed}:traffic"))
        self._span_rng = random.Random(f"{seed}:spans")
        self._restart_rng = random.Random(f"{seed}:restarts")
        self._spans = SpanFactory(topology, self._span_rng, istio_version)
        self._classes = [topology.classify(e) for e in topology.edges]
        if not server_spans_behind_waypoint:
            self._classes = [
                dataclasses.replace(c, server_spans=False) if c.via else c for c in self._classes
            ]
        self.nodes = {name: ZtunnelNode(name) for name in topology.nodes}
        self._endpoints: dict[str, ZtunnelEndpoint] = {}
        self.waypoints = {w.id: WaypointProxy(w) for w in topology.waypoints}
        self._waypoint_endpoints: dict[str, MetricsEndpoint] = {}
        self._pending_restarts: set[str] = set()
        self._pending_close: dict[SeriesKey, tuple[int, bool, int]] = {}
        self._last_end_ns: int | None = None
        self._truth = _empty_truth(topology)

    # ztunnel endpoints

    def start_ztunnels(self) -> list[str]:
        """Serve every node's ztunnel on 127.0.0.1:<port>/metrics; returns the URLs in node order."""
        for name, node in self.nodes.items():
            if name not in self._endpoints:
                self._endpoints[name] = ZtunnelEndpoint(node)
        return self.ztunnel_urls

    @property
    def ztunnel_urls(self) -> list[str]:
        return [self._endpoints[n].url for n in self.nodes if n in self._endpoints]

    def start_waypoints(self) -> dict[str, str]:
        """Serve every waypoint's request metrics on 127.0.0.1:<port>/stats/prometheus;
        returns waypoint id (`<ns>/<name>`) -> URL."""
        for wid, proxy in self.waypoints.items():
            if wid not in self._waypoint_endpoints:
                self._waypoint_endpoints[wid] = MetricsEndpoint(
                    f"waypoint-{wid}", "/stats/prometheus", proxy.exposition
                )
        return self.waypoint_urls

    @property
    def waypoint_urls(self) -> dict[str, str]:
        return {w: e.url for w, e in self._waypoint_endpoints.items()}

    def restart_ztunnel(self, node: str) -> None:
        """Restart `node`'s ztunnel at the next tick where meshstitch can detect the reset."""
        if node not in self.nodes:
            raise KeyError(node)
        self._pending_restarts.add(node)

    # traffic

    @property
    def truth(self) -> Truth:
        return self._truth

    def tick(self, start_s: float, end_s: float) -> TickReport:
        start_ns, end_ns = round(start_s * NS_PER_S), round(end_s * NS_PER_S)
        if end_ns <= start_ns:
            raise ValueError("a tick needs end_s > start_s")
        if self._last_end_ns is not None and start_ns < self._last_end_ns:
            raise ValueError("ticks must not overlap or go back in time")
        requests = self._traffic.requests(start_ns, end_ns)
        sampled = [self._sampled() for _ in requests]
        spans: list[ReadableSpan] = []
        for request, traced in zip(requests, sampled, strict=True):
            if traced:
                edge = self.topology.edges[request.edge_index]
                spans.extend(self._spans.spans(request, edge, self._classes[request.edge_index]))
        self._span_rng.shuffle(spans)  # arrival order is not causal order
        export_requests = 0
        if self._exporter is not None and spans:
            export_requests = export_all(self._exporter, spans, self._batch_spans)
        self._last_end_ns = end_ns

        series = self._series_of(requests)
        restarted = self._advance_counters(series)
        self._advance_waypoints(requests)
        self._record_truth(start_s, end_s, requests, sampled, series)
        return TickReport(len(requests), len(spans), export_requests, tuple(restarted))

    def _sampled(self) -> bool:
        rate = self._trace_sampling
        return rate >= 1.0 or (rate > 0.0 and self._sampling_rng.random() < rate)

    def _advance_waypoints(self, requests: list[Request]) -> None:
        by_waypoint: dict[str, list[tuple[Labels, Request]]] = defaultdict(list)
        for request in requests:
            cls = self._classes[request.edge_index]
            if cls.via:
                edge = self.topology.edges[request.edge_index]
                labels = request_labels(self.topology, edge, cls, request)
                by_waypoint[cls.via].append((labels, request))
        for wid, items in by_waypoint.items():
            self.waypoints[wid].advance(items)

    def _series_of(self, requests: list[Request]) -> dict[SeriesKey, _SeriesTick]:
        out: dict[SeriesKey, _SeriesTick] = {}
        for request in requests:
            i = request.edge_index
            edge = self.topology.edges[i]
            refs = series_for(
                self.topology,
                edge,
                self._classes[i],
                request.source_workload,
                request.target_workload,
            )
            if edge.denied:
                for ref in refs:
                    opened = out.setdefault((ref.node, ref.labels), _SeriesTick(i, ref.kept, True))
                    opened.denied_opened += 1
                    flag = DENIAL_FLAGS[ref.labels[0]]
                    key = (ref.node, with_flag(ref.labels, flag))
                    closed = out.setdefault(key, _SeriesTick(i, ref.kept, True))
                    closed.denied_closed += 1
                continue
            for ref in refs:
                key = (ref.node, ref.labels)
                st = out.get(key)
                if st is None:
                    st = out[key] = _SeriesTick(i, ref.kept)
                st.calls += 1
                st.received += request.request_bytes
                st.sent += request.response_bytes
        for st in out.values():
            edge = self.topology.edges[st.edge_index]
            if st.denied:
                st.extra["opened"] = st.denied_opened
                continue
            st.extra["opened"] = math.ceil(st.calls / edge.requests_per_connection)
        return out

    def _advance_counters(self, series: dict[SeriesKey, _SeriesTick]) -> list[str]:
        increments: dict[str, dict[Labels, Counts]] = defaultdict(dict)
        pending = self._pending_close
        self._pending_close = {}
        for key, st in series.items():
            opened = st.extra["opened"]
            closed = opened
            if st.denied:
                st.extra["closed"] = st.extra["failed"] = st.denied_closed
                increments[key[0]][key[1]] = (opened, st.denied_closed, 0, 0, st.denied_closed)
                continue
            if self._classes[st.edge_index].protocol == "tcp":
                # Pooled TCP connections close one tick later.
                closed = pending.pop(key, (0, st.kept, st.edge_index))[0]
                self._pending_close[key] = (opened, st.kept, st.edge_index)
            st.extra["closed"] = closed
            increments[key[0]][key[1]] = (opened, closed, st.received, st.sent, 0)
        for key, (closed, kept, edge_index) in pending.items():
            increments[key[0]][key[1]] = (0, closed, 0, 0, 0)
            series[key] = _SeriesTick(edge_index, kept, extra={"opened": 0, "closed": closed})
        for name in self.nodes:
            if self._restart_probability and self._restart_rng.random() < self._restart_probability:
                self._pending_restarts.add(name)
        restarted = []
        for name, node in self.nodes.items():
            if node.advance(increments.get(name, {}), restart=name in self._pending_restarts):
                self._pending_restarts.discard(name)
                restarted.append(name)
        return restarted

    def _record_truth(
        self,
        start_s: float,
        end_s: float,
        requests: list[Request],
        sampled: list[bool],
        series: dict[SeriesKey, _SeriesTick],
    ) -> None:
        truth = self._truth
        truth.ticks.append((start_s, end_s))
        edges = [truth.edge(*_edge_ids(self.topology, e)) for e in self.topology.edges]
        rows = {id(e): TickTruth(start_s, end_s) for e in truth.edges.values()}
        # A request leaving a gateway is also the request that reached it (one SERVER span).
        ingress = [self.topology.ingress_edge_ids(e) for e in self.topology.edges]
        for request, traced in zip(requests, sampled, strict=True):
            i = request.edge_index
            if self._classes[i].protocol != "http" or self.topology.edges[i].denied:
                continue  # a denied call never becomes a request
            ingress_ids = ingress[i]
            hops = [edges[i]] if ingress_ids is None else [edges[i], truth.edge(*ingress_ids)]
            for edge_truth in hops:
                row = rows[id(edge_truth)]
                edge_truth.requests += 1
                row.requests += 1
                status = request.status
                edge_truth.status_codes[status] = edge_truth.status_codes.get(status, 0) + 1
                if request.error:
                    edge_truth.errors += 1
                    row.errors += 1
                edge_truth.latencies_ms.append(request.duration_ms)
                if traced:
                    edge_truth.sampled_requests += 1
                    edge_truth.sampled_errors += int(request.error)
                    edge_truth.sampled_latencies_ms.append(request.duration_ms)
        if self.topology.zoned:
            for request in requests:
                self._record_zones(edges[request.edge_index], request)
        for st in series.values():
            if not st.kept:
                continue
            edge_truth = edges[st.edge_index]
            edge_truth.connections_opened += st.extra["opened"]
            edge_truth.connections_closed += st.extra["closed"]
            edge_truth.bytes_sent += st.received
            edge_truth.bytes_received += st.sent
            failed = st.extra.get("failed", 0)
            if failed:
                edge_truth.connections_failed += failed
                edge_truth.failures["DENY"] = edge_truth.failures.get("DENY", 0) + failed
        for edge_truth in truth.edges.values():
            edge_truth.ticks.append(rows[id(edge_truth)])

    def _record_zones(self, edge_truth: EdgeTruth, request: Request) -> None:
        """The zones one call's bytes ran through, hop by hop, as the pods were placed."""
        i = request.edge_index
        edge, cls = self.topology.edges[i], self._classes[i]
        if edge.denied or cls.coverage is Coverage.L7_ONLY:
            return  # no bytes, or no ztunnel on the path
        zone_of = self.topology.zone_of
        client = zone_of(request.source_workload.node) if request.source_workload else ""
        server = zone_of(request.target_workload.node) if request.target_workload else ""
        waypoint = self.topology.via_waypoint(edge, cls)
        hops = [client, zone_of(waypoint.node), server] if waypoint else [client, server]
        total = request.request_bytes + request.response_bytes
        key = "|".join(hops if waypoint else [client, "", server])
        edge_truth.zone_bytes[key] = edge_truth.zone_bytes.get(key, 0) + total
        crossed = sum(1 for a, b in itertools.pairwise(hops) if a and b and a != b)
        edge_truth.cross_zone_bytes += total * crossed
        if waypoint and all(hops):
            edge_truth.detour_bytes += total * (crossed - int(client != server))

    # lifecycle

    def stop(self) -> None:
        for endpoint in [*self._endpoints.values(), *self._waypoint_endpoints.values()]:
            endpoint.close()
        self._endpoints.clear()
        self._waypoint_endpoints.clear()
        if self._exporter is not None:
            self._exporter.shutdown()
            self._exporter = None

    def __enter__(self) -> MeshSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _edge_ids(topology: Topology, edge: Edge) -> tuple[str, str]:
    return topology.source_node_id(edge), topology.target_node_id(edge)


def _empty_truth(topology: Topology) -> Truth:
    truth = Truth()
    for service in topology.services:
        truth.nodes[service.id] = service.kind
        if service.aliases:
            truth.aliases[service.id] = list(service.aliases)
    for external in topology.externals:
        truth.nodes[external.id] = "external"
    for edge, cls in topology.iter_classified():
        source, target = topology.source_node_id(edge), topology.target_node_id(edge)
        if edge.source == OUTSIDE:
            truth.nodes[source] = "unknown"
        truth.edges[(source, target)] = EdgeTruth(
            source=source,
            target=target,
            coverage=cls.coverage,
            plaintext=cls.plaintext,
            via=cls.via,
            protocol=cls.protocol,
            metrics=bool(cls.via),
        )
        ingress = topology.ingress_edge_ids(edge)
        if ingress is not None and ingress not in truth.edges:
            truth.nodes[ingress[0]] = "unknown"
            truth.edges[ingress] = EdgeTruth(
                source=ingress[0],
                target=ingress[1],
                coverage=Coverage.L7_ONLY,  # the gateway is not captured: no ztunnel sees it
                plaintext=False,
                via="",
                protocol="http",
            )
    return truth
