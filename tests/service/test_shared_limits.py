"""Rate limits shared through Redis by two gateway instances; Redis down keeps the API up.

Two apps (two runtimes, two TestClients) on one SQLite file stand for two gateway
processes behind a load balancer. The limiter key is the API key's id (a fresh UUID per
test) under the runtime's ``nqp-limits`` prefix, so tests never share a window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nqp.service.app import create_app

from .conftest import auth, make_settings

pytestmark = pytest.mark.services

LIMIT = 3


def _pair(tmp_path: Path, redis_url: str | None) -> Iterator[tuple[TestClient, TestClient, str]]:
    db = f"sqlite:///{tmp_path / 'nqp.db'}"
    with ExitStack() as stack:
        clients = []
        for _ in range(2):  # started one after the other: the first bootstraps the admin key
            app = create_app(make_settings(tmp_path / "data", db, redis_url=redis_url))
            clients.append(stack.enter_context(TestClient(app)))
        admin = (tmp_path / "data" / "admin.key").read_text().strip()
        yield clients[0], clients[1], admin


@pytest.fixture
def shared(tmp_path: Path, redis_url: str) -> Iterator[tuple[TestClient, TestClient, str]]:
    yield from _pair(tmp_path, redis_url)


@pytest.fixture
def separate(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, str]]:
    yield from _pair(tmp_path, None)


def _limited_key(client: TestClient, admin: str, **limits: float) -> str:
    r = client.post(
        "/api/v1/keys", json={"name": "limited", "role": "viewer", **limits}, headers=auth(admin)
    )
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _burst(a: TestClient, b: TestClient, key: str, n: int) -> tuple[list[int], float]:
    """``n`` requests alternating between the instances; (status codes, seconds taken)."""
    start = time.monotonic()
    codes = [
        (a if i % 2 == 0 else b).get("/api/v1/status", headers=auth(key)).status_code
        for i in range(n)
    ]
    return codes, time.monotonic() - start


def _burst_within_window(a, b, key) -> list[int]:
    """A burst of 4 * LIMIT requests that fits in the 1 s moving window (retried if not)."""
    for _ in range(3):
        codes, took = _burst(a, b, key, 4 * LIMIT)
        if took < 0.8:
            return codes
        time.sleep(1.1)  # let the window empty before trying again
    pytest.fail("could not send 12 requests within 0.8 s to test a 1 s window")


def test_two_instances_share_one_keys_rate_limit(shared) -> None:
    a, b, admin = shared
    key = _limited_key(a, admin, rate_limit_per_s=LIMIT)
    codes = _burst_within_window(a, b, key)
    assert codes.count(200) == LIMIT, codes
    assert codes.count(429) == 3 * LIMIT, codes
    assert codes[:LIMIT] == [200] * LIMIT  # the first ones pass, whichever instance served them
    r = b.get("/api/v1/status", headers=auth(key))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1


def test_two_instances_share_one_keys_daily_quota(shared) -> None:
    a, b, admin = shared
    key = _limited_key(a, admin, daily_quota=LIMIT)
    codes, _ = _burst(a, b, key, 3 * LIMIT)
    assert codes == [200] * LIMIT + [429] * (2 * LIMIT), codes


def test_without_redis_each_instance_counts_alone(separate) -> None:
    """The contrast that makes the shared tests meaningful: in-process limiters add up."""
    a, b, admin = separate
    key = _limited_key(a, admin, daily_quota=LIMIT)
    codes, _ = _burst(a, b, key, 4 * LIMIT)
    assert codes.count(200) == 2 * LIMIT, codes


def test_unreachable_redis_does_not_take_the_api_down(tmp_path: Path) -> None:
    """Nothing listens on port 1: requests still get answers (limits fall back or fail open)."""
    settings = make_settings(tmp_path / "data", redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        admin = (tmp_path / "data" / "admin.key").read_text().strip()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        r = client.get("/api/v1/status", headers=auth(admin))
        assert r.status_code == 200, r.text
        r = client.post(
            "/api/v1/process/realtime", json={"source": "s", "data": [1.0]}, headers=auth(admin)
        )
        assert r.status_code == 200, r.text
        assert client.get("/api/v1/status", headers=auth("nqp_wrong")).status_code == 401
