"""URLs, engines, shipped migrations, and ``migrate`` on empty databases of both backends."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from nqp.store import (
    Base,
    SchemaNewerError,
    alembic_config,
    make_engine,
    migrate,
    migrate_sync,
    migrations_path,
)
from nqp.store.db import SQLITE_CACHE_KIB, normalize_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///nqp.db", "sqlite+aiosqlite:///nqp.db"),
        ("sqlite:////abs/path/nqp.db", "sqlite+aiosqlite:////abs/path/nqp.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p%40ss@h:5432/db", "postgresql+asyncpg://u:p%40ss@h:5432/db"),
        ("postgres://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?sslmode=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("PostgreSQL://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_normalize_database_url(url, expected):
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize("scheme", ["mysql", "postgresql+psycopg2", "sqlite+pysqlite", "http"])
def test_normalize_database_url_names_unsupported_scheme(scheme):
    with pytest.raises(ValueError, match=re.escape(f"'{scheme}'")):
        normalize_database_url(f"{scheme}://user@host/db")


def test_normalize_database_url_rejects_non_url():
    with pytest.raises(ValueError, match="no '://'"):
        normalize_database_url("nqp.db")


async def test_sqlite_engine_enables_foreign_keys_wal_and_cache(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            cache = (await conn.execute(text("PRAGMA cache_size"))).scalar_one()
            assert cache == -SQLITE_CACHE_KIB  # negative: KiB, not pages
    finally:
        await engine.dispose()


def test_postgresql_engine_pre_pings():
    engine = make_engine("postgresql://u@127.0.0.1:1/db")  # no connection is made here
    assert engine.dialect.driver == "asyncpg"
    assert engine.sync_engine.pool._pre_ping is True


def test_migrations_ship_inside_the_package():
    root = files("nqp.store").joinpath("migrations")
    for name in ("env.py", "script.py.mako"):
        assert root.joinpath(name).is_file(), name
    versions = sorted(p.name for p in root.joinpath("versions").iterdir() if p.name.endswith(".py"))
    assert versions == [
        "0001_initial.py",
        "0002_stream_positions.py",
        "0003_job_leases.py",
        "0004_prediction_key.py",
        "0005_sqlite_prediction_id.py",
    ]
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.py", v) for v in versions)  # <rev>_<slug>.py
    assert migrations_path() == Path(str(root))
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == ["0005"]
    assert [rev.revision for rev in script.walk_revisions()] == [
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ]


async def _admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def empty_db_url(request, tmp_path) -> Iterator[str]:
    """A brand-new, empty database (not the shared migrated one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    parts = urlsplit(request.getfixturevalue("postgres_url"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = f"nqp_fresh_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _schema(conn: Connection) -> dict:
    insp = inspect(conn)
    return {
        t: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
            sorted(ix["name"] for ix in insp.get_indexes(t)),
            sorted(str(uq["name"]) for uq in insp.get_unique_constraints(t)),
            sorted(str(fk["name"]) for fk in insp.get_foreign_keys(t)),
        )
        for t in insp.get_table_names()
    }


def _diffs(conn: Connection) -> list:
    """The models against the database, leaving out what the models create only on
    another dialect (``ddl_if``: e.g. PostgreSQL's unique prediction_id)."""

    def on_this_dialect(obj, name, type_, reflected, compare_to) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, conn.dialect.name)

    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_object": on_this_dialect}
    )
    return compare_metadata(context, Base.metadata)


def _version(conn: Connection) -> list:
    return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


