"""Regime-switching GBM against its exact distribution (fixed seeds, intervals at level 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nqp.datasets.market import (
    DEFAULT_REGIMES,
    MINUTE_BAR,
    Regime,
    regime_switching_gbm,
)
from nqp.exceptions import InvalidParameterError

ALPHA = 1e-6  # two-sided level of every interval check: tight but safe
Z = stats.norm.ppf(1 - ALPHA / 2)


def _check_mean(x, expected_mean, sd):
    se = sd / np.sqrt(x.size)
    assert abs(x.mean() - expected_mean) < Z * se, (x.mean(), expected_mean, se)


def _check_variance(x, expected_var):
    n = x.size
    stat = (n - 1) * x.var(ddof=1) / expected_var
    lo, hi = stats.chi2.ppf([ALPHA / 2, 1 - ALPHA / 2], n - 1)
    assert lo < stat < hi, (x.var(ddof=1), expected_var)


def test_single_regime_log_returns_have_exact_gbm_moments():
    mu, sigma, dt = 0.3, 0.8, 1 / 252
    m = regime_switching_gbm(200_000, regimes=[Regime("only", mu, sigma)], dt=dt, seed=3)
    r = m.log_returns[:, 0]
    # the Ito term -sigma^2/2 dt is ~11 standard errors: a drift of mu dt would fail here
    _check_mean(r, (mu - 0.5 * sigma**2) * dt, sigma * np.sqrt(dt))
    _check_variance(r, sigma**2 * dt)
    assert np.all(m.regimes == 0)
    # increments are independent: lag-1 autocorrelation ~ N(0, 1/n)
    rho = np.corrcoef(r[:-1], r[1:])[0, 1]
    assert abs(rho) < Z / np.sqrt(r.size)


def test_each_regime_has_its_own_volatility():
    dt = 1 / 252
    p = [[0.98, 0.015, 0.005], [0.03, 0.96, 0.01], [0.02, 0.08, 0.90]]
    m = regime_switching_gbm(150_000, dt=dt, transition_matrix=p, seed=5)
    for k, regime in enumerate(DEFAULT_REGIMES):
        r = m.log_returns[m.regimes == k, 0]
        assert r.size > 5000
        _check_variance(r, regime.volatility**2 * dt)
    np.testing.assert_array_equal(
        m.volatility, np.array([g.volatility for g in DEFAULT_REGIMES])[m.regimes]
    )


def test_transition_frequencies_match_the_matrix():
    p = np.array([[0.9, 0.07, 0.03], [0.1, 0.85, 0.05], [0.2, 0.3, 0.5]])
    m = regime_switching_gbm(200_000, transition_matrix=p, seed=11)
    counts = np.zeros((3, 3), dtype=np.int64)
    np.add.at(counts, (m.regimes[:-1], m.regimes[1:]), 1)
    for i in range(3):
        n_i = counts[i].sum()
        assert n_i > 10_000
        for j in range(3):
            lo, hi = stats.binom.interval(1 - ALPHA, n_i, p[i, j])
            assert lo <= counts[i, j] <= hi, (i, j, counts[i, j] / n_i, p[i, j])


def test_absorbing_regime_never_leaves():
    p = [[1.0, 0.0], [0.5, 0.5]]
    regs = [Regime("a", 0.0, 0.1), Regime("b", 0.0, 0.2)]
    m = regime_switching_gbm(5000, regimes=regs, transition_matrix=p, initial_regime=0)
    assert np.all(m.regimes == 0)
    m = regime_switching_gbm(5000, regimes=regs, transition_matrix=p, initial_regime=1, seed=2)
    first_a = int(np.argmax(m.regimes == 0))
    assert first_a > 0
    assert np.all(m.regimes[first_a:] == 0)


def test_volatility_spike_multiplies_realised_volatility():
    sigma, dt, mult = 0.2, 1 / 252, 3.0
    start, duration, n = 6000, 4000, 20_000
    m = regime_switching_gbm(
        n,
        regimes=[Regime("flat", 0.0, sigma)],
        dt=dt,
        vol_spikes=[(start, duration, mult)],
        seed=7,
    )
    r = m.log_returns[:, 0]
    inside = np.zeros(n, dtype=bool)
    inside[start : start + duration] = True
    ratio = r[inside].var(ddof=1) / r[~inside].var(ddof=1) / mult**2
    lo, hi = stats.f.ppf([ALPHA / 2, 1 - ALPHA / 2], inside.sum() - 1, (~inside).sum() - 1)
    assert lo < ratio < hi
    np.testing.assert_array_equal(m.volatility[inside], sigma * mult)
    np.testing.assert_array_equal(m.volatility[~inside], sigma)
    assert m.vol_spikes == ((start, duration, mult),)


def test_spike_running_past_the_end_is_cut():
    m = regime_switching_gbm(100, regimes=[Regime("flat", 0.0, 0.1)], vol_spikes=[(90, 50, 2.0)])
    np.testing.assert_allclose(m.volatility[90:], 0.2)
    np.testing.assert_allclose(m.volatility[:90], 0.1)


def test_trend_reversal_flips_the_drift_sign():
    mu, sigma, dt, t_rev, n = 2.0, 0.1, 1 / 252, 10_000, 20_000
    m = regime_switching_gbm(
        n, regimes=[Regime("up", mu, sigma)], dt=dt, reversals=[t_rev], seed=13
    )
    r = m.log_returns[:, 0]
    sd = sigma * np.sqrt(dt)
    _check_mean(r[:t_rev], (mu - 0.5 * sigma**2) * dt, sd)
    _check_mean(r[t_rev:], (-mu - 0.5 * sigma**2) * dt, sd)
    np.testing.assert_array_equal(m.drift[:t_rev], mu)
    np.testing.assert_array_equal(m.drift[t_rev:], -mu)
    # prices rise then fall
    assert m.prices[t_rev - 1, 0] > m.prices[0, 0] * 2
    assert m.prices[-1, 0] < m.prices[t_rev - 1, 0] / 2


def test_two_reversals_restore_the_drift():
    m = regime_switching_gbm(300, regimes=[Regime("up", 1.0, 0.1)], reversals=[200, 100])
    assert m.reversals == (100, 200)
    np.testing.assert_array_equal(m.drift, np.r_[np.ones(100), -np.ones(100), np.ones(100)])


def test_asset_correlation_matches_the_given_matrix():
    c = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    n = 50_000
    m = regime_switching_gbm(
        n, n_assets=3, correlation=c, regimes=[Regime("flat", 0.05, 0.3)], dt=1 / 252, seed=17
    )
    emp = np.corrcoef(m.log_returns.T)
    iu = np.triu_indices(3, 1)
    # Fisher z: atanh(r) ~ N(atanh(rho), 1 / (n - 3))
    dev = np.abs(np.arctanh(emp[iu]) - np.arctanh(c[iu])) * np.sqrt(n - 3)
    assert np.all(dev < Z), (emp, c)


def test_regime_switches_also_correlate_assets_through_common_volatility():
    # all assets share the regime path: in each regime the shocks keep the given correlation
    c = [[1.0, 0.5], [0.5, 1.0]]
    m = regime_switching_gbm(60_000, n_assets=2, correlation=c, dt=1 / 252, seed=4)
    for k in range(3):
        sel = m.regimes == k
        r = np.corrcoef(m.log_returns[sel].T)[0, 1]
        assert abs(np.arctanh(r) - np.arctanh(0.5)) * np.sqrt(sel.sum() - 3) < Z


def test_prices_are_positive_and_consistent_with_returns():
    m = regime_switching_gbm(5000, n_assets=2, s0=50.0, seed=21)
    assert np.all(m.prices > 0)
    np.testing.assert_allclose(m.prices, 50.0 * np.exp(np.cumsum(m.log_returns, axis=0)))
    np.testing.assert_allclose(np.log(m.prices[1:] / m.prices[:-1]), m.log_returns[1:])
    assert m.dt == MINUTE_BAR
    np.testing.assert_allclose(np.diff(m.timestamps), 60.0)  # one-minute bars
    assert m.prices.dtype == np.float64
    assert m.regimes.dtype == np.int64


def test_same_seed_same_series_different_seed_differs():
    kw = {"n_assets": 2, "vol_spikes": [(10, 5, 2.0)], "reversals": [50]}
    a = regime_switching_gbm(3000, seed=99, **kw)
    b = regime_switching_gbm(3000, seed=99, **kw)
    c = regime_switching_gbm(3000, seed=100, **kw)
    np.testing.assert_array_equal(a.prices, b.prices)
    np.testing.assert_array_equal(a.regimes, b.regimes)
    assert not np.array_equal(a.prices, c.prices)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_steps": 0}, "n_steps"),
        ({"n_assets": 0}, "n_assets"),
        ({"s0": -1.0}, "s0"),
        ({"dt": 0.0}, "dt"),
        ({"seed": -1}, "seed"),
        ({"regimes": []}, "regimes"),
        ({"regimes": [("x", 0.1, -0.2)]}, "regimes"),
        ({"regimes": [("a", 0.1, 0.2), ("b", 0.1, 0.2)]}, "transition_matrix"),
        ({"transition_matrix": [[0.5, 0.5, 0.1], [0, 1, 0], [0, 0, 1]]}, "transition_matrix"),
        ({"transition_matrix": [[1.0, 0.0], [0.0, 1.0]]}, "transition_matrix"),
        ({"initial_regime": 3}, "initial_regime"),
        ({"n_assets": 2, "correlation": [[1, 1.2], [1.2, 1]]}, "correlation"),
        ({"n_assets": 2, "correlation": [[1, 1.0], [1.0, 1]]}, "correlation"),
        ({"n_assets": 2, "correlation": np.eye(3)}, "correlation"),
        ({"vol_spikes": [(5, 0, 2.0)]}, "vol_spikes"),
        ({"vol_spikes": [(5, 3, -2.0)]}, "vol_spikes"),
        ({"vol_spikes": [(500, 3, 2.0)]}, "vol_spikes"),
        ({"vol_spikes": [5]}, "vol_spikes"),
        ({"reversals": [100]}, "reversals"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, param):
    kwargs = {"n_steps": 100, **kwargs}
    with pytest.raises(InvalidParameterError, match=repr(param)[1:-1]):
        regime_switching_gbm(**kwargs)
