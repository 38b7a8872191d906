"""The HTTP API through real ASGI on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nqp import store
from nqp.service.app import create_app

from .conftest import auth, make_settings, new_key, second_tenant_admin


def test_bootstrap_key_file_is_private(client, admin_key):
    path = Path(client.app.state.runtime.data_dir) / "admin.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert admin_key.startswith("nqp_")
    assert client.get("/api/v1/status", headers=auth(admin_key)).status_code == 200


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_errors_have_one_shape(client, admin_key):
    r = client.get("/api/v1/status")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = client.get("/api/v1/status", headers=auth("nqp_not-a-key"))
    assert r.status_code == 401
    r = client.post("/api/v1/process/realtime", json={"source": "s"}, headers=auth(admin_key))
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "data"
    # points are numbers: booleans and numeric strings are refused, reported at the field
    for data in ([True], [1.0, "2.5"], "2.5", [[1.0, False]], {"a": 1}):
        r = client.post(
            "/api/v1/process/realtime", json={"source": "s", "data": data}, headers=auth(admin_key)
        )
        assert r.status_code == 422, (data, r.text)
        assert r.json()["error"]["field"] == "data", (data, r.text)
        assert "not booleans or strings" in r.json()["error"]["message"], (data, r.text)
    assert client.get("/api/v1/sources/s", headers=auth(admin_key)).status_code == 404


def test_realtime_prediction_and_validation(client, admin_key):
    dev = new_key(client, admin_key)
    r = client.post(
        "/api/v1/process/realtime",
        json={"source": "s1", "data": [1.0, 1.5, 1.2], "timestamp": [1.0, 2.0, 3.0]},
        headers=auth(dev),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "s1"
    assert body["sequence"] == 3
    assert body["direction"] in ("up", "down", "hold")
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["quantum_results"]["convergence"]["iterations"] >= 1
    bad = client.post(
        "/api/v1/process/realtime",
        json={"source": "s1", "data": [[1.0, 2.0]], "timestamp": 4.0},
        headers=auth(dev),
    )
    assert bad.status_code == 422
    assert "channel" in bad.json()["error"]["message"]
    assert client.get("/api/v1/sources/s1", headers=auth(dev)).json()["points"] == 3
    nan = client.post(
        "/api/v1/process/realtime",
        content=b'{"source": "s1", "data": [NaN]}',
        headers={**auth(dev), "content-type": "application/json"},
    )
    assert nan.status_code == 422
    assert client.get("/api/v1/sources/s1", headers=auth(dev)).json()["points"] == 3


def test_roles(client, admin_key):
    viewer = new_key(client, admin_key, role="viewer")
    dev = new_key(client, admin_key, role="developer")
    point = {"source": "r", "data": [1.0]}
    assert (
        client.post("/api/v1/process/realtime", json=point, headers=auth(viewer)).status_code == 403
    )
    assert client.post("/api/v1/process/realtime", json=point, headers=auth(dev)).status_code == 200
    assert client.get("/api/v1/sources/r", headers=auth(viewer)).status_code == 200
    assert client.post("/api/v1/keys", json={"name": "x"}, headers=auth(dev)).status_code == 403
    assert client.get("/api/v1/keys", headers=auth(viewer)).status_code == 403


def test_tokens_and_revocation(client, admin_key):
    dev = new_key(client, admin_key)
    token = client.post("/api/v1/auth/token", headers=auth(dev)).json()["access_token"]
    assert client.get("/api/v1/status", headers=auth(token)).status_code == 200
    key_id = next(
        k["id"]
        for k in client.get("/api/v1/keys", headers=auth(admin_key)).json()
        if k["name"] == "k-developer"
    )
    assert client.delete(f"/api/v1/keys/{key_id}", headers=auth(admin_key)).status_code == 204
    assert client.get("/api/v1/status", headers=auth(dev)).status_code == 401
    assert (
        client.get("/api/v1/status", headers=auth(token)).status_code == 401
    )  # tokens die with their key
    assert client.get("/api/v1/status", headers=auth(token + "x")).status_code == 401


def test_tenants_never_see_each_other(client, admin_key):
    other = second_tenant_admin(client)
    mine = {"source": "shared-name", "data": [1.0, 2.0, 3.0], "timestamp": [1.0, 2.0, 3.0]}
    assert (
        client.post("/api/v1/process/realtime", json=mine, headers=auth(admin_key)).status_code
        == 200
    )
    # same source name in the other tenant is a different stream
    r = client.post(
        "/api/v1/process/realtime",
        json={"source": "shared-name", "data": [5.0]},
        headers=auth(other),
    )
    assert r.json()["sequence"] == 1
    client.portal.call(client.app.state.runtime.flush)
    theirs = client.get("/api/v1/predictions", headers=auth(other)).json()["predictions"]
    assert len(theirs) == 1
    assert client.get("/api/v1/sources", headers=auth(other)).json() == {"sources": ["shared-name"]}
    my_keys = {k["id"] for k in client.get("/api/v1/keys", headers=auth(admin_key)).json()}
    their_keys = {k["id"] for k in client.get("/api/v1/keys", headers=auth(other)).json()}
    assert not my_keys & their_keys
    for key_id in my_keys:
        assert client.delete(f"/api/v1/keys/{key_id}", headers=auth(other)).status_code == 404
    assert client.delete("/api/v1/sources/shared-name", headers=auth(other)).status_code == 204
    assert client.get("/api/v1/sources/shared-name", headers=auth(admin_key)).json()["points"] == 3


def test_predictions_query_pagination_and_csv(client, admin_key):
    client.post(
        "/api/v1/process/realtime",
        json={
            "source": "q",
            "data": [float(v) for v in range(25)],
            "timestamp": [float(t) for t in range(25)],
        },
        headers=auth(admin_key),
    )
    client.portal.call(client.app.state.runtime.flush)
    seen, cursor = [], None
    while True:
        params = {"source": "q", "limit": 10, **({"cursor": cursor} if cursor is not None else {})}
        page = client.get("/api/v1/predictions", params=params, headers=auth(admin_key)).json()
        seen += [p["sequence"] for p in page["predictions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, 26))
    window = client.get(
        "/api/v1/predictions",
        params={"source": "q", "start": 5, "end": 10},
        headers=auth(admin_key),
    )
    assert [p["timestamp"] for p in window.json()["predictions"]] == [5.0, 6.0, 7.0, 8.0, 9.0]
    text = client.get(
        "/api/v1/predictions",
        params={"source": "q", "format": "csv", "limit": 5},
        headers=auth(admin_key),
    ).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["sequence"]) for r in rows] == [1, 2, 3, 4, 5]


def test_erase_source(client, admin_key):
    client.post(
        "/api/v1/process/realtime",
        json={"source": "gone", "data": [1.0, 2.0]},
        headers=auth(admin_key),
    )
    client.portal.call(client.app.state.runtime.flush)
    assert client.delete("/api/v1/sources/gone", headers=auth(admin_key)).status_code == 204
    assert client.get("/api/v1/sources/gone", headers=auth(admin_key)).status_code == 404
    assert (
        client.get(
            "/api/v1/predictions", params={"source": "gone"}, headers=auth(admin_key)
        ).json()["predictions"]
        == []
    )
    assert client.delete("/api/v1/sources/gone", headers=auth(admin_key)).status_code == 404


def test_body_limit_and_rate_limit(tmp_path, database_url):
    from fastapi.testclient import TestClient

    from nqp.service.app import create_app

    from .conftest import make_settings

    app = create_app(make_settings(tmp_path / "d", database_url, max_body_bytes=2048))
    with TestClient(app) as c:
        key = (tmp_path / "d" / "admin.key").read_text().strip()
        big = {"source": "b", "data": [1.0] * 1000}
        r = c.post("/api/v1/process/realtime", json=big, headers=auth(key))
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        limited = c.post(
            "/api/v1/keys", json={"name": "slow", "rate_limit_per_s": 2}, headers=auth(key)
        ).json()["key"]
        codes = [c.get("/api/v1/status", headers=auth(limited)).status_code for _ in range(5)]
        assert codes[:2] == [200, 200]
        assert 429 in codes
        r = c.get("/api/v1/status", headers=auth(limited))
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1


def test_metrics(client, admin_key):
    client.post(
        "/api/v1/process/realtime",
        json={"source": "m", "data": [1.0, 2.0]},
        headers=auth(admin_key),
    )
    text = client.get("/metrics").text
    assert "nqp_http_requests_total" in text
    assert "nqp_batch_size_bucket" in text
    assert 'nqp_predictions_total{direction="hold"} 2.0' in text  # both points in warm-up
    assert "\nnqp_queue_depth 0.0\n" in text  # read from the batcher when scraped
    assert (
        'nqp_http_requests_total{method="POST",route="/api/v1/process/realtime",status="200"} 1.0'
        in text
    )
    js = client.get("/api/v1/metrics", headers=auth(admin_key)).json()
    assert "nqp_stage_seconds_count" in js


def test_rolling_hit_rate_gauge_follows_the_source(client, admin_key):
    import math
    import re

    values = [math.sin(2 * math.pi * t / 20) for t in range(80)]
    r = client.post(
        "/api/v1/process/realtime", json={"source": "sine", "data": values}, headers=auth(admin_key)
    )
    assert r.status_code == 200
    summary = client.get("/api/v1/sources/sine", headers=auth(admin_key)).json()
    assert summary["rolling_hit_rate"] is not None
    line = re.search(
        r'nqp_source_rolling_hit_rate\{source="sine",tenant="\w+"\} (\S+)',
        client.get("/metrics").text,
    )
    assert line is not None
    assert float(line.group(1)) == pytest.approx(summary["rolling_hit_rate"])
    assert client.delete("/api/v1/sources/sine", headers=auth(admin_key)).status_code == 204
    assert 'source="sine"' not in client.get("/metrics").text
    # a source made again after its erasure is exported again (no stale metric child kept)
    r = client.post(
        "/api/v1/process/realtime", json={"source": "sine", "data": values}, headers=auth(admin_key)
    )
    assert r.status_code == 200
    assert 'nqp_source_rolling_hit_rate{source="sine"' in client.get("/metrics").text


def test_websocket_live_predictions_with_filters(client, admin_key):
    other = second_tenant_admin(client)
    with client.websocket_connect(f"/ws/predictions?token={admin_key}") as ws:
        ws.send_json(
            {"type": "subscription", "sources": ["live"], "filters": {"directions": ["hold"]}}
        )
        assert ws.receive_json()["type"] == "subscribed"
        # another tenant's point on a same-named source and another source of ours: not sent
        client.post(
            "/api/v1/process/realtime", json={"source": "live", "data": [9.0]}, headers=auth(other)
        )
        client.post(
            "/api/v1/process/realtime",
            json={"source": "elsewhere", "data": [1.0]},
            headers=auth(admin_key),
        )
        r = client.post(
            "/api/v1/process/realtime",
            json={"source": "live", "data": [1.0, 2.0]},
            headers=auth(admin_key),
        )
        assert r.status_code == 200
        got = [ws.receive_json(), ws.receive_json()]
        assert [m["prediction"]["sequence"] for m in got] == [1, 2]
        assert all(m["prediction"]["source"] == "live" for m in got)
        assert all(m["prediction"]["direction"] == "hold" for m in got)


def test_websocket_rejects_bad_credentials_and_messages(client, admin_key):
    import pytest
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect("/ws/predictions?token=nqp_bad") as ws,
    ):
        ws.receive_json()
    assert exc.value.code == 1008
    with client.websocket_connect(f"/ws/predictions?token={admin_key}") as ws:
        ws.send_json({"type": "subscription", "filters": {"min_confidence": 2}})
        msg = ws.receive_json()
        assert msg["type"] == "error"
        assert "min_confidence" in msg["message"]


def test_websocket_credential_in_a_first_auth_message(client, admin_key):
    import pytest
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/ws/predictions") as ws:
        ws.send_json({"type": "auth", "token": admin_key})
        ws.send_json({"type": "subscription", "sources": ["m"]})
        assert ws.receive_json()["type"] == "subscribed"
        client.post(
            "/api/v1/process/realtime", json={"source": "m", "data": 1.0}, headers=auth(admin_key)
        )
        assert ws.receive_json()["prediction"]["source"] == "m"
    for first in ({"type": "auth", "token": "nqp_bad"}, {"type": "subscription"}):
        with client.websocket_connect("/ws/predictions") as ws:
            ws.send_json(first)
            assert ws.receive_json()["type"] == "error"
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_json()
        assert exc.value.code == 1008


def test_retention_deletes_only_old_predictions(client, admin_key):
    """Retention counts from when a prediction was stored, not the point's own time."""
    import time

    runtime = client.app.state.runtime
    client.post(
        "/api/v1/process/realtime",
        json={"source": "first", "data": [1.0], "timestamp": 5.0},
        headers=auth(admin_key),
    )
    client.portal.call(runtime.flush)
    assert client.portal.call(runtime.apply_retention) == (0, 0)  # an old timestamp is kept
    between = time.time()
    time.sleep(0.05)
    client.post(
        "/api/v1/process/realtime",
        json={"source": "second", "data": [1.0]},
        headers=auth(admin_key),
    )
    client.portal.call(runtime.flush)
    days = runtime.settings.service.retention_days
    deleted, _ = client.portal.call(runtime.apply_retention, between + days * 86_400.0)
    assert deleted == 1
    left = client.get("/api/v1/predictions", headers=auth(admin_key)).json()["predictions"]
    assert [p["source"] for p in left] == ["second"]


