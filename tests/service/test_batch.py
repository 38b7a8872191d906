"""Batch jobs and signed callbacks on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nqp.engine import Platform, ProcessItem
from nqp.service import waits
from nqp.service.api.routes import batch as batch_routes
from nqp.service.app import create_app
from nqp.service.jobs import CallbackSender, JobRunner, callback_url_problem

from .conftest import auth, make_settings, second_tenant_admin


@pytest.fixture
def client(tmp_path, database_url) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path / "data",
        database_url,
        callback_allowed_hosts=["127.0.0.1"],
        max_points_per_request=50,  # batches: at most 10 x 50 = 500 points
    )
    app = create_app(settings)
    app.include_router(batch_routes.router)
    with TestClient(app) as c:
        c.app.state.job_runner = JobRunner(
            c.app.state.runtime,
            CallbackSender(attempts=3, backoff_s=0.01, timeout_s=5.0),
            wave_points=16,  # several rounds per source: chunked feeding is exercised
        )
        yield c


class _Receiver:
    """An HTTP server on 127.0.0.1 answering POSTs with scripted status codes."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _key(client, admin_key: str, role: str) -> str:
    r = client.post("/api/v1/keys", json={"name": role, "role": role}, headers=auth(admin_key))
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _tenant(client, key: str) -> str:
    return client.portal.call(client.app.state.runtime.principal_for_key, key).tenant_id


def _wait(client, key: str, job_id: str, *, until=lambda j: j["status"] in ("succeeded", "failed")):
    deadline = time.monotonic() + 30.0
    while True:
        r = client.get(f"/api/v1/jobs/{job_id}", headers=auth(key))
        assert r.status_code == 200, r.text
        job = r.json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def _assert_stored_as_one_stream(client, key, settings, tenant, source, entries) -> None:
    """The source's stored predictions are those of ``entries`` run as one stream, in order."""
    mine = [e for e in entries if e["source"] == source]
    item = ProcessItem(
        f"{tenant}/{source}",
        [v for e in mine for v in e["data"]],
        [t for e in mine for t in e["timestamp"]],
        None,
    )
    want = Platform(settings).process_many([item])[0]
    stored = client.get(
        "/api/v1/predictions", params={"source": source, "limit": 100}, headers=auth(key)
    ).json()["predictions"]
    assert [p["sequence"] for p in stored] == list(range(1, len(want) + 1)), source
    for got, exp in zip(stored, want, strict=True):
        assert got["timestamp"] == exp.timestamp
        assert got["confidence"] == pytest.approx(exp.confidence, rel=1e-9, abs=1e-12)
        assert got["expected_change"] == pytest.approx(exp.expected_change, rel=1e-9, abs=1e-12)


def _entries(seed: int, sources: list[str], per_entry: int, rounds: int) -> list[dict]:
    """Interleaved entries: each round, each source gets ``per_entry`` new points."""
    rng = np.random.default_rng(seed)
    level = {s: 100.0 + 10 * i for i, s in enumerate(sources)}
    out = []
    for r in range(rounds):
        for s in sources:
            steps = rng.normal(size=per_entry)
            values = level[s] + np.cumsum(steps)
            level[s] = float(values[-1])
            ts = [1000.0 + r * per_entry + k for k in range(per_entry)]
            out.append({"source": s, "data": values.tolist(), "timestamp": ts})
    return out


