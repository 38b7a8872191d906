"""Out-of-sample statistics against exact references: scipy, hand computation, direct loops."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.validation.statistics import (
    PredictionSet,
    brier_score,
    brier_skill_score,
    diebold_mariano,
    evaluate_predictions,
    expected_calibration_error,
    hit_rate_test,
    mae,
    nrmse,
    reliability_curve,
    summarise_by_regime,
    to_direction,
)

# ----------------------------------------------------------------------------- directions


def test_to_direction_accepts_words_and_numbers():
    assert to_direction(["UP", "down", "Hold"]).tolist() == [1, -1, 0]
    assert to_direction(np.array([1.0, -1.0, 0.0])).tolist() == [1, -1, 0]
    assert to_direction(np.array([1, "down"], dtype=object)).tolist() == [1, -1]
    assert to_direction([1, 0]).dtype == np.int8


@pytest.mark.parametrize("bad", [[2, 1], ["sideways"], [0.5], [[1, 0]]])
def test_to_direction_rejects_other_values(bad):
    with pytest.raises(InvalidInputError):
        to_direction(bad)


# ----------------------------------------------------------------------------- hit rate


def test_hit_rate_matches_scipy_and_clopper_pearson(rng):
    n = 400
    real = rng.choice([-1, 1], size=n, p=[0.35, 0.65])
    pred = np.where(rng.random(n) < 0.7, real, -real)
    pred[rng.random(n) < 0.1] = 0  # abstentions
    r = hit_rate_test(pred, real)
    active = pred != 0
    k = int((pred[active] == real[active]).sum())
    m = int(active.sum())
    maj = max((real[active] == 1).sum(), (real[active] == -1).sum()) / m
    assert (r.n, r.hits, r.n_excluded) == (m, k, n - m)
    assert r.hit_rate == k / m
    assert r.majority_rate == maj
    assert r.p_value_vs_half == scipy.stats.binomtest(k, m, 0.5, alternative="greater").pvalue
    assert r.p_value_vs_majority == scipy.stats.binomtest(k, m, maj, alternative="greater").pvalue
    # Clopper-Pearson from its beta-quantile definition
    assert r.ci_low == pytest.approx(scipy.stats.beta.ppf(0.025, k, m - k + 1), rel=1e-9)
    assert r.ci_high == pytest.approx(scipy.stats.beta.ppf(0.975, k + 1, m - k), rel=1e-9)
    assert r.p_value_vs_half < 1e-6  # 70% hits out of ~360 is significant


def test_hit_rate_hand_example_realised_hold_is_a_miss():
    r = hit_rate_test(["up", "down", "up", "hold", "down"], ["up", "hold", "down", "up", "down"])
    # evaluated: up/up hit, down/hold miss, up/down miss, down/down hit
    assert (r.n, r.hits, r.n_excluded) == (4, 2, 1)
    # realised among evaluated: up, hold, down, down -> majority down = 2/4
    assert r.majority_rate == 0.5
    # P(X >= 2 | n=4, 0.5) = 11/16
    assert r.p_value_vs_half == pytest.approx(11 / 16, rel=1e-12)


def test_hit_rate_all_holds_is_nan_not_an_error():
    r = hit_rate_test([0, 0, 0], [1, -1, 1])
    assert (r.n, r.n_excluded) == (0, 3)
    assert math.isnan(r.hit_rate)
    assert math.isnan(r.p_value_vs_half)
    assert r.to_dict()["hit_rate"] is None


def test_hit_rate_rejects_mismatched_shapes_and_bad_level():
    with pytest.raises(InvalidInputError, match="same shape"):
        hit_rate_test([1, 1], [1])
    with pytest.raises(InvalidParameterError, match="confidence_level"):
        hit_rate_test([1], [1], confidence_level=1.5)


# ----------------------------------------------------------------------------- calibration


P4 = [0.9, 0.8, 0.3, 0.6]
O4 = [1, 0, 0, 1]


def test_brier_hand_example():
    assert brier_score(P4, O4) == pytest.approx((0.01 + 0.64 + 0.09 + 0.16) / 4, abs=1e-15)
    assert brier_score([1.0, 0.0], [1, 0]) == 0.0
    assert brier_score([0.5] * 3, [1, 0, 1]) == 0.25


def test_brier_skill_score_references():
    # climatology: base rate 0.5 -> reference 0.25
    assert brier_skill_score(P4, O4) == pytest.approx(1 - 0.225 / 0.25, abs=1e-12)
    # the climatological forecast itself has skill 0
    o = [1, 1, 1, 0]
    assert brier_skill_score([0.75] * 4, o) == pytest.approx(0.0, abs=1e-15)
    assert brier_skill_score(P4, O4, reference_brier=0.2) == pytest.approx(1 - 0.225 / 0.2)
    # perfect reference
    assert brier_skill_score([1.0, 1.0], [1, 1]) == 0.0
    assert brier_skill_score([0.9, 1.0], [1, 1]) == -math.inf


def test_ece_and_reliability_hand_examples():
    # 2 uniform bins: [0, .5] holds 0.3 (outcome 0); (.5, 1] holds .9/.8/.6 (2 of 3 right)
    mean_p, freq, count = reliability_curve(P4, O4, n_bins=2)
    np.testing.assert_allclose(mean_p, [0.3, (0.9 + 0.8 + 0.6) / 3])
    np.testing.assert_allclose(freq, [0.0, 2 / 3])
    assert count.tolist() == [1, 3]
    expected = 0.25 * 0.3 + 0.75 * abs((0.9 + 0.8 + 0.6) / 3 - 2 / 3)
    assert expected_calibration_error(P4, O4, n_bins=2) == pytest.approx(expected, abs=1e-15)
    # right-closed bins: 0.5 belongs to the first of two bins
    assert reliability_curve([0.5, 0.51], [1, 0], 2)[2].tolist() == [1, 1]
    # quantile bins: two groups of two by rank
    mp, fr, ct = reliability_curve(P4, O4, n_bins=2, strategy="quantile")
    np.testing.assert_allclose(mp, [0.45, 0.85])
    np.testing.assert_allclose(fr, [0.5, 0.5])
    assert ct.tolist() == [2, 2]
    assert expected_calibration_error(P4, O4, 2, "quantile") == pytest.approx(
        0.5 * 0.05 + 0.5 * 0.35
    )


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_of_calibrated_forecasts_is_sampling_noise_only(strategy):
    n, n_bins = 20_000, 10
    rng = np.random.default_rng(7)
    p = rng.random(n)
    outcome = (rng.random(n) < p).astype(float)
    # E[ECE] <= sum_k (n_k/n) sqrt(p_k (1-p_k) / n_k) <= 0.5 sqrt(n_bins / n)
    tol = 3 * 0.5 * math.sqrt(n_bins / n)
    assert expected_calibration_error(p, outcome, n_bins, strategy) < tol
    # the same outcomes against forecasts shifted by 0.1 are visibly miscalibrated
    shifted = np.clip(p + 0.1, 0, 1)
    assert expected_calibration_error(shifted, outcome, n_bins, strategy) > 0.08 > tol


@pytest.mark.parametrize(
    ("p", "o", "match"),
    [([0.5, 1.2], [1, 0], r"\[0, 1\]"), ([0.5], [2], "0 and 1"), ([0.5], [1, 0], "shape")],
)
def test_probability_input_errors(p, o, match):
    with pytest.raises(InvalidInputError, match=match):
        brier_score(p, o)


# ----------------------------------------------------------------------------- magnitude


def test_mae_nrmse_hand_examples():
    assert mae([1.0, -1.0, 0.0], [0.0, 1.0, 0.0]) == 1.0
    y = np.array([1.0, 2.0, 3.0, 6.0])
    f = np.array([1.0, 1.0, 4.0, 6.0])
    assert nrmse(f, y) == pytest.approx(math.sqrt(2 / 4) / np.std(y))
    assert nrmse(np.full(4, y.mean()), y) == pytest.approx(1.0)
    assert math.isnan(nrmse([1.0, 2.0], [3.0, 3.0]))


def _dm_direct(e1, e2, h, loss):
    """Independent loop implementation of DM (1995) + HLN (1997), uniform kernel."""
    n = len(e1)
    if loss == "squared":
        d = [a * a - b * b for a, b in zip(e1, e2, strict=True)]
    else:
        d = [abs(a) - abs(b) for a, b in zip(e1, e2, strict=True)]
    dbar = sum(d) / n
    gam = []
    for k in range(h):
        s = 0.0
        for t in range(k, n):
            s += (d[t] - dbar) * (d[t - k] - dbar)
        gam.append(s / n)
    var = (gam[0] + 2 * sum(gam[1:])) / n
    stat = dbar / math.sqrt(var) * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    p2 = 2 * (1 - scipy.stats.t.cdf(abs(stat), n - 1))
    return stat, p2, scipy.stats.t.cdf(stat, n - 1), dbar


@pytest.mark.parametrize(("h", "loss"), [(1, "squared"), (3, "squared"), (4, "absolute")])
def test_diebold_mariano_matches_direct_implementation(h, loss):
    rng = np.random.default_rng(2024)
    n = 150
    z = rng.normal(size=n + h)
    e1 = np.convolve(z, np.ones(h) / h, mode="valid")[:n]  # MA(h-1) errors
    e2 = 1.1 * e1 + 0.4 * rng.normal(size=n)
    r = diebold_mariano(e1, e2, h=h, loss=loss)
    stat, p2, p1, dbar = _dm_direct(e1.tolist(), e2.tolist(), h, loss)
    assert r.statistic == pytest.approx(stat, rel=1e-10)
    assert r.p_value == pytest.approx(p2, rel=1e-8, abs=1e-14)
    assert r.p_value_model_better == pytest.approx(p1, rel=1e-8, abs=1e-14)
    assert r.mean_loss_diff == pytest.approx(dbar, rel=1e-12)
    assert (r.n, r.horizon) == (n, h)


def test_diebold_mariano_identical_losses():
    e = np.random.default_rng(1).normal(size=50)
    r = diebold_mariano(e, -e)  # same squared loss at every step
    assert (r.statistic, r.p_value, r.mean_loss_diff) == (0.0, 1.0, 0.0)
    assert r.p_value_model_better == 0.5


@pytest.mark.parametrize("h", [1, 3])
def test_diebold_mariano_size_under_the_null(h):
    """Equal-accuracy forecasts: rejections at 5% over 200 runs are Binomial(200, 0.05)."""
    rng = np.random.default_rng(99)
    n, runs = 200, 200
    rejections = 0
    for _ in range(runs):
        z = rng.normal(size=(2, n + h - 1))
        e1 = np.convolve(z[0], np.ones(h), mode="valid")
        e2 = np.convolve(z[1], np.ones(h), mode="valid")
        rejections += diebold_mariano(e1, e2, h=h).p_value < 0.05
    lo, hi = scipy.stats.binom.interval(0.999, runs, 0.05)
    assert lo <= rejections <= hi


def test_diebold_mariano_detects_a_better_forecast():
    rng = np.random.default_rng(3)
    noise = rng.normal(size=300)
    r = diebold_mariano(0.5 * noise + 0.1 * rng.normal(size=300), noise)
    assert r.statistic < 0
    assert r.p_value_model_better < 1e-10
    assert r.p_value < 1e-10
    # and the other way round: the worse model gets a large one-sided p-value
    assert diebold_mariano(noise, 0.5 * noise).p_value_model_better > 0.999


def test_diebold_mariano_input_checks():
    with pytest.raises(InvalidInputError, match="more than 2h"):
        diebold_mariano(np.ones(6), np.zeros(6), h=3)
    with pytest.raises(InvalidInputError, match="same shape"):
        diebold_mariano(np.ones(6), np.zeros(5))
    with pytest.raises(InvalidParameterError, match="'loss'"):
        diebold_mariano(np.ones(6), np.zeros(6), loss="hinge")


def test_diebold_mariano_falls_back_to_bartlett_when_uniform_variance_is_negative():
    # strongly negatively autocorrelated loss differential: uniform-kernel variance < 0
    d = np.tile([1.0, -1.0], 20) + 0.05
    e1 = np.sqrt(np.maximum(d, 0.0))
    e2 = np.sqrt(np.maximum(-d, 0.0))
    uni = diebold_mariano(e1, e2, h=2)
    bart = diebold_mariano(e1, e2, h=2, kernel="bartlett")
    assert uni.statistic == bart.statistic
    assert math.isfinite(uni.statistic)


# ----------------------------------------------------------------------------- prediction sets


def _prediction_set(rng, n=300, skill=0.7, regimes=True):
    real_change = rng.normal(size=n)
    real_dir = np.sign(real_change)
    pred_dir = np.where(rng.random(n) < skill, real_dir, -real_dir)
    conf = np.clip(0.5 + 0.3 * rng.random(n), 0, 1)
    pred_change = pred_dir * np.abs(real_change) * 0.5
    regime = np.where(np.arange(n) < n // 2, "calm", "storm") if regimes else None
    return PredictionSet(np.arange(n), pred_dir, conf, pred_change, real_change, regime=regime)


def test_prediction_set_validation():
    with pytest.raises(InvalidInputError, match="shape"):
        PredictionSet([0, 1], [1, 1], [0.5], [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        PredictionSet([0], [1], [1.5], [0.0], [1.0])
    with pytest.raises(InvalidInputError, match="non-finite"):
        PredictionSet([0], [1], [0.5], [np.nan], [1.0])
    ps = PredictionSet([0, 1], [1, 0], [0.5, 0.5], [0.0, 0.0], [0.2, 0.0], [0, 1])
    assert ps.realised_direction.tolist() == [0, 1]  # explicit dead-banded directions kept


def test_evaluate_predictions_is_consistent_and_json_able(rng):
    ps = _prediction_set(rng)
    base = {"persistence": np.zeros(len(ps)), "noisy": np.full(len(ps), np.nan)}
    base["noisy"][10:] = ps.realised_change[10:] + rng.normal(size=len(ps) - 10)
    s = evaluate_predictions(ps, base)
    json.dumps(s, allow_nan=False)
    hr = hit_rate_test(ps.predicted_direction, ps.realised_direction)
    assert s["hit_rate"] == hr.to_dict()
    active, right = ps.correctness()
    conf = ps.confidence[active]
    assert s["calibration"]["brier"] == brier_score(conf, right)
    m = hr.majority_rate
    assert s["calibration"]["brier_skill"] == pytest.approx(
        1 - brier_score(conf, right) / (m * (1 - m))
    )
    assert s["calibration"]["ece"] == expected_calibration_error(conf, right)
    mag = s["magnitude"]
    assert mag["n"] == len(ps) - 10  # rows where every baseline is available
    rows = slice(10, None)
    assert mag["nrmse"] == nrmse(ps.predicted_change[rows], ps.realised_change[rows])
    dm = diebold_mariano(
        ps.realised_change[rows] - ps.predicted_change[rows],
        ps.realised_change[rows] - base["noisy"][rows],
    )
    assert mag["baselines"]["noisy"]["dm"] == dm.to_dict()
    assert mag["baselines"]["persistence"]["hit_rate"]["n"] == 0  # zero forecast = hold
    best = min(base, key=lambda k: mag["baselines"][k]["nrmse"])
    assert mag["best_baseline"] == best
    assert set(s["regimes"]) == {"calm", "storm"}


def test_summarise_by_regime_equals_statistics_of_each_subset(rng):
    ps = _prediction_set(rng)
    base = {"zero": np.zeros(len(ps))}
    out = summarise_by_regime(ps, base)
    for label in ("calm", "storm"):
        sub = ps.subset(ps.regime == label)
        hr = hit_rate_test(sub.predicted_direction, sub.realised_direction)
        active, right = sub.correctness()
        assert out[label]["n"] == len(sub) == 150
        assert out[label]["hit_rate"] == hr.hit_rate
        assert out[label]["p_value_vs_half"] == hr.p_value_vs_half
        assert out[label]["brier"] == brier_score(sub.confidence[active], right)
        assert out[label]["nrmse"] == nrmse(sub.predicted_change, sub.realised_change)
        assert out[label]["best_baseline_nrmse"] == nrmse(np.zeros(len(sub)), sub.realised_change)
    assert summarise_by_regime(_prediction_set(rng, regimes=False)) is None
