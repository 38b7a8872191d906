"""A real ``nqp serve`` process (small engine) for the end-to-end scenario tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nqp.demo import DemoServer

#: The engine of tests/service/conftest.py's SMALL_ENGINE, as NQP_* variables.
SMALL_ENGINE_ENV = {
    "NQP_NEUROMORPHIC__N_NEURONS": "48",
    "NQP_NEUROMORPHIC__READOUT_DIM": "16",
    "NQP_NEUROMORPHIC__PATTERN_NEURONS": "16",
    "NQP_QUANTUM__QUBIT_COUNT": "3",
    "NQP_QUANTUM__VIRTUAL_NODES": "2",
    "NQP_QUANTUM__READOUT_DIM": "8",
    "NQP_ENGINE__WARMUP": "5",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DemoServer]:
    data_dir: Path = tmp_path_factory.mktemp("scenario-server") / "data"
    srv = DemoServer("127.0.0.1", free_port(), data_dir, SMALL_ENGINE_ENV)
    srv.start(timeout_s=120)
    try:
        yield srv
    finally:
        srv.stop()


def make_key(server: DemoServer, **fields) -> str:
    """A developer key of the server's default tenant, through the API."""
    admin = (server.data_dir / "admin.key").read_text().strip()
    r = httpx.post(
        server.url + "/api/v1/keys",
        json={"name": "test", "role": "developer", **fields},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 201, r.text
    return r.json()["key"]
