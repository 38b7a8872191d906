"""Validation runs requested through the API: create, read, update (tenant-scoped)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store.models import FINAL_STATUSES, RUN_STATUSES, ValidationRun, utcnow

__all__ = [
    "create_validation_run",
    "get_validation_run",
    "list_validation_runs",
    "update_validation_run",
]

_UNSET: Any = object()


async def create_validation_run(
    session: AsyncSession, *, tenant_id: str, request: dict[str, Any]
) -> ValidationRun:
    """Insert a queued run for ``request`` and return it (its ``id`` is a new UUID hex)."""
    run = ValidationRun(tenant_id=tenant_id, status="queued", request=request, created_at=utcnow())
    session.add(run)
    await session.flush()
    return run


async def get_validation_run(
    session: AsyncSession, *, tenant_id: str, run_id: str
) -> ValidationRun | None:
    """The tenant's run ``run_id``, or ``None`` (another tenant's run is ``None`` too)."""
    return await session.scalar(
        select(ValidationRun).where(
            ValidationRun.id == run_id, ValidationRun.tenant_id == tenant_id
        )
    )


async def list_validation_runs(
    session: AsyncSession, *, tenant_id: str, limit: int = 20
) -> list[ValidationRun]:
    """The tenant's ``limit`` most recent runs, newest first."""
    rows = await session.scalars(
        select(ValidationRun)
        .where(ValidationRun.tenant_id == tenant_id)
        .order_by(ValidationRun.created_at.desc(), ValidationRun.id.desc())
        .limit(limit)
    )
    return list(rows)


async def update_validation_run(
    session: AsyncSession,
    *,
    tenant_id: str,
    run_id: str,
    status: str | None = None,
    result: dict[str, Any] | None = _UNSET,
    error: str | None = _UNSET,
    finished_at: datetime | None = _UNSET,
) -> ValidationRun | None:
    """Update the given fields of the tenant's run; ``None`` if there is no such run.

    Fields not passed are unchanged; ``finished_at`` defaults to now when ``status``
    becomes ``succeeded`` or ``failed``.

    Raises
    ------
    ValueError
        If ``status`` is not one of ``queued``, ``running``, ``succeeded``, ``failed``.
    """
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {status!r}")
    run = await get_validation_run(session, tenant_id=tenant_id, run_id=run_id)
    if run is None:
        return None
    if status is not None:
        run.status = status
        if status in FINAL_STATUSES and finished_at is _UNSET:
            finished_at = utcnow()
    if result is not _UNSET:
        run.result = result
    if error is not _UNSET:
        run.error = error
    if finished_at is not _UNSET:
        run.finished_at = finished_at
    await session.flush()
    return run
