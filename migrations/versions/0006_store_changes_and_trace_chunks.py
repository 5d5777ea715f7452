"""store_writers and store_changes: a counter per writing process and the bucket range each of
its write transactions changed, checked by the read side's window cache; trace_chunks: one row
per trace per flush with its hops encoded, instead of trace_hops' row per hop

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# TraceHop's fields after trace_id, as app/store/traces.py encodes them (frozen here: a migration
# must not change when the app does).
_HOP_FIELDS = (
    "span_id",
    "parent_span_id",
    "source",
    "target",
    "via",
    "start_ns",
    "end_ns",
    "duration_ms",
    "status_code",
    "error_cause",
    "provenance",
)
_COPY_ROWS = 20_000


def _trace_hops_columns() -> list[sa.Column[Any]]:
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "store_writers",
        sa.Column("writer_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("started_s", sa.BigInteger(), nullable=False),
        sa.Column("updated_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("writer_id", name="pk_store_writers"),
    )
    op.create_table(
        "store_changes",
        sa.Column("writer_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("first_bucket_s", sa.BigInteger(), nullable=False),
        sa.Column("last_bucket_s", sa.BigInteger(), nullable=False),
        sa.Column("changed_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("writer_id", "seq", name="pk_store_changes"),
    )
    op.create_index("ix_store_changes_changed_s", "store_changes", ["changed_s"])
    chunks = op.create_table(
        "trace_chunks",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("chunk", sa.String(32), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("hops", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "chunk", name="pk_trace_chunks"),
    )
    op.create_index("ix_trace_chunks_end_ns", "trace_chunks", ["end_ns"])
    # Every stored hop moves into one chunk per trace ("0006"), then the per-hop table goes.
    hops = sa.table("trace_hops", *(sa.column(c) for c in ("trace_id", *_HOP_FIELDS)))
    conn = op.get_bind()
    rows = conn.execute(sa.select(hops).order_by(hops.c.trace_id, hops.c.start_ns))
    batch: list[dict[str, Any]] = []
    trace_id, found = None, []
    for row in [*rows, None]:
        if row is None or row.trace_id != trace_id:
            if found:
                batch.append(
                    {
                        "trace_id": trace_id,
                        "chunk": "0006",
                        "start_ns": min(h[5] for h in found),
                        "end_ns": max(h[6] for h in found),
                        "hops": json.dumps(found, separators=(",", ":")),
                    }
                )
            if len(batch) >= _COPY_ROWS or (row is None and batch):
                conn.execute(chunks.insert(), batch)
                batch = []
            if row is None:
                break
            trace_id, found = row.trace_id, []
        found.append([getattr(row, f) for f in _HOP_FIELDS])
    op.drop_index("ix_trace_hops_end_ns", table_name="trace_hops")
    op.drop_table("trace_hops")


def downgrade() -> None:
    hops = op.create_table("trace_hops", *_trace_hops_columns())
    op.create_index("ix_trace_hops_end_ns", "trace_hops", ["end_ns"])
    conn = op.get_bind()
    chunks = sa.table("trace_chunks", sa.column("trace_id"), sa.column("hops"))
    seen: set[tuple[str, str]] = set()
    batch: list[dict[str, Any]] = []
    for row in conn.execute(sa.select(chunks)):
        for values in json.loads(row.hops):
            hop = dict(zip(_HOP_FIELDS, values, strict=False), trace_id=row.trace_id)
            if (row.trace_id, hop["span_id"]) in seen:
                continue
            seen.add((row.trace_id, hop["span_id"]))
            batch.append(hop)
        if len(batch) >= _COPY_ROWS:
            conn.execute(hops.insert(), batch)
            batch = []
    if batch:
        conn.execute(hops.insert(), batch)
    op.drop_index("ix_trace_chunks_end_ns", table_name="trace_chunks")
    op.drop_table("trace_chunks")
    op.drop_index("ix_store_changes_changed_s", table_name="store_changes")
    op.drop_table("store_changes")
    op.drop_table("store_writers")
