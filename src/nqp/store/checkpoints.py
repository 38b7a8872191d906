"""Source checkpoints: one row of serialised engine state per (tenant, source), upserted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store._dialect import upsert_insert
from nqp.store.models import SourceCheckpoint, utcnow

__all__ = [
    "delete_checkpoint",
    "list_sources",
    "load_checkpoint",
    "load_checkpoints",
    "save_checkpoint",
    "save_checkpoints",
]


async def save_checkpoint(
    session: AsyncSession, *, tenant_id: str, source: str, data: bytes
) -> None:
    """Store ``data`` as the source's checkpoint, replacing any previous one.

    One ``INSERT ... ON CONFLICT (tenant_id, source) DO UPDATE`` on both backends, so
    concurrent savers never fail; the last writer wins.
    """
    await save_checkpoints(session, [(tenant_id, source, data)])


async def save_checkpoints(session: AsyncSession, rows: Iterable[tuple[str, str, bytes]]) -> int:
    """Store many checkpoints at once; return how many.

    ``rows`` are ``(tenant_id, source, data)``, each replacing that source's previous
    checkpoint (at most one row per source: a later duplicate would conflict with the
    earlier one in the same statement). The upsert of :func:`save_checkpoint` is built
    once and executed with every row (the driver's executemany), instead of one statement
    built and sent per source: a periodic or shutdown checkpoint of thousands of sources
    costs the event loop that much less.
    """
    now = utcnow()
    params = [
        {"tenant_id": tenant_id, "source": source, "data": bytes(data), "updated_at": now}
        for tenant_id, source, data in rows
    ]
    if params:
        await session.execute(_upsert(session), params)
    return len(params)


def _upsert(session: AsyncSession) -> Any:
    """``INSERT`` of a checkpoint row, updating ``data`` and ``updated_at`` on conflict."""
    stmt = upsert_insert(session, SourceCheckpoint.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id", "source"],
        set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at},
    )


async def load_checkpoint(session: AsyncSession, *, tenant_id: str, source: str) -> bytes | None:
    """The source's checkpoint bytes, or ``None`` if it has none."""
    data = await session.scalar(
        select(SourceCheckpoint.data).where(
            SourceCheckpoint.tenant_id == tenant_id, SourceCheckpoint.source == source
        )
    )
    return None if data is None else bytes(data)


async def load_checkpoints(
    session: AsyncSession, *, tenant_id: str, sources: Iterable[str] | None = None
) -> dict[str, bytes]:
    """Checkpoints of many sources at once: ``{source: bytes}`` (all of the tenant's when
    ``sources`` is ``None``; sources without a checkpoint are absent)."""
    stmt = select(SourceCheckpoint.source, SourceCheckpoint.data).where(
        SourceCheckpoint.tenant_id == tenant_id
    )
    if sources is None:
        return {source: bytes(data) for source, data in await session.execute(stmt)}
    wanted = list(dict.fromkeys(sources))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), 500):
        chunk = stmt.where(SourceCheckpoint.source.in_(wanted[start : start + 500]))
        found.update((source, bytes(data)) for source, data in await session.execute(chunk))
    return found


async def delete_checkpoint(session: AsyncSession, *, tenant_id: str, source: str) -> bool:
    """Delete the source's checkpoint; ``True`` if there was one."""
    result = await session.execute(
        delete(SourceCheckpoint)
        .where(SourceCheckpoint.tenant_id == tenant_id, SourceCheckpoint.source == source)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_sources(session: AsyncSession, *, tenant_id: str) -> list[str]:
    """The tenant's sources that have a checkpoint, sorted."""
    result = await session.scalars(
        select(SourceCheckpoint.source)
        .where(SourceCheckpoint.tenant_id == tenant_id)
        .order_by(SourceCheckpoint.source)
    )
    return list(result)
