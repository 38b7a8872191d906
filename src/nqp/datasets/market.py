"""Regime-switching geometric Brownian motion: synthetic market prices with known structure.

Prices follow GBM whose drift and volatility are set by a hidden Markov regime (bull, bear,
crisis, ...), with optional planted events (volatility spikes, trend reversals) and
correlated assets. Every simulated quantity is returned next to the ground truth that
produced it, so backtests can be scored against the regime and event labels.

Units: time is measured in **years of trading time**. The default step
``dt = 1 / (252 * 390)`` is one 1-minute bar (252 trading days of 390 minutes); drifts and
volatilities are annualised (per year, per square-root year). Timestamps are trading-time
seconds: ``k * dt * 252 * 6.5 * 3600`` (overnight and weekend gaps are not modelled).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, validate_params
from nqp.exceptions import InvalidParameterError

__all__ = [
    "DEFAULT_REGIMES",
    "DEFAULT_TRANSITION_MATRIX",
    "MINUTE_BAR",
    "MarketSeries",
    "Regime",
    "regime_switching_gbm",
]

#: One 1-minute bar in years of trading time (252 days x 390 minutes).
MINUTE_BAR: float = 1.0 / (252.0 * 390.0)
_SECONDS_PER_TRADING_YEAR = 252.0 * 6.5 * 3600.0


@dataclass(frozen=True)
class Regime:
    """One market regime: annualised GBM drift and volatility.

    Parameters
    ----------
    name : str
        Label reported in :attr:`MarketSeries.regime_names`.
    drift : float
        Annualised drift ``mu`` of the price (per year): ``E[S_t] = S_0 exp(mu t)``.
    volatility : float
        Annualised volatility ``sigma`` (per square-root year), ``>= 0``.
    """

    name: str
    drift: float
    volatility: float


#: Bull (rising, calm), bear (falling, nervous) and crisis (crashing, volatile).
DEFAULT_REGIMES: tuple[Regime, ...] = (
    Regime("bull", 0.15, 0.12),
    Regime("bear", -0.25, 0.25),
    Regime("crisis", -0.60, 0.60),
)

#: Per-step transition probabilities for :data:`DEFAULT_REGIMES` (row = from, column = to);
#: expected stays of 500, 250 and 100 steps.
DEFAULT_TRANSITION_MATRIX: tuple[tuple[float, ...], ...] = (
    (0.998, 0.0015, 0.0005),
    (0.003, 0.996, 0.001),
    (0.002, 0.008, 0.990),
)


@dataclass(frozen=True, eq=False)
class MarketSeries:
    """Output of :func:`regime_switching_gbm`: prices with their ground truth.

    Attributes
    ----------
    prices : ndarray of shape (n_steps, n_assets), float64
        Price after each step; ``prices[t] = s0 * exp(cumsum(log_returns)[t])``.
    log_returns : ndarray of shape (n_steps, n_assets), float64
        ``log(prices[t] / prices[t - 1])`` with ``prices[-1] := s0``: the increment of step ``t``.
    regimes : ndarray of shape (n_steps,), int64
        Index of the regime in force during step ``t``.
    regime_names : tuple of str
        Names of the regimes, indexed by :attr:`regimes`.
    drift : ndarray of shape (n_steps,), float64
        Effective annualised drift of step ``t`` (regime drift, sign-flipped by reversals).
    volatility : ndarray of shape (n_steps,), float64
        Effective annualised volatility of step ``t`` (regime volatility times spike multipliers).
    timestamps : ndarray of shape (n_steps,), float64
        Trading-time seconds at the end of step ``t``: ``(t + 1) * dt * 252 * 6.5 * 3600``.
    vol_spikes : tuple of (int, int, float)
        The planted volatility spikes ``(start, duration, multiplier)``.
    reversals : tuple of int
        The planted trend reversals (first step with the flipped drift).
    dt : float
        Step in years.
    s0 : float
        Initial price.
    """

    prices: NDArray[np.float64]
    log_returns: NDArray[np.float64]
    regimes: NDArray[np.int64]
    regime_names: tuple[str, ...]
    drift: NDArray[np.float64]
    volatility: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    vol_spikes: tuple[tuple[int, int, float], ...]
    reversals: tuple[int, ...]
    dt: float
    s0: float


def _check_regimes(regimes: Sequence[Regime]) -> tuple[Regime, ...]:
    try:
        out = tuple(Regime(*r) if not isinstance(r, Regime) else r for r in regimes)
    except TypeError as exc:
        raise InvalidParameterError(
            "The 'regimes' parameter of regime_switching_gbm must be a sequence of Regime "
            f"(name, drift, volatility). Got {regimes!r} instead."
        ) from exc
    if not out:
        raise InvalidParameterError(
            "The 'regimes' parameter of regime_switching_gbm must hold at least one regime."
        )
    for r in out:
        if not (np.isfinite(r.drift) and np.isfinite(r.volatility) and r.volatility >= 0):
            raise InvalidParameterError(
                "The 'regimes' parameter of regime_switching_gbm needs finite drifts and "
                f"volatilities >= 0. Got {r!r} instead."
            )
    return out


def _check_transition(matrix: ArrayLike | None, n_regimes: int) -> NDArray[np.float64]:
    if matrix is None:
        if n_regimes == 1:
            return np.ones((1, 1))
        if n_regimes == len(DEFAULT_TRANSITION_MATRIX):
            return np.array(DEFAULT_TRANSITION_MATRIX, dtype=np.float64)
        raise InvalidParameterError(
            "The 'transition_matrix' parameter of regime_switching_gbm is required when "
            f"regimes has {n_regimes} entries (the default matrix is 3 x 3)."
        )
    try:
        p = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"The 'transition_matrix' parameter of regime_switching_gbm must be numeric: {exc}"
        ) from exc
    if p.shape != (n_regimes, n_regimes):
        raise InvalidParameterError(
            "The 'transition_matrix' parameter of regime_switching_gbm must have shape "
            f"({n_regimes}, {n_regimes}) to match regimes. Got shape {p.shape} instead."
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        raise InvalidParameterError(
            "The 'transition_matrix' parameter of regime_switching_gbm must be row-stochastic "
            f"(entries >= 0, rows summing to 1). Got row sums {p.sum(axis=1)} instead."
        )
    return p / p.sum(axis=1, keepdims=True)


def _check_correlation(corr: ArrayLike | None, n_assets: int) -> NDArray[np.float64]:
    if corr is None:
        return np.eye(n_assets)
    try:
        c = np.asarray(corr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"The 'correlation' parameter of regime_switching_gbm must be numeric: {exc}"
        ) from exc
    if c.shape != (n_assets, n_assets):
        raise InvalidParameterError(
            "The 'correlation' parameter of regime_switching_gbm must have shape "
            f"({n_assets}, {n_assets}) for n_assets={n_assets}. Got shape {c.shape} instead."
        )
    if (
        not np.all(np.isfinite(c))
        or not np.allclose(c, c.T)
        or not np.allclose(np.diag(c), 1.0)
        or np.any(np.abs(c) > 1.0 + 1e-12)
    ):
        raise InvalidParameterError(
            "The 'correlation' parameter of regime_switching_gbm must be symmetric with unit "
            "diagonal and entries in [-1, 1]."
        )
    try:
        return np.asarray(np.linalg.cholesky(c), dtype=np.float64)
    except np.linalg.LinAlgError as exc:
        raise InvalidParameterError(
            "The 'correlation' parameter of regime_switching_gbm must be positive definite "
            "(its Cholesky factorisation failed)."
        ) from exc


def _check_events(
    vol_spikes: Sequence[tuple[int, int, float]], reversals: Sequence[int], n_steps: int
) -> tuple[tuple[tuple[int, int, float], ...], tuple[int, ...]]:
    spikes: list[tuple[int, int, float]] = []
    for spike in vol_spikes:
        try:
            start, duration, mult = spike
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                "The 'vol_spikes' parameter of regime_switching_gbm must hold "
                f"(start, duration, multiplier) triples. Got {spike!r} instead."
            ) from exc
        ok = (
            Interval("int", 0, n_steps - 1).accepts(start)
            and Interval("int", 1, None).accepts(duration)
            and Interval("real", 0, None, "neither").accepts(mult)
        )
        if not ok:
            raise InvalidParameterError(
                "The 'vol_spikes' parameter of regime_switching_gbm needs start in "
                f"[0, {n_steps - 1}], duration >= 1 and multiplier > 0. Got {spike!r} instead."
            )
        spikes.append((int(start), int(duration), float(mult)))
    revs: list[int] = []
    for t in reversals:
        if not Interval("int", 0, n_steps - 1).accepts(t):
            raise InvalidParameterError(
                "The 'reversals' parameter of regime_switching_gbm must hold step indices in "
                f"[0, {n_steps - 1}]. Got {t!r} instead."
            )
        revs.append(int(t))
    return tuple(spikes), tuple(sorted(revs))


def _markov_chain(
    p: NDArray[np.float64], n_steps: int, initial: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Sample a discrete-time Markov chain by its holding times (exact, one draw per switch).

    The stay in state ``i`` is geometric with success probability ``1 - p[i, i]``; the next
    state is drawn from row ``i`` restricted to ``j != i`` and renormalised. This is the same
    law as drawing every step from ``p`` but costs O(number of switches) Python steps.
    """
    labels = np.empty(n_steps, dtype=np.int64)
    n = p.shape[0]
    leave = [1.0 - float(p[i, i]) for i in range(n)]
    # cumulative jump distribution of each row without its diagonal, for bisect
    jumps = []
    for i in range(n):
        row = p[i].copy()
        row[i] = 0.0
        total = row.sum()
        jumps.append(np.cumsum(row / total).tolist() if total > 0 else [])
        if total <= 0:
            leave[i] = 0.0  # absorbing
    t, state = 0, initial
    while t < n_steps:
        stay = n_steps - t if leave[state] <= 0.0 else int(rng.geometric(leave[state]))
        labels[t : t + stay] = state
        t += stay
        if t >= n_steps:
            break
        cdf = jumps[state]
        state = min(bisect.bisect_right(cdf, rng.random() * cdf[-1]), n - 1)
    return labels


