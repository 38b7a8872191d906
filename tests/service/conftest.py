"""An NQP app on a fresh database (SQLite file or PostgreSQL), driven through real ASGI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nqp.config import Settings
from nqp.service.app import create_app

SMALL_ENGINE = {
    "neuromorphic": {"n_neurons": 48, "readout_dim": 16, "pattern_neurons": 16},
    "quantum": {"qubit_count": 3, "virtual_nodes": 2, "readout_dim": 8},
    "engine": {"warmup": 5},
}


def make_settings(data_dir: Path, database_url: str | None = None, **service) -> Settings:
    return Settings(
        data_dir=data_dir,
        service={"database_url": database_url, **service},
        **SMALL_ENGINE,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nqp.db'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def client(tmp_path, database_url) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path / "data", database_url))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def admin_key(client) -> str:
    runtime = client.app.state.runtime
    return (Path(runtime.data_dir) / "admin.key").read_text().strip()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(client: TestClient, admin_key: str, role: str = "developer", **extra) -> str:
    """A fresh key of ``role`` in the admin's tenant, through the API."""
    r = client.post(
        "/api/v1/keys", json={"name": f"k-{role}", "role": role, **extra}, headers=auth(admin_key)
    )
    assert r.status_code == 201, r.text
    return r.json()["key"]


def second_tenant_admin(client: TestClient, name: str = "other") -> str:
    """An admin key of another tenant, created directly in the store."""
    from nqp import store
    from nqp.service.security import generate_key, hash_key

    runtime = client.app.state.runtime

    async def go() -> str:
        async with runtime.sessions() as session:
            tenant = await store.get_or_create_tenant(session, name=name)
            key = generate_key()
            await store.create_key(
                session,
                tenant_id=tenant.id,
                name=f"{name}-admin",
                role="admin",
                key_hash=hash_key(key),
                prefix=key[:8],
                expires_at=None,
                rate_limit_per_s=None,
                daily_quota=None,
            )
            await session.commit()
        return key

    return client.portal.call(go)