def test_a_flush_stores_at_once_and_rows_otherwise_wait_to_be_gathered(
    tmp_path, database_url, monkeypatch
):
    """The writer gathers rows for ``_WRITER_FLUSH_S`` unless a flush point waits.

    With a gathering interval of 20 s, a prediction is not stored on its own within half a
    second, but a flush (the end of a batch job, an erasure) stores it well within 5 s.
    """
    import asyncio

    from nqp.service import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "_WRITER_FLUSH_S", 20.0)
    app = create_app(make_settings(tmp_path / "data", database_url))
    with TestClient(app) as client:
        runtime = client.app.state.runtime
        key = (Path(runtime.data_dir) / "admin.key").read_text().strip()
        r = client.post(
            "/api/v1/process/realtime", json={"source": "s", "data": [1.0]}, headers=auth(key)
        )
        assert r.status_code == 200, r.text

        async def stored_within(seconds: float) -> bool:
            await asyncio.sleep(seconds)
            return runtime._writer.rows == 0

        assert not client.portal.call(stored_within, 0.5)  # still being gathered
        client.portal.call(lambda: asyncio.wait_for(runtime.flush(), 5.0))
        assert runtime._writer.rows == 0
        assert runtime._writer.flushes == 0
        got = client.get("/api/v1/predictions", headers=auth(key)).json()["predictions"]
        assert [p["source"] for p in got] == ["s"]
        # a second flush with nothing queued returns too
        client.portal.call(lambda: asyncio.wait_for(runtime.flush(), 5.0))


