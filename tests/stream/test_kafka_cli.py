"""The distributed mode as an operator runs it: `nqp worker` and `nqp serve --mode
distributed` processes, a demo scenario through the gateway's public HTTP API, and a
gateway killed with SIGKILL mid-stream and started again."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from nqp.scenarios import run_scenario
from nqp.scenarios.market import DEFAULT_TICKERS
from nqp.stream.tansu import free_port

from .conftest import KAFKA_OPTIONS, stream_settings, wait_for, worker_env

pytestmark = pytest.mark.services


def _env(settings) -> dict[str, str]:
    env = worker_env(settings)
    env["NQP_STREAM__KAFKA_OPTIONS"] = json.dumps(KAFKA_OPTIONS)
    return env


def _cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "nqp.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _gateway(port: int, data_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = _cli(
        ["serve", "--mode", "distributed", "--port", str(port), "--data-dir", str(data_dir)],
        env,
        log,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the gateway exited:\n{log.read_text()[-3000:]}", pytrace=False)
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 90, "the distributed gateway's /readyz", every_s=0.3)
    return proc


def _stored(base: str, key: str, source: str) -> list[dict]:
    rows, cursor = [], None
    while True:
        params = {"source": source, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        r = httpx.get(
            base + "/api/v1/predictions",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        rows += body["predictions"]
        cursor = body.get("next_cursor")
        if not cursor:
            return rows


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cli_processes_serve_a_scenario_and_a_killed_gateway_loses_nothing(
    kafka_bootstrap, stream_db, redis_url, tmp_path
):
    url, _ = stream_db
    env = _env(stream_settings(kafka_bootstrap, url, redis_url, reply_timeout_s=10.0))
    log = tmp_path / "processes.log"
    worker = _cli(["worker", "--worker-id", "cli-w1"], env, log)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "gw"
    gateway = _gateway(port, data_dir, env, log)
    try:
        admin = (data_dir / "admin.key").read_text().strip()
        r = httpx.post(
            base + "/api/v1/keys",
            json={"name": "demo", "role": "developer", "rate_limit_per_s": 100000},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 201, r.text
        key = r.json()["key"]

        # 1. a demo scenario through the distributed gateway: every point predicted, stored
        s = run_scenario("market", base, key, rate=50.0, duration=3.0, seed=4)
        assert s.points_generated == 150
        assert (s.points_sent, s.points_lost, s.errors, s.sequence_mismatches) == (150, 0, 0, 0)
        for ticker in DEFAULT_TICKERS:
            source = f"market.{ticker}"
            rows = wait_for(
                lambda source=source: (
                    (got := _stored(base, key, source)) and len(got) >= 30 and got
                ),
                30,
                f"the stored predictions of {source}",
            )
            assert [p["sequence"] for p in rows] == list(range(1, 31))

        # 2. a gateway killed mid-stream: every acknowledged point is stored exactly once, in
        # order; a point whose reply was lost with the gateway may still have been produced,
        # and is then stored too (never twice)
        acknowledged: dict[int, str] = {}
        stop = threading.Event()

        def feed() -> None:
            # each attempt is a new point: after a lost reply the point may have been
            # applied, and sending it again would be a second point (HTTP has no idempotency
            # key), so the feed moves on
            with httpx.Client(timeout=15) as client:
                for k in range(400):
                    if stop.is_set():
                        return
                    try:
                        r = client.post(
                            base + "/api/v1/process/realtime",
                            json={"source": "k", "data": float(k % 5), "timestamp": 1e6 + k},
                            headers={"Authorization": f"Bearer {key}"},
                        )
                    except httpx.HTTPError:
                        time.sleep(0.05)  # the gateway is down
                        continue
                    if r.status_code == 200:
                        acknowledged[k] = r.json()["prediction_id"]
                    elif r.status_code in (502, 503):
                        time.sleep(0.05)
                    else:
                        stop.set()
                        raise AssertionError(r.text)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        wait_for(lambda: len(acknowledged) >= 20, 30, "20 acknowledged points")
        gateway.kill()
        gateway.wait()
        before_kill = len(acknowledged)
        gateway = _gateway(port, data_dir, env, log)
        wait_for(lambda: len(acknowledged) >= before_kill + 20, 60, "points after the restart")
        stop.set()
        feeder.join(30)
        rows = wait_for(
            lambda: len(got := _stored(base, key, "k")) >= len(acknowledged) and got,
            30,
            "the stored predictions of k",
        )
        ids = [p["prediction_id"] for p in rows]
        assert len(ids) == len(set(ids))  # nothing stored twice
        assert set(acknowledged.values()) <= set(ids)  # nothing acknowledged is lost
        assert [p["sequence"] for p in rows] == list(range(1, len(rows) + 1))
        # every stored point is a distinct point of the feed, in the order sent
        stamps = [p["timestamp"] for p in rows]
        assert stamps == sorted(set(stamps))
        assert {1e6 + k for k in acknowledged} <= set(stamps)
    finally:
        _stop(gateway)
        _stop(worker)
    assert worker.returncode == 0, log.read_text()[-3000:]
