"""L4 bytes by zone path per edge: `l4_zone_bytes` ("<side>|<client zone>|<waypoint zone>|
<server zone>|<x|e>" -> bytes both ways, app/edge/zones.py) on edge_buckets and edge_rollups

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = ("edge_buckets", "edge_rollups")
_COLUMN = "l4_zone_bytes"  # frozen copy of app/edge/fields.py at this revision


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(_COLUMN, sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(_COLUMN)
