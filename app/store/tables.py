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

from app.edge.fields import EDGE_FIELDS, EdgeField, Stored

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
    ),  # service | workload | waypoint | external | unknown | overflow
    Column("service", String(512), nullable=False, default=""),  # for workloads: their service id
    Column("principal", String(512), nullable=False, default=""),
    Column("first_seen_s", BigInteger, nullable=False),
    Column("last_seen_s", BigInteger, nullable=False),
)


def _edge_column(f: EdgeField) -> Column[Any]:
    match f.stored:
        case Stored.SHORT_TEXT:
            return Column(f.name, String(16), nullable=False, default="")
        case Stored.NODE_ID:
            return Column(f.name, String(512), nullable=False, default="")
        case Stored.INT:
            return Column(f.name, BigInteger, nullable=False, default=0)
        case Stored.FLOAT:
            return Column(f.name, Float, nullable=False, default=0.0)
        case Stored.JSON_MAP:
            return Column(f.name, JSON, nullable=False, default=dict)
        case Stored.JSON_LIST:
            return Column(f.name, JSON, nullable=False, default=list)
        case Stored.BLOB:
            return Column(f.name, LargeBinary, nullable=True)


def _edge_columns() -> list[Column[Any]]:
    """The two evidence layers of DESIGN.md: columns shared by `edge_buckets` and `edge_rollups`,
    one per declared edge field (app/edge/fields.py), in its order. Counters are additive; JSON
    maps and the sketch are merged read-modify-write under a row lock."""
    return [_edge_column(f) for f in EDGE_FIELDS]


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

# Other names of a canonical service (app/correlate/identity.py): one row per (namespace, alias).
# The stronger source wins a disagreement (setting > kubernetes > ztunnel > span).
node_aliases = Table(
    "node_aliases",
    metadata,
    Column("namespace", String(253), primary_key=True),
    Column("alias", String(253), primary_key=True),
    Column("service", String(253), nullable=False),  # the canonical service, same namespace
    Column("source", String(16), nullable=False),  # span | ztunnel | kubernetes | setting
    Column("priority", Integer, nullable=False),
    Column("updated_s", BigInteger, nullable=False),
    Index("ix_node_aliases_service", "namespace", "service"),
)

# Aggregate batches already written (app/store/writer.py): the id is inserted by the same
# transaction as the batch's rows, so a retry after a COMMIT whose answer was lost is skipped
# instead of counted twice. Rows older than the retention are deleted.
applied_batches = Table(
    "applied_batches",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("applied_s", BigInteger, nullable=False),
    Index("ix_applied_batches_applied_s", "applied_s"),
)

# What the read side's window cache (app/graph/window_cache.py) checks per request: one row per
# writing process, its count of write transactions, bumped by each of them (so the row is locked
# by that process only and its transactions commit in `seq` order) ...
store_writers = Table(
    "store_writers",
    metadata,
    Column("writer_id", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("started_s", BigInteger, nullable=False),  # a row made again (after retention) differs
    Column("updated_s", BigInteger, nullable=False),
)

# ... and per such transaction the range of bucket starts it changed (first > last: none, only
# nodes or aliases), so a cached window the change did not touch stays valid.
store_changes = Table(
    "store_changes",
    metadata,
    Column("writer_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("first_bucket_s", BigInteger, nullable=False),
    Column("last_bucket_s", BigInteger, nullable=False),
    Column("changed_s", BigInteger, nullable=False),
    Index("ix_store_changes_changed_s", "changed_s"),
)
