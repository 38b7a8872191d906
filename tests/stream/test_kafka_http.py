"""`nqp serve --mode distributed` through real HTTP and WebSocket: a stateless gateway in front
of a Kafka worker, on tansu, PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nqp.config import Settings
from nqp.service.app import create_app

from .conftest import KAFKA_OPTIONS, stream_settings, wait_for, worker_thread

pytestmark = pytest.mark.services


def _gateway_settings(base: Settings, data_dir: Path, **stream) -> Settings:
    service = base.service.model_copy(update={"mode": "distributed"})
    options = {**base.stream.kafka_options, **KAFKA_OPTIONS}
    streams = base.stream.model_copy(
        update={"gateway_id": "gw-test", "kafka_options": options, **stream}
    )
    return base.model_copy(update={"service": service, "stream": streams, "data_dir": data_dir})


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_distributed_gateway_serves_http_and_ws_and_a_restart_loses_nothing(
    kafka_bootstrap, stream_db, redis_url, tmp_path
):
    url, _ = stream_db
    base = stream_settings(kafka_bootstrap, url, redis_url)
    gateway = _gateway_settings(base, tmp_path / "gw")
    with worker_thread(base):
        with TestClient(create_app(gateway)) as client:
            key = (tmp_path / "gw" / "admin.key").read_text().strip()
            with client.websocket_connect("/ws/predictions") as ws:
                ws.send_json({"type": "auth", "token": key})
                ws.send_json({"type": "subscription", "sources": ["s"]})
                assert ws.receive_json()["type"] == "subscribed"
                for i in range(5):
                    r = client.post(
                        "/api/v1/process/realtime",
                        json={"source": "s", "data": float(i % 3), "timestamp": 100.0 + i},
                        headers=_auth(key),
                    )
                    assert r.status_code == 200, r.text
                    assert r.json()["sequence"] == i + 1
                    assert r.json()["source"] == "s"
                # live predictions reach this gateway's WebSocket through Redis
                seen = [ws.receive_json()["prediction"]["sequence"] for _ in range(5)]
                assert seen == [1, 2, 3, 4, 5]
            # the summary is read from the workers' checkpoint (one commit interval late)
            wait_for(
                lambda: (
                    client.get("/api/v1/sources/s", headers=_auth(key)).json().get("points") == 5
                ),
                20,
                "the worker's checkpoint of source s",
            )
            assert client.get("/api/v1/sources", headers=_auth(key)).json() == {"sources": ["s"]}
            bad = client.post(
                "/api/v1/process/realtime", json={"source": "s", "data": "x"}, headers=_auth(key)
            )
            assert bad.status_code == 422, bad.text
        # a new gateway process (same data dir, database and worker) carries on the source
        with TestClient(create_app(gateway)) as client:
            for i in range(5, 8):
                r = client.post(
                    "/api/v1/process/realtime",
                    json={"source": "s", "data": float(i % 3), "timestamp": 100.0 + i},
                    headers=_auth(key),
                )
                assert r.status_code == 200, r.text
                assert r.json()["sequence"] == i + 1

            def stored() -> list[int]:
                r = client.get("/api/v1/predictions?source=s&limit=100", headers=_auth(key))
                return [p["sequence"] for p in r.json()["predictions"]]

            wait_for(lambda: len(stored()) == 8, 20, "8 stored predictions")
            assert sorted(stored()) == list(range(1, 9))  # each point stored exactly once
            erased = client.delete("/api/v1/sources/s", headers=_auth(key))
            assert erased.status_code == 204, erased.text
            gone = client.get("/api/v1/sources/s", headers=_auth(key))
            assert gone.status_code == 404, gone.text
    # no worker: the call gives up after the reply timeout with 503 and Retry-After
    lonely = _gateway_settings(base, tmp_path / "gw", reply_timeout_s=1.0)
    with TestClient(create_app(lonely)) as client:
        r = client.post(
            "/api/v1/process/realtime", json={"source": "t", "data": 1.0}, headers=_auth(key)
        )
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "unavailable"
