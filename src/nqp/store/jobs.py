"""Batch jobs: create, read and update (tenant-scoped), erase a source's jobs, retention.

A job stores the distinct sources its request mentions (``Job.sources``). Erasing a source
(:func:`delete_jobs_for_source`) deletes every job of that tenant that mentions it, multi-source
jobs included: a job's request and result are one unit, and redacting parts of them would
leave a result that no longer matches its request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store._dialect import upsert_insert
from nqp.store.errors import DuplicateError
from nqp.store.models import FINAL_STATUSES, RUN_STATUSES, Job, ValidationRun, new_id, utcnow

__all__ = [
    "create_job",
    "delete_jobs_before",
    "delete_jobs_for_source",
    "fail_unfinished",
    "get_job",
    "renew_leases",
    "update_job",
]

_UNSET: Any = object()


async def create_job(
    session: AsyncSession,
    *,
    tenant_id: str,
    request: dict[str, Any],
    sources: list[str],
    callback_url: str | None = None,
    job_id: str | None = None,
) -> Job:
    """Insert a queued job and return it.

    Parameters
    ----------
    job_id : str or None
        A client-chosen id (unique per tenant); a new UUID hex when ``None``.
    sources : list of str
        Sources the request mentions (stored de-duplicated, in first-seen order).

    Raises
    ------
    DuplicateError
        If the tenant already has a job with ``job_id``.
    """
    job_id = new_id() if job_id is None else job_id
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "id": job_id,
        "status": "queued",
        "request": request,
        "sources": list(dict.fromkeys(sources)),
        "callback_url": callback_url,
        "created_at": utcnow(),
    }
    stmt = (
        upsert_insert(session, Job.__table__)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
        .returning(Job.__table__.c.id)
    )
    try:
        inserted = (await session.execute(stmt)).scalar_one_or_none()
    except IntegrityError as exc:  # e.g. unknown tenant
        raise ValueError(f"cannot create job for tenant {tenant_id!r}: {exc.orig}") from exc
    if inserted is None:
        raise DuplicateError(f"job {job_id!r} already exists")
    job = await get_job(session, tenant_id=tenant_id, job_id=job_id)
    if job is None:  # pragma: no cover - inserted just above
        raise RuntimeError(f"job {job_id!r} vanished right after its insert")
    return job


async def get_job(session: AsyncSession, *, tenant_id: str, job_id: str) -> Job | None:
    """The tenant's job ``job_id``, or ``None`` (another tenant's job is ``None`` too)."""
    return await session.get(Job, (tenant_id, job_id))


async def update_job(
    session: AsyncSession,
    *,
    tenant_id: str,
    job_id: str,
    status: str | None = None,
    result: dict[str, Any] | None = _UNSET,
    error: str | None = _UNSET,
    callback_status: str | None = _UNSET,
    finished_at: datetime | None = _UNSET,
) -> Job | None:
    """Update the given fields of the tenant's job; ``None`` if there is no such job.

    Fields not passed are left unchanged (passing ``None`` clears a nullable field). When
    ``status`` becomes ``succeeded`` or ``failed`` and ``finished_at`` is not given, it is
    set to now.

    Raises
    ------
    ValueError
        If ``status`` is not one of ``queued``, ``running``, ``succeeded``, ``failed``.
    """
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {status!r}")
    job = await get_job(session, tenant_id=tenant_id, job_id=job_id)
    if job is None:
        return None
    if status is not None:
        job.status = status
        if status in FINAL_STATUSES and finished_at is _UNSET:
            finished_at = utcnow()
    if result is not _UNSET:
        job.result = result
    if error is not _UNSET:
        job.error = error
    if callback_status is not _UNSET:
        job.callback_status = callback_status
    if finished_at is not _UNSET:
        job.finished_at = finished_at
    await session.flush()
    return job


async def delete_jobs_for_source(session: AsyncSession, *, tenant_id: str, source: str) -> int:
    """Delete the tenant's jobs that mention ``source``; return how many.

    Membership is tested in Python over ``(id, sources)`` (portable across backends'
    JSON operators); source erasure is rare and jobs are pruned by :func:`delete_jobs_before`.
    """
    rows = await session.execute(select(Job.id, Job.sources).where(Job.tenant_id == tenant_id))
    ids = [job_id for job_id, sources in rows if source in (sources or ())]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        await session.execute(
            delete(Job)
            .where(Job.tenant_id == tenant_id, Job.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def delete_jobs_before(session: AsyncSession, *, cutoff: datetime) -> int:
    """Delete jobs (all tenants) created before ``cutoff``; return how many (retention)."""
    result = await session.execute(
        delete(Job).where(Job.created_at < cutoff).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def fail_unfinished(
    session: AsyncSession,
    *,
    error: str,
    started_before: datetime | None = None,
    stale_before: datetime | None = None,
) -> tuple[int, int]:
    """Mark orphaned queued/running jobs and validation runs failed with ``error``.

    Work in flight when its gateway died can never finish (only a request summary is
    stored), so it is closed instead of staying "running" forever. Either:

    * ``started_before``: every unfinished row created before it (an embedded gateway at
      start: it is the only gateway, so whatever the previous process left is orphaned);
    * ``stale_before``: every unfinished row whose lease (``heartbeat_at``, or
      ``created_at`` if never renewed, see :func:`renew_leases`) is older (any gateway,
      periodically: live gateways renew the leases of what they run).

    Returns (jobs, validation runs) closed.
    """
    if (started_before is None) == (stale_before is None):
        raise ValueError("fail_unfinished: give exactly one of started_before, stale_before")
    now = utcnow()
    counts = []
    for model in (Job, ValidationRun):
        if started_before is not None:
            orphaned = model.created_at < started_before
        else:
            orphaned = func.coalesce(model.heartbeat_at, model.created_at) < stale_before
        result = await session.execute(
            update(model)
            .where(model.status.in_(("queued", "running")), orphaned)
            .values(status="failed", error=error, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        counts.append(int(result.rowcount))  # type: ignore[attr-defined]
    return counts[0], counts[1]


async def renew_leases(
    session: AsyncSession,
    *,
    jobs: Iterable[tuple[str, str]] = (),
    runs: Iterable[tuple[str, str]] = (),
) -> None:
    """Set ``heartbeat_at`` of the unfinished ``jobs`` and ``runs`` (``(tenant_id, id)``) to now."""
    stamp = utcnow()
    for model, keys in ((Job, list(jobs)), (ValidationRun, list(runs))):
        if not keys:
            continue
        match = or_(*(and_(model.tenant_id == t, model.id == i) for t, i in keys))
        await session.execute(
            update(model)
            .where(match, model.status.in_(("queued", "running")))
            .values(heartbeat_at=stamp)
            .execution_options(synchronize_session=False)
        )
