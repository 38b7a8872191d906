"""Stream positions: the input-topic position of each source's checkpoint (distributed mode).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

One row per (tenant, source): topic id, partition and offset of the last input record
applied to the stored checkpoint, and the last producer sequence seen (nqp.stream.positions).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_positions",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("input_topic_id", sa.String(length=64), nullable=False),
        sa.Column("input_partition", sa.Integer(), nullable=False),
        sa.Column("input_offset", sa.BigInteger(), nullable=False),
        sa.Column("producer_sequence", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_stream_positions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "source", name=op.f("pk_stream_positions")),
    )


def downgrade() -> None:
    op.drop_table("stream_positions")
