"""Leases on jobs and validation runs: the running gateway renews ``heartbeat_at``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

With several gateways (distributed mode) none can tell from its own start time which
unfinished work is orphaned; a queued or running row whose lease (``heartbeat_at``, or
``created_at`` before the first renewal) is older than ``service.job_lease_s`` belonged to
a gateway that died and is closed as failed by whichever gateway sweeps next.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("jobs", "validation_runs"):
        op.add_column(table, sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("jobs", "validation_runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("heartbeat_at")
