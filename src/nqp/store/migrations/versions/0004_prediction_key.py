"""Predictions: a unique key (tenant_id, source, ts, sequence) in place of the source index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

A prediction's ``prediction_id`` is a hash of its tenant's source, sequence number and
timestamp, so those columns are its unique key themselves: inserts now skip a stored key
(``ON CONFLICT (tenant_id, source, ts, sequence)``). The index on ``(tenant_id, source,
ts)`` is replaced by the unique one, which serves the same queries. Existing rows satisfy
the key (equal keys would be equal ids). The unique ``prediction_id`` stays: the previous
release's inserts name it (``ON CONFLICT (prediction_id)``) while both run side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_predictions_tenant_source_ts_sequence",
        "predictions",
        ["tenant_id", "source", "ts", "sequence"],
        unique=True,
    )
    op.drop_index("ix_predictions_tenant_source_ts", table_name="predictions")


def downgrade() -> None:
    op.create_index("ix_predictions_tenant_source_ts", "predictions", ["tenant_id", "source", "ts"])
    op.drop_index("uq_predictions_tenant_source_ts_sequence", table_name="predictions")
