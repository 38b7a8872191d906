"""Online baselines: exact alignment, RLS = ridge, convergence, strict causality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nqp.exceptions import InvalidInputError, InvalidParameterError, NotFittedError
from nqp.validation.baselines import (
    OnlineAR,
    baseline_forecasts,
    change_target,
    last_change,
    zero_change,
)


def _ar_changes(rng, coef, n, intercept=0.0, scale=1.0):
    x = np.zeros(n)
    p = len(coef)
    eps = rng.normal(scale=scale, size=n)
    for t in range(p, n):
        x[t] = intercept + sum(c * x[t - 1 - i] for i, c in enumerate(coef)) + eps[t]
    return x


def test_change_target_and_persistence_alignment():
    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    np.testing.assert_array_equal(change_target(y, 2), [3.0, 5.0, 7.0, np.nan, np.nan])
    np.testing.assert_array_equal(last_change(y, 2), [np.nan, np.nan, 3.0, 5.0, 7.0])
    np.testing.assert_array_equal(zero_change(y, 2), np.zeros(5))
    # last_change at t is the realised target of origin t-h
    np.testing.assert_array_equal(last_change(y, 2)[2:], change_target(y, 2)[:-2])
    with pytest.raises(InvalidParameterError, match="'horizon'"):
        change_target(y, 0)
    with pytest.raises(InvalidInputError, match="non-finite"):
        last_change([1.0, np.inf])


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_rls_without_forgetting_equals_closed_form_ridge(rng, fit_intercept):
    p, ridge = 3, 0.5
    y = np.cumsum(_ar_changes(rng, [0.4, -0.2, 0.1], 400, intercept=0.3))
    model = OnlineAR(p=p, ridge=ridge, fit_intercept=fit_intercept)
    model.forecast_series(y)
    x = np.diff(y)
    rows = [x[t - p : t][::-1] for t in range(p, x.size)]
    z = np.array(rows)
    if fit_intercept:
        z = np.hstack([z, np.ones((z.shape[0], 1))])
    w = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ x[p:])
    np.testing.assert_allclose(model.coef_, w[:p], rtol=1e-8, atol=1e-10)
    assert model.intercept_ == pytest.approx(w[p] if fit_intercept else 0.0, abs=1e-9)
    assert model.n_updates_ == x.size - p


def test_online_ar2_on_changes_converges_to_true_coefficients():
    rng = np.random.default_rng(11)
    x = _ar_changes(rng, [0.5, -0.3], 6000)
    model = OnlineAR(p=2)
    model.forecast_series(np.cumsum(x))
    # OLS standard error is about 1/sqrt(n) = 0.013
    np.testing.assert_allclose(model.coef_, [0.5, -0.3], atol=0.05)
    assert abs(model.intercept_) < 0.05


def test_online_ar2_on_levels_converges():
    rng = np.random.default_rng(12)
    a1, a2, c = 1.2, -0.5, 1.5  # stationary, mean c / (1 - a1 - a2) = 5
    y = _ar_changes(rng, [a1, a2], 6000, intercept=c)
    model = OnlineAR(p=2, difference=False)
    model.forecast_series(y)
    np.testing.assert_allclose(model.coef_, [a1, a2], atol=0.03)
    assert model.intercept_ == pytest.approx(c, abs=0.2)


def test_forecasts_on_a_random_walk_are_near_zero():
    rng = np.random.default_rng(5)
    y = np.cumsum(rng.normal(size=3000))
    f = OnlineAR(p=3).forecast_series(y, horizon=1)
    tail = f[500:]
    assert np.isfinite(tail).all()
    # the changes have unit variance; the AR forecast of an iid change is ~0
    assert np.mean(np.abs(tail)) < 0.1
    # so the one-step NRMSE is ~1, like persistence's
    target = change_target(y, 1)[500:-1]
    rmse = math.sqrt(np.mean((tail[:-1] - target) ** 2))
    assert rmse / np.std(target) == pytest.approx(1.0, abs=0.02)


def test_strict_causality_perturbing_the_future_leaves_past_forecasts_unchanged(rng):
    y = np.cumsum(_ar_changes(rng, [0.6, -0.2], 400))
    for k in (50, 200, 399):
        y2 = y.copy()
        y2[k:] += rng.normal(scale=5.0, size=y.size - k)
        for horizon in (1, 3):
            f = OnlineAR(p=2, forgetting=0.99).forecast_series(y, horizon)
            f2 = OnlineAR(p=2, forgetting=0.99).forecast_series(y2, horizon)
            np.testing.assert_array_equal(f[:k], f2[:k])
            assert f[k] != f2[k]  # the perturbed point itself is used at its own origin


def test_warm_up_is_nan_until_enough_updates():
    y = np.arange(20.0) ** 1.5
    for difference, first in ((True, 2 + 3), (False, 2 + 3 - 1)):
        f = OnlineAR(p=2, difference=difference).forecast_series(y)
        assert np.isnan(f[:first]).all()
        assert np.isfinite(f[first:]).all()


@pytest.mark.parametrize("difference", [True, False])
def test_multi_step_forecast_iterates_the_fitted_model(rng, difference):
    y = np.cumsum(_ar_changes(rng, [0.7, -0.1], 300, intercept=0.05))
    model = OnlineAR(p=2, difference=difference)
    model.forecast_series(y)
    a, c = model.coef_, model.intercept_
    hist = list(np.diff(y)[-2:]) if difference else list(y[-2:])
    steps = []
    for _ in range(4):
        nxt = c + a[0] * hist[-1] + a[1] * hist[-2]
        hist.append(nxt)
        steps.append(nxt)
    expected = sum(steps) if difference else steps[-1] - y[-1]
    assert model.forecast_one(4) == pytest.approx(expected, rel=1e-12)
    assert model.forecast_series(y, 4)[-1] == pytest.approx(expected, rel=1e-12)


def test_forgetting_tracks_a_change_of_coefficient():
    rng = np.random.default_rng(21)
    x = np.concatenate([_ar_changes(rng, [0.8], 3000), _ar_changes(rng, [-0.5], 3000)])
    y = np.cumsum(x)
    tracking = OnlineAR(p=1, forgetting=0.98)
    tracking.forecast_series(y)
    remembering = OnlineAR(p=1, forgetting=1.0)
    remembering.forecast_series(y)
    assert tracking.coef_[0] == pytest.approx(-0.5, abs=0.15)
    assert remembering.coef_[0] > 0.0  # averages both halves


def test_online_ar_parameter_and_state_errors():
    with pytest.raises(NotFittedError):
        OnlineAR().forecast_one()
    with pytest.raises(InvalidParameterError, match="'forgetting' parameter of OnlineAR"):
        OnlineAR(forgetting=1.5).learn_one(1.0)
    with pytest.raises(InvalidParameterError, match="'p' parameter"):
        OnlineAR(p=0).forecast_series([1.0, 2.0])
    with pytest.raises(InvalidInputError, match="finite"):
        OnlineAR().learn_one(math.nan)
    m = OnlineAR(p=3, ridge=0.1)
    assert m.__dict__ == {
        "p": 3,
        "forgetting": 1.0,
        "ridge": 0.1,
        "difference": True,
        "fit_intercept": True,
    }
    assert repr(m).startswith("OnlineAR(p=3,")


def test_learn_one_stream_equals_forecast_series(rng):
    y = np.cumsum(rng.normal(size=100))
    f = OnlineAR(p=2).forecast_series(y, 2)
    m = OnlineAR(p=2)
    g = [m.learn_one(v).forecast_one(2) for v in y]
    np.testing.assert_array_equal(f, g)


def test_baseline_forecasts_bundle(rng):
    y = np.cumsum(rng.normal(size=60))
    out = baseline_forecasts(y, 2, ar_order=3)
    assert set(out) == {"persistence", "last_change", "ar(3)"}
    np.testing.assert_array_equal(out["last_change"], last_change(y, 2))
    np.testing.assert_array_equal(out["ar(3)"], OnlineAR(p=3).forecast_series(y, 2))
    assert all(v.shape == (60,) for v in out.values())
