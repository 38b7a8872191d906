"""The HTML report: files, valid PNGs, score and formula shown, nothing external."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from nqp.exceptions import InvalidInputError
from nqp.validation.baselines import baseline_forecasts, change_target
from nqp.validation.report import build_result, write_report
from nqp.validation.statistics import PredictionSet, evaluate_predictions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def backtest():
    rng = np.random.default_rng(8)
    n = 400
    signal = rng.normal(size=n)
    target = signal + rng.normal(size=n)
    y = np.concatenate([[0.0], np.cumsum(target)])
    assert np.allclose(change_target(y, 1)[:n], target)
    base = {k: v[:n] for k, v in baseline_forecasts(y, 1).items()}
    regime = np.where(np.arange(n) % 100 < 50, "trend", "range")

    def variant(skill):
        pred = skill * signal + (1 - skill) * rng.normal(size=n)
        direction = np.where(np.abs(pred) < 0.05, 0, np.sign(pred))
        conf = 0.5 + 0.4 * np.tanh(np.abs(pred))
        return PredictionSet(np.arange(n), direction, conf, pred, target, regime=regime)

    preds = {"both": variant(0.9), "neuromorphic": variant(0.6), "quantum": variant(0.1)}
    return preds, base


def test_build_result_scores_every_variant(backtest):
    preds, base = backtest
    r = build_result(preds, base, metadata={"dataset": "synthetic", "seed": 8})
    json.dumps(r, allow_nan=False)
    assert r["primary"] == "both"
    assert r["score"] == r["scores"]["both"]
    assert r["variants"]["quantum"] == evaluate_predictions(preds["quantum"], base)
    assert r["scores"]["both"]["score"] > r["scores"]["quantum"]["score"]
    with pytest.raises(InvalidInputError, match="primary"):
        build_result(preds, base, primary="classical")


def test_write_report_files_pngs_and_html(backtest, tmp_path):
    preds, base = backtest
    result = build_result(preds, base, metadata={"dataset": "synthetic"})
    index = write_report(result, tmp_path / "report", predictions=preds, baselines=base)
    assert index == tmp_path / "report" / "index.html"
    folder = index.parent
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == [
        "ablation.png",
        "cumulative_hit_rate.png",
        "predictions.png",
        "reliability.png",
    ]
    for name in pngs:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG_MAGIC
        assert len(data) > 1000
    text = index.read_text(encoding="utf-8")
    assert f"{result['score']['score']:.1f} / 100" in text
    assert html.escape(result["score"]["formula_text"]) in text
    assert not re.search(r"https?://", text, flags=re.IGNORECASE)
    for src in re.findall(r'src="([^"]+)"', text):
        assert (folder / src).is_file()
    for label in ("trend", "range", "neuromorphic", "quantum", "ar(2)", "last_change"):
        assert label in text
    stored = json.loads((folder / "result.json").read_text())
    assert stored == json.loads(json.dumps(result))


def test_write_report_from_stored_json_without_predictions(backtest, tmp_path):
    preds, base = backtest
    result = json.loads(json.dumps(build_result({"both": preds["both"]}, base)))
    index = write_report(result, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["ablation.png", "reliability.png"]
    text = index.read_text(encoding="utf-8")
    assert "predictions.png" not in text
    assert "cumulative_hit_rate.png" not in text


def test_write_report_handles_a_variant_without_directional_predictions(tmp_path):
    n = 50
    target = np.sin(np.arange(n))
    holds = PredictionSet(np.arange(n), np.zeros(n), np.full(n, 0.5), np.zeros(n), target)
    result = build_result({"both": holds}, {"persistence": np.zeros(n)})
    assert result["score"]["score"] == 0.0
    index = write_report(result, tmp_path, predictions={"both": holds})
    assert "n/a" in index.read_text(encoding="utf-8")
    assert (tmp_path / "cumulative_hit_rate.png").read_bytes()[:8] == PNG_MAGIC


def test_write_report_rejects_an_incomplete_result(tmp_path):
    with pytest.raises(InvalidInputError, match="build_result"):
        write_report({"variants": {}}, tmp_path)
