"""applied_batches: ids of the aggregate batches written, recorded in the batch's own
transaction, so a flush retried after a lost COMMIT acknowledgement is not counted twice

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applied_batches",
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("applied_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_applied_batches"),
    )
    op.create_index("ix_applied_batches_applied_s", "applied_batches", ["applied_s"])


def downgrade() -> None:
    op.drop_index("ix_applied_batches_applied_s", table_name="applied_batches")
    op.drop_table("applied_batches")
