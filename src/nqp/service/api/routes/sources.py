"""A source's model state and statistics; erasure."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from nqp import store
from nqp.service.api.deps import CurrentKey, DeveloperKey, RuntimeDep, SessionDep
from nqp.service.errors import ApiError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])


@router.get("")
async def list_sources(principal: CurrentKey, runtime: RuntimeDep, session: SessionDep) -> dict:
    """Names of the tenant's sources (in memory or checkpointed)."""
    prefix = f"{principal.tenant_id}/"
    live = {s[len(prefix) :] for s in await runtime.live_sources() if s.startswith(prefix)}
    stored = set(await store.list_sources(session, tenant_id=principal.tenant_id))
    return {"sources": sorted(live | stored)}


@router.get("/{source}")
async def get_source(source: str, principal: CurrentKey, runtime: RuntimeDep) -> dict[str, Any]:
    """Statistics of one source: points, outcomes, realised hit rates, timing."""
    summary = await runtime.source_summary(principal.tenant_id, source)
    if summary is None:
        raise ApiError(404, f"No source {source!r}.")
    out = dataclasses.asdict(summary)
    out["source"] = source
    return out


@router.delete("/{source}", status_code=204)
async def erase_source(
    source: str, principal: DeveloperKey, runtime: RuntimeDep, session: SessionDep
) -> None:
    """Erase the source's state, predictions, checkpoint and jobs."""
    if not await runtime.erase_source(principal.tenant_id, source):
        raise ApiError(404, f"No source {source!r}.")
    await store.record_event(
        session,
        tenant_id=principal.tenant_id,
        actor_key_id=principal.key_id,
        action="source.erase",
        target=source,
        details={},
    )
    await session.commit()
