"""A real uvicorn process: HTTP over loopback, SIGTERM drain, restart persistence."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nqp import Platform

from .conftest import SMALL_ENGINE, make_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "NQP_NEUROMORPHIC__N_NEURONS": str(SMALL_ENGINE["neuromorphic"]["n_neurons"]),
            "NQP_NEUROMORPHIC__READOUT_DIM": str(SMALL_ENGINE["neuromorphic"]["readout_dim"]),
            "NQP_NEUROMORPHIC__PATTERN_NEURONS": str(
                SMALL_ENGINE["neuromorphic"]["pattern_neurons"]
            ),
            "NQP_QUANTUM__QUBIT_COUNT": str(SMALL_ENGINE["quantum"]["qubit_count"]),
            "NQP_QUANTUM__VIRTUAL_NODES": str(SMALL_ENGINE["quantum"]["virtual_nodes"]),
            "NQP_QUANTUM__READOUT_DIM": str(SMALL_ENGINE["quantum"]["readout_dim"]),
            "NQP_ENGINE__WARMUP": str(SMALL_ENGINE["engine"]["warmup"]),
        }
    )
    if database_url:
        env["NQP_SERVICE__DATABASE_URL"] = database_url
    return env


class Server:
    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"server-{self.port}.log"
        cmd = [
            sys.executable,
            "-m",
            "nqp.cli",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
        ]
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            cmd, env=_env(database_url), stdout=self._out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not become ready:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._out.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("fresh_postgres_url")


def test_restart_keeps_keys_predictions_and_source_state(tmp_path, db):
    data_dir = tmp_path / "data"
    values = [float(v) for v in (1.0, 1.4, 1.1, 1.9, 1.3, 2.2, 1.6, 2.5, 1.9, 2.8, 2.1, 3.1)]
    stamps = [1000.0 + k for k in range(len(values))]
    server = Server(data_dir, db)
    try:
        admin = (data_dir / "admin.key").read_text().strip()
        h = {"Authorization": f"Bearer {admin}"}
        dev = httpx.post(server.url + "/api/v1/keys", json={"name": "d"}, headers=h).json()["key"]
        hd = {"Authorization": f"Bearer {dev}"}
        tenant = httpx.get(server.url + "/api/v1/status", headers=hd).json()["tenant"]
        r = httpx.post(
            server.url + "/api/v1/process/realtime",
            json={"source": "p", "data": values[:-1], "timestamp": stamps[:-1]},
            headers=hd,
        )
        assert r.status_code == 200
    finally:
        # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is clean too
        assert server.stop() in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "Application shutdown complete" in log
    assert admin not in log  # the path is logged, never the key
    assert str(data_dir / "admin.key") in log

    server = Server(data_dir, db)
    try:
        assert (data_dir / "admin.key").read_text().strip() == admin  # not re-created
        summary = httpx.get(server.url + "/api/v1/sources/p", headers=hd)
        assert summary.status_code == 200, summary.text
        assert summary.json()["points"] == len(values) - 1
        stored = httpx.get(
            server.url + "/api/v1/predictions", params={"source": "p"}, headers=hd
        ).json()
        assert [p["sequence"] for p in stored["predictions"]] == list(range(1, len(values)))
        after = httpx.post(
            server.url + "/api/v1/process/realtime",
            json={"source": "p", "data": [values[-1]], "timestamp": stamps[-1]},
            headers=hd,
        ).json()
    finally:
        server.stop()
    # the restored state predicts exactly what an uninterrupted platform predicts (the
    # engine names a tenant's source "<tenant>/<source>"; the name seeds its spike draws)
    reference = Platform(make_settings(tmp_path / "ref")).process(
        f"{tenant}/p", values, timestamp=stamps
    )
    assert after["sequence"] == reference.sequence
    for field in ("direction", "confidence", "expected_change", "uncertainty", "anomaly_score"):
        assert after[field] == pytest.approx(getattr(reference, field), abs=1e-12), field


def test_sigterm_answers_a_job_wait_at_once(tmp_path):
    """A long poll in flight must not hold up a graceful shutdown for its whole wait."""
    import asyncio
    import threading

    from nqp import store
    from nqp.store.db import make_engine, make_sessionmaker

    data_dir = tmp_path / "data"
    server = Server(data_dir, None)
    try:
        admin = (data_dir / "admin.key").read_text().strip()
        h = {"Authorization": f"Bearer {admin}"}
        tenant = httpx.get(server.url + "/api/v1/status", headers=h).json()["tenant"]

        async def running_job() -> str:  # a job nobody runs: it would stay "running"
            engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'nqp.db'}")
            try:
                async with make_sessionmaker(engine)() as session:
                    job = await store.create_job(
                        session, tenant_id=tenant, request={}, sources=["s"]
                    )
                    await store.update_job(
                        session, tenant_id=tenant, job_id=job.id, status="running"
                    )
                    await session.commit()
                    return job.id
            finally:
                await engine.dispose()

        job_id = asyncio.run(running_job())
        answer: list[httpx.Response] = []
        waiter = threading.Thread(
            target=lambda: answer.append(
                httpx.get(
                    f"{server.url}/api/v1/jobs/{job_id}",
                    params={"wait": 25},
                    headers=h,
                    timeout=60,
                )
            ),
            daemon=True,
        )
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive()  # it is waiting
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        waiter.join(timeout=60)
        answered = time.monotonic() - signalled
    finally:
        assert server.stop() in (0, -signal.SIGTERM)
    assert answer, "the wait never answered"
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json()["status"] == "running"
    assert answered < 15.0  # answered as shutdown began, not when the 25 s ran out
    assert "Application shutdown complete" in server.log.read_text()