def test_openapi_schema_refs_all_resolve(client):
    """Every ``$ref`` in /openapi.json names a component that exists (the realtime route's
    body, served by a shortcut ahead of FastAPI's router, included)."""
    schema = client.get("/openapi.json").json()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert refs <= set(schema["components"]["schemas"])
    body = schema["paths"]["/api/v1/process/realtime"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RealtimeRequest"
    }
    assert set(schema["components"]["schemas"]["RealtimeRequest"]["properties"]) == {
        "source",
        "data",
        "timestamp",
        "config",
    }


def test_checkpoints_are_saved_in_chunks_and_a_failed_chunk_stays_dirty(
    client, admin_key, monkeypatch
):
    from nqp import store
    from nqp.service import runtime as runtime_module

    rt = client.app.state.runtime
    names = [f"c{i}" for i in range(5)]
    for name in names:
        r = client.post(
            "/api/v1/process/realtime",
            json={"source": name, "data": [1.0]},
            headers=auth(admin_key),
        )
        assert r.status_code == 200, r.text
    tenant = client.portal.call(rt.principal_for_key, admin_key).tenant_id
    internal = {runtime_module.internal_source(tenant, n) for n in names}
    assert internal <= rt._dirty
    monkeypatch.setattr(runtime_module, "CHECKPOINT_CHUNK", 2)
    calls: list[int] = []
    real_save = store.save_checkpoints

    async def save_failing_second(session, rows):
        rows = list(rows)
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError("disk full")
        return await real_save(session, rows)

    monkeypatch.setattr(store, "save_checkpoints", save_failing_second)
    with pytest.raises(OSError, match="disk full"):
        client.portal.call(lambda: rt.checkpoint_all(only_dirty=True))
    assert calls == [2, 2]  # the first chunk was stored, the second failed, the third waited

    async def stored() -> set[str]:
        async with rt.sessions() as session:
            return set(await store.load_checkpoints(session, tenant_id=tenant))

    saved = client.portal.call(stored) & set(names)
    assert len(saved) == 2
    unsaved = {runtime_module.internal_source(tenant, n) for n in set(names) - saved}
    assert unsaved <= rt._dirty  # retried next time
    monkeypatch.setattr(store, "save_checkpoints", real_save)
    assert client.portal.call(lambda: rt.checkpoint_all(only_dirty=True)) >= 3
    assert client.portal.call(stored) >= set(names)
    assert not (internal & rt._dirty)


def test_gateway_runs_on_a_schema_a_newer_release_migrated(tmp_path, caplog):
    """A rollback: this build's gateway starts on a database a newer release migrated
    (unknown revision), leaves it as it is, and serves (the rollout rule keeps it usable)."""
    import logging
    import sqlite3

    url = f"sqlite:///{tmp_path / 'nqp.db'}"
    store.migrate_sync(url)
    with sqlite3.connect(tmp_path / "nqp.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    app = create_app(make_settings(tmp_path / "data", url))
    with caplog.at_level(logging.WARNING, logger="nqp.store.db"), TestClient(app) as client:
        key = (Path(client.app.state.runtime.data_dir) / "admin.key").read_text().strip()
        r = client.post(
            "/api/v1/process/realtime", json={"source": "s", "data": [1.0]}, headers=auth(key)
        )
        assert r.status_code == 200, r.text
    assert "newer than this build knows" in caplog.text
    with sqlite3.connect(tmp_path / "nqp.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]
