"""Portfolio scenario: periodic re-optimisation from the market scenario's rolling returns.

Every period the runner asks :meth:`PortfolioScenario.request` for a
``POST /api/v1/optimize/portfolio`` body: the annualised mean and covariance of the
market's last ``window`` log returns (:meth:`MarketScenario.rolling_returns
<nqp.scenarios.market.MarketScenario.rolling_returns>`; per-step moments divided by
``dt``), ``budget`` assets to pick and the ``risk_aversion``. The answer is recorded with
:meth:`PortfolioScenario.record`, and at the next decision (or :meth:`close`) the chosen
equal-weight portfolio's realised simple return over the holding period is measured
against the equal-weight portfolio of all assets: an honest check of whether the estimates
carried information (under GBM with a shared regime they mostly do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nqp._validation import Interval, Options, validate_params
from nqp.scenarios.market import MarketScenario

__all__ = ["PortfolioScenario", "Rebalance"]


@dataclass
class Rebalance:
    """One re-optimisation and, once the next one happens, how it fared.

    Attributes
    ----------
    step : int
        Market step at the decision.
    selected : list of int
        0-based indices of the chosen assets.
    expected_return : float
        ``mu^T x`` reported by the optimiser (annualised).
    risk : float
        ``x^T sigma x`` reported by the optimiser (annualised variance).
    realised_return : float
        Mean simple return of the chosen assets until the next decision (NaN until then).
    benchmark_return : float
        Mean simple return of all assets over the same period (NaN until then).
    """

    step: int
    selected: list[int]
    expected_return: float
    risk: float
    realised_return: float = math.nan
    benchmark_return: float = math.nan


class PortfolioScenario:
    """Re-optimise a ``budget``-asset portfolio from a market scenario's rolling returns.

    Parameters
    ----------
    market : MarketScenario or None, default=None
        The market whose returns are used; ``None`` creates one (``seed``) that the runner
        advances without sending its ticks.
    budget : int, default=2
        Assets to select.
    risk_aversion : float, default=2.0
        Weight of the annualised variance in the objective.
    min_returns : int, default=32
        Returns needed before the first request.
    method : {"auto", "exact", "anneal"}, default="auto"
        Solver of the request.
    seed : int or None, default=0
        Seed of the created market and of the annealing reads (fixed per request).

    Attributes
    ----------
    market_ : MarketScenario
    decisions_ : list of Rebalance

    Examples
    --------
    >>> p = PortfolioScenario(min_returns=8)
    >>> p.request() is None
    True
    >>> for _ in range(8):
    ...     _ = next(p.market_)
    >>> body = p.request()
    >>> len(body["mu"]), len(body["sigma"]), body["budget"]
    (5, 5, 2)
    """

    name = "portfolio"

    def __init__(
        self,
        market: MarketScenario | None = None,
        *,
        budget: int = 2,
        risk_aversion: float = 2.0,
        min_returns: int = 32,
        method: str = "auto",
        seed: int | None = 0,
    ) -> None:
        self.market = market
        self.budget = budget
        self.risk_aversion = risk_aversion
        self.min_returns = min_returns
        self.method = method
        self.seed = seed

    def _start(self) -> None:
        validate_params(
            "PortfolioScenario",
            {
                "budget": self.budget,
                "risk_aversion": self.risk_aversion,
                "min_returns": self.min_returns,
                "method": self.method,
                "seed": self.seed,
            },
            {
                "budget": [Interval("int", 1, None)],
                "risk_aversion": [Interval("real", 0, None)],
                "min_returns": [Interval("int", 2, None)],
                "method": [Options(("auto", "exact", "anneal"))],
                "seed": [Interval("int", 0, None), None],
            },
        )
        self.market_ = self.market if self.market is not None else MarketScenario(seed=self.seed)
        n_assets = len(self.market_.sources)
        validate_params(
            "PortfolioScenario",
            {"budget": self.budget},
            {"budget": [Interval("int", 1, n_assets)]},
        )
        self.decisions_: list[Rebalance] = []
        self._prices_at_decision: NDArray[np.float64] | None = None

    def request(self) -> dict[str, Any] | None:
        """The optimisation body from the current rolling returns (None: too few yet)."""
        if not hasattr(self, "decisions_"):
            self._start()
        returns = self.market_.rolling_returns()
        if returns.shape[0] < max(int(self.min_returns), 2):
            return None
        dt = float(self.market_.dt)
        mu = returns.mean(axis=0) / dt
        sigma = np.atleast_2d(np.cov(returns, rowvar=False)) / dt
        sigma = 0.5 * (sigma + sigma.T)
        body: dict[str, Any] = {
            "mu": [float(v) for v in mu],
            "sigma": [[float(v) for v in row] for row in sigma],
            "budget": int(self.budget),
            "risk_aversion": float(self.risk_aversion),
            "method": self.method,
        }
        if self.seed is not None:
            body["seed"] = int(self.seed)
        return body

    def record(self, result: dict[str, Any]) -> Rebalance:
        """Record an optimisation answer (``PortfolioResult`` JSON) as the new holding."""
        if not hasattr(self, "decisions_"):
            self._start()
        self.close()
        decision = Rebalance(
            step=int(self.market_.step_),
            selected=[int(i) for i in result["selected"]],
            expected_return=float(result["expected_return"]),
            risk=float(result["risk"]),
        )
        self.decisions_.append(decision)
        self._prices_at_decision = self.market_.prices_.copy()
        return decision

    def close(self) -> None:
        """Measure the current holding's realised return up to now (ends its period)."""
        if not hasattr(self, "decisions_"):
            self._start()
        if self._prices_at_decision is None or not self.decisions_:
            return
        last = self.decisions_[-1]
        growth = self.market_.prices_ / self._prices_at_decision - 1.0
        if last.selected:
            last.realised_return = float(growth[last.selected].mean())
        last.benchmark_return = float(growth.mean())
        self._prices_at_decision = None
