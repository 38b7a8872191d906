"""Short-lived tokens issued for an API key."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from nqp.service.api.deps import CurrentKey, RuntimeDep
from nqp.service.security import issue_token

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/token")
async def token(runtime: RuntimeDep, principal: CurrentKey) -> TokenPublic:
    """A JWT for the calling key (send it as ``Authorization: Bearer <token>``)."""
    ttl = runtime.settings.service.jwt_ttl_s
    return TokenPublic(
        access_token=issue_token(principal, secret=runtime.jwt_secret, ttl_s=ttl), expires_in=ttl
    )
