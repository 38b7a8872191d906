"""Database URLs, engines, sessions and migrations.

Settings give a plain URL (``sqlite:///path/nqp.db`` or ``postgresql://user@host/db``);
:func:`normalize_database_url` turns it into the async driver URL SQLAlchemy needs
(``sqlite+aiosqlite``, ``postgresql+asyncpg``). :func:`make_engine` adds what each backend
needs on connect (SQLite: foreign keys and WAL; PostgreSQL: ``pool_pre_ping``), and
:func:`migrate` runs Alembic's ``upgrade head`` on one connection (Alembic's asyncio
"connection sharing" recipe), so ``nqp migrate`` and the tests run the same code.

Transactions belong to the caller: the data functions in :mod:`nqp.store` flush but never
commit, so one request is one transaction (``async with sessionmaker.begin() as session``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from nqp.store.errors import SchemaNewerError

__all__ = [
    "alembic_config",
    "make_engine",
    "make_sessionmaker",
    "migrate",
    "migrate_sync",
    "migrations_path",
    "normalize_database_url",
]

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

#: Key of the PostgreSQL advisory lock that serialises concurrent ``migrate`` calls
#: (several gateways starting at once); any constant works, this is "nqp" in ASCII.
_MIGRATE_LOCK_KEY = 0x6E7170
#: Alembic's ``context`` is one module-global proxy, so migrations in one process run one
#: at a time (whatever thread or event loop they come from).
_MIGRATE_LOCK = threading.Lock()

log = logging.getLogger(__name__)


def normalize_database_url(url: str) -> str:
    """Return the async-driver form of a database URL.

    Parameters
    ----------
    url : str
        ``sqlite:///path`` / ``sqlite+aiosqlite:///path`` or ``postgresql://...`` /
        ``postgres://...`` / ``postgresql+asyncpg://...``.

    Returns
    -------
    str
        The URL with the scheme replaced by ``sqlite+aiosqlite`` or ``postgresql+asyncpg``;
        everything after the scheme (credentials, host, path, query) is kept verbatim.

    Raises
    ------
    ValueError
        If the scheme is not one of the above; the message names the scheme.

    Examples
    --------
    >>> normalize_database_url("sqlite:///data/nqp.db")
    'sqlite+aiosqlite:///data/nqp.db'
    >>> normalize_database_url("postgres://nqp@db:5432/nqp")
    'postgresql+asyncpg://nqp@db:5432/nqp'
    >>> normalize_database_url("mysql://x@y/z")
    Traceback (most recent call last):
    ...
    ValueError: Unsupported database URL scheme 'mysql'; expected one of ...
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"Not a database URL (no '://'): {url!r}")
    driver = _ASYNC_DRIVERS.get(scheme.lower())
    if driver is None:
        expected = ", ".join(sorted(_ASYNC_DRIVERS))
        raise ValueError(f"Unsupported database URL scheme {scheme!r}; expected one of {expected}.")
    return f"{driver}://{rest}"


# Page cache per SQLite connection, in KiB (SQLite's default: 2,000). Pages are allocated
# as they are used, so only a connection that touches many pages (the prediction writer)
# grows to it. Storing a prediction costs CPU that grows with the table, as index pages fall
# out of the cache: in the 12th round of 50,000 rows 20.0 µs a row with the default and 16.1
# with 64 MiB, in the first 9.8 and 8.1 (``bench/store.py``, figure ``prediction_insert``).
SQLITE_CACHE_KIB = 65_536


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
            # switching needs the database to itself, and SQLite answers "locked" at once
            # (no busy wait) while another process migrates it: retry for up to 30 s
            for attempt in range(300):
                try:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    break
                except Exception as exc:
                    if "locked" not in str(exc) or attempt == 299:
                        raise
                    time.sleep(0.1)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an :class:`~sqlalchemy.ext.asyncio.AsyncEngine` for ``url``.

    Parameters
    ----------
    url : str
        Any URL :func:`normalize_database_url` accepts.
    **kwargs
        Passed to :func:`sqlalchemy.ext.asyncio.create_async_engine` (e.g. ``poolclass``,
        ``pool_size``, ``echo``).

    Returns
    -------
    AsyncEngine
        SQLite: every new connection runs ``PRAGMA foreign_keys=ON``, ``journal_mode=WAL``
        (readers never block the writer), ``synchronous=NORMAL`` and a page cache of
        :data:`SQLITE_CACHE_KIB`. PostgreSQL:
        ``pool_pre_ping=True`` unless given, so a restarted server costs one retry, not an
        error. JSON columns are written with orjson (NaN becomes null).
    """
    async_url = normalize_database_url(url)
    backend = make_url(async_url).get_backend_name()
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("json_serializer", _json_dumps)  # JSON columns: orjson, ~10x stdlib
    engine = create_async_engine(async_url, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory for ``engine`` (``expire_on_commit=False``).

    Objects stay readable after commit, so a route can commit and then serialise what it
    wrote without another round trip.
    """
    return async_sessionmaker(engine, expire_on_commit=False)


