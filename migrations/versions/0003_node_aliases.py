"""node aliases: other names (Kubernetes Service, OTel service.name, workload, pod) of a canonical
service, learned from the data and from Kubernetes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_aliases",
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("alias", sa.String(253), nullable=False),
        sa.Column("service", sa.String(253), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("updated_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "alias", name="pk_node_aliases"),
    )
    op.create_index("ix_node_aliases_service", "node_aliases", ["namespace", "service"])


def downgrade() -> None:
    op.drop_index("ix_node_aliases_service", table_name="node_aliases")
    op.drop_table("node_aliases")
