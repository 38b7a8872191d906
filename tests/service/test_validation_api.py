"""Validation runs over HTTP: queued -> succeeded, summary, report, isolation, limits."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nqp import store
from nqp.service.api.routes import validation
from nqp.service.app import create_app

from .conftest import SMALL_ENGINE, auth, make_settings, new_key, second_tenant_admin

RUNS = "/api/v1/validation/runs"


@pytest.fixture
def client(tmp_path, database_url) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path / "data", database_url))
    if not any(getattr(r, "path", "").startswith(validation.router.prefix) for r in app.routes):
        app.include_router(validation.router)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def dev(client, admin_key) -> dict[str, str]:
    return auth(new_key(client, admin_key, role="developer"))


def _wait(client, run_id: str, headers: dict, limit_s: float = 240.0) -> dict:
    """Poll until the run has finished (the limit only guards against a hang)."""
    deadline = time.monotonic() + limit_s
    while True:
        r = client.get(f"{RUNS}/{run_id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] in ("queued", "running", "succeeded", "failed")
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _invalid(client, body: dict, headers: dict) -> dict:
    r = client.post(RUNS, json=body, headers=headers)
    assert r.status_code == 422, r.text
    return r.json()["error"]


def test_dataset_run_summary_report_and_isolation(client, admin_key, dev):
    r = client.post(RUNS, json={"dataset": "mackey_glass", "points": 300}, headers=dev)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert r.json()["status"] == "queued"
    assert client.get(f"{RUNS}/{run_id}/report", headers=dev).status_code in (200, 409)
    body = _wait(client, run_id, dev)
    assert body["status"] == "succeeded", body
    s = body["summary"]
    assert 0.0 <= s["score"] <= 100.0
    warmup = SMALL_ENGINE["engine"]["warmup"]
    assert s["dataset"] == "mackey_glass"
    assert s["points"] == 300
    assert s["horizon"] == 1
    assert s["scored"] == 300 - (warmup + 1) - 1  # origins after the burn-in with an outcome
    assert 0.0 <= s["hit_rate_p_value"] <= 1.0
    assert s["hit_rate"] is None or 0.0 <= s["hit_rate"] <= 1.0
    assert s["brier"] >= 0.0
    assert 0.0 <= s["ece"] <= 1.0
    assert s["nrmse"] > 0.0
    assert set(s["ablations"]) == {"both", "neuromorphic", "quantum", "observation"}
    assert s["baselines"]
    assert all(b["nrmse"] >= 0.0 for b in s["baselines"].values())
    assert body["request"]["seed"] == 0
    assert body["request"]["points"] == 300
    assert body["report"] == f"{RUNS}/{run_id}/report"

    folder = Path(client.app.state.runtime.data_dir) / "reports" / run_id
    assert (folder / "index.html").is_file()
    assert (folder / "result.json").is_file()
    page = client.get(body["report"], headers=dev)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text
    assert "data:image/png;base64," in page.text
    assert 'src="reliability.png"' not in page.text

    viewer = auth(new_key(client, admin_key, role="viewer"))
    assert client.get(f"{RUNS}/{run_id}", headers=viewer).json()["summary"] == s
    assert client.post(RUNS, json={"dataset": "lorenz"}, headers=viewer).status_code == 403
    other = auth(second_tenant_admin(client))
    assert client.get(f"{RUNS}/{run_id}", headers=other).status_code == 404
    assert client.get(f"{RUNS}/{run_id}/report", headers=other).status_code == 404
    assert client.get(f"{RUNS}/{'0' * 32}", headers=dev).status_code == 404
    # the list: newest first, the tenant's runs only, bounded
    second = client.post(RUNS, json={"dataset": "lorenz", "points": 200}, headers=dev).json()
    listed = client.get(RUNS, headers=viewer).json()["runs"]
    assert [run["id"] for run in listed] == [second["id"], run_id]
    assert listed[1]["summary"] == s
    assert [r["id"] for r in client.get(f"{RUNS}?limit=1", headers=dev).json()["runs"]] == [
        second["id"]
    ]
    assert client.get(RUNS, headers=other).json() == {"runs": []}
    bad = client.get(f"{RUNS}?limit=0", headers=dev)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "limit"
    _wait(client, second["id"], dev)

    # a gateway without the report folder redraws it from the stored result
    shutil.rmtree(folder)
    again = client.get(body["report"], headers=dev)
    assert again.status_code == 200
    assert "data:image/png;base64," in again.text


def test_csv_run(client, dev):
    n = 120
    t = np.arange(n, dtype=float)
    values = (np.sin(0.3 * t) + 0.05 * np.cos(1.7 * t)).tolist()
    body = {
        "csv": {"values": values, "timestamps": (1000.0 + 60.0 * t).tolist(), "name": "sine"},
        "horizon": 2,
        "seed": 3,
        "variants": ["both"],
    }
    r = client.post(RUNS, json=body, headers=dev)
    assert r.status_code == 202, r.text
    done = _wait(client, r.json()["id"], dev)
    assert done["status"] == "succeeded", done
    s = done["summary"]
    warmup = SMALL_ENGINE["engine"]["warmup"]
    assert s["dataset"] == "sine"
    assert s["points"] == n
    assert s["horizon"] == 2
    assert s["scored"] == n - (warmup + 2) - 2
    assert set(s["ablations"]) == {"both"}
    assert 0.0 <= s["score"] <= 100.0
    assert done["request"]["seed"] == 3


def test_invalid_requests_name_the_field(client, dev):
    err = _invalid(client, {"dataset": "nope"}, dev)
    assert err["field"] == "dataset"
    assert "mackey_glass" in err["message"]
    assert _invalid(client, {}, dev)["field"] == "dataset"
    both = {"dataset": "lorenz", "csv": {"values": [1.0] * 100}}
    assert _invalid(client, both, dev)["field"] == "dataset"
    assert _invalid(client, {"dataset": "lorenz", "points": 6000}, dev)["field"] == "points"
    assert _invalid(client, {"dataset": "lorenz", "horizon": 1000}, dev)["field"] == "horizon"
    assert _invalid(client, {"csv": {"values": [1.0] * 10}}, dev)["field"] == "csv.values"
    nan = [1.0] * 100
    r = client.post(
        RUNS,
        content=b'{"csv": {"values": [1.0, 2.0, 3.0, NaN]}}',
        headers={**dev, "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "csv.values[3]"
    ragged = {"csv": {"values": [[1.0, 2.0]] * 50 + [[1.0]] * 50}}
    assert _invalid(client, ragged, dev)["field"] == "csv.values[50]"
    ts = list(range(100))
    ts[40] = 0
    back = {"csv": {"values": nan, "timestamps": ts}}
    assert _invalid(client, back, dev)["field"] == "csv.timestamps[40]"
    short_ts = {"csv": {"values": nan, "timestamps": [0.0, 1.0]}}
    assert _invalid(client, short_ts, dev)["field"] == "csv.timestamps"
    pts = {"csv": {"values": nan}, "points": 100}
    assert _invalid(client, pts, dev)["field"] == "points"
    chan = {"csv": {"values": nan, "target_channel": 1}}
    assert _invalid(client, chan, dev)["field"] == "csv.target_channel"


def test_report_conflict_while_running_and_busy_limit(client, dev):
    runtime = client.app.state.runtime

    async def queued_run() -> str:
        async with runtime.sessions() as session:
            tenant = await store.get_or_create_tenant(session, name="default")
            row = await store.create_validation_run(
                session, tenant_id=tenant.id, request={"dataset": "lorenz"}
            )
            await session.commit()
            return row.id

    run_id = client.portal.call(queued_run)
    assert client.get(f"{RUNS}/{run_id}", headers=dev).json()["status"] == "queued"
    r = client.get(f"{RUNS}/{run_id}/report", headers=dev)
    assert r.status_code == 409
    assert "queued" in r.json()["error"]["message"]

    gate = validation.validation_gate(runtime)
    gate.inside = validation.MAX_RUNS
    try:
        r = client.post(RUNS, json={"csv": {"values": [1.0, 2.0] * 50}}, headers=dev)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
    finally:
        gate.inside = 0


def test_failed_run_records_the_error_and_frees_its_slot(client, dev, monkeypatch):
    from nqp.exceptions import InvalidInputError

    def boom(*args, **kwargs):
        raise InvalidInputError("the engine refused the series")

    monkeypatch.setattr(validation, "walk_forward", boom)
    r = client.post(RUNS, json={"csv": {"values": [1.0, 2.0] * 50}}, headers=dev)
    assert r.status_code == 202, r.text
    done = _wait(client, r.json()["id"], dev)
    assert done["status"] == "failed"
    assert done["summary"] is None
    assert done["error"] == "the engine refused the series"
    assert done["finished_at"] is not None
    assert client.get(f"{RUNS}/{done['id']}/report", headers=dev).status_code == 409
    assert validation.validation_gate(client.app.state.runtime).inside == 0


def test_waiting_on_a_run_answers_when_it_ends(client, dev, monkeypatch):
    import threading

    from nqp.exceptions import InvalidInputError
    from nqp.service import waits

    release = threading.Event()

    def held(*args, **kwargs):  # the run's work, in its worker thread: ends when released
        release.wait(60)
        raise InvalidInputError("released")

    monkeypatch.setattr(validation, "_run", held)
    monkeypatch.setattr(waits, "RECHECK_S", 3600.0)  # only the run's end can wake a wait
    r = client.post(RUNS, json={"csv": {"values": [1.0, 2.0] * 50}}, headers=dev)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    for bad in (-1, waits.MAX_WAIT_S + 1, "soon"):
        bad_r = client.get(f"{RUNS}/{run_id}", params={"wait": bad}, headers=dev)
        assert bad_r.status_code == 422, bad_r.text
        assert bad_r.json()["error"]["field"] == "wait"
    start = time.monotonic()
    early = client.get(f"{RUNS}/{run_id}", params={"wait": 0.3}, headers=dev)
    assert early.status_code == 200, early.text
    assert early.json()["status"] in ("queued", "running")  # the wait ran out
    assert time.monotonic() - start >= 0.3

    answer: dict = {}

    def waiter() -> None:
        t0 = time.monotonic()
        answer["response"] = client.get(f"{RUNS}/{run_id}", params={"wait": 25}, headers=dev)
        answer["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    time.sleep(0.3)
    release.set()
    thread.join(60)
    assert answer["response"].status_code == 200, answer["response"].text
    assert answer["response"].json()["status"] == "failed"
    assert answer["response"].json()["error"] == "released"
    assert answer["seconds"] < 20.0  # woken by the run's end, long before the 25 s ran out
