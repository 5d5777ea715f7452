"""store_writers and store_changes: a counter per writing process and the bucket range each of
its write transactions changed, checked by the read side's window cache

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


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


def downgrade() -> None:
    op.drop_index("ix_store_changes_changed_s", table_name="store_changes")
    op.drop_table("store_changes")
    op.drop_table("store_writers")
