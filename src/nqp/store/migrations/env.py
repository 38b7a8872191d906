"""Alembic environment for NQP (asyncio recipe).

:func:`nqp.store.db.migrate` hands over an open connection in
``config.attributes["connection"]`` (Alembic's "connection sharing" recipe, run through
``AsyncConnection.run_sync``). Otherwise the URL comes from ``config.attributes["url"]``, the
``sqlalchemy.url`` option or ``-x url=...``, and this file opens its own async engine.
Imported outside an Alembic command (e.g. by pytest's doctest collection) it does nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from nqp.store.db import make_engine
from nqp.store.models import Base, UTCDateTime

target_metadata = Base.metadata


def _url() -> str:
    config = context.config
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError("no database URL: use nqp.store.migrate(url) or `-x url=...`")
    return str(url)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes UTCDateTime as the plain DDL type it stands for."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL for ``alembic upgrade --sql`` without connecting."""
    from nqp.store.db import normalize_database_url

    _configure(url=normalize_database_url(_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    """Run the migrations Alembic asked for, on the shared connection when given one."""
    if context.is_offline_mode():
        run_migrations_offline()
    elif (shared := context.config.attributes.get("connection")) is not None:
        do_run_migrations(shared)
    else:
        asyncio.run(run_async_migrations())


if getattr(context, "_proxy", None) is not None:  # inside an Alembic command
    run()
