"""edge roll-ups: coarse buckets (10 min, 1 h) kept beside edge_buckets, backfilled from them

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copy of app.store.edges.ROLLUP_SPANS_S at this revision (the backfill must not change
# when the application's constant does).
SPANS_S = (600, 3600)
_L4 = [
    f"l4_{side}_{name}"
    for side in ("src", "dst")
    for name in (
        "connections_opened",
        "connections_closed",
        "bytes_sent",
        "bytes_received",
        "mtls_connections",
    )
]
_COUNTERS = [
    "l7_requests",
    "l7_errors",
    "l7_latency_sum_ms",
    "l7_unpaired",
    "l7_late",
    "l7_evicted",
    *_L4,
]
_MAPS = ["l7_errors_by_cause", "l7_status_codes", "l7_provenance", "l7_candidates"]


def _edge_columns() -> list[sa.Column[Any]]:
    return [
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
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _L4),
        sa.Column("l4_principals", sa.JSON(), nullable=False),
    ]


def upgrade() -> None:
    rollups = op.create_table(
        "edge_rollups",
        sa.Column("span_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        *_edge_columns(),
        sa.PrimaryKeyConstraint(
            "span_s", "bucket_start_s", "level", "source", "target", name="pk_edge_rollups"
        ),
    )
    op.create_index(
        "ix_edge_rollups_source", "edge_rollups", ["level", "source", "span_s", "bucket_start_s"]
    )
    op.create_index(
        "ix_edge_rollups_target", "edge_rollups", ["level", "target", "span_s", "bucket_start_s"]
    )
    _backfill(rollups)


def downgrade() -> None:
    op.drop_index("ix_edge_rollups_target", table_name="edge_rollups")
    op.drop_index("ix_edge_rollups_source", table_name="edge_rollups")
    op.drop_table("edge_rollups")


# ---- backfill: the roll-ups of the edge buckets already stored (self-contained on purpose) ----
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _sketch_add(into: dict[int, int], zero: list[int], data: bytes | None) -> None:
    """Add a stored latency sketch (app/correlate/sketch.py format, version 1) to bins."""
    if not data:
        return
    if data[0] != 1:
        raise ValueError("unknown latency sketch version in edge_buckets")
    z, pos = _varint(data, 1)
    n, pos = _varint(data, pos)
    zero[0] += z
    key = 0
    for _ in range(n):
        delta, pos = _varint(data, pos)
        count, pos = _varint(data, pos)
        key += (delta >> 1) if not delta & 1 else -((delta + 1) >> 1)
        into[key] = into.get(key, 0) + count


def _sketch_bytes(bins: dict[int, int], zero: int) -> bytes | None:
    if not bins and not zero:
        return None
    out = bytearray([1])
    _put_varint(out, zero)
    _put_varint(out, len(bins))
    previous = 0
    for k in sorted(bins):
        d = k - previous
        _put_varint(out, (d << 1) if d >= 0 else ((-d << 1) - 1))
        _put_varint(out, bins[k])
        previous = k
    return bytes(out)


def _map(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # JSON read as text by a reflected table on some drivers
        value = json.loads(value)
    return dict(value or {})


def _backfill(rollups: sa.Table) -> None:
    conn = op.get_bind()
    buckets = sa.Table("edge_buckets", sa.MetaData(), autoload_with=conn)
    for span in SPANS_S:
        groups: dict[tuple[int, str, str, str], dict[str, Any]] = {}
        result = conn.execute(
            sa.select(buckets)
            .order_by(buckets.c.level, buckets.c.source, buckets.c.target)
            .execution_options(yield_per=5000)
        )
        for row in result:
            key = (row.bucket_start_s // span * span, row.level, row.source, row.target)
            g = groups.get(key)
            if g is None:
                g = groups[key] = {
                    "protocol": "",
                    "via": "",
                    "bins": {},
                    "zero": [0],
                    "principals": set(),
                    **dict.fromkeys(_COUNTERS, 0),
                    **{m: {} for m in _MAPS},
                }
            g["protocol"] = max(g["protocol"], row.protocol)
            g["via"] = max(g["via"], row.via)
            for c in _COUNTERS:
                g[c] += getattr(row, c)
            for m in _MAPS:
                for k, v in _map(getattr(row, m)).items():
                    g[m][k] = g[m].get(k, 0) + v
            _sketch_add(g["bins"], g["zero"], row.l7_latency_sketch)
            principals = row.l4_principals
            if isinstance(principals, str):
                principals = json.loads(principals)
            g["principals"].update(principals or ())
            if len(groups) >= 20_000:
                _flush(conn, rollups, span, groups, keep=key)
        _flush(conn, rollups, span, groups, keep=None)


def _flush(
    conn: Any,
    rollups: sa.Table,
    span: int,
    groups: dict[tuple[int, str, str, str], dict[str, Any]],
    keep: tuple[int, str, str, str] | None,
) -> None:
    """Insert finished groups. Rows come ordered by edge, so only the current edge's groups may
    still grow: `keep` names a group of it, and every group of that edge stays."""
    rows = []
    for key in [k for k in groups if keep is None or k[1:] != keep[1:]]:
        g = groups.pop(key)
        rows.append(
            {
                "span_s": span,
                "bucket_start_s": key[0],
                "level": key[1],
                "source": key[2],
                "target": key[3],
                "protocol": g["protocol"],
                "via": g["via"],
                **{c: g[c] for c in _COUNTERS},
                **{m: g[m] for m in _MAPS},
                "l7_latency_sketch": _sketch_bytes(g["bins"], g["zero"][0]),
                "l4_principals": sorted(g["principals"]),
            }
        )
    for i in range(0, len(rows), 1000):
        conn.execute(sa.insert(rollups), rows[i : i + 1000])
