"""``nqp demo``: the platform is right on chaos and says "coin flip" on a random walk."""

from __future__ import annotations

from typer.testing import CliRunner

from nqp.cli import app
from nqp.config import Settings
from nqp.demo import run_stream_demo


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


def test_demo_command_rejects_unknown_reservoir():
    result = CliRunner().invoke(app, ["demo", "--reservoir", "nope"])
    assert result.exit_code == 2
    assert "reservoir" in result.output
