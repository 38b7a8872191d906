"""Walk-forward validation through the platform: causal, honest, and able to fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nqp import Settings
from nqp.cli import app
from nqp.datasets.registry import Dataset
from nqp.exceptions import InvalidParameterError
from nqp.validation import walk_forward

SMALL = Settings(
    neuromorphic={"n_neurons": 64, "readout_dim": 16, "pattern_neurons": 16},
    quantum={"qubit_count": 3, "virtual_nodes": 2, "readout_dim": 8},
)


def series_dataset(values, name="series", regimes=None) -> Dataset:
    values = np.asarray(values, dtype=float)
    return Dataset(
        name=name,
        values=values,
        timestamps=None,
        target_channel=0,
        regimes=regimes,
        regime_names=("calm", "wild") if regimes is not None else (),
        anomalies=None,
        description="test series",
    )


def _predicted(run, variant):
    return [
        (p.direction, p.confidence, p.expected_change, p.anomaly_score) for p in run.raw[variant]
    ]


def test_no_look_ahead_perturbing_the_future_leaves_the_past_unchanged():
    rng = np.random.default_rng(0)
    base = np.sin(np.arange(240) / 6.0) + 0.1 * rng.standard_normal(240)
    cut = 150
    future = base.copy()
    future[cut:] += rng.normal(0.0, 3.0, size=240 - cut)
    a = walk_forward(series_dataset(base), settings=SMALL, variants=["both", "quantum"])
    b = walk_forward(series_dataset(future), settings=SMALL, variants=["both", "quantum"])
    for variant in ("both", "quantum"):
        assert _predicted(a, variant)[:cut] == _predicted(b, variant)[:cut]
        assert _predicted(a, variant)[cut:] != _predicted(b, variant)[cut:]


def test_random_walk_scores_low_and_sine_scores_high():
    rng = np.random.default_rng(4)
    walk = walk_forward(
        series_dataset(np.cumsum(rng.standard_normal(700)), "walk"), settings=SMALL
    ).result
    sine = walk_forward(
        series_dataset(np.sin(2 * np.pi * np.arange(700) / 29.0), "sine"), settings=SMALL
    ).result
    assert walk["score"]["score"] < 15
    assert walk["variants"]["both"]["hit_rate"]["p_value_vs_half"] > 0.001
    assert sine["score"]["score"] > 50
    assert sine["variants"]["both"]["hit_rate"]["hit_rate"] > 0.95
    assert set(sine["variants"]) == {"both", "neuromorphic", "quantum", "observation"}


def test_regimes_are_reported_per_regime():
    rng = np.random.default_rng(1)
    n = 400
    regimes = (np.arange(n) >= n // 2).astype(np.int64)
    values = np.cumsum(rng.standard_normal(n) * np.where(regimes == 1, 3.0, 1.0))
    result = walk_forward(series_dataset(values, regimes=regimes), settings=SMALL).result
    per_regime = result["variants"]["both"]["regimes"]
    assert set(per_regime) == {"calm", "wild"}


def test_bad_arguments():
    with pytest.raises(InvalidParameterError, match="variant"):
        walk_forward(series_dataset(np.arange(100.0)), variants=["both", "magic"])
    with pytest.raises(InvalidParameterError, match="at least"):
        walk_forward(series_dataset(np.arange(30.0)))


def test_validate_cli_json_and_report(tmp_path, monkeypatch):
    monkeypatch.setenv("NQP_NEUROMORPHIC__N_NEURONS", "64")
    monkeypatch.setenv("NQP_QUANTUM__QUBIT_COUNT", "3")
    csv = tmp_path / "series.csv"
    values = np.sin(np.arange(200) / 5.0)
    csv.write_text("t,value\n" + "".join(f"{k},{v}\n" for k, v in enumerate(values)))
    result = CliRunner().invoke(
        app,
        [
            "validate",
            "--csv",
            str(csv),
            "--column",
            "value",
            "--json",
            "--report",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "score",
        "hit_rate",
        "hit_rate_p_value",
        "brier",
        "ece",
        "nrmse",
        "baselines",
        "ablations",
    ):
        assert key in summary
    assert summary["points"] == 200
    assert (tmp_path / "r" / "index.html").exists()
    assert (tmp_path / "r" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_cli_errors_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["validate"]).exit_code == 2
    bad = runner.invoke(app, ["validate", "--dataset", "no-such-data"])
    assert bad.exit_code == 2
    assert "mackey_glass" in bad.output  # the valid options are listed
