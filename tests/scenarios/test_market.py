"""Market scenario: the streamed GBM keeps the law it was given, and events do what they say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nqp.datasets import Regime
from nqp.datasets.market import DEFAULT_REGIMES, DEFAULT_TRANSITION_MATRIX
from nqp.exceptions import InvalidParameterError
from nqp.scenarios import MarketScenario, parse_event

Z = 4.5  # tolerance in standard errors: a correct generator fails < 1e-5 of the time


def _stream(m: MarketScenario, n: int, triggers: dict[int, str] | None = None):
    """Prices (n, assets), regimes (n,), effective drift and volatility (n,) of n steps."""
    prices, regimes, drift, vol = [], [], [], []
    for k in range(n):
        if triggers and k in triggers:
            m.trigger(triggers[k])
        points = next(m)
        prices.append([p.data for p in points])
        regimes.append(m.regime_)
        drift.append(m.drift_)
        vol.append(m.volatility_)
    return np.array(prices), np.array(regimes), np.array(drift), np.array(vol)


def _log_returns(prices: np.ndarray, s0: float) -> np.ndarray:
    return np.diff(np.log(np.vstack([np.full(prices.shape[1], s0), prices])), axis=0)


def test_log_returns_of_each_regime_have_the_regime_drift_and_volatility():
    dt = 1.0 / 252.0  # daily bars: the drift is visible against the noise
    m = MarketScenario(dt=dt, chunk_steps=97, seed=3)  # many chunk seams
    prices, regimes, drift, vol = _stream(m, 30_000)
    r = _log_returns(prices, 100.0)
    assert set(np.unique(regimes)) == {0, 1, 2}
    for k, regime in enumerate(DEFAULT_REGIMES):
        x = r[regimes == k, 0]
        n = x.size
        assert n > 1000, regime
        mu, sigma = regime.drift, regime.volatility
        assert np.all(drift[regimes == k] == mu)
        assert np.all(vol[regimes == k] == sigma)
        expected_mean = (mu - sigma**2 / 2) * dt
        se_mean = sigma * math.sqrt(dt / n)
        assert abs(x.mean() - expected_mean) < Z * se_mean, regime
        # std of the sample std of a normal sample is about sigma / sqrt(2n)
        assert abs(x.std(ddof=1) / (sigma * math.sqrt(dt)) - 1.0) < Z / math.sqrt(2 * n), regime
    # the assets' shocks have the stated correlation (0.3)
    c = np.corrcoef(r[regimes == 0].T)
    off = c[~np.eye(5, dtype=bool)]
    assert np.all(np.abs(off - 0.3) < Z * (1 - 0.3**2) / math.sqrt((regimes == 0).sum()))


FAST = ((0.6, 0.4), (0.3, 0.7))  # short stays: a bias at the chunk seams would show


@pytest.mark.parametrize(
    ("transition", "chunk_steps"),
    [(None, 7), (None, 1024), (FAST, 7), (FAST, 1)],
)
def test_regime_switches_happen_at_the_rates_of_the_transition_matrix(transition, chunk_steps):
    regimes_ = DEFAULT_REGIMES if transition is None else DEFAULT_REGIMES[:2]
    m = MarketScenario(
        regimes=regimes_, transition_matrix=transition, chunk_steps=chunk_steps, seed=11
    )
    _, regimes, _, _ = _stream(m, 40_000 if transition is None else 10_000)
    p = np.array(DEFAULT_TRANSITION_MATRIX if transition is None else transition)
    for k in range(p.shape[0]):
        here = regimes[:-1] == k
        n = int(here.sum())
        leaves = int((regimes[1:][here] != k).sum())
        q = 1.0 - p[k, k]
        assert leaves > 10  # switches do happen, from every regime
        assert abs(leaves - n * q) < Z * math.sqrt(n * q * (1 - q)), (k, leaves, n * q)


def test_a_triggered_volatility_spike_multiplies_the_realised_volatility():
    calm = [Regime("calm", 0.0, 0.2)]
    m = MarketScenario(
        regimes=calm, spike_multiplier=4.0, spike_steps=400, chunk_steps=64, seed=5
    )  # the spike crosses chunk seams
    prices, _, _, vol = _stream(m, 2000, triggers={1000: "vol_spike"})
    r = _log_returns(prices, 100.0).ravel().reshape(2000, 5)
    sd = 0.2 * math.sqrt(m.dt)
    assert np.all(vol[:1000] == 0.2)
    assert np.all(vol[1000:1400] == 0.8)
    assert np.all(vol[1400:] == 0.2)
    before, during, after = r[:1000], r[1000:1400], r[1400:]
    # each window's realised vol matches its planted vol (5 correlated assets: use asset 0)
    for window, factor in ((before, 1.0), (during, 4.0), (after, 1.0)):
        x = window[:, 0]
        assert abs(x.std(ddof=1) / (factor * sd) - 1.0) < Z / math.sqrt(2 * x.size)
    assert during[:, 0].std() > 3.0 * before[:, 0].std()
    assert m.events_ == [(1000, "vol_spike")]


def test_a_triggered_reversal_flips_the_drift_until_the_next_one():
    trend = [Regime("trend", 2.0, 0.1)]
    dt = 1.0 / 252.0
    m = MarketScenario(tickers=("X",), regimes=trend, dt=dt, chunk_steps=300, seed=2)
    prices, _, drift, _ = _stream(m, 3000, triggers={1000: "reversal", 2000: "reversal"})
    r = _log_returns(prices, 100.0)[:, 0]
    assert np.all(drift[:1000] == 2.0)
    assert np.all(drift[1000:2000] == -2.0)
    assert np.all(drift[2000:] == 2.0)
    se = 0.1 * math.sqrt(dt / 1000)
    for window, mu in ((r[:1000], 2.0), (r[1000:2000], -2.0), (r[2000:], 2.0)):
        assert abs(window.mean() - (mu - 0.1**2 / 2) * dt) < Z * se


def test_same_seed_and_triggers_give_the_same_stream_and_another_seed_does_not():
    def run(seed: int) -> list:
        m = MarketScenario(seed=seed, chunk_steps=50, start_time=1000.0, interval=0.25)
        out = []
        for k in range(300):
            if k == 120:
                m.trigger("vol_spike")
            out.extend(next(m))
        return out

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert [p.data for p in a] != [p.data for p in c]
    assert a[0].timestamp == 1000.0
    assert a[-1].timestamp == 1000.0 + 299 * 0.25
    assert {p.source for p in a} == {
        f"market.{t}" for t in ("ACME", "BOLT", "CRUX", "DYNA", "EPIC")
    }


def test_rolling_returns_are_the_last_window_log_returns():
    m = MarketScenario(window=16, seed=1)
    prices = np.array([[p.data for p in next(m)] for _ in range(40)])
    r = _log_returns(prices, 100.0)
    np.testing.assert_allclose(m.rolling_returns(), r[-16:], rtol=1e-12, atol=1e-15)
    assert MarketScenario().rolling_returns().shape == (0, 5)


def test_events_parse_and_bad_parameters_are_named():
    assert parse_event("reversal@0") == (0.0, "reversal")
    for bad in ("vol_spike", "crash@3", "vol_spike@-1", "vol_spike@x", "vol_spike@nan"):
        with pytest.raises(InvalidParameterError, match="EVENT@SECONDS"):
            parse_event(bad)
    with pytest.raises(InvalidParameterError, match="'event' parameter"):
        MarketScenario().trigger("crash")
    with pytest.raises(InvalidParameterError, match="'correlation' parameter of MarketScenario"):
        next(MarketScenario(correlation=1.0))
    with pytest.raises(InvalidParameterError, match="'tickers' parameter"):
        next(MarketScenario(tickers=("A", "A")))
    with pytest.raises(InvalidParameterError, match="'interval' parameter"):
        next(MarketScenario(interval=0.0))
