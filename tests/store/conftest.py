"""Fixtures for the store tests: every test runs on SQLite and on PostgreSQL.

Each backend's database is migrated once per session; each test gets a fresh engine and
starts from empty tables (``DELETE``: on these few rows faster than PostgreSQL's
``TRUNCATE``, which recreates files).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nqp.store import Base, get_or_create_tenant, make_engine, make_sessionmaker, migrate_sync


@pytest.fixture(scope="session")
def sqlite_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'nqp.db'}"
    migrate_sync(url)
    return url


@pytest.fixture(scope="session")
def postgresql_db_url(postgres_url: str) -> str:
    migrate_sync(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database URL (plain form), one per backend."""
    return request.getfixturevalue(f"{request.param}_db_url")


async def _empty_tables(engine: AsyncEngine) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    async with engine.begin() as conn:
        for table in tables:
            await conn.execute(table.delete())


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    await _empty_tables(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
async def tenants(session: AsyncSession) -> tuple[str, str]:
    """Ids of two committed tenants, A and B."""
    a = await get_or_create_tenant(session, name="tenant-a")
    b = await get_or_create_tenant(session, name="tenant-b")
    await session.commit()
    return a.id, b.id
