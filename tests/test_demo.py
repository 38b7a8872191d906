"""``nqp demo``: offline, the platform is right on chaos and says "coin flip" on a random
walk; live, it starts a server, feeds it the scenarios over HTTP and stops it again."""

from __future__ import annotations

import os
import socket
import stat

import httpx
import pytest
from typer.testing import CliRunner

from nqp.cli import app
from nqp.config import Settings
from nqp.demo import DemoServer, run_stream_demo

SMALL_ENGINE_ENV = {
    "NQP_NEUROMORPHIC__N_NEURONS": "48",
    "NQP_NEUROMORPHIC__READOUT_DIM": "16",
    "NQP_NEUROMORPHIC__PATTERN_NEURONS": "16",
    "NQP_QUANTUM__QUBIT_COUNT": "3",
    "NQP_QUANTUM__VIRTUAL_NODES": "2",
    "NQP_QUANTUM__READOUT_DIM": "8",
    "NQP_ENGINE__WARMUP": "5",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def small_engine(monkeypatch):
    for k, v in SMALL_ENGINE_ENV.items():
        monkeypatch.setenv(k, v)


def test_demo_is_right_on_mackey_glass_and_honest_on_a_random_walk():
    settings = Settings(neuromorphic={"n_neurons": 96}, quantum={"qubit_count": 4})
    lines: list[str] = []
    summary = run_stream_demo(settings, n_points=300, every=100, echo=lines.append)
    assert len(lines) == 1 + 2 * 4 + 2  # header, 2 sources x (t = 0, 100, 200, 299), summary
    mg, walk = summary.sources["mackey-glass"], summary.sources["random-walk"]
    assert mg.hit_rate > 0.9
    assert mg.p_value < 1e-10
    assert walk.p_value > 0.001  # no evidence against a fair coin
    assert abs(walk.mean_confidence - 0.5) < 0.1


def test_offline_demo_command(small_engine):
    result = CliRunner().invoke(app, ["demo", "--offline", "--points", "100", "--every", "99"])
    assert result.exit_code == 0, result.output
    assert "mackey-glass:" in result.output
    assert "binomial p" in result.output


def test_demo_command_rejects_bad_options():
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--reservoir", "nope"])
    assert result.exit_code == 2
    assert "reservoir" in result.output
    result = runner.invoke(app, ["demo", "--scenario", "stocks"])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output
    result = runner.invoke(app, ["demo", "--event", "crash@3"])
    assert result.exit_code == 2
    assert "EVENT@SECONDS" in result.output
    result = runner.invoke(app, ["demo", "-s", "iot", "--event", "vol_spike@3"])
    assert result.exit_code == 2
    assert "market" in result.output


def test_demo_starts_a_server_streams_the_market_and_stops(tmp_path, small_engine):
    data_dir, port = tmp_path / "demo", _free_port()
    args = ["demo", "-s", "market", "--duration", "3", "--rate", "100", "--exit"]
    args += ["--data-dir", str(data_dir), "--port", str(port)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"dashboard   http://127.0.0.1:{port}/" in out
    key_file = data_dir / "demo.key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert f"demo key    in {key_file}: {key}" in out  # the key goes to the demo terminal...
    log = (data_dir / "server.log").read_text()
    assert key not in log  # ...never into the server's log
    assert (data_dir / "admin.key").read_text().strip() not in log
    assert "Application startup complete" in log
    assert "== market ==" in out
    assert "points sent 300 of 300 produced (0 lost)" in out  # 3 s at 100 points/s
    assert "server stopped\n" in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)

    # a second run reuses the still valid demo key
    result = CliRunner().invoke(app, [*args[:2], "maintenance", *args[3:]])
    assert result.exit_code == 0, result.output
    assert key_file.read_text().strip() == key
    assert "== maintenance ==" in result.output


def test_demo_feeds_an_already_running_server(tmp_path):
    server = DemoServer("127.0.0.1", _free_port(), tmp_path / "srv", SMALL_ENGINE_ENV)
    server.start(timeout_s=120)
    try:
        admin = (server.data_dir / "admin.key").read_text().strip()
        r = httpx.post(
            server.url + "/api/v1/keys",
            json={"name": "ext"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        key_file = tmp_path / "key.txt"
        key_file.write_text(r.json()["key"] + "\n")
        args = ["demo", "-s", "iot", "--duration", "2", "--rate", "30"]
        args += ["--url", server.url, "--key-file", str(key_file)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert f"feeding the NQP server at {server.url}" in result.output
        assert "points sent 60 of 60 produced (0 lost)" in result.output
        assert server.alive()  # not ours to stop
        assert "server stopped" not in result.output
    finally:
        server.stop()
