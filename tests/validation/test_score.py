"""Validation score: exact formula; random predictions score low; confidence alone earns nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from nqp.exceptions import InvalidInputError
from nqp.validation.baselines import baseline_forecasts, change_target, last_change, zero_change
from nqp.validation.score import FORMULA_TEXT, significance_factor, validation_score
from nqp.validation.statistics import PredictionSet, evaluate_predictions


def test_significance_factor():
    assert significance_factor(0.05) == 0.0
    assert significance_factor(0.5) == 0.0
    assert significance_factor(0.001) == pytest.approx(1.0)
    assert significance_factor(1e-9) == 1.0
    assert significance_factor(0.0) == 1.0
    assert significance_factor(None) == 0.0
    assert significance_factor(math.nan) == 0.0
    p = 0.01
    assert significance_factor(p) == pytest.approx(math.log(5) / math.log(50))


HALF_SIG_P = math.sqrt(0.05 * 0.001)  # significance factor 0.5


def _stats(hit=0.55, majority=0.52, p_major=HALF_SIG_P, bss=0.1, red=0.15):
    return {
        "hit_rate": {
            "n": 1000,
            "hit_rate": hit,
            "majority_rate": majority,
            "p_value_vs_half": 1e-3,
            "p_value_vs_majority": p_major,
        },
        "calibration": {"brier": 0.2, "brier_reference": 0.2496, "brier_skill": bss},
        "magnitude": {
            "nrmse": 0.8 * (1 - red),
            "best_baseline": "ar(2)",
            "baselines": {
                "ar(2)": {"nrmse": 0.8, "dm": {"p_value_model_better": 1e-5}},
                "persistence": {"nrmse": 1.0, "dm": {"p_value_model_better": 1e-9}},
            },
        },
    }


def test_score_formula_on_hand_computed_statistics():
    b = validation_score(_stats())
    # direction: (0.55-0.52)/(1-0.52) = 0.0625 -> /0.2 = 0.3125; sig = 0.5 -> 40*0.3125*0.5
    assert b.components["direction"]["points"] == pytest.approx(6.25)
    assert b.components["direction"]["base_rate"] == 0.52
    # calibration: 30 * 0.1 / 0.2
    assert b.components["calibration"]["points"] == pytest.approx(15.0)
    # magnitude: reduction 0.15 / 0.3 = 0.5, p = 1e-5 -> sig 1
    assert b.components["magnitude"]["points"] == pytest.approx(15.0)
    assert b.components["magnitude"]["best_baseline"] == "ar(2)"
    assert b.score == pytest.approx(36.25)
    assert b.formula_text == FORMULA_TEXT
    assert b.to_dict()["score"] == b.score


def test_score_uses_half_when_majority_is_below_it_and_caps_components():
    b = validation_score(_stats(hit=0.95, majority=0.5, bss=0.9, red=0.9))
    assert b.components["direction"]["base_rate"] == 0.5
    assert b.components["direction"]["p_value"] == 1e-3  # p vs 0.5 is used
    assert b.score == pytest.approx(100.0)


def test_score_gives_zero_for_missing_or_failing_statistics():
    s = _stats(hit=0.45, bss=-0.3, red=-0.2)
    assert validation_score(s).score == 0.0
    s = _stats()
    s["hit_rate"].update(n=0, hit_rate=None)
    s["calibration"].update(brier=None, brier_skill=None)
    s["magnitude"]["best_baseline"] = None
    b = validation_score(s)
    assert b.score == 0.0
    assert all("note" in c for c in b.components.values())
    with pytest.raises(InvalidInputError, match="evaluate_predictions"):
        validation_score({"hit_rate": {}})


def test_formula_text_documents_every_constant():
    for token in ("40", "30", "0.2", "0.3", "0.05", "0.001", "m (1 - m)", "Diebold-Mariano"):
        assert token in FORMULA_TEXT


# ----------------------------------------------------------------------------- simulations


def _random_walk(seed, n, horizon=1):
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=n + horizon))
    target = change_target(y, horizon)[:n]
    base = {"persistence": zero_change(y, horizon)[:n], "last_change": last_change(y, horizon)[:n]}
    return rng, target, base


def _score(direction, confidence, magnitude, target, base):
    ps = PredictionSet(np.arange(target.size), direction, confidence, magnitude, target)
    return validation_score(evaluate_predictions(ps, base))


def test_random_predictions_score_low_and_max_confidence_does_not_help():
    n, runs = 500, 100
    scores: dict[str, list[float]] = {"random": [], "max": [], "half": []}
    for seed in range(runs):
        rng, target, base = _random_walk(seed, n)
        direction = rng.choice([-1, 1], size=n)
        magnitude = direction * np.abs(rng.normal(size=n))
        confidences = {
            "random": rng.uniform(0.5, 1.0, size=n),
            "max": np.ones(n),
            "half": np.full(n, 0.5),
        }
        per_seed = {
            k: _score(direction, c, magnitude, target, base) for k, c in confidences.items()
        }
        for k, b in per_seed.items():
            scores[k].append(b.score)
        # confidence pushed to 1 earns no calibration points and never raises the score
        assert per_seed["max"].components["calibration"]["points"] == 0.0
        assert per_seed["max"].score <= per_seed["random"].score + 1e-12
        assert per_seed["max"].score <= per_seed["half"].score + 1e-12
        # random magnitudes never beat persistence significantly
        assert per_seed["random"].components["magnitude"]["points"] == 0.0
    for k, v in scores.items():
        arr = np.array(v)
        assert np.median(arr) == 0.0, k
        assert np.percentile(arr, 95) < 10.0, k
        assert arr.mean() < 3.0, k


def test_skilful_predictor_scores_high_and_its_score_reflects_its_skill():
    n, noise = 1000, 0.7
    rng = np.random.default_rng(42)
    signal = rng.normal(size=n)
    target = signal + rng.normal(scale=noise, size=n)  # the change is partly predictable
    y = np.concatenate([[0.0], np.cumsum(target)])
    base = {k: v[:n] for k, v in baseline_forecasts(y, 1).items()}
    conf = scipy.stats.norm.cdf(np.abs(signal) / noise)  # the true P(direction right)
    good = _score(np.sign(signal), conf, signal, target, base)
    assert good.score > 80.0
    assert all(c["points"] > 0.0 for c in good.components.values())
    # the same predictor with confidence forced to 1 loses calibration points
    loud = _score(np.sign(signal), np.ones(n), signal, target, base)
    assert loud.components["calibration"]["points"] < good.components["calibration"]["points"]
    assert loud.score < good.score
    # a weaker signal scores lower
    target_weak = 0.3 * signal + rng.normal(size=n)
    y_weak = np.concatenate([[0.0], np.cumsum(target_weak)])
    base_weak = {k: v[:n] for k, v in baseline_forecasts(y_weak, 1).items()}
    conf_weak = scipy.stats.norm.cdf(0.3 * np.abs(signal))
    weak = _score(np.sign(signal), conf_weak, 0.3 * signal, target_weak, base_weak)
    assert 0.0 < weak.score < good.score
