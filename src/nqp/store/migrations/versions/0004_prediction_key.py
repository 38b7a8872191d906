"""Predictions: a unique key (tenant_id, source, ts, sequence) in place of two indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

A prediction's ``prediction_id`` is a hash of its tenant's source, sequence number and
timestamp, so those columns are its unique key themselves: inserts now skip a stored key
(``ON CONFLICT (tenant_id, source, ts, sequence)``). The index on ``(tenant_id, source,
ts)`` is replaced by the unique one, which serves the same queries. Existing rows satisfy
the key (equal keys would be equal ids).

On SQLite the unique index on ``prediction_id`` goes too (the table is rebuilt, copied,
once): its random keys made it the costliest index a stored row updated (``bench/store.py``,
figure ``prediction_insert``). A SQLite database has one process, stopped for the upgrade.
On PostgreSQL it stays for this release: processes of the previous release, running beside
the new ones during a rolling upgrade, name it in their inserts (``ON CONFLICT
(prediction_id)``).
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
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("predictions") as batch:
            batch.drop_constraint("uq_predictions_prediction_id", type_="unique")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("predictions") as batch:
            batch.create_unique_constraint("uq_predictions_prediction_id", ["prediction_id"])
    op.create_index("ix_predictions_tenant_source_ts", "predictions", ["tenant_id", "source", "ts"])
    op.drop_index("uq_predictions_tenant_source_ts_sequence", table_name="predictions")
