"""Versioned configuration endpoints on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nqp import store
from nqp.config import EngineSettings, NeuromorphicSettings, QuantumSettings
from nqp.service.api.routes import config as config_routes
from nqp.service.app import create_app

from .conftest import auth, make_settings, second_tenant_admin


@pytest.fixture
def client(tmp_path, database_url) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path / "data", database_url))
    app.include_router(config_routes.router)
    with TestClient(app) as c:
        yield c


def _key(client, admin_key: str, role: str) -> str:
    r = client.post("/api/v1/keys", json={"name": role, "role": role}, headers=auth(admin_key))
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _events(client, admin_key: str, action: str) -> list:
    runtime = client.app.state.runtime
    tenant_id = client.portal.call(runtime.principal_for_key, admin_key).tenant_id

    async def go():
        async with runtime.sessions() as session:
            return await store.list_events(session, tenant_id=tenant_id, action=action)

    return client.portal.call(go)


def test_defaults_are_version_zero_from_the_running_settings(client, admin_key):
    settings = client.app.state.runtime.settings
    for service, model in [
        ("engine", EngineSettings),
        ("neuromorphic", NeuromorphicSettings),
        ("quantum", QuantumSettings),
    ]:
        r = client.get(f"/api/v1/config/{service}", headers=auth(admin_key))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == 0
        assert body["created_at"] is None
        assert body["data"] == getattr(settings, service).model_dump(mode="json")
        assert model.model_validate(body["data"]) == getattr(settings, service)
    # the test settings are not the class defaults, so this really is the running config
    assert r.json()["data"]["qubit_count"] == 3


def test_unknown_service_is_404_listing_options(client, admin_key):
    r = client.get("/api/v1/config/database", headers=auth(admin_key))
    assert r.status_code == 404
    message = r.json()["error"]["message"]
    assert all(name in message for name in ("engine", "neuromorphic", "quantum"))
    r = client.put("/api/v1/config/service", json={}, headers=auth(admin_key))
    assert r.status_code == 404


def test_put_versions_history_and_rollback(client, admin_key):
    h = auth(admin_key)
    r1 = client.put("/api/v1/config/engine", json={"horizon": 2}, headers=h)
    assert r1.status_code == 200, r1.text
    v1 = r1.json()
    assert v1["version"] == 1
    # stored complete: omitted fields take the section's defaults
    assert v1["data"] == EngineSettings(horizon=2).model_dump(mode="json")
    assert v1["created_by"] is not None
    v2 = client.put("/api/v1/config/engine", json={"horizon": 3, "warmup": 7}, headers=h).json()
    assert v2["version"] == 2
    assert v2["data"]["warmup"] == 7
    latest = client.get("/api/v1/config/engine", headers=h).json()
    assert latest["version"] == 2
    assert latest["data"] == v2["data"]
    # other services are versioned independently
    assert client.get("/api/v1/config/quantum", headers=h).json()["version"] == 0

    history = client.get("/api/v1/config/engine/history", headers=h).json()["versions"]
    assert [v["version"] for v in history] == [2, 1]
    assert history[1]["data"] == v1["data"]
    page = client.get("/api/v1/config/engine/history?limit=1", headers=h).json()["versions"]
    assert [v["version"] for v in page] == [2]

    r = client.post("/api/v1/config/engine/rollback", json={"version": 1}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    assert r.json()["data"] == v1["data"]
    assert client.get("/api/v1/config/engine", headers=h).json()["data"]["horizon"] == 2
    history = client.get("/api/v1/config/engine/history", headers=h).json()["versions"]
    assert [v["version"] for v in history] == [3, 2, 1]

    r = client.post("/api/v1/config/engine/rollback", json={"version": 9}, headers=h)
    assert r.status_code == 404
    r = client.post("/api/v1/config/engine/rollback", json={"version": 0}, headers=h)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "version"

    puts = _events(client, admin_key, "config.put")
    rollbacks = _events(client, admin_key, "config.rollback")
    assert sorted(e.details["version"] for e in puts) == [1, 2]
    assert [(e.details["version"], e.details["from_version"]) for e in rollbacks] == [(3, 1)]


@pytest.mark.parametrize(
    ("service", "body", "field"),
    [
        ("engine", {"horizon": 0}, "horizon"),
        ("engine", {"horizon": 20, "max_horizon": 16}, "horizon"),  # model-level rule
        ("engine", {"forgetting": "slow"}, "forgetting"),
        ("neuromorphic", {"encoding": "morse"}, "encoding"),
        ("neuromorphic", {"n_neurons": 10}, None),  # valid: control row
        ("quantum", {"qubit_count": 11}, "qubit_count"),
        ("quantum", {"qubits": 3}, "qubits"),  # unknown field
    ],
)
def test_validation_names_the_field_and_stores_nothing(client, admin_key, service, body, field):
    h = auth(admin_key)
    r = client.put(f"/api/v1/config/{service}", json=body, headers=h)
    history = client.get(f"/api/v1/config/{service}/history", headers=h).json()["versions"]
    if field is None:
        assert r.status_code == 200
        assert len(history) == 1
        return
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert history == []
    assert client.get(f"/api/v1/config/{service}", headers=h).json()["version"] == 0
    assert _events(client, admin_key, "config.put") == []


def test_non_object_body_is_422(client, admin_key):
    r = client.put("/api/v1/config/engine", json=[1, 2], headers=auth(admin_key))
    assert r.status_code == 422


def test_roles_viewers_read_admins_write(client, admin_key):
    viewer = _key(client, admin_key, "viewer")
    developer = _key(client, admin_key, "developer")
    assert client.put("/api/v1/config/quantum", json={}, headers=auth(admin_key)).status_code == 200
    for key in (viewer, developer):
        assert client.get("/api/v1/config/quantum", headers=auth(key)).json()["version"] == 1
        assert client.get("/api/v1/config/quantum/history", headers=auth(key)).status_code == 200
        r = client.put("/api/v1/config/quantum", json={"qubit_count": 2}, headers=auth(key))
        assert r.status_code == 403
        r = client.post("/api/v1/config/quantum/rollback", json={"version": 1}, headers=auth(key))
        assert r.status_code == 403
    assert client.get("/api/v1/config/quantum").status_code == 401
    assert client.get("/api/v1/config/quantum", headers=auth(admin_key)).json()["version"] == 1


def test_tenants_are_isolated(client, admin_key):
    other = second_tenant_admin(client)
    mine = client.put(
        "/api/v1/config/neuromorphic", json={"n_neurons": 99}, headers=auth(admin_key)
    )
    assert mine.json()["version"] == 1
    theirs = client.get("/api/v1/config/neuromorphic", headers=auth(other)).json()
    assert theirs["version"] == 0
    assert theirs["data"]["n_neurons"] != 99
    assert client.get("/api/v1/config/neuromorphic/history", headers=auth(other)).json() == {
        "versions": []
    }
    # my version 1 does not exist for them
    r = client.post(
        "/api/v1/config/neuromorphic/rollback", json={"version": 1}, headers=auth(other)
    )
    assert r.status_code == 404
    # their first put is their version 1, independent of mine
    r = client.put("/api/v1/config/neuromorphic", json={"n_neurons": 7}, headers=auth(other))
    assert r.json()["version"] == 1
    assert (
        client.get("/api/v1/config/neuromorphic", headers=auth(admin_key)).json()["data"][
            "n_neurons"
        ]
        == 99
    )
