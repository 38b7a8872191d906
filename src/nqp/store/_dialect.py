"""Backend-specific statement constructors shared by the data modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["dialect_name", "upsert_insert"]


def dialect_name(session: AsyncSession) -> str:
    """``"sqlite"`` or ``"postgresql"``: the backend ``session`` is bound to."""
    return session.get_bind().dialect.name


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An ``INSERT`` supporting ``on_conflict_do_nothing/do_update`` on the session's backend."""
    name = dialect_name(session)
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"nqp.store supports SQLite and PostgreSQL, not {name!r}")
