"""API keys: create (shown once), list, revoke. Admins only, within their tenant."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from nqp import store
from nqp.service.api.deps import AdminKey, RuntimeDep, SessionDep
from nqp.service.errors import ApiError
from nqp.service.security import Role, generate_key, hash_key

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.DEVELOPER
    expires_at: datetime | None = None
    rate_limit_per_s: float | None = Field(None, gt=0, le=1_000_000)
    daily_quota: int | None = Field(None, ge=1, le=2**31 - 1)


class KeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_s: float | None
    daily_quota: int | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown once, store it now.")


def _public(row) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "prefix": row.prefix,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "rate_limit_per_s": row.rate_limit_per_s,
        "daily_quota": row.daily_quota,
    }


@router.post("", status_code=201)
async def create_key(body: KeyCreate, principal: AdminKey, session: SessionDep) -> KeyCreated:
    """Create a key in the caller's tenant."""
    key = generate_key()
    row = await store.create_key(
        session,
        tenant_id=principal.tenant_id,
        name=body.name,
        role=body.role.value,
        key_hash=hash_key(key),
        prefix=key[:8],
        expires_at=body.expires_at,
        rate_limit_per_s=body.rate_limit_per_s,
        daily_quota=body.daily_quota,
    )
    await store.record_event(
        session,
        tenant_id=principal.tenant_id,
        actor_key_id=principal.key_id,
        action="key.create",
        target=row.id,
        details={"name": body.name, "role": body.role.value},
    )
    await session.commit()
    return KeyCreated(**_public(row), key=key)


@router.get("")
async def list_keys(principal: AdminKey, session: SessionDep) -> list[KeyPublic]:
    """The tenant's keys (never the keys themselves)."""
    rows = await store.list_keys(session, tenant_id=principal.tenant_id)
    return [KeyPublic(**_public(r)) for r in rows]


@router.delete("/{key_id}", status_code=204)
async def revoke_key(
    key_id: str, principal: AdminKey, session: SessionDep, runtime: RuntimeDep
) -> None:
    """Revoke a key of the caller's tenant (404 for any other)."""
    if not await store.revoke_key(session, tenant_id=principal.tenant_id, key_id=key_id):
        raise ApiError(404, f"No key {key_id!r} in this tenant.")
    await store.record_event(
        session,
        tenant_id=principal.tenant_id,
        actor_key_id=principal.key_id,
        action="key.revoke",
        target=key_id,
        details={},
    )
    await session.commit()
    runtime.forget_principal(key_id)