def test_job_lifecycle_matches_realtime_processing(client, admin_key):
    dev = _key(client, admin_key, "developer")
    viewer = _key(client, admin_key, "viewer")
    tenant = _tenant(client, dev)
    sources = ["alpha", "beta", "gamma/1"]
    entries = _entries(0, sources, per_entry=4, rounds=10)
    entries.append({"source": "delta", "data": [[1.0, 2.0], [1.5, 2.5]], "timestamp": 5.0})
    r = client.post(
        "/api/v1/process/batch",
        json={"job_id": "job-1", "data_points": entries, "config": {"quantum_enabled": True}},
        headers=auth(dev),
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["job_id"] == "job-1"
    assert accepted["status"] == "queued"
    assert accepted["points"] == 3 * 4 * 10 + 2
    assert accepted["sources"] == 4
    assert accepted["links"]["self"] == "/api/v1/jobs/job-1"

    job = _wait(client, viewer, "job-1")  # viewers may read jobs
    assert job["status"] == "succeeded", job
    assert job["error"] is None
    assert job["finished_at"] is not None
    result = job["result"]
    assert result["points"] == accepted["points"]
    assert result["failed_sources"] == 0
    assert [s["source"] for s in result["by_source"]] == [*sources, "delta"]

    # the same entries, one realtime call each, on an in-process platform
    reference = Platform(client.app.state.runtime.settings)
    expected: dict[str, list] = {}
    for e in entries:
        item = ProcessItem(
            f"{tenant}/{e['source']}", e["data"], e["timestamp"], {"quantum_enabled": True}
        )
        pred = reference.process_many([item])[0]
        expected.setdefault(e["source"], []).extend(pred)
    for summary in result["by_source"]:
        preds = expected[summary["source"]]
        assert summary["points"] == len(preds)
        last = preds[-1]
        assert summary["last"]["sequence"] == last.sequence
        assert summary["last"]["direction"] == last.direction.value
        assert summary["last"]["confidence"] == pytest.approx(last.confidence, rel=1e-9, abs=1e-12)
        assert summary["last"]["expected_change"] == pytest.approx(
            last.expected_change, rel=1e-9, abs=1e-12
        )
        counts = {d: sum(p.direction.value == d for p in preds) for d in ("up", "down", "hold")}
        assert summary["directions"] == counts

    # every point's prediction is stored, as for realtime requests
    stored = client.get(
        "/api/v1/predictions", params={"source": "beta", "limit": 1000}, headers=auth(viewer)
    ).json()["predictions"]
    assert [p["sequence"] for p in stored] == list(range(1, 41))
    for got, want in zip(stored, expected["beta"], strict=True):
        assert got["direction"] == want.direction.value
        assert got["confidence"] == pytest.approx(want.confidence, rel=1e-9, abs=1e-12)
        assert got["timestamp"] == want.timestamp

    # viewers cannot submit
    r = client.post(
        "/api/v1/process/batch", json={"data_points": entries[:1]}, headers=auth(viewer)
    )
    assert r.status_code == 403


def test_job_ids_duplicates_and_tenant_isolation(client, admin_key):
    other = second_tenant_admin(client)
    body = {"job_id": "nightly", "data_points": [{"source": "s", "data": [1.0, 2.0]}]}
    assert (
        client.post("/api/v1/process/batch", json=body, headers=auth(admin_key)).status_code == 202
    )
    first = _wait(client, admin_key, "nightly")
    r = client.post("/api/v1/process/batch", json=body, headers=auth(admin_key))
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "job_id"
    assert _wait(client, admin_key, "nightly") == first  # the first job is untouched
    # another tenant sees no such job, and may use the same id for its own
    assert client.get("/api/v1/jobs/nightly", headers=auth(other)).status_code == 404
    theirs = dict(body, data_points=[{"source": "s", "data": [5.0]}])
    assert client.post("/api/v1/process/batch", json=theirs, headers=auth(other)).status_code == 202
    assert _wait(client, other, "nightly")["result"]["points"] == 1
    assert _wait(client, admin_key, "nightly")["result"]["points"] == 2
    assert client.get("/api/v1/jobs/unknown", headers=auth(admin_key)).status_code == 404
    # generated ids
    r = client.post(
        "/api/v1/process/batch", json={"data_points": body["data_points"]}, headers=auth(other)
    )
    assert r.status_code == 202
    assert (
        client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=auth(admin_key)).status_code == 404
    )


