"""Market scenario: five tickers under regime-switching GBM, with triggerable events.

Prices come from :func:`nqp.datasets.regime_switching_gbm` (exact GBM increments, drift and
volatility set by a hidden Markov regime: bull, bear, crisis), generated ``chunk_steps`` at
a time and stitched so the stream has exactly the law of one long simulation:

- each new chunk starts in a regime drawn from the transition row of the previous step's
  regime (the chain makes its usual one-step transition at the seam);
- a volatility spike that is still running carries into the next chunk for its remaining
  steps, and a reversed trend stays reversed.

**Triggered events.** :meth:`MarketScenario.trigger` applies an event from the next step on:
``"vol_spike"`` multiplies the volatility by ``spike_multiplier`` for ``spike_steps`` steps;
``"reversal"`` flips the sign of the drift (of every regime) until the next reversal. The
rest of the current chunk is discarded and regenerated with the event planted, so an event
takes effect at once. ``nqp demo --event vol_spike@30 --event reversal@45`` triggers them
30 and 45 seconds into a run (:func:`parse_event`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, validate_params
from nqp.datasets.market import (
    DEFAULT_REGIMES,
    DEFAULT_TRANSITION_MATRIX,
    MINUTE_BAR,
    MarketSeries,
    Regime,
    regime_switching_gbm,
)
from nqp.exceptions import InvalidParameterError
from nqp.scenarios.base import ScenarioPoint, validate_timing

__all__ = ["DEFAULT_TICKERS", "MARKET_EVENTS", "MarketScenario", "parse_event"]

#: The five (fictional) tickers of the market scenario.
DEFAULT_TICKERS: tuple[str, ...] = ("ACME", "BOLT", "CRUX", "DYNA", "EPIC")
#: Events :meth:`MarketScenario.trigger` understands.
MARKET_EVENTS: tuple[str, ...] = ("vol_spike", "reversal")


def parse_event(text: str) -> tuple[float, str]:
    """Parse ``"EVENT@SECONDS"`` (e.g. ``"vol_spike@30"``) into ``(seconds, event)``.

    Examples
    --------
    >>> parse_event("vol_spike@30"), parse_event("reversal@2.5")
    ((30.0, 'vol_spike'), (2.5, 'reversal'))
    """
    name, sep, at = text.partition("@")
    try:
        seconds = float(at)
    except ValueError:
        seconds = math.nan
    if not sep or name not in MARKET_EVENTS or not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidParameterError(
            f"An event must be EVENT@SECONDS with EVENT one of {MARKET_EVENTS} and SECONDS >= 0 "
            f"(e.g. vol_spike@30). Got {text!r} instead."
        )
    return seconds, name


class MarketScenario:
    """Ticks of ``len(tickers)`` correlated assets under regime-switching GBM.

    Parameters
    ----------
    tickers : sequence of str, default=DEFAULT_TICKERS
        Asset names; sources are ``"market.<ticker>"``.
    s0 : float, default=100.0
        Initial price of every asset.
    dt : float, default=MINUTE_BAR
        Model time per step in years (default: one 1-minute bar; see
        :mod:`nqp.datasets.market`).
    regimes : sequence of Regime, default=DEFAULT_REGIMES
        Annualised drift and volatility per regime.
    transition_matrix : array-like of shape (n_regimes, n_regimes), optional
        Per-step regime transition probabilities (default for three regimes: stays of
        500, 250 and 100 steps on average).
    initial_regime : int, default=0
        Regime of step 0.
    correlation : float, default=0.3
        Correlation of every pair of assets' shocks, in (-1 / (n_assets - 1), 1).
    spike_multiplier : float, default=4.0
        Volatility multiplier of a triggered ``"vol_spike"``.
    spike_steps : int, default=300
        Steps a triggered ``"vol_spike"`` lasts.
    window : int, default=256
        Log returns kept for :meth:`rolling_returns` (the portfolio scenario's input).
    chunk_steps : int, default=1024
        Steps simulated per call of :func:`~nqp.datasets.regime_switching_gbm`.
    start_time : float, default=0.0
        Timestamp (seconds) of step 0.
    interval : float, default=1.0
        Seconds between steps.
    seed : int or None, default=0
        Seed of the :class:`numpy.random.Generator`.

    Attributes
    ----------
    step_ : int
        Steps taken.
    prices_ : ndarray of shape (n_assets,), float64
        Prices after the last step.
    regime_ : int
        Regime of the last step; :attr:`regime_names_` names it.
    drift_, volatility_ : float
        Effective annualised drift and volatility of the last step (events included).
    events_ : list of (int, str)
        Triggered events with the first step they affect.

    Examples
    --------
    >>> m = MarketScenario(seed=1)
    >>> points = next(m)
    >>> [p.source for p in points][:2], m.step_, points[0].step
    (['market.ACME', 'market.BOLT'], 1, 0)
    >>> m.trigger("vol_spike")
    >>> _ = next(m); m.volatility_ == 4.0 * m.regimes[m.regime_].volatility
    True
    """

    name = "market"

    def __init__(
        self,
        *,
        tickers: Sequence[str] = DEFAULT_TICKERS,
        s0: float = 100.0,
        dt: float = MINUTE_BAR,
        regimes: Sequence[Regime] = DEFAULT_REGIMES,
        transition_matrix: ArrayLike | None = None,
        initial_regime: int = 0,
        correlation: float = 0.3,
        spike_multiplier: float = 4.0,
        spike_steps: int = 300,
        window: int = 256,
        chunk_steps: int = 1024,
        start_time: float = 0.0,
        interval: float = 1.0,
        seed: int | None = 0,
    ) -> None:
        self.tickers = tickers
        self.s0 = s0
        self.dt = dt
        self.regimes = regimes
        self.transition_matrix = transition_matrix
        self.initial_regime = initial_regime
        self.correlation = correlation
        self.spike_multiplier = spike_multiplier
        self.spike_steps = spike_steps
        self.window = window
        self.chunk_steps = chunk_steps
        self.start_time = start_time
        self.interval = interval
        self.seed = seed

    # ------------------------------------------------------------------ set-up
    def _start(self) -> None:
        tickers = tuple(self.tickers)
        if not tickers or len(set(tickers)) != len(tickers):
            raise InvalidParameterError(
                "The 'tickers' parameter of MarketScenario must hold distinct names. "
                f"Got {self.tickers!r} instead."
            )
        n = len(tickers)
        low_corr = -1.0 / (n - 1) if n > 1 else -1.0
        validate_timing("MarketScenario", self.start_time, self.interval, self.seed)
        validate_params(
            "MarketScenario",
            {
                "s0": self.s0,
                "dt": self.dt,
                "correlation": self.correlation,
                "spike_multiplier": self.spike_multiplier,
                "spike_steps": self.spike_steps,
                "window": self.window,
                "chunk_steps": self.chunk_steps,
            },
            {
                "s0": [Interval("real", 0, None, "neither")],
                "dt": [Interval("real", 0, None, "neither")],
                "correlation": [Interval("real", low_corr, 1.0, "neither")],
                "spike_multiplier": [Interval("real", 0, None, "neither")],
                "spike_steps": [Interval("int", 1, None)],
                "window": [Interval("int", 2, None)],
                "chunk_steps": [Interval("int", 1, None)],
            },
        )
        corr = np.full((n, n), float(self.correlation))
        np.fill_diagonal(corr, 1.0)
        self._corr = corr
        self._sources = tuple(f"market.{t}" for t in tickers)
        # a one-step simulation validates regimes, transition matrix and initial regime
        probe = regime_switching_gbm(
            1,
            regimes=self.regimes,
            transition_matrix=self.transition_matrix,
            initial_regime=self.initial_regime,
            seed=0,
        )
        self.regime_names_ = probe.regime_names
        n_reg = len(probe.regime_names)
        if self.transition_matrix is None:
            p = np.array(DEFAULT_TRANSITION_MATRIX) if n_reg == 3 else np.ones((1, 1))
        else:
            p = np.asarray(self.transition_matrix, dtype=np.float64)
        self._transition = p / p.sum(axis=1, keepdims=True)
        self._rng = np.random.default_rng(self.seed)
        self._chunk: MarketSeries | None = None
        self._pos = 0
        self._spikes: list[list[float]] = []  # [steps left, multiplier]
        self._flipped = False
        self._returns: deque[NDArray[np.float64]] = deque(maxlen=self.window)
        self.step_ = 0
        self.prices_ = np.full(n, float(self.s0))
        self.regime_ = int(self.initial_regime)
        self.drift_ = math.nan
        self.volatility_ = math.nan
        self.events_: list[tuple[int, str]] = []

    @property
    def sources(self) -> tuple[str, ...]:
        """``"market.<ticker>"`` for every ticker."""
        if not hasattr(self, "step_"):
            self._start()
        return self._sources

    # ------------------------------------------------------------------ stream
    def _refill(self) -> None:
        if self.step_ == 0:
            initial = int(self.initial_regime)
        else:  # the chain's transition from the last simulated step
            row = self._transition[self.regime_]
            initial = int(self._rng.choice(row.size, p=row))
        self._chunk = regime_switching_gbm(
            int(self.chunk_steps),
            n_assets=len(self._sources),
            s0=float(self.s0),
            dt=float(self.dt),
            regimes=self.regimes,
            transition_matrix=self._transition,
            initial_regime=initial,
            correlation=self._corr if len(self._sources) > 1 else None,
            vol_spikes=[(0, int(left), mult) for left, mult in self._spikes],
            reversals=(0,) if self._flipped else (),
            seed=int(self._rng.integers(2**63)),
        )
        self._pos = 0

    def __iter__(self) -> MarketScenario:
        return self

    def __next__(self) -> list[ScenarioPoint]:
        """Advance every ticker by one step; one point (its price) per ticker."""
        if not hasattr(self, "step_"):
            self._start()
        if self._chunk is None or self._pos >= self._chunk.regimes.size:
            self._refill()
        chunk, k = self._chunk, self._pos
        assert chunk is not None
        log_returns = chunk.log_returns[k]
        self.prices_ = self.prices_ * np.exp(log_returns)
        self._returns.append(log_returns.copy())
        self.regime_ = int(chunk.regimes[k])
        self.drift_ = float(chunk.drift[k])
        self.volatility_ = float(chunk.volatility[k])
        for spike in self._spikes:
            spike[0] -= 1
        self._spikes = [s for s in self._spikes if s[0] > 0]
        self._pos += 1
        step = self.step_
        self.step_ += 1
        ts = float(self.start_time) + step * float(self.interval)
        return [
            ScenarioPoint(source, step, ts, float(p), float(p))
            for source, p in zip(self._sources, self.prices_, strict=True)
        ]

    def trigger(self, event: str) -> None:
        """Apply ``event`` (``"vol_spike"`` or ``"reversal"``) from the next step on."""
        if event not in MARKET_EVENTS:
            raise InvalidParameterError(
                f"The 'event' parameter of MarketScenario.trigger must be one of "
                f"{MARKET_EVENTS}. Got {event!r} instead."
            )
        if not hasattr(self, "step_"):
            self._start()
        if event == "vol_spike":
            self._spikes.append([int(self.spike_steps), float(self.spike_multiplier)])
        else:
            self._flipped = not self._flipped
        self.events_.append((self.step_, event))
        self._chunk = None  # regenerate from the next step with the event planted

    def rolling_returns(self) -> NDArray[np.float64]:
        """The last ``window`` log returns, of shape (n_kept, n_assets), oldest first."""
        if not hasattr(self, "step_"):
            self._start()
        if not self._returns:
            return np.empty((0, len(self._sources)))
        return np.array(self._returns)
