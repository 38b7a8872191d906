"""Portfolio scenario: requests carry the annualised rolling moments; outcomes are measured."""

from __future__ import annotations

import numpy as np
import pytest

from nqp.exceptions import InvalidParameterError
from nqp.quantum.optimize import solve_portfolio
from nqp.quantum.problems import PortfolioProblem
from nqp.scenarios import MarketScenario, PortfolioScenario


def test_request_holds_the_annualised_moments_of_the_rolling_returns():
    market = MarketScenario(window=64, seed=2)
    p = PortfolioScenario(market, budget=3, risk_aversion=1.5, min_returns=40, seed=4)
    for _ in range(39):
        next(market)
    assert p.request() is None  # 39 returns < min_returns
    for _ in range(100):
        next(market)
    body = p.request()
    r = market.rolling_returns()
    assert r.shape == (64, 5)
    np.testing.assert_allclose(body["mu"], r.mean(axis=0) / market.dt, rtol=1e-12)
    np.testing.assert_allclose(body["sigma"], np.cov(r.T) / market.dt, rtol=1e-10)
    assert body["budget"] == 3
    assert body["risk_aversion"] == 1.5
    assert body["seed"] == 4
    # the body is a problem the engine's solver accepts, and it selects `budget` assets
    problem = PortfolioProblem(np.array(body["mu"]), np.array(body["sigma"]), 3, 1.5)
    result = solve_portfolio(problem, method="exact")
    assert int(np.sum(result.solution)) == 3


def test_realised_returns_are_measured_from_the_prices_between_decisions():
    market = MarketScenario(seed=8)
    p = PortfolioScenario(market, budget=2, min_returns=2)
    for _ in range(10):
        next(market)
    first_prices = market.prices_.copy()
    p.record({"selected": [1, 3], "expected_return": 0.1, "risk": 0.02})
    for _ in range(50):
        next(market)
    p.record({"selected": [0, 4], "expected_return": 0.2, "risk": 0.03})
    growth = market.prices_ / first_prices - 1.0
    first = p.decisions_[0]
    assert first.step == 10
    assert first.realised_return == pytest.approx((growth[1] + growth[3]) / 2, rel=1e-12)
    assert first.benchmark_return == pytest.approx(growth.mean(), rel=1e-12)
    assert np.isnan(p.decisions_[1].realised_return)  # still held
    second_prices = market.prices_.copy()
    for _ in range(5):
        next(market)
    p.close()
    g2 = market.prices_ / second_prices - 1.0
    assert p.decisions_[1].realised_return == pytest.approx((g2[0] + g2[4]) / 2, rel=1e-12)


def test_a_portfolio_without_a_market_makes_its_own_and_checks_the_budget():
    p = PortfolioScenario(seed=3)
    assert p.request() is None
    assert isinstance(p.market_, MarketScenario)
    with pytest.raises(InvalidParameterError, match="'budget' parameter of PortfolioScenario"):
        PortfolioScenario(budget=6).request()
    with pytest.raises(InvalidParameterError, match="'method' parameter"):
        PortfolioScenario(method="magic").request()