_BAD_REQUESTS = [
    ({"data_points": []}, "data_points"),
    ({"data_points": [{"source": "s", "data": [1.0]}, {"source": "s"}]}, "data_points.1.data"),
    ({"data_points": [{"source": "", "data": [1.0]}]}, "data_points.0.source"),
    ({"data_points": [{"source": "s", "data": [True, 1.0]}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": [[1.0, False]]}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": True}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": [1.0, "1.5"]}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": "1.5"}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": [["1.5"]]}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": [[1.0, 2.0], [1.0]]}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s", "data": [[]]}]}, "data_points.0.data"),
    ({"data_points": [{"source": "s\n", "data": [1.0]}]}, "data_points.0.source"),
    ({"data_points": [{"source": "s", "data": [[1.0] * 9]}]}, "data_points.0.data"),
    (
        {"data_points": [{"source": "s", "data": [1.0, 2.0], "timestamp": [1.0]}]},
        "data_points.0.timestamp",
    ),
    (
        {
            "data_points": [
                {"source": "s", "data": [1.0], "timestamp": 5.0},
                {"source": "t", "data": [1.0], "timestamp": 1.0},
                {"source": "s", "data": [2.0], "timestamp": 4.0},
            ]
        },
        "data_points.2.timestamp",
    ),
    (
        {
            "data_points": [
                {"source": "s", "data": [1.0]},
                {"source": "s", "data": [[1.0, 2.0]]},
            ]
        },
        "data_points.1.data",
    ),
    ({"data_points": [{"source": "s", "data": list(range(501))}]}, "data_points"),
    ({"data_points": [{"source": f"s{i}", "data": 1.0} for i in range(501)]}, "data_points"),
    (
        {"data_points": [{"source": "s", "data": [1.0]}], "config": {"target_channel": 1}},
        "config.target_channel",
    ),
    ({"data_points": [{"source": "s", "data": [1.0]}], "config": {"speed": 1}}, "config.speed"),
    ({"data_points": [{"source": "s", "data": [1.0], "extra": 1}]}, "data_points.0.extra"),
    ({"job_id": "bad id!"}, "job_id"),
    ({"job_id": "callback-secret"}, "job_id"),
    ({"callback_url": "http://evil.example.com/hook"}, "callback_url"),
    ({"callback_url": "ftp://127.0.0.1/hook"}, "callback_url"),
    ({"callback_url": "http://user:pw@127.0.0.1/hook"}, "callback_url"),
    ({"callback_url": "http://127.0.0.1.evil.example.com/"}, "callback_url"),
]


def test_bad_requests_are_rejected_whole(client, admin_key):
    for change, field in _BAD_REQUESTS:
        body = {"job_id": "j", "data_points": [{"source": "ok", "data": [1.0, 2.0]}], **change}
        r = client.post("/api/v1/process/batch", json=body, headers=auth(admin_key))
        assert r.status_code == 422, (change, r.text)
        assert r.json()["error"]["field"] == field, (change, r.text)
        if any(bad in str(change) for bad in ("True", "False", "'1.5'")):
            assert "not booleans or strings" in r.json()["error"]["message"]
    # nothing was created by any of them
    assert client.get("/api/v1/jobs/j", headers=auth(admin_key)).status_code == 404
    assert client.get("/api/v1/sources", headers=auth(admin_key)).json() == {"sources": []}