async def _migrate_in_subprocess(url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from nqp.store import migrate_sync; migrate_sync(sys.argv[1])",
        url,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def test_migrate_creates_exactly_the_models_and_is_idempotent(empty_db_url):
    # two processes at once (as gateways starting together): the second waits, then
    # finds nothing left to do; then two calls at once in this process
    await asyncio.gather(*(_migrate_in_subprocess(empty_db_url) for _ in range(2)))
    await asyncio.gather(migrate(empty_db_url), migrate(empty_db_url))
    engine = make_engine(empty_db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            first = await conn.run_sync(_schema)
            assert set(first) == set(Base.metadata.tables) | {"alembic_version"}
            assert await conn.run_sync(_diffs) == []  # the migration matches the models
            assert await conn.run_sync(_version) == ["0005"]
        await migrate(empty_db_url)  # again: a no-op
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema) == first
            assert await conn.run_sync(_version) == ["0005"]

        def downgrade(conn: Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            assert set(await conn.run_sync(_schema)) == {"alembic_version"}
    finally:
        await engine.dispose()


def test_env_py_migrates_with_its_own_engine(tmp_path):
    """``alembic upgrade`` run by hand (no shared connection) uses the URL it is given."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url), "head")
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert names >= set(Base.metadata.tables)


def test_package_reexports_every_data_function():
    import importlib

    import nqp.store as store

    modules = [
        "audit",
        "checkpoints",
        "configs",
        "db",
        "errors",
        "jobs",
        "keys",
        "predictions",
        "tenants",
        "validation_runs",
    ]
    public = set()
    for name in modules:
        public |= set(importlib.import_module(f"nqp.store.{name}").__all__)
    public -= {"decode_cursor", "encode_cursor"}  # cursor helpers stay in nqp.store.predictions
    assert public <= set(store.__all__)
    assert len(store.__all__) == len(set(store.__all__))


def test_prediction_key_migration_keeps_the_rows(tmp_path):
    """0003 -> 0004 -> 0005 on a SQLite file holding predictions: 0004 adds the key and keeps
    the unique prediction_id (as the release with 0004 left databases), 0005 drops that
    (the table is rebuilt): every row and id stays, the new key refuses a stored point, ids
    go on after the last; the downgrade restores both indexes."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0003")
    insert = (
        "INSERT INTO predictions (tenant_id, source, prediction_id, sequence, ts, created_at, "
        "direction, confidence, payload) VALUES ('t', ?, ?, ?, ?, '2026-12-01', 'up', 0.5, '{}')"
    )
    rows = [(f"s{i % 3}", f"p{i}", i, 1.7e9 + i // 2) for i in range(10)]
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', '2026-12-01')")
        conn.executemany(insert, rows)

    def indexes(conn: sqlite3.Connection) -> dict[tuple[str, ...], bool]:
        out = {}
        for _, name, unique, *_ in conn.execute("PRAGMA index_list('predictions')"):
            columns = tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
            out[columns] = bool(unique)
        return out

    command.upgrade(alembic_config(url), "0004")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert indexes(conn) == {
            ("prediction_id",): True,
            ("tenant_id", "source", "ts", "sequence"): True,
            ("tenant_id", "ts"): False,
            ("created_at",): False,
        }
    command.upgrade(alembic_config(url), "head")

    with sqlite3.connect(tmp_path / "old.db") as conn:
        stored = conn.execute(
            "SELECT id, source, prediction_id, sequence, ts FROM predictions ORDER BY id"
        ).fetchall()
        assert stored == [(i + 1, *row) for i, row in enumerate(rows)]
        assert indexes(conn) == {
            ("tenant_id", "source", "ts", "sequence"): True,
            ("tenant_id", "ts"): False,
            ("created_at",): False,
        }
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(insert, ("s0", "another id", 0, 1.7e9))
        conn.execute(insert, ("s0", "p0", 99, 1.7e9))  # a new point: stored
        assert conn.execute("SELECT max(id) FROM predictions").fetchone() == (11,)
        conn.execute("DELETE FROM predictions WHERE id = 11")
    command.downgrade(alembic_config(url), "0003")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (10,)
        assert indexes(conn) == {
            ("prediction_id",): True,
            ("tenant_id", "source", "ts"): False,
            ("tenant_id", "ts"): False,
            ("created_at",): False,
        }


def _stamp_newer(path: Path) -> None:
    """The database as a newer release would leave it: at a revision this build lacks."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")


def test_a_newer_schema_is_refused_or_left_as_it_is(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    migrate_sync(url)
    _stamp_newer(tmp_path / "newer.db")
    with pytest.raises(SchemaNewerError, match=r"revision 9999, newer .* head: 0005"):
        migrate_sync(url)
    with caplog.at_level(logging.WARNING, logger="nqp.store.db"):
        migrate_sync(url, newer_ok=True)  # a gateway of this build starting on it
    assert "Running on it without migrating" in caplog.text
    import sqlite3

    with sqlite3.connect(tmp_path / "newer.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]