def migrations_path() -> Path:
    """Directory of the Alembic scripts shipped inside the package (``nqp/store/migrations``)."""
    return Path(str(files("nqp.store").joinpath("migrations")))


def alembic_config(url: str | None = None) -> Config:
    """Alembic :class:`~alembic.config.Config` for NQP's migrations, without an ini file.

    Parameters
    ----------
    url : str or None
        Database URL (any form :func:`normalize_database_url` accepts) for ``env.py`` to
        connect to when no connection is handed over. Useful for Alembic commands run by
        hand, e.g. ``command.revision(alembic_config(url), "add x", autogenerate=True)``.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.attributes["url"] = url
    return config


def _sqlite_autocommit_driver(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, emits BEGIN


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _migration_engine(url: str) -> AsyncEngine:
    """An engine whose transactions serialise migrations across processes.

    On SQLite the driver's own transaction handling would run DDL in autocommit mode; here
    each transaction is ``BEGIN IMMEDIATE`` (takes the write lock at once, so a second
    process waits for the first, up to 60 s) and DDL is transactional.
    """
    if make_url(normalize_database_url(url)).get_backend_name() != "sqlite":
        return make_engine(url, poolclass=NullPool)
    engine = make_engine(url, poolclass=NullPool, connect_args={"timeout": 60.0})
    event.listen(engine.sync_engine, "connect", _sqlite_autocommit_driver)
    event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _upgrade(connection: Connection, config: Config, revision: str, newer_ok: bool) -> None:
    if connection.dialect.name == "postgresql":
        # Released at commit; a second process waits, then finds nothing left to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
    script = ScriptDirectory.from_config(config)
    known = {rev.revision for rev in script.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    newer = sorted(set(current) - known)
    if newer:
        message = (
            f"The database schema is at revision {', '.join(newer)}, newer than this build "
            f"knows (its head: {script.get_current_head()}): a newer release migrated it."
        )
        if not newer_ok:
            raise SchemaNewerError(
                f"{message} Migrate it with that release, or downgrade it with that "
                "release before running this one on it."
            )
        # A newer release keeps the previous one working on its schema (docs/operations.md,
        # Upgrades): a gateway or worker of this build runs on it unmigrated.
        log.warning("%s Running on it without migrating.", message)
        return
    config.attributes["connection"] = connection
    earlier = {rev.revision for rev in script.iterate_revisions(current, "base")} - set(current)
    if revision == "base" or revision in earlier:  # back (before running an older build)
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


async def migrate(url: str, revision: str = "head", *, newer_ok: bool = False) -> None:
    """Bring the database at ``url`` to ``revision`` (Alembic ``upgrade``, or ``downgrade``).

    Runs in one transaction on one connection; running it again is a no-op. Concurrent
    calls (several gateways starting) run one after the other: a transaction-scoped
    advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, a lock within a process.

    Parameters
    ----------
    url : str
        Database URL, plain or async form.
    revision : str, default="head"
        Target revision; one before the database's (or ``"base"``) downgrades to it.
    newer_ok : bool, default=False
        What to do when a newer release has migrated the database past this build's
        migrations: leave it as it is with a logged warning (a process of the previous
        release starting during a rollout or after a rollback), or raise.

    Raises
    ------
    SchemaNewerError
        The database is at a revision this build does not know, and not ``newer_ok``.
    """
    while not _MIGRATE_LOCK.acquire(blocking=False):  # polls: never blocks the event loop
        await asyncio.sleep(0.01)
    try:
        engine = _migration_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade, alembic_config(url), revision, newer_ok)
        finally:
            await engine.dispose()
    finally:
        _MIGRATE_LOCK.release()


def migrate_sync(url: str, revision: str = "head", *, newer_ok: bool = False) -> None:
    """Blocking :func:`migrate` for the CLI (``nqp migrate``); not for use inside an event loop."""
    asyncio.run(migrate(url, revision, newer_ok=newer_ok))
