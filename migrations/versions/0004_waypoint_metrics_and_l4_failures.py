"""waypoint request metrics (unsampled L7) and L4 failures per edge: `l7m_*` columns, per-side
`connections_failed`, the `sole` side (`l4_one_*`: traffic only one ztunnel reports) and
`l4_failures` ("<side>/<flag>" -> connections), on edge_buckets and edge_rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = ("edge_buckets", "edge_rollups")
# Frozen copy of the columns this revision adds (app/edge/fields.py at this revision).
_L4_ONE = [
    f"l4_one_{name}"
    for name in (
        "connections_opened",
        "connections_closed",
        "bytes_sent",
        "bytes_received",
        "mtls_connections",
        "connections_failed",
    )
]
_INTS = [
    "l4_src_connections_failed",
    "l4_dst_connections_failed",
    *_L4_ONE,
    "l7m_requests",
    "l7m_errors",
    "l7m_bytes_sent",
    "l7m_bytes_received",
]
_MAPS = ["l4_failures", "l7m_errors_by_cause", "l7m_status_codes", "l7m_latency_buckets"]


def _columns() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(c, sa.BigInteger(), nullable=False, server_default="0") for c in _INTS),
        sa.Column("l7m_latency_sum_ms", sa.Float(), nullable=False, server_default="0"),
        *(sa.Column(c, sa.JSON(), nullable=False, server_default=sa.text("'{}'")) for c in _MAPS),
    ]


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _columns():
                batch.add_column(column)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _columns():
                batch.drop_column(column.name)
