"""SQLAlchemy Core tables. Changing one needs an Alembic migration in migrations/versions/."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(512), primary_key=True),  # "namespace/name"
    Column("level", String(16), primary_key=True),  # service | workload
    Column("namespace", String(253), nullable=False),
    Column("name", String(253), nullable=False),
    Column(
        "kind", String(16), nullable=False
    ),  # service | workload | waypoint | external | unknown
    Column("service", String(512), nullable=False, default=""),  # for workloads: their service id
    Column("principal", String(512), nullable=False, default=""),
    Column("first_seen_s", BigInteger, nullable=False),
    Column("last_seen_s", BigInteger, nullable=False),
)


def _edge_columns() -> list[Column[Any]]:
    """The two evidence layers of DESIGN.md: columns shared by `edge_buckets` and `edge_rollups`.
    Counters are additive; JSON maps and the sketch are merged read-modify-write under a row lock."""
    return [
        Column("protocol", String(16), nullable=False, default=""),
        Column("via", String(512), nullable=False, default=""),
        # L7
        Column("l7_requests", BigInteger, nullable=False, default=0),
        Column("l7_errors", BigInteger, nullable=False, default=0),
        Column("l7_errors_by_cause", JSON, nullable=False, default=dict),
        Column("l7_status_codes", JSON, nullable=False, default=dict),
        Column("l7_latency_sum_ms", Float, nullable=False, default=0.0),
        Column("l7_latency_sketch", LargeBinary, nullable=True),
        Column("l7_provenance", JSON, nullable=False, default=dict),  # provenance -> requests
        Column("l7_candidates", JSON, nullable=False, default=dict),  # ambiguous source -> shares
        Column("l7_unpaired", BigInteger, nullable=False, default=0),
        Column("l7_late", BigInteger, nullable=False, default=0),
        Column("l7_evicted", BigInteger, nullable=False, default=0),
        # L4 per reporter: src_ from the client's ztunnel, dst_ from the server's (see
        # correlate/buckets.py: readers use one reporter, never the sum of both).
        *(
            Column(f"l4_{side}_{name}", BigInteger, nullable=False, default=0)
            for side in ("src", "dst")
            for name in (
                "connections_opened",
                "connections_closed",
                "bytes_sent",
                "bytes_received",
                "mtls_connections",
            )
        ),
        Column("l4_principals", JSON, nullable=False, default=list),
    ]


# One row per (bucket, level, source, target).
edge_buckets = Table(
    "edge_buckets",
    metadata,
    Column("bucket_start_s", BigInteger, primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("source", String(512), primary_key=True),
    Column("target", String(512), primary_key=True),
    *_edge_columns(),
    Index("ix_edge_buckets_source", "level", "source", "bucket_start_s"),
    Index("ix_edge_buckets_target", "level", "target", "bucket_start_s"),
)

# Roll-ups: per (span, coarse bucket, level, source, target) the exact merge of the edge_buckets
# rows whose start lies in [bucket_start_s, bucket_start_s + span_s). Written by the same
# transaction as those rows (store/edges.py), additively, so replicas keep them equal to the sum.
edge_rollups = Table(
    "edge_rollups",
    metadata,
    Column("span_s", Integer, primary_key=True),
    Column("bucket_start_s", BigInteger, primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("source", String(512), primary_key=True),
    Column("target", String(512), primary_key=True),
    *_edge_columns(),
    Index("ix_edge_rollups_source", "level", "source", "span_s", "bucket_start_s"),
    Index("ix_edge_rollups_target", "level", "target", "span_s", "bucket_start_s"),
)

exemplars = Table(
    "exemplars",
    metadata,
    Column("bucket_start_s", BigInteger, primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("source", String(512), primary_key=True),
    Column("target", String(512), primary_key=True),
    Column("kind", String(16), primary_key=True),  # slowest | failed
    Column("rank", Integer, primary_key=True),
    Column("trace_id", String(32), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("status_code", String(32), nullable=False, default=""),
)

trace_hops = Table(
    "trace_hops",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16), nullable=False, default=""),
    Column("source", String(512), nullable=False),
    Column("target", String(512), nullable=False),
    Column("via", String(512), nullable=False, default=""),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", String(32), nullable=False, default=""),
    Column("error_cause", String(32), nullable=False, default=""),
    Column("provenance", String(32), nullable=False, default=""),
    Index("ix_trace_hops_end_ns", "end_ns"),
)
