"""SDK `ReadableSpan`s for one simulated request, shaped like tests/data/otlp/README.md.

A request's spans form one chain, each the parent of the next (every hop propagates W3C
`traceparent`; Envoy propagates its own span context):

1. the caller's CLIENT span when the caller is instrumented;
2. the caller's own Envoy when it is one: an ingress gateway's SERVER span (a root: the outside
   client sends no `traceparent`) and, from Istio 1.28, its upstream CLIENT child; or a sidecar's
   outbound CLIENT span;
3. the waypoint's SERVER span when the call goes through one;
4. the server's sidecar inbound SERVER span when the server is sidecar-injected;
5. the server's SERVER span when the server is instrumented.

Envoy tags and their sources: app/sim/envoy_spans.py; what changes per Istio release:
app/sim/istio.py. Every span of a request has the same start and end, so latency and end-time
bucket agree whichever span is read.

Deliberate simplifications: each request is its own trace (callers' CLIENT spans are roots), and
4xx CLIENT spans keep an unset status (semconv says SHOULD be ERROR) because the truth counts
5xx and Envoy response flags as errors, as DESIGN.md does.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from app.sim import envoy_spans as envoy
from app.sim.envoy_spans import EnvoyProxy, Exchange
from app.sim.istio import IstioVersion, IstioWire
from app.sim.topology import CLUSTER_ID, Edge, EdgeClass, Service, Topology, Waypoint, Workload
from app.sim.traffic import Request

_Builder = Callable[[SpanContext, SpanContext | None], ReadableSpan]

_ENVOY_VERSION = "1.34.1/Clean/RELEASE/BoringSSL"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_WORKLOAD_TYPE = "deployment"  # WorkloadMetadataObject's `type` field for a Deployment's pod


class SpanFactory:
    """Builds the spans of requests; ids come from the simulator's seeded generator.

    `istio_version` picks the release-dependent shapes (app/sim/istio.py): the waypoint's resource
    `service.name`, the `istio.source_*`/`istio.destination_*` tags, the gateway's upstream span.
    """

    def __init__(
        self, topology: Topology, rng: random.Random, istio_version: IstioVersion = "1.27"
    ) -> None:
        self._topology = topology
        self._rng = rng
        self._wire = IstioWire(istio_version)
        self._resources: dict[str, Resource] = {}

    def spans(self, request: Request, edge: Edge, cls: EdgeClass) -> list[ReadableSpan]:
        if not (cls.via or cls.client_spans or cls.server_spans or cls.source_envoy) and not (
            cls.target_sidecar
        ):
            return []
        target = self._topology.service(edge.target)
        source = self._topology.service(edge.source) if request.source_workload else None
        assert request.target_workload is not None
        trace_id = self._rng.getrandbits(128) or 1
        chain = _Chain(self, trace_id)
        caller = request.source_workload
        if cls.client_spans:
            assert source is not None and caller is not None
            chain.add(lambda ctx, parent: self._client(request, edge, source, caller, target, ctx))
        if cls.source_envoy and source is not None and caller is not None:
            self._source_envoy(chain, request, edge, cls, source, caller, target)
        peer_ip = caller.ip if caller else "10.0.0.1"
        waypoint = self._topology.via_waypoint(edge, cls)
        if waypoint is not None:
            chain.add(
                lambda ctx, parent: self._waypoint(
                    request, edge, cls, source, waypoint, target, ctx, parent
                )
            )
            peer_ip = waypoint.ip
        if cls.target_sidecar:
            chain.add(
                lambda ctx, parent: self._sidecar_inbound(
                    request, edge, target, peer_ip, ctx, parent
                )
            )
        if cls.server_spans:
            workload = request.target_workload
            chain.add(
                lambda ctx, parent: self._server(
                    request, edge, target, workload, ctx, parent, peer_ip
                )
            )
        return chain.spans

    def _context(self, trace_id: int) -> SpanContext:
        span_id = self._rng.getrandbits(64) or 1
        return SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)

    def _request_id(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def _resource(self, key: str, attributes: dict[str, str]) -> Resource:
        resource = self._resources.get(key)
        if resource is None:
            resource = self._resources[key] = Resource(attributes)
        return resource

    def _app_resource(self, service: Service, workload: Workload) -> Resource:
        # `service.name` is what the app sets (OTEL_SERVICE_NAME), not the canonical name; the
        # k8s.* attributes are those the OTel operator / the Collector's k8sattributes add.
        return self._resource(
            f"app:{service.id}:{workload.name}",
            {
                "service.name": service.app_name,
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

    def _envoy_resource(self, key: str, service_name: str) -> Resource:
        return self._resource(
            key,
            {
                "service.name": service_name,
                "telemetry.sdk.language": "cpp",
                "telemetry.sdk.name": "envoy",
                "telemetry.sdk.version": _ENVOY_VERSION,
            },
        )

    def _waypoint_resource(self, waypoint: Waypoint, target: Service | None) -> Resource:
        if target is not None and self._wire.waypoint_service_name_is_destination:
            return self._envoy_resource(f"wp:{waypoint.id}:{target.id}", target.host)
        cluster = f"{waypoint.service_account}.{waypoint.namespace}"
        return self._envoy_resource(f"wp:{waypoint.id}", cluster)

    def _waypoint(
        self,
        request: Request,
        edge: Edge,
        cls: EdgeClass,
        source: Service | None,
        waypoint: Waypoint,
        target: Service,
        ctx: SpanContext,
        parent: SpanContext | None,
    ) -> ReadableSpan:
        pod = request.target_workload
        assert pod is not None
        if cls.pod_addressed:
            name = ":0/*"
            exchange = self._exchange(
                request,
                f"http://{pod.ip}:{target.port}{edge.path}",
                envoy.ENCAP_CLUSTER,
                envoy.ENCAP_UPSTREAM_ADDRESS,
            )
        else:
            name = f"{target.host}:{target.port}/*"
            exchange = self._exchange(
                request,
                f"http://{target.host}:{target.port}{edge.path}",
                envoy.inbound_vip_cluster(target.host, target.port),
                envoy.hbone_address(pod.ip, target.port),
            )
        proxy = EnvoyProxy(
            "waypoint",
            waypoint.ip,
            waypoint.pod,
            waypoint.namespace,
            waypoint.name,
            zone=self._topology.zone_of(waypoint.node),
        )
        attributes = envoy.downstream_tags(
            proxy, exchange, envoy.INTERNAL_CLIENT_ADDRESS, self._request_id()
        )
        caller = request.source_workload
        if self._wire.waypoint_peer_tags and source is not None and caller is not None:
            attributes.update(_peer_tags("istio.source", source, caller))
            attributes.update(_peer_tags("istio.destination", target, pod))
        resource = self._waypoint_resource(waypoint, None if cls.pod_addressed else target)
        return _span(name, ctx, parent, resource, attributes, SpanKind.SERVER, request)

    def _source_envoy(
        self,
        chain: _Chain,
        request: Request,
        edge: Edge,
        cls: EdgeClass,
        source: Service,
        caller: Workload,
        target: Service,
    ) -> None:
        pod = request.target_workload
        assert pod is not None
        cluster = envoy.outbound_cluster(target.host, target.port)
        address = (
            f"{pod.ip}:{target.port}"
            if target.envoy == "sidecar"
            else envoy.hbone_address(pod.ip, target.port)
        )
        resource = self._envoy_resource(f"envoy:{source.id}", f"{source.name}.{source.namespace}")
        role = "router" if cls.source_envoy == "gateway" else "sidecar"
        proxy = EnvoyProxy(
            role,
            caller.ip,
            caller.pod,
            source.namespace,
            source.name,
            zone=self._topology.zone_of(caller.node),
        )
        port = self._rng.randint(32768, 60999)
        if cls.source_envoy == "gateway":
            # The outside client dialled the gateway's public host; its route decorator is the
            # destination `host:port` plus the route's prefix match.
            url = f"http://bookinfo.example.com{edge.path}"
            name = f"{target.host}:{target.port}{edge.path}*"
            exchange = self._exchange(request, url, cluster, address)
            tags = envoy.downstream_tags(
                proxy, exchange, f"{edge.client_ip}:{port}", self._request_id()
            )
            chain.add(
                lambda ctx, parent: _span(
                    name, ctx, parent, resource, tags, SpanKind.SERVER, request
                )
            )
            if self._wire.gateway_upstream_span:
                upstream = envoy.upstream_tags(proxy, exchange)
                child_name = envoy.upstream_span_name(cluster)
                chain.add(
                    lambda ctx, parent: _span(
                        child_name, ctx, parent, resource, upstream, SpanKind.CLIENT, request
                    )
                )
            return
        url = f"http://{target.host}:{target.port}{edge.path}"
        exchange = self._exchange(request, url, cluster, address)
        tags = envoy.downstream_tags(proxy, exchange, f"{caller.ip}:{port}", self._request_id())
        name = f"{target.host}:{target.port}/*"
        chain.add(
            lambda ctx, parent: _span(name, ctx, parent, resource, tags, SpanKind.CLIENT, request)
        )

    def _sidecar_inbound(
        self,
        request: Request,
        edge: Edge,
        target: Service,
        peer_ip: str,
        ctx: SpanContext,
        parent: SpanContext | None,
    ) -> ReadableSpan:
        pod = request.target_workload
        assert pod is not None
        exchange = self._exchange(
            request,
            f"http://{target.host}:{target.port}{edge.path}",
            envoy.inbound_cluster(target.port),
            f"{pod.ip}:{target.port}",
        )
        proxy = EnvoyProxy(
            "sidecar",
            pod.ip,
            pod.pod,
            target.namespace,
            target.name,
            pod.version,
            zone=self._topology.zone_of(pod.node),
        )
        peer = f"{peer_ip}:{self._rng.randint(32768, 60999)}"
        tags = envoy.downstream_tags(proxy, exchange, peer, self._request_id())
        resource = self._envoy_resource(f"envoy:{target.id}", f"{target.name}.{target.namespace}")
        name = f"{target.host}:{target.port}/*"
        return _span(name, ctx, parent, resource, tags, SpanKind.SERVER, request)

    @staticmethod
    def _exchange(request: Request, url: str, cluster: str, upstream: str) -> Exchange:
        return Exchange(
            url=url,
            cluster=cluster,
            upstream_address=upstream,
            status=request.status,
            response_flags=request.response_flags,
            response_bytes=request.response_bytes,
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
        host = target.host
        if edge.address == "pod" and request.target_workload is not None:
            host = request.target_workload.ip
        attributes: dict[str, str | int] = {
            "http.request.method": "GET",
            "url.full": f"http://{host}:{target.port}{edge.path}",
            "server.address": host,
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


class _Chain:
    """Spans of one request, each the parent of the next."""

    def __init__(self, factory: SpanFactory, trace_id: int) -> None:
        self._factory = factory
        self._trace_id = trace_id
        self._parent: SpanContext | None = None
        self.spans: list[ReadableSpan] = []

    def add(self, build: _Builder) -> None:
        ctx = self._factory._context(self._trace_id)
        self.spans.append(build(ctx, self._parent))
        self._parent = ctx


def _peer_tags(prefix: str, service: Service, workload: Workload) -> dict[str, str]:
    """`istio.source_*` / `istio.destination_*` (1.29+): the peer's WorkloadMetadataObject."""
    return {
        f"{prefix}_workload": workload.name,
        f"{prefix}_namespace": service.namespace,
        f"{prefix}_cluster_id": CLUSTER_ID,
        f"{prefix}_canonical_service": service.name,
        f"{prefix}_canonical_revision": workload.version,
        f"{prefix}_app": service.name,
        f"{prefix}_app_version": workload.version,
        f"{prefix}_workload_type": _WORKLOAD_TYPE,
        f"{prefix}_instance_name": workload.pod,
    }


def _span(
    name: str,
    ctx: SpanContext,
    parent: SpanContext | None,
    resource: Resource,
    attributes: dict[str, str],
    kind: SpanKind,
    request: Request,
) -> ReadableSpan:
    error = request.status.startswith("5")
    return ReadableSpan(
        name=name,
        context=ctx,
        parent=_remote(parent),
        resource=resource,
        attributes=attributes,
        kind=kind,
        status=Status(StatusCode.ERROR if error else StatusCode.UNSET),
        start_time=request.start_ns,
        end_time=request.end_ns,
    )


def _remote(parent: SpanContext | None) -> SpanContext | None:
    if parent is None:
        return None
    return SpanContext(parent.trace_id, parent.span_id, is_remote=True, trace_flags=_SAMPLED)
