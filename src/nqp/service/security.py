"""API keys and JWTs.

Keys are random (``nqp_`` + 32 url-safe bytes, 256 bits), shown once, and stored only as
their SHA-256 digest: a high-entropy secret needs no slow password hash, and a digest lets
the gateway look a key up in one indexed query. Tokens are short-lived HS256 JWTs issued
for a key; they carry the key id, tenant and role and are re-checked against the key
(revocation and expiry apply to tokens too).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

__all__ = [
    "KEY_PREFIX",
    "Principal",
    "Role",
    "TokenError",
    "generate_key",
    "hash_key",
    "issue_token",
    "verify_token",
]

KEY_PREFIX = "nqp_"
_ISSUER = "nqp"


class Role(StrEnum):
    """What a key may do: viewers read, developers also process, admins also manage."""

    VIEWER = "viewer"
    DEVELOPER = "developer"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        order = [Role.VIEWER, Role.DEVELOPER, Role.ADMIN]
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    key_id: str
    tenant_id: str
    role: Role
    rate_limit_per_s: float | None = None
    daily_quota: int | None = None


class TokenError(ValueError):
    """A JWT is malformed, expired or not ours."""


def generate_key() -> str:
    """A new random API key (shown to its owner once)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256 hex digest."""
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(principal: Principal, *, secret: str, ttl_s: int, now: float | None = None) -> str:
    """A signed JWT for ``principal`` valid for ``ttl_s`` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": _ISSUER,
        "sub": principal.key_id,
        "tenant": principal.tenant_id,
        "role": principal.role.value,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(token: str, *, secret: str) -> dict[str, str]:
    """The claims of a valid token (``sub`` = key id, ``tenant``, ``role``).

    Raises
    ------
    TokenError
        Expired, badly signed, or malformed.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    if claims.get("role") not in {r.value for r in Role}:
        raise TokenError("invalid token: unknown role")
    return claims
