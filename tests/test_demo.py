"""``nqp demo``: the stream demo runs end to end and its out-of-sample scores are real."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nqp.cli import app
from nqp.config import Settings
from nqp.demo import run_stream_demo


@pytest.mark.parametrize("reservoir", ["lif", "esn"])
def test_demo_readout_beats_persistence_on_mackey_glass(reservoir):
    settings = Settings(neuromorphic={"reservoir": reservoir, "n_neurons": 128})
    lines: list[str] = []
    summary = run_stream_demo(settings, n_points=300, every=100, echo=lines.append)
    assert len(lines) == 1 + 4 + 1  # header, t = 0, 100, 200, 300, summary
    # Mackey-Glass is smooth: the next change is predictable far beyond chance
    assert summary.nrmse < summary.persistence_nrmse
    assert summary.hit_rate > 0.8
    assert summary.hit_rate_p_value < 1e-6


def test_demo_command_rejects_unknown_reservoir():
    result = CliRunner().invoke(app, ["demo", "--reservoir", "nope"])
    assert result.exit_code == 2
    assert "reservoir" in result.output
