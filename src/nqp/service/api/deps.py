"""FastAPI dependencies: the runtime, a database session, the authenticated caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.service.errors import ApiError
from nqp.service.runtime import Runtime
from nqp.service.security import KEY_PREFIX, Principal, Role, TokenError, verify_token
from nqp.service.waits import MAX_WAIT_S

__all__ = [
    "AdminKey",
    "CurrentKey",
    "DeveloperKey",
    "RuntimeDep",
    "SessionDep",
    "WaitQuery",
    "authenticate",
    "caller",
    "require",
]


async def get_runtime(request: Request) -> Runtime:  # async: a sync dependency costs a thread hop
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

#: ``?wait=<s>`` of a batch job's or validation run's status (long polling, ``nqp.service.waits``).
WaitQuery = Annotated[
    float,
    Query(
        ge=0.0,
        le=MAX_WAIT_S,
        description="Seconds to wait for a queued or running job or run to finish before "
        "answering (long polling); 0 answers at once.",
    ),
]


def _bearer(header: str | None) -> str:
    if not header or not header.lower().startswith("bearer "):
        raise ApiError(
            401,
            "Missing credentials: send 'Authorization: Bearer <API key or token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return header[7:].strip()


async def authenticate(runtime: Runtime, credential: str) -> Principal:
    """The principal behind an API key or a JWT (401 when neither is valid)."""
    if credential.startswith(KEY_PREFIX):
        principal = await runtime.principal_for_key(credential)
    else:
        try:
            claims = verify_token(credential, secret=runtime.jwt_secret)
        except TokenError as exc:
            raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        principal = await runtime.principal_for_key_id(claims["sub"], claims["tenant"])
    if principal is None:
        raise ApiError(
            401, "Invalid, revoked or expired credentials.", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


async def caller(
    runtime: Runtime, authorization: str | None, role: Role = Role.VIEWER
) -> Principal:
    """The caller behind an ``Authorization`` header, within its limits, with ``role`` or above.

    401 without valid credentials, 429 with ``Retry-After`` over the key's rate limit or
    quota, 403 below ``role``.
    """
    principal = await authenticate(runtime, _bearer(authorization))
    allowed, retry_after = await runtime.check_limits(principal)
    if not allowed:
        raise ApiError(
            429,
            "Rate limit or daily quota exceeded for this key.",
            headers={"Retry-After": f"{max(1, round(retry_after))}"},
        )
    if not principal.role.allows(role):
        raise ApiError(403, f"This action needs the '{role.value}' role or above.")
    return principal


async def current_key(request: Request, runtime: RuntimeDep) -> Principal:
    return await caller(runtime, request.headers.get("authorization"))


CurrentKey = Annotated[Principal, Depends(current_key)]


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting keys of ``role`` or above (403 otherwise)."""

    async def dependency(request: Request, runtime: RuntimeDep) -> Principal:
        return await caller(runtime, request.headers.get("authorization"), role)

    return dependency


DeveloperKey = Annotated[Principal, Depends(require(Role.DEVELOPER))]
AdminKey = Annotated[Principal, Depends(require(Role.ADMIN))]
