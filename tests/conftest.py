"""Shared test configuration.

* BLAS is pinned to one thread for every test.
* ``postgres_url`` / ``redis_url`` give a fresh PostgreSQL database / Redis key prefix per
  test session on the machine's servers (``NQP_TEST_POSTGRES_URL``, default
  ``postgresql://postgres@127.0.0.1:5432/postgres``; ``NQP_TEST_REDIS_URL``, default
  ``redis://127.0.0.1:6379/0``). When a server is absent the tests that need it skip with
  the reason, unless ``NQP_REQUIRE_SERVICES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REQUIRE_SERVICES = os.environ.get("NQP_REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get(
    "NQP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("NQP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def rng():
    """A seeded generator; tests never use numpy's global random state."""
    import numpy as np

    return np.random.default_rng(12345)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _unavailable(what: str, url: str) -> None:
    message = f"{what} is not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and NQP_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(f"{message} (set NQP_REQUIRE_SERVICES=1 to make this a failure)")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (dropped afterwards).

    Yields a plain ``postgresql://`` URL; the store turns it into its async driver URL.
    """
    if not _reachable(POSTGRES_ADMIN_URL, 5432):
        _unavailable("PostgreSQL", POSTGRES_ADMIN_URL)
    import asyncio

    import asyncpg

    name = f"nqp_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(POSTGRES_ADMIN_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis URL; tests namespace their keys with :func:`redis_prefix`."""
    if not _reachable(REDIS_URL, 6379):
        _unavailable("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test (a fresh keyspace per test)."""
    return f"nqp-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    import asyncio

    import asyncpg

    name = f"nqp_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(POSTGRES_ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