def test_non_finite_values_are_rejected_naming_the_entry(client, admin_key):
    s = '{"source": "s", "data": [1.0, 2.0], "timestamp": [1, 2]}'
    t = '{"source": "t", "data": [1.0]}'
    cases = [
        (f'[{s}, {t}, {{"source": "s", "data": [3.0, NaN]}}]', "data_points.2.data"),
        (f'[{t}, {s}, {{"source": "s", "data": [[Infinity]]}}]', "data_points.2.data"),
        (f'[{s}, {{"source": "s", "data": 3.0, "timestamp": NaN}}]', "data_points.1.timestamp"),
        (f'[{t}, {s}, {{"source": "t", "data": [2.0, -1e101]}}]', "data_points.2.data"),
    ]
    for points, field in cases:
        r = client.post(
            "/api/v1/process/batch",
            content='{"job_id": "n", "data_points": ' + points + "}",
            headers={**auth(admin_key), "Content-Type": "application/json"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field, r.text
    assert client.get("/api/v1/jobs/n", headers=auth(admin_key)).status_code == 404


def test_state_conflicts_fail_only_their_source(client, admin_key):
    r = client.post(
        "/api/v1/process/realtime",
        json={"source": "uni", "data": [1.0, 2.0], "timestamp": [1.0, 2.0]},
        headers=auth(admin_key),
    )
    assert r.status_code == 200
    body = {
        "job_id": "mixed",
        "data_points": [
            {"source": "uni", "data": [[1.0, 2.0]], "timestamp": 3.0},  # 2 channels: conflict
            {"source": "fresh", "data": [1.0, 2.0, 3.0], "timestamp": 3.0},
        ],
    }
    assert (
        client.post("/api/v1/process/batch", json=body, headers=auth(admin_key)).status_code == 202
    )
    job = _wait(client, admin_key, "mixed")
    assert job["status"] == "failed"
    assert "1 of 2 sources failed" in job["error"]
    assert job["result"]["errors"][0]["source"] == "uni"
    assert "channel" in job["result"]["errors"][0]["error"]
    fresh = job["result"]["by_source"][1]
    assert fresh["source"] == "fresh"
    assert fresh["points"] == 3
    assert fresh["last"]["sequence"] == 3


def _signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_callback_signed_retried_and_recorded(client, admin_key):
    dev = _key(client, admin_key, "developer")
    assert client.get("/api/v1/jobs/callback-secret", headers=auth(dev)).status_code == 403
    r = client.get("/api/v1/jobs/callback-secret", headers=auth(admin_key))
    assert r.status_code == 200
    secret = r.json()["secret"]
    other_secret = client.get(
        "/api/v1/jobs/callback-secret", headers=auth(second_tenant_admin(client))
    ).json()["secret"]
    assert other_secret != secret

    with _Receiver([500, 200]) as receiver:
        body = {
            "job_id": "cb",
            "data_points": [{"source": "s", "data": [1.0, 2.0, 1.5], "timestamp": [1, 2, 3]}],
            "callback_url": receiver.url,
        }
        assert client.post("/api/v1/process/batch", json=body, headers=auth(dev)).status_code == 202
        job = _wait(
            client, dev, "cb", until=lambda j: j["callback_status"] not in (None, "pending")
        )
    assert job["callback_status"] == "delivered after 2 attempts"
    assert len(receiver.received) == 2
    (h1, b1), (h2, b2) = receiver.received
    assert b1 == b2  # the same signed body on every attempt
    assert h1["x-nqp-signature"] == h2["x-nqp-signature"] == _signature(secret, b2)
    assert h2["x-nqp-signature"] != _signature(other_secret, b2)
    payload = json.loads(b2)
    assert payload["timestamp"] == int(h2["x-nqp-timestamp"])
    assert payload["job_id"] == "cb"
    assert payload["status"] == "succeeded"
    assert payload["result"] == job["result"]


def test_callback_failures_are_recorded(client, admin_key):
    with _Receiver([500, 503, 500]) as down, _Receiver([404]) as refusing:
        for job_id, url in (("down", down.url), ("refused", refusing.url)):
            body = {
                "job_id": job_id,
                "data_points": [{"source": job_id, "data": [1.0]}],
                "callback_url": url,
            }
            r = client.post("/api/v1/process/batch", json=body, headers=auth(admin_key))
            assert r.status_code == 202
        done = lambda j: j["callback_status"] not in (None, "pending")  # noqa: E731
        assert _wait(client, admin_key, "down", until=done)["callback_status"] == (
            "failed: HTTP 500 after 3 attempts"
        )
        assert _wait(client, admin_key, "refused", until=done)["callback_status"] == (
            "failed: HTTP 404 after 1 attempt"
        )
    assert len(down.received) == 3
    assert len(refusing.received) == 1  # a 4xx refusal is not retried


def test_callback_url_rules():
    allowed = ["hooks.example.com", "127.0.0.1:9000"]
    assert callback_url_problem("https://HOOKS.example.com/x?y=1", allowed) is None
    assert callback_url_problem("http://127.0.0.1:9000/", allowed) is None
    assert callback_url_problem("http://127.0.0.1:9001/", allowed) is not None
    assert callback_url_problem("http://hooks.example.com@evil.com/", allowed) is not None
    assert callback_url_problem("https://evil.com/?hooks.example.com", allowed) is not None
    assert callback_url_problem("https://hooks.example.com:99999/", allowed) is not None
    assert callback_url_problem("//hooks.example.com/", allowed) is not None
    assert "no callback hosts" in callback_url_problem("https://a.b/", [])


def test_sources_per_tenant_limit_counts_the_batch(client, admin_key, monkeypatch):
    svc = client.app.state.runtime.settings.service
    monkeypatch.setattr(svc, "max_sources_per_tenant", 3)
    one = {"job_id": "a", "data_points": [{"source": "s1", "data": [1.0]}]}
    assert (
        client.post("/api/v1/process/batch", json=one, headers=auth(admin_key)).status_code == 202
    )
    _wait(client, admin_key, "a")
    three_new = {
        "job_id": "b",
        "data_points": [{"source": s, "data": [1.0]} for s in ("s1", "s2", "s3", "s4")],
    }
    r = client.post("/api/v1/process/batch", json=three_new, headers=auth(admin_key))
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "data_points"
    assert client.get("/api/v1/jobs/b", headers=auth(admin_key)).status_code == 404
    two_new = dict(three_new, data_points=three_new["data_points"][:3])
    assert (
        client.post("/api/v1/process/batch", json=two_new, headers=auth(admin_key)).status_code
        == 202
    )
    assert _wait(client, admin_key, "b")["status"] == "succeeded"


@pytest.mark.parametrize("engine_processes", [1, 2])
def test_chunks_in_flight_keep_each_sources_order(tmp_path, database_url, engine_processes):
    # batch_max_size=2: five sources go in chunks of two per engine process, two chunks of
    # each engine process fed at once (with two processes, each batches its own sources)
    settings = make_settings(
        tmp_path / "data", database_url, batch_max_size=2, engine_processes=engine_processes
    )
    app = create_app(settings)
    app.include_router(batch_routes.router)
    with TestClient(app) as c:
        c.app.state.job_runner = JobRunner(c.app.state.runtime, wave_points=6)  # 3-point rounds
        admin = (tmp_path / "data" / "admin.key").read_text().strip()
        tenant = _tenant(c, admin)
        r = c.post(  # "b" gets one channel first, so the job's two-channel "b" conflicts
            "/api/v1/process/realtime",
            json={"source": "b", "data": [1.0], "timestamp": [1.0]},
            headers=auth(admin),
        )
        assert r.status_code == 200
        sources = ["a", "c", "d", "e"]
        entries = _entries(3, sources, per_entry=5, rounds=3)
        entries.insert(1, {"source": "b", "data": [[1.0, 2.0]] * 4, "timestamp": [2.0, 3, 4, 5]})
        r = c.post("/api/v1/process/batch", json={"data_points": entries}, headers=auth(admin))
        assert r.status_code == 202, r.text
        job = _wait(c, admin, r.json()["job_id"])
        assert job["status"] == "failed"
        assert [e["source"] for e in job["result"]["errors"]] == ["b"]
        for s in sources:
            _assert_stored_as_one_stream(c, admin, settings, tenant, s, entries)
        stored_b = c.get(
            "/api/v1/predictions", params={"source": "b", "limit": 100}, headers=auth(admin)
        ).json()["predictions"]
        assert [p["sequence"] for p in stored_b] == [1]  # the realtime point only


def test_leases_keep_running_work_and_close_what_a_dead_gateway_left(client, admin_key):
    from datetime import timedelta

    from sqlalchemy import update

    from nqp import store
    from nqp.store.models import Job, utcnow

    runtime = client.app.state.runtime
    tenant = _tenant(client, admin_key)
    long_ago = utcnow() - timedelta(seconds=10 * runtime.settings.service.job_lease_s)

    async def two_old_running_jobs() -> tuple[str, str]:
        async with runtime.sessions() as session:
            ours = await store.create_job(session, tenant_id=tenant, request={}, sources=["s"])
            dead = await store.create_job(session, tenant_id=tenant, request={}, sources=["s"])
            await session.execute(
                update(Job)
                .where(Job.id.in_([ours.id, dead.id]))
                .values(status="running", created_at=long_ago)
            )
            await session.commit()
            return ours.id, dead.id

    ours, dead = client.portal.call(two_old_running_jobs)
    # this gateway runs "ours" (a task holding its lease); nobody runs "dead" any more
    gate = client.portal.call(asyncio.Event)

    def hold_lease() -> None:  # returns nothing: the portal would await a returned task
        runtime.spawn(gate.wait(), name="holds-a-lease", lease=("job", tenant, ours))

    client.portal.call(hold_lease)
    assert client.portal.call(runtime.renew_leases) == (1, 0)
    assert _wait(client, admin_key, ours, until=lambda j: True)["status"] == "running"
    closed = _wait(client, admin_key, dead)
    assert closed["status"] == "failed"
    assert "interrupted" in closed["error"]
    client.portal.call(gate.set)  # the task ends: its lease is no longer renewed
    assert client.portal.call(runtime.renew_leases) == (0, 0)  # renewed a moment ago


def test_an_unexpected_error_fails_the_job_naming_it(client, admin_key, monkeypatch):
    runtime = client.app.state.runtime
    calls = []

    async def broken_restore(internals: list[str]) -> None:
        calls.append(internals)
        raise RuntimeError("checkpoint store unreachable")

    monkeypatch.setattr(runtime, "ensure_restored_many", broken_restore)
    body = {"job_id": "boom", "data_points": _entries(1, ["x", "y"], per_entry=3, rounds=2)}
    r = client.post("/api/v1/process/batch", json=body, headers=auth(admin_key))
    assert r.status_code == 202, r.text
    job = _wait(client, admin_key, "boom")
    assert job["status"] == "failed"
    assert job["error"] == "internal error: RuntimeError: checkpoint store unreachable"
    assert calls  # it did run


def test_batch_after_restart_continues_checkpointed_sources(tmp_path, database_url):
    """Sources known only from the database (checkpointed at shutdown), one back in memory
    and a new one, restored in one go by the job: each continues as one unbroken stream."""
    settings = make_settings(tmp_path / "data", database_url)
    first = _entries(5, ["a", "b", "m"], per_entry=6, rounds=2)
    with TestClient(create_app(settings)) as c:
        admin = (tmp_path / "data" / "admin.key").read_text().strip()
        tenant = _tenant(c, admin)
        for e in first:
            r = c.post("/api/v1/process/realtime", json=e, headers=auth(admin))
            assert r.status_code == 200, r.text
    second = _entries(6, ["a", "b", "m", "n"], per_entry=4, rounds=2)
    for e in second:
        e["timestamp"] = [t + 100.0 for t in e["timestamp"]]
    app = create_app(settings)
    app.include_router(batch_routes.router)
    with TestClient(app) as c:
        c.app.state.job_runner = JobRunner(c.app.state.runtime, wave_points=8)
        early, rest = second[2], second[:2] + second[3:]  # "m" comes back before the job
        r = c.post("/api/v1/process/realtime", json=early, headers=auth(admin))
        assert r.status_code == 200, r.text
        r = c.post("/api/v1/process/batch", json={"data_points": rest}, headers=auth(admin))
        assert r.status_code == 202, r.text
        assert _wait(c, admin, r.json()["job_id"])["status"] == "succeeded"
        for s in ["a", "b", "m", "n"]:
            _assert_stored_as_one_stream(c, admin, settings, tenant, s, first + second)


def test_plan_groups_each_sources_points_in_request_order(tmp_path):
    """Univariate points given as numbers, lists or one-element rows form one column;
    multivariate rows keep their channels."""

    class _Runtime:
        settings = make_settings(tmp_path)

    body = batch_routes.BatchRequest.model_validate(
        {
            "data_points": [
                {"source": "u", "data": 1.0, "timestamp": 1.0},
                {"source": "m", "data": [[1.0, 2.0], [3.0, 4.0]], "timestamp": [1.0, 2.0]},
                {"source": "u", "data": [[2.0], [3.0]], "timestamp": [2.0, 3.0]},
                {"source": "u", "data": [4.0, 5.0], "timestamp": 4.0},
                {"source": "m", "data": [[5.0, 6.0]], "timestamp": 3.0},
            ]
        }
    )
    u, m = batch_routes.plan_batch(body, _Runtime(), now=0.0)  # type: ignore[arg-type]
    assert (u.source, m.source) == ("u", "m")
    np.testing.assert_array_equal(u.values, [[1.0], [2.0], [3.0], [4.0], [5.0]])
    np.testing.assert_array_equal(u.timestamps, [1.0, 2.0, 3.0, 4.0, 4.0])
    np.testing.assert_array_equal(m.values, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(m.timestamps, [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------- waiting on a job
def _held_job(client, key: str, monkeypatch, job_id: str) -> asyncio.Event:
    """Submit a job that stays ``running`` until the returned event is set."""
    runtime = client.app.state.runtime
    gate = client.portal.call(asyncio.Event)
    restore = runtime.ensure_restored_many

    async def held(internals: list[str]) -> None:
        await gate.wait()
        await restore(internals)

    monkeypatch.setattr(runtime, "ensure_restored_many", held)
    body = {"job_id": job_id, "data_points": _entries(2, ["w"], per_entry=3, rounds=2)}
    r = client.post("/api/v1/process/batch", json=body, headers=auth(key))
    assert r.status_code == 202, r.text
    _wait(client, key, job_id, until=lambda j: j["status"] == "running")
    return gate


class _Waiter(threading.Thread):
    """``GET /api/v1/jobs/{job_id}?wait=…`` in a thread; ``response`` and ``seconds`` after."""

    def __init__(self, client, key: str, job_id: str, wait: float) -> None:
        super().__init__(daemon=True)
        self.args_ = (client, key, job_id, wait)
        self.response = None
        self.seconds = float("nan")

    def run(self) -> None:
        client, key, job_id, wait = self.args_
        start = time.monotonic()
        self.response = client.get(
            f"/api/v1/jobs/{job_id}", params={"wait": wait}, headers=auth(key)
        )
        self.seconds = time.monotonic() - start

    def result(self) -> dict:
        self.join(timeout=60)
        assert self.response is not None, "the wait never answered"
        assert self.response.status_code == 200, self.response.text
        return self.response.json()


def test_waiting_on_a_job_answers_when_it_ends(client, admin_key, monkeypatch):
    gate = _held_job(client, admin_key, monkeypatch, "held")
    # only the job's own end can answer before the wait runs out
    monkeypatch.setattr(waits, "RECHECK_S", 3600.0)
    start = time.monotonic()
    r = client.get("/api/v1/jobs/held", params={"wait": 0.3}, headers=auth(admin_key))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running"  # the wait ran out: the status as it is
    assert time.monotonic() - start >= 0.3

    waiter = _Waiter(client, admin_key, "held", 25.0)
    waiter.start()
    time.sleep(0.3)
    client.portal.call(gate.set)
    job = waiter.result()
    assert job["status"] == "succeeded", job
    assert job["result"]["points"] == 6
    assert waiter.seconds < 20.0  # woken by the end, long before the 25 s ran out
    # a finished job answers at once, whatever the wait
    again = _Waiter(client, admin_key, "held", 25.0)
    again.start()
    assert again.result() == job
    assert again.seconds < 20.0


def test_waiting_sees_a_job_ended_elsewhere(client, admin_key):
    """A job another gateway runs (or a lease expiry closes) ends in the database only."""
    from nqp import store

    runtime = client.app.state.runtime
    tenant = _tenant(client, admin_key)

    async def running_job() -> str:
        async with runtime.sessions() as session:
            job = await store.create_job(session, tenant_id=tenant, request={}, sources=["s"])
            await store.update_job(session, tenant_id=tenant, job_id=job.id, status="running")
            await session.commit()
            return job.id

    async def finish(job_id: str) -> None:
        async with runtime.sessions() as session:
            await store.update_job(session, tenant_id=tenant, job_id=job_id, status="succeeded")
            await session.commit()

    job_id = client.portal.call(running_job)
    waiter = _Waiter(client, admin_key, job_id, 25.0)
    waiter.start()
    time.sleep(0.3)
    client.portal.call(finish, job_id)
    assert waiter.result()["status"] == "succeeded"
    assert waiter.seconds < 20.0  # seen by a re-read, long before the 25 s ran out


def test_job_waits_are_validated_and_tenant_scoped(client, admin_key):
    body = {"job_id": "quick", "data_points": [{"source": "s", "data": [1.0, 2.0]}]}
    r = client.post("/api/v1/process/batch", json=body, headers=auth(admin_key))
    assert r.status_code == 202, r.text
    for bad in (-1, waits.MAX_WAIT_S + 1, "soon", "nan"):
        r = client.get("/api/v1/jobs/quick", params={"wait": bad}, headers=auth(admin_key))
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["field"] == "wait", r.text
    # another tenant's job is unknown at once, not waited for
    other = second_tenant_admin(client)
    start = time.monotonic()
    r = client.get("/api/v1/jobs/quick", params={"wait": 25}, headers=auth(other))
    assert r.status_code == 404
    assert time.monotonic() - start < 20.0
    assert _wait(client, admin_key, "quick")["status"] == "succeeded"


def test_closing_ends_job_waits_at_once(client, admin_key, monkeypatch):
    gate = _held_job(client, admin_key, monkeypatch, "held")
    monkeypatch.setattr(waits, "RECHECK_S", 3600.0)
    waiter = _Waiter(client, admin_key, "held", 25.0)
    waiter.start()
    time.sleep(0.3)
    client.portal.call(client.app.state.runtime.ends.close)  # what `nqp serve` does on SIGTERM
    assert waiter.result()["status"] == "running"
    assert waiter.seconds < 20.0
    late = _Waiter(client, admin_key, "held", 25.0)  # a wait begun while closing: none
    late.start()
    assert late.result()["status"] == "running"
    assert late.seconds < 20.0
    client.portal.call(gate.set)
    assert _wait(client, admin_key, "held")["status"] == "succeeded"
