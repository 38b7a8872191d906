"""Predictions on SQLite: no unique index on ``prediction_id``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Since 0004 the unique key ``(tenant_id, source, ts, sequence)`` refuses a stored point, and
``prediction_id`` is a hash of exactly those columns. On SQLite its own unique index goes
(the table is rebuilt, copied, once): its random keys made it the costliest index a stored
row updated (``bench/store.py``, figure ``prediction_insert``). A SQLite database has one
process, stopped for the upgrade. On PostgreSQL it stays for this release: processes of the
previous release, running beside the new ones during a rolling upgrade, name it in their
inserts (``ON CONFLICT (prediction_id)``). Nothing changes on PostgreSQL here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("predictions") as batch:
            batch.drop_constraint("uq_predictions_prediction_id", type_="unique")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("predictions") as batch:
            batch.create_unique_constraint("uq_predictions_prediction_id", ["prediction_id"])
