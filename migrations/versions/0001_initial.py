"""initial schema: nodes, edge buckets, exemplars, trace hops

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(512), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("service", sa.String(512), nullable=False),
        sa.Column("principal", sa.String(512), nullable=False),
        sa.Column("first_seen_s", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", "level", name="pk_nodes"),
    )
    op.create_table(
        "edge_buckets",
        sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("via", sa.String(512), nullable=False),
        sa.Column("l7_requests", sa.BigInteger(), nullable=False),
        sa.Column("l7_errors", sa.BigInteger(), nullable=False),
        sa.Column("l7_errors_by_cause", sa.JSON(), nullable=False),
        sa.Column("l7_status_codes", sa.JSON(), nullable=False),
        sa.Column("l7_latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("l7_latency_sketch", sa.LargeBinary(), nullable=True),
        sa.Column("l7_provenance", sa.JSON(), nullable=False),
        sa.Column("l7_candidates", sa.JSON(), nullable=False),
        sa.Column("l7_unpaired", sa.BigInteger(), nullable=False),
        sa.Column("l7_late", sa.BigInteger(), nullable=False),
        sa.Column("l7_evicted", sa.BigInteger(), nullable=False),
        sa.Column("l4_src_connections_opened", sa.BigInteger(), nullable=False),
        sa.Column("l4_src_connections_closed", sa.BigInteger(), nullable=False),
        sa.Column("l4_src_bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("l4_src_bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("l4_src_mtls_connections", sa.BigInteger(), nullable=False),
        sa.Column("l4_dst_connections_opened", sa.BigInteger(), nullable=False),
        sa.Column("l4_dst_connections_closed", sa.BigInteger(), nullable=False),
        sa.Column("l4_dst_bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("l4_dst_bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("l4_dst_mtls_connections", sa.BigInteger(), nullable=False),
        sa.Column("l4_principals", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("bucket_start_s", "level", "source", "target", name="pk_edge_buckets"),
    )
    op.create_index("ix_edge_buckets_source", "edge_buckets", ["level", "source", "bucket_start_s"])
    op.create_index("ix_edge_buckets_target", "edge_buckets", ["level", "target", "bucket_start_s"])
    op.create_table(
        "exemplars",
        sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket_start_s", "level", "source", "target", "kind", "rank", name="pk_exemplars"
        ),
    )
    op.create_table(
        "trace_hops",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("via", sa.String(512), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.String(32), nullable=False),
        sa.Column("error_cause", sa.String(32), nullable=False),
        sa.Column("provenance", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name="pk_trace_hops"),
    )
    op.create_index("ix_trace_hops_end_ns", "trace_hops", ["end_ns"])


def downgrade() -> None:
    op.drop_index("ix_trace_hops_end_ns", table_name="trace_hops")
    op.drop_table("trace_hops")
    op.drop_table("exemplars")
    op.drop_index("ix_edge_buckets_target", table_name="edge_buckets")
    op.drop_index("ix_edge_buckets_source", table_name="edge_buckets")
    op.drop_table("edge_buckets")
    op.drop_table("nodes")
