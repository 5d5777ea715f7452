"""create_app(settings): the one place where parts are wired. Nothing runs at import time.

Data flows one way: OTLP transports and the L4 poller feed the pipeline (correlator + aggregator on
one worker thread), the pipeline writes additive aggregates through the store, and the graph
queries read them back for the REST, Grafana and /metrics routes. The lifespan enters every
background part on one AsyncExitStack, so shutdown (SIGTERM/SIGINT via uvicorn) leaves them in
reverse order: stop polling, stop the gRPC server, then flush everything the pipeline accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from app.api.auth import BearerTokenMiddleware
from app.api.cost import build_cost_router, cost_model
from app.api.graph import build_graph_router
from app.api.health import PartState, Readiness, build_health_router
from app.api.metric_collectors import (
    pipeline_families,
    service_graph_collector,
    trace_hop_families,
    trace_hops_state,
    window_cache_families,
)
from app.api.metrics_route import MetricsRegistry, build_metrics_router
from app.api.problems import install_problem_handlers
from app.correlate.aggregate import EdgeAggregator
from app.correlate.cardinality import CardinalityCaps, CardinalityGuard
from app.correlate.cardinality_report import cardinality_families, cardinality_state
from app.correlate.correlator import SpanCorrelator
from app.correlate.identity import NodeIdentity
from app.correlate.servicegraph_metrics import ServiceGraphMetrics, max_series_for
from app.domain import NO_L4_INPUT
from app.edge.batch import AggregateBatch
from app.edge.recent_hops import RecentHops
from app.grafana.routes import build_grafana_router
from app.graph.queries import GraphQueries
from app.ingest.decoder_choice import select_protobuf_decoder
from app.ingest.otlp_grpc import GrpcServerHandle, start_grpc_server
from app.ingest.otlp_http import build_otlp_http_router
from app.malloc_tuning import trim_heap
from app.pipeline import IngestPipeline
from app.poll.pod_directory import (
    PodDirectory,
    build_pod_directory,
    directory_choice,
    directory_state,
)
from app.poll.poller import L4Poller, build_poller
from app.poll.zone_split import zone_sources
from app.settings import Settings
from app.store.aliases import AliasRepository
from app.store.engine import create_store_engine, read_only
from app.store.leader import PollLeadership
from app.store.schema import current_revision, ensure_schema, head_revision
from app.store.wal import WalCheckpointer
from app.store.writer import delete_expired, write_batch
from app.ui.assets import build_docs_router, mount_assets
from app.ui.shell import build_ui_router

log = logging.getLogger(__name__)
VERSION = "0.1.0"
RETENTION_EVERY_S = 300.0


def database_state(engine: Engine) -> PartState:
    # A read-only view: on SQLite a probe must not queue behind the pipeline's write lock.
    current, head = current_revision(read_only(engine)), head_revision()
    return PartState(
        current == head, {"revision": current, "head": head, "dialect": engine.dialect.name}
    )


def build_identity(settings: Settings) -> NodeIdentity:
    """Node identity from the settings (hand-made aliases, waypoint workloads); the aliases
    already stored are loaded at start (`load_stored_aliases`)."""
    return NodeIdentity(settings.alias_list(), settings.waypoint_workload_list())


def load_stored_aliases(engine: Engine, identity: NodeIdentity) -> None:
    with engine.connect() as conn:
        identity.load(AliasRepository().all(conn))


def build_guard(settings: Settings) -> CardinalityGuard:
    return CardinalityGuard(
        CardinalityCaps(
            max_nodes=settings.max_nodes_per_window,
            max_edges=settings.max_edges_per_window,
            max_external_hosts_per_namespace=settings.max_external_hosts_per_namespace,
            window_s=settings.cardinality_window_s,
        )
    )


def build_pipeline(
    settings: Settings,
    engine: Engine,
    service_graph: ServiceGraphMetrics,
    directory: PodDirectory | None = None,
    identity: NodeIdentity | None = None,
    guard: CardinalityGuard | None = None,
    checkpoints: WalCheckpointer | None = None,
    recent_hops: RecentHops | None = None,
) -> IngestPipeline:
    identity = identity if identity is not None else build_identity(settings)
    guard = guard if guard is not None else build_guard(settings)
    correlator = SpanCorrelator(
        settings.pairing_wait_s,
        settings.pairing_max_items,
        settings.bucket_s,
        frozenset(n.rpartition("/")[2] for n in settings.waypoint_workload_list()),
        directory=directory,
        identity=identity,
    )

    def write(batch: AggregateBatch) -> None:
        write_batch(engine, batch)
        if checkpoints is not None:  # SQLite: keep the WAL small (app/store/wal.py)
            checkpoints.after_write()

    return IngestPipeline(
        correlator,
        EdgeAggregator(
            settings.bucket_s,
            identity=identity,
            guard=guard,
            recent_hops=recent_hops,  # None: the aggregator keeps none in memory
        ),
        write,
        queue_spans=settings.ingest_queue_spans,
        queue_bytes=settings.ingest_queue_bytes,
        flush_interval_s=settings.flush_interval_s,
        max_pending_writes=settings.max_pending_writes,
        # The batch written and the drained aggregates freed: glibc would keep their heap.
        after_write=trim_heap,
        observers=[service_graph.observe],
        l4_observers=[service_graph.observe_l4],
        metric_observers=[service_graph.observe_metrics],
    )


async def _retention_loop(engine: Engine, retention_h: float) -> None:
    while True:
        await asyncio.sleep(RETENTION_EVERY_S)
        job = asyncio.ensure_future(
            asyncio.to_thread(delete_expired, engine, time.time(), retention_h)
        )
        try:
            log.debug("retention: %s", await asyncio.shield(job))
        except asyncio.CancelledError:
            # Shutdown: let the thread finish before the engine is disposed under it.
            with suppress(Exception):
                await job
            raise
        except Exception as exc:  # database away: try again next round, never crash
            log.warning("retention failed: %s: %s", type(exc).__name__, exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Chosen once for both transports; DecoderUnavailable here is a refused start.
    decoder = select_protobuf_decoder(settings.otlp_decoder)
    readiness = Readiness()
    readiness.register(
        "otlp_decoder",
        lambda: PartState(True, {"protobuf": decoder.name, "setting": settings.otlp_decoder}),
    )
    registry = MetricsRegistry()
    engine = create_store_engine(settings.database_url)
    service_graph = ServiceGraphMetrics(max_series_for(settings.metrics_max_samples))
    identity = build_identity(settings)
    # peer.address → workload, zones from node topology, and aliases/waypoints/gateways from the
    # cluster: with Kubernetes access, in either L4 mode (MESHSTITCH_KUBERNETES_PODS)
    pods_choice = directory_choice(settings)
    directory = build_pod_directory(settings, identity=identity, choice=pods_choice)
    readiness.register("kubernetes_pods", lambda: directory_state(settings, pods_choice, directory))
    guard = build_guard(settings)
    checkpoints = WalCheckpointer(engine) if settings.is_sqlite else None
    recent_hops = RecentHops(settings.recent_trace_hops)  # written by ingest, read by /traces
    pipeline = build_pipeline(
        settings, engine, service_graph, directory, identity, guard, checkpoints, recent_hops
    )
    # With several replicas on one PostgreSQL only the holder of the poll lock polls ztunnel.
    leadership = None if settings.is_sqlite else PollLeadership(engine)
    poller: L4Poller | None = build_poller(
        settings,
        pipeline.add_l4,
        identity,
        directory=directory,
        may_poll=leadership.check if leadership else None,
    )
    sampling = settings.trace_sampling_percent
    queries = GraphQueries(
        engine,
        settings.bucket_s,
        None if sampling is None else sampling / 100,
        cache_windows=settings.graph_cache_windows,
        cache_max_edges=settings.graph_cache_max_edges,
        cache_in_background=True,
        recent_hops=recent_hops,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(engine.dispose)
            stack.callback(queries.cache.close)  # its builds read on the engine
            ensure_schema(engine, auto_upgrade=settings.is_sqlite)
            load_stored_aliases(engine, identity)  # what this or another replica learned
            readiness.register("database", lambda: database_state(engine))

            pipeline.start()
            stack.callback(_stop_pipeline, pipeline)
            readiness.register("pipeline", lambda: PartState(*pipeline.state()))
            readiness.register("cardinality", lambda: cardinality_state(guard))
            readiness.register("trace_hops", lambda: trace_hops_state(recent_hops))
            if checkpoints is not None:
                readiness.register("sqlite_wal", checkpoints.readiness)

            grpc_server = start_grpc_server(pipeline, settings, decoder=decoder)
            app.state.grpc_port = grpc_server.port
            stack.callback(_stop_grpc, grpc_server)
            readiness.register("otlp_grpc", lambda: PartState(True, {"port": grpc_server.port}))

            if poller is not None:
                if leadership is not None:
                    stack.callback(leadership.release)
                poller.start()
                stack.callback(poller.stop)
                readiness.register("poller", poller.readiness)

            retention = asyncio.create_task(_retention_loop(engine, settings.retention_h))
            stack.push_async_callback(_cancel, retention)
            log.info(
                "meshstitch ready: http %s:%s, otlp/grpc port %s, database %s, L4 %s, "
                "otlp decoder %s",
                settings.host,
                settings.http_port,
                grpc_server.port,
                engine.dialect.name,
                poller.mode if poller else "off",
                decoder.name,
            )
            yield
            log.info("meshstitch shutting down")
        log.info("meshstitch stopped")

    app = FastAPI(
        title="meshstitch",
        version=VERSION,
        summary="One service graph for Istio ambient mesh from waypoint spans (L7) and ztunnel metrics (L4).",
        lifespan=lifespan,
        docs_url=None,  # served from the bundled Swagger UI below, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.readiness = readiness
    app.state.pipeline = pipeline
    app.state.guard = guard
    app.state.identity = identity
    app.state.poller = poller
    app.state.directory = directory  # the pod directory, or None
    app.state.queries = queries
    install_problem_handlers(app)
    app.include_router(build_health_router(readiness))
    app.include_router(build_otlp_http_router(pipeline, settings, decoder))
    app.include_router(build_graph_router(queries))
    ztunnels = poller.ztunnel_count if poller is not None else lambda: NO_L4_INPUT
    model = cost_model(settings, zone_sources(node_topology=directory is not None))
    app.include_router(build_cost_router(queries, model, ztunnels))
    app.include_router(build_grafana_router(queries, model=model, ztunnels=ztunnels))
    app.include_router(build_metrics_router(registry))
    app.include_router(build_docs_router(app.title))
    app.include_router(
        build_ui_router(
            version=VERSION,
            trace_url_template=settings.trace_url_template,
            auth_required=bool(settings.api_token.get_secret_value()),
        )
    )
    mount_assets(app)
    registry.register(lambda: pipeline_families(pipeline))
    registry.register(service_graph_collector(service_graph))
    registry.register(lambda: window_cache_families(queries.cache))
    registry.register(lambda: trace_hop_families(recent_hops))
    registry.register(lambda: cardinality_families(guard))
    if checkpoints is not None:
        registry.register(checkpoints.collect)
    if poller is not None:
        registry.register(poller.collect)

    token = settings.api_token.get_secret_value()
    if token:
        app.add_middleware(BearerTokenMiddleware, token=token)
    origins = settings.cors_origin_list()
    if origins:  # CORS is off unless origins are named
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _stop_pipeline(pipeline: IngestPipeline) -> None:
    if not pipeline.stop():
        log.error("not everything accepted could be written before shutdown")


def _stop_grpc(server: GrpcServerHandle) -> None:
    server.stop(5.0)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
