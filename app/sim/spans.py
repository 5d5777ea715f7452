"""SDK `ReadableSpan`s for one simulated request, shaped like tests/data/otlp/README.md.

A call through a waypoint yields the waypoint's SERVER span (Envoy tags, every value a string),
preceded by the caller's CLIENT span when the caller is instrumented (then it is the waypoint
span's parent: traceparent propagated) and followed by the server's SERVER span when the server
is instrumented (its parent is the waypoint span: Envoy propagates its own span context). A
direct call between two instrumented services yields a CLIENT/SERVER pair. Every span of a
request has the same start and end, so latency and end-time bucket agree whichever span is read.

Deliberate simplifications: each request is its own trace (callers' CLIENT spans are roots), and
4xx CLIENT spans keep an unset status (semconv says SHOULD be ERROR) because the truth counts
5xx and Envoy response flags as errors, as DESIGN.md does.
"""

from __future__ import annotations

import random
import uuid
from typing import Literal

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from app.sim.topology import Edge, EdgeClass, Service, Topology, Waypoint, Workload
from app.sim.traffic import Request

WaypointNaming = Literal["waypoint", "destination"]
_ENVOY_VERSION = "1.34.1/Clean/RELEASE/BoringSSL"
_USER_AGENT = "python-requests/2.32.3"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanFactory:
    """Builds the spans of requests; ids come from the simulator's seeded generator.

    `waypoint_naming`: resource `service.name` of waypoint spans, `"waypoint"` (`waypoint.<ns>`,
    Istio < 1.29) or `"destination"` (the destination host plus the `istio.source_*` /
    `istio.destination_*` tags, Istio ≥ 1.29).
    """

    def __init__(
        self, topology: Topology, rng: random.Random, waypoint_naming: WaypointNaming = "waypoint"
    ) -> None:
        self._topology = topology
        self._rng = rng
        self._naming = waypoint_naming
        self._resources: dict[str, Resource] = {}

    def spans(self, request: Request, edge: Edge, cls: EdgeClass) -> list[ReadableSpan]:
        if not (cls.via or cls.client_spans or cls.server_spans):
            return []
        rng = self._rng
        target = self._topology.service(edge.target)
        source = self._topology.service(edge.source) if request.source_workload else None
        assert request.target_workload is not None
        trace_id = rng.getrandbits(128) or 1
        out: list[ReadableSpan] = []
        parent: SpanContext | None = None
        if cls.client_spans:
            assert source is not None and request.source_workload is not None
            ctx = self._context(trace_id)
            out.append(self._client(request, edge, source, request.source_workload, target, ctx))
            parent = ctx
        peer_ip = request.source_workload.ip if request.source_workload else "10.0.0.1"
        if cls.via:
            waypoint = self._topology.waypoint(target.namespace, target.waypoint)
            ctx = self._context(trace_id)
            out.append(self._waypoint(request, edge, source, waypoint, target, ctx, parent))
            parent = ctx
            peer_ip = waypoint.ip
        if cls.server_spans:
            ctx = self._context(trace_id)
            out.append(
                self._server(request, edge, target, request.target_workload, ctx, parent, peer_ip)
            )
        return out

    def _context(self, trace_id: int) -> SpanContext:
        span_id = self._rng.getrandbits(64) or 1
        return SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)

    def _resource(self, key: str, attributes: dict[str, str]) -> Resource:
        resource = self._resources.get(key)
        if resource is None:
            resource = self._resources[key] = Resource(attributes)
        return resource

    def _app_resource(self, service: Service, workload: Workload) -> Resource:
        return self._resource(
            f"app:{service.id}:{workload.name}",
            {
                "service.name": service.name,
                "service.namespace": service.namespace,
                "service.version": workload.version,
                "k8s.namespace.name": service.namespace,
                "k8s.deployment.name": workload.name,
                "k8s.pod.name": workload.pod,
                "k8s.pod.ip": workload.ip,
                "telemetry.sdk.language": "python",
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.version": "1.45.2",
            },
        )

    def _waypoint_resource(self, waypoint: Waypoint, target: Service) -> Resource:
        if self._naming == "destination":
            key, name = f"wp:{waypoint.id}:{target.id}", target.host
        else:
            key, name = f"wp:{waypoint.id}", f"{waypoint.name}.{waypoint.namespace}"
        return self._resource(
            key,
            {
                "service.name": name,
                "telemetry.sdk.language": "cpp",
                "telemetry.sdk.name": "envoy",
                "telemetry.sdk.version": _ENVOY_VERSION,
            },
        )

    def _waypoint(
        self,
        request: Request,
        edge: Edge,
        source: Service | None,
        waypoint: Waypoint,
        target: Service,
        ctx: SpanContext,
        parent: SpanContext | None,
    ) -> ReadableSpan:
        rng = self._rng
        assert request.target_workload is not None
        cluster = f"inbound-vip|{target.port}|http|{target.host}"
        ns = waypoint.namespace
        caller = request.source_workload
        attributes: dict[str, str] = {
            "node_id": f"waypoint~{waypoint.ip}~{waypoint.pod}.{ns}~{ns}.svc.cluster.local",
            "zone": "",
            "guid:x-request-id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "http.url": f"http://{target.host}:{target.port}{edge.path}",
            "http.method": "GET",
            "downstream_cluster": "-",
            "user_agent": _USER_AGENT,
            "http.protocol": "HTTP/1.1",
            "peer.address": (
                f"{caller.ip}:{rng.randint(32768, 60999)}"
                if caller
                else "envoy://internal_client_address/"
            ),
            "request_size": "0",
            "response_flags": request.response_flags,
            "upstream_address": f"envoy://connect_originate/{request.target_workload.ip}:{target.port}",
            "upstream_cluster": cluster,
            "upstream_cluster.name": cluster,
            "http.status_code": request.status,
            "response_size": str(request.response_bytes),
            "component": "proxy",
            "istio.canonical_revision": "latest",
            "istio.canonical_service": waypoint.name,
            "istio.cluster_id": "Kubernetes",
            "istio.mesh_id": "cluster.local",
            "istio.namespace": ns,
        }
        if self._naming == "destination" and source is not None and caller is not None:
            attributes.update(
                {
                    "istio.source_workload": caller.name,
                    "istio.source_namespace": source.namespace,
                    "istio.source_canonical_service": source.name,
                    "istio.source_canonical_revision": caller.version,
                    "istio.destination_workload": request.target_workload.name,
                    "istio.destination_namespace": target.namespace,
                    "istio.destination_canonical_service": target.name,
                    "istio.destination_canonical_revision": request.target_workload.version,
                }
            )
        status = Status(StatusCode.UNSET)
        if request.status.startswith("5"):
            attributes["error"] = "true"
            status = Status(StatusCode.ERROR)
        return ReadableSpan(
            name=f"{target.host}:{target.port}/*",
            context=ctx,
            parent=_remote(parent),
            resource=self._waypoint_resource(waypoint, target),
            attributes=attributes,
            kind=SpanKind.SERVER,
            status=status,
            start_time=request.start_ns,
            end_time=request.end_ns,
        )

    def _client(
        self,
        request: Request,
        edge: Edge,
        source: Service,
        workload: Workload,
        target: Service,
        ctx: SpanContext,
    ) -> ReadableSpan:
        attributes: dict[str, str | int] = {
            "http.request.method": "GET",
            "url.full": f"http://{target.host}:{target.port}{edge.path}",
            "server.address": target.host,
            "server.port": target.port,
            "network.protocol.version": "1.1",
            "http.response.status_code": int(request.status),
        }
        status = Status(StatusCode.UNSET)
        if request.status.startswith("5"):
            attributes["error.type"] = request.status
            status = Status(StatusCode.ERROR)
        return ReadableSpan(
            name="GET",
            context=ctx,
            parent=None,
            resource=self._app_resource(source, workload),
            attributes=attributes,
            kind=SpanKind.CLIENT,
            status=status,
            start_time=request.start_ns,
            end_time=request.end_ns,
        )

    def _server(
        self,
        request: Request,
        edge: Edge,
        target: Service,
        workload: Workload,
        ctx: SpanContext,
        parent: SpanContext | None,
        peer_ip: str,
    ) -> ReadableSpan:
        attributes: dict[str, str | int] = {
            "http.request.method": "GET",
            "url.scheme": "http",
            "url.path": edge.path,
            "http.route": edge.path,
            "server.address": target.host,
            "server.port": target.port,
            "client.address": peer_ip,
            "network.peer.address": peer_ip,
            "network.protocol.version": "1.1",
            "http.response.status_code": int(request.status),
        }
        status = Status(StatusCode.UNSET)
        if request.status.startswith("5"):
            attributes["error.type"] = request.status
            status = Status(StatusCode.ERROR)
        return ReadableSpan(
            name=f"GET {edge.path}",
            context=ctx,
            parent=_remote(parent),
            resource=self._app_resource(target, workload),
            attributes=attributes,
            kind=SpanKind.SERVER,
            status=status,
            start_time=request.start_ns,
            end_time=request.end_ns,
        )


def _remote(parent: SpanContext | None) -> SpanContext | None:
    if parent is None:
        return None
    return SpanContext(parent.trace_id, parent.span_id, is_remote=True, trace_flags=_SAMPLED)