def regime_switching_gbm(
    n_steps: int,
    *,
    n_assets: int = 1,
    s0: float = 100.0,
    dt: float = MINUTE_BAR,
    regimes: Sequence[Regime] = DEFAULT_REGIMES,
    transition_matrix: ArrayLike | None = None,
    initial_regime: int = 0,
    correlation: ArrayLike | None = None,
    vol_spikes: Sequence[tuple[int, int, float]] = (),
    reversals: Sequence[int] = (),
    seed: int | None = 0,
) -> MarketSeries:
    r"""Simulate correlated GBM prices whose drift and volatility follow a Markov regime.

    Each step ``t`` has an effective drift ``mu_t`` and volatility ``sigma_t``; the log price
    of asset ``a`` moves by the exact GBM increment

    .. math:: \Delta \log S_{t,a} = (\mu_t - \sigma_t^2/2)\,dt + \sigma_t \sqrt{dt}\,(L Z_t)_a,

    with ``Z_t`` standard normal and ``L`` the Cholesky factor of ``correlation``; so the
    simulation is exact in distribution for any ``dt`` (no discretisation bias).

    ``mu_t, sigma_t`` come from ``regimes[r_t]`` where ``r_t`` is a Markov chain with
    per-step ``transition_matrix`` started at ``initial_regime``. Planted events then act on
    top of the regime: every step of a volatility spike ``(start, duration, multiplier)``
    (steps ``start .. start + duration - 1``) has its volatility multiplied by ``multiplier``
    (overlapping spikes multiply); at each reversal step ``t`` the sign of the drift flips for
    all steps ``>= t`` (a second reversal flips it back).

    Parameters
    ----------
    n_steps : int
        Number of steps (bars).
    n_assets : int, default=1
        Number of assets; all share the regime path, their shocks are correlated.
    s0 : float, default=100.0
        Initial price of every asset (> 0).
    dt : float, default=MINUTE_BAR
        Step in years; the default ``1 / (252 * 390)`` is a 1-minute bar.
    regimes : sequence of Regime, default=DEFAULT_REGIMES
        ``(name, drift, volatility)`` per regime, annualised. Defaults: bull (+15 %, 12 %),
        bear (-25 %, 25 %), crisis (-60 %, 60 %).
    transition_matrix : array-like of shape (n_regimes, n_regimes), optional
        Per-step transition probabilities, rows summing to 1. Defaults to
        :data:`DEFAULT_TRANSITION_MATRIX` for three regimes and ``[[1]]`` for one; required
        otherwise.
    initial_regime : int, default=0
        Regime of step 0.
    correlation : array-like of shape (n_assets, n_assets), optional
        Correlation of the assets' shocks (positive definite); identity if omitted.
    vol_spikes : sequence of (int, int, float), default=()
        Planted volatility spikes ``(start, duration, multiplier)``; a spike may run past the
        last step (it is then cut).
    reversals : sequence of int, default=()
        Steps at which the drift sign flips.
    seed : int or None, default=0
        Seed of the :class:`numpy.random.Generator`.

    Returns
    -------
    MarketSeries
        Prices, log returns, regime labels and the effective drift/volatility per step.

    Raises
    ------
    InvalidParameterError
        Naming the offending parameter.

    Examples
    --------
    >>> m = regime_switching_gbm(1000, n_assets=2, correlation=[[1, 0.5], [0.5, 1]], seed=1)
    >>> m.prices.shape, m.regimes.shape, m.regime_names
    ((1000, 2), (1000,), ('bull', 'bear', 'crisis'))
    >>> bool(np.all(m.prices > 0))
    True
    """
    validate_params(
        "regime_switching_gbm",
        {
            "n_steps": n_steps,
            "n_assets": n_assets,
            "s0": s0,
            "dt": dt,
            "initial_regime": initial_regime,
            "seed": seed,
        },
        {
            "n_steps": [Interval("int", 1, None)],
            "n_assets": [Interval("int", 1, None)],
            "s0": [Interval("real", 0, None, "neither")],
            "dt": [Interval("real", 0, None, "neither")],
            "initial_regime": [Interval("int", 0, None)],
            "seed": [Interval("int", 0, None), None],
        },
    )
    regs = _check_regimes(regimes)
    if initial_regime >= len(regs):
        raise InvalidParameterError(
            "The 'initial_regime' parameter of regime_switching_gbm must be in "
            f"[0, {len(regs) - 1}]. Got {initial_regime!r} instead."
        )
    p = _check_transition(transition_matrix, len(regs))
    chol = _check_correlation(correlation, n_assets)
    spikes, revs = _check_events(vol_spikes, reversals, n_steps)

    rng = np.random.default_rng(seed)
    labels = _markov_chain(p, n_steps, int(initial_regime), rng)
    z = rng.standard_normal((n_steps, n_assets)) @ chol.T

    mu = np.array([r.drift for r in regs], dtype=np.float64)[labels]
    sigma = np.array([r.volatility for r in regs], dtype=np.float64)[labels]
    for start, duration, mult in spikes:
        sigma[start : start + duration] *= mult
    sign = np.ones(n_steps)
    for t in revs:
        sign[t:] *= -1.0
    mu = mu * sign

    log_returns = ((mu - 0.5 * sigma**2) * dt)[:, None] + (sigma * np.sqrt(dt))[:, None] * z
    prices = float(s0) * np.exp(np.cumsum(log_returns, axis=0))
    timestamps = np.arange(1, n_steps + 1, dtype=np.float64) * (dt * _SECONDS_PER_TRADING_YEAR)
    return MarketSeries(
        prices=prices,
        log_returns=log_returns,
        regimes=labels,
        regime_names=tuple(r.name for r in regs),
        drift=mu,
        volatility=sigma,
        timestamps=timestamps,
        vol_spikes=spikes,
        reversals=revs,
        dt=float(dt),
        s0=float(s0),
    )
