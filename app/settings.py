"""Every setting meshstitch reads, typed, with its unit in its name. Env prefix `MESHSTITCH_`.

The README's configuration table and `deploy/` are checked against this class by tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain import Alias, AliasSource

DEFAULT_SQLITE_PATH = Path("data") / "meshstitch.db"


def _csv(value: str) -> list[str]:
    """A comma-separated setting's items, stripped; empty items dropped."""
    return [item for item in (part.strip() for part in value.split(",")) if item]


def parse_alias_setting(value: str) -> list[Alias]:
    """`ns/alias=canonical,…` (or `ns/alias=ns/canonical`) → aliases; ValueError names a bad item."""
    out = []
    for item in _csv(value):
        left, sep, right = item.partition("=")
        namespace, slash, name = left.strip().partition("/")
        target_ns, _, service = right.strip().rpartition("/")
        if not (sep and slash and namespace and name and service) or (
            target_ns and target_ns != namespace
        ):
            raise ValueError(
                f"alias {item!r}: expected <namespace>/<alias>=<canonical service> "
                "(both in one namespace)"
            )
        out.append(Alias(namespace, name.strip(), service.strip(), AliasSource.SETTING))
    return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESHSTITCH_", extra="ignore", frozen=True)

    # Storage
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL. Default: embedded SQLite file ./data/meshstitch.db, "
        "created on first start. PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    )
    retention_h: float = Field(
        default=24.0, gt=0, description="Edge buckets older than this are deleted."
    )
    bucket_s: int = Field(default=60, ge=1, le=3600, description="Width of an edge time bucket.")
    flush_interval_s: float = Field(
        default=5.0, gt=0, description="How often in-memory aggregates are written to the store."
    )

    # Network
    host: str = Field(default="0.0.0.0", description="Address the HTTP and gRPC servers bind to.")
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="REST API, /v1/traces, /metrics, /grafana."
    )
    grpc_port: int = Field(default=4317, ge=0, le=65535, description="OTLP/gRPC TraceService.")
    cors_origins: str = Field(
        default="", description="Comma-separated allowed CORS origins; empty = CORS off."
    )

    # Limits
    max_body_bytes: int = Field(
        default=16 * 2**20, gt=0, description="Largest accepted HTTP request body (compressed)."
    )
    max_decompressed_bytes: int = Field(
        default=64 * 2**20, gt=0, description="Largest accepted OTLP payload after decompression."
    )
    grpc_max_message_bytes: int = Field(
        default=80 * 2**20,
        gt=0,
        description="Largest accepted gRPC message (default fits 64 MiB batches).",
    )
    ingest_queue_spans: int = Field(
        default=100_000,
        gt=0,
        description="Spans accepted but not yet aggregated before ingest answers 429 / "
        "RESOURCE_EXHAUSTED (binds for small spans; `ingest_queue_bytes` for large ones).",
    )
    ingest_queue_bytes: int = Field(
        default=64 * 2**20,
        gt=0,
        description="Estimated memory of the decoded spans accepted but not yet aggregated "
        "(~0.4-1.9 KB a span) before ingest answers 429 / RESOURCE_EXHAUSTED.",
    )
    max_pending_writes: int = Field(
        default=120,
        gt=0,
        description="Aggregate batches kept while the store is unreachable (one per flush) "
        "before ingest answers 503/UNAVAILABLE.",
    )
    pairing_wait_s: float = Field(
        default=10.0, gt=0, description="How long a client/server span waits for its peer."
    )
    pairing_max_items: int = Field(
        default=100_000,
        gt=0,
        description="Pairing store bound; the oldest entry is evicted and counted.",
    )
    max_attributes_per_span: int = Field(
        default=1024, gt=0, description="Attributes read per span; the rest are ignored."
    )
    otlp_decoder: Literal["auto", "compiled", "python"] = Field(
        default="compiled",
        description="OTLP protobuf decoder: `compiled` (the C extension built by pip install; "
        "startup fails if it is missing), `python` (the reference decoder), `auto` (compiled if "
        "present, else python with a warning). /readyz names the one running.",
    )
    max_nodes_per_window: int = Field(
        default=20_000,
        gt=0,
        description="Distinct nodes kept per level per cardinality window; traffic of newer "
        "nodes is counted under `<namespace>/__overflow__`.",
    )
    max_edges_per_window: int = Field(
        default=100_000,
        gt=0,
        description="Distinct edges kept per level per cardinality window; newer edges are "
        "counted as `source → <target namespace>/__overflow__`.",
    )
    max_external_hosts_per_namespace: int = Field(
        default=1_000,
        gt=0,
        description="Distinct external hosts a namespace calls per cardinality window before "
        "newer ones are grouped by domain suffix (`external/*.s3.amazonaws.com`).",
    )
    cardinality_window_s: int = Field(
        default=3600,
        ge=60,
        description="Window the node, edge and external-host caps count in (aligned on it).",
    )
    metrics_max_samples: int = Field(
        default=50_000,
        ge=1000,
        description="Most samples /metrics exposes; service-graph series past it are counted "
        'in one series labelled `metric_overflow="true"`.',
    )
    graph_cache_windows: int = Field(
        default=2,
        ge=0,
        description="Merged windows the read side keeps between requests, each about 3 KiB per "
        "edge of its window; a write that changes one drops it. 0 = every request reads the store.",
    )
    graph_cache_max_edges: int = Field(
        default=60_000,
        gt=0,
        description="Most edges the cached windows hold together (about 3 KiB each, plus up to six "
        "exemplars for each edge an answer showed: ~180-300 MiB at the default); a window with "
        "more is answered from its own merge and not kept.",
    )

    recent_trace_hops: int = Field(
        default=50_000,
        ge=0,
        description="Trace hops kept in memory for `/traces/{id}` (about 0.4 KiB each, 0.8 KiB "
        "when every name is new: ~20-40 MiB at the default); the store keeps only exemplar traces' hops. The last this many hops this "
        "process received can be looked up; 0 = exemplar traces only.",
    )

    # ztunnel L4 polling
    ztunnel_targets: str = Field(
        default="", description="Comma-separated ztunnel metrics URLs to scrape directly."
    )
    ztunnel_discovery: Literal["", "kubernetes"] = Field(
        default="",
        description="`kubernetes`: discover pods labelled app=ztunnel in istio-system, and list pods "
        "and Services cluster-wide to name waypoint callers by pod IP (peer.address) and learn each "
        "canonical service's other names, waypoints and gateways.",
    )
    ztunnel_namespace: str = Field(
        default="istio-system", description="Namespace of the ztunnel pods for discovery."
    )
    ztunnel_port: int = Field(
        default=15020, ge=1, le=65535, description="ztunnel metrics port for discovered pods."
    )
    kubeconfig: str = Field(
        default="", description="kubeconfig path for discovery outside the cluster."
    )
    kubernetes_pods: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="The pod directory: list pods, nodes and Services cluster-wide to name "
        "callers by pod IP (a span's peer.address), learn each canonical service's other names, and take a "
        "workload's zone from its nodes' topology.kubernetes.io/zone. `auto`: with "
        "ztunnel_discovery=kubernetes (direct scrape), and in PromQL mode when Kubernetes access "
        "is configured (kubeconfig set, or a service-account token in the pod); `on`: in every "
        "mode (no Kubernetes access refuses the start); `off`: never.",
    )
    prometheus_url: str = Field(default="", description="Prometheus base URL for PromQL mode.")
    prometheus_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token for Prometheus."
    )
    prometheus_username: str = Field(default="", description="Basic-auth user for Prometheus.")
    prometheus_password: SecretStr = Field(
        default=SecretStr(""), description="Basic-auth password for Prometheus."
    )
    poll_interval_s: float = Field(
        default=15.0, gt=0, description="How often ztunnel metrics are polled."
    )
    poll_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of one scrape or PromQL query."
    )
    waypoint_targets: str = Field(
        default="",
        description="Comma-separated waypoint metrics URLs (`http://<pod>:15020/stats/prometheus`) "
        "to scrape for unsampled request metrics (istio_requests_total, …, reporter=waypoint); "
        "`<namespace>/<waypoint>=<url>` also names the waypoint the pod serves, so its L4 "
        "half-edges are joined before any of its spans is sampled. "
        "With ztunnel_discovery=kubernetes, waypoint pods are also discovered by their Gateway "
        "labels.",
    )
    waypoint_port: int = Field(
        default=15020, ge=1, le=65535, description="Metrics port of discovered waypoint pods."
    )
    waypoint_metrics_path: str = Field(
        default="/stats/prometheus", description="Metrics path of discovered waypoint pods."
    )
    prometheus_job: str = Field(
        default="",
        description="PromQL mode: a regex the `job` label must match (e.g. `ztunnel|waypoints`); "
        "empty = every job.",
    )
    prometheus_dedupe_labels: str = Field(
        default="job",
        description="PromQL mode: comma-separated labels in which two scrapes of the same target "
        "differ; series equal but for these are counted once (`max without (…)`).",
    )
    trace_sampling_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="The mesh's trace sampling percentage (Telemetry randomSamplingPercentage), "
        "shown on edges whose counts come from spans only; empty = use the share observed on "
        "edges that also have waypoint request metrics.",
    )
    waypoint_workloads: str = Field(
        default="",
        description="Comma-separated workloads (`name` or `namespace/name`) to treat as waypoints, "
        "beside those recognised from evidence (node_id, Gateway labels, the L4 half-edge shape).",
    )
    aliases: str = Field(
        default="",
        description="Comma-separated aliases added by hand, `<namespace>/<alias>=<canonical "
        "service>`: another name (Kubernetes Service, OTel service.name) of a canonical service.",
    )

    # Cost model (/cost, /advisor): every figure is an estimate that names these inputs
    cost_cross_zone_usd_per_gb_out: float = Field(
        default=0.01,
        ge=0,
        description="Price of a GB (10^9 bytes) leaving its zone for another (a typical "
        "intra-region inter-zone rate).",
    )
    cost_cross_zone_usd_per_gb_in: float = Field(
        default=0.01,
        ge=0,
        description="Price of a GB entering a zone from another (clouds bill both directions).",
    )
    cost_reference_rps: float = Field(
        default=2000.0,
        gt=0,
        description="Request rate the proxy CPU/memory figures below were measured at; "
        "estimates scale them linearly by the observed rate.",
    )
    cost_sidecar_cpu_millicores: float = Field(
        default=638.0, ge=0, description="A sidecar's CPU at the reference rate."
    )
    cost_sidecar_memory_mib: float = Field(
        default=288.0, ge=0, description="A sidecar's memory at the reference rate."
    )
    cost_waypoint_cpu_millicores: float = Field(
        default=370.0, ge=0, description="A waypoint's CPU at the reference rate."
    )
    cost_waypoint_memory_mib: float = Field(
        default=68.0, ge=0, description="A waypoint's memory at the reference rate."
    )
    cost_ztunnel_cpu_millicores: float = Field(
        default=60.0, ge=0, description="A node's ztunnel CPU at the reference rate."
    )
    cost_ztunnel_memory_mib: float = Field(
        default=12.0, ge=0, description="A node's ztunnel memory at the reference rate."
    )

    # Web view (/ui)
    trace_url_template: str = Field(
        default="",
        max_length=2048,
        description="Link from a trace id to your tracing UI, e.g. "
        "`https://tempo.example/trace/{trace_id}`; empty = no link (the built-in trace view stays).",
    )

    # Authentication
    api_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token for REST and /grafana; empty = open."
    )
    otlp_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token for OTLP ingest; empty = open."
    )

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level."
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, url: str) -> str:
        # Users paste libpq-style URLs; SQLAlchemy would pick psycopg2, which we do not ship.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("trace_url_template")
    @classmethod
    def _check_trace_url_template(cls, value: str) -> str:
        value = value.strip()
        if value and (not value.startswith(("http://", "https://")) or "{trace_id}" not in value):
            raise ValueError("must be an http(s) URL containing {trace_id}, or empty")
        return value

    @field_validator("waypoint_targets")
    @classmethod
    def _check_waypoint_targets(cls, value: str) -> str:
        for entry in _csv(value):
            parse_waypoint_target(entry)  # a ValueError names the bad entry
        return value

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: str) -> str:
        parse_alias_setting(value)  # a ValueError names the bad item
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def alias_list(self) -> list[Alias]:
        return parse_alias_setting(self.aliases)

    def waypoint_workload_list(self) -> list[str]:
        """`name` or `namespace/name` entries of `waypoint_workloads`."""
        return _csv(self.waypoint_workloads)

    def waypoint_target_list(self) -> list[str]:
        return _csv(self.waypoint_targets)

    def prometheus_dedupe_label_list(self) -> list[str]:
        return _csv(self.prometheus_dedupe_labels)

    def ztunnel_target_list(self) -> list[str]:
        return _csv(self.ztunnel_targets)

    def cors_origin_list(self) -> list[str]:
        return _csv(self.cors_origins)


def parse_waypoint_target(entry: str) -> tuple[str, str]:
    """(url, waypoint) of a `waypoint_targets` entry: `<url>` (waypoint "") or
    `<namespace>/<waypoint>=<url>`."""
    name, sep, url = entry.partition("=")
    if not sep or "://" in name:
        return entry, ""
    namespace, slash, waypoint = name.strip().partition("/")
    if not (slash and namespace and waypoint and "/" not in waypoint and url.strip()):
        raise ValueError(
            f"waypoint target {entry!r}: expected <url> or <namespace>/<waypoint>=<url>"
        )
    return url.strip(), f"{namespace}/{waypoint}"
