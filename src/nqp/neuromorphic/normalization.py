"""Per-source online normalisation of observations, batched over sources.

Every source's observations are turned into z-scores with running statistics that are
updated one observation at a time (O(1) per point), either of the source's *levels* or of
its *returns* (first differences). The statistics of many sources live in one
:class:`NormalizerState` whose arrays have a leading ``n_sources`` axis, so the engine can
gather the rows of a batch, update them together and scatter them back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._state import BatchState
from nqp._validation import Interval, Options, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError

__all__ = ["NormalizerState", "OnlineNormalizer"]


@dataclasses.dataclass
class NormalizerState(BatchState):
    """Running statistics of :class:`OnlineNormalizer` for ``n_sources`` sources.

    Attributes
    ----------
    count : ndarray of shape (n_sources, n_channels), int64
        Observations seen (every channel of a source advances together).
    weight : ndarray of shape (n_sources, n_channels), float64
        Total weight ``W`` of the samples in the statistics: the number of samples without
        forgetting, ``sum_i lambda**(t - i)`` with it.
    mean : ndarray of shape (n_sources, n_channels), float64
        Weighted mean of the samples (levels or changes).
    var : ndarray of shape (n_sources, n_channels), float64
        Weighted population variance (``ddof=0``) of the samples.
    last : ndarray of shape (n_sources, n_channels), float64
        The last raw observation (the reference for the next change in ``"returns"`` mode).
    """

    count: NDArray[np.int64]
    weight: NDArray[np.float64]
    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    last: NDArray[np.float64]


class OnlineNormalizer:
    r"""Online z-scores of levels or returns, one running mean/variance per source and channel.

    For each source and channel the *sample* ``v_t`` is the level ``x_t`` (``mode="levels"``)
    or the change ``x_t - x_{t-1}`` (``mode="returns"``). The sample is first added to the
    running statistics, then normalised against them:

    .. math::

        z_t = \frac{v_t - m_t}{s_t}, \qquad
        m_t = \frac{\sum_{i \le t} w_i v_i}{W_t}, \quad
        s_t^2 = \frac{\sum_{i \le t} w_i (v_i - m_t)^2}{W_t}, \quad
        w_i = \lambda^{t - i}, \; W_t = \sum_{i \le t} w_i,

    with ``lambda = 1`` (plain running mean and population standard deviation, ``ddof=0``)
    when ``halflife`` is None, and ``lambda = 2 ** (-1 / halflife)`` otherwise. The update is
    West's weighted form of Welford's algorithm, which equals the formula above exactly (up to
    rounding) without storing the history.

    Including the current sample before normalising keeps every z-score finite and bounded:
    by Samuelson's inequality ``|z_t| <= sqrt(W_t - 1)`` (``sqrt(n - 1)`` after ``n`` samples).
    So during warm-up the first sample of a source gives ``z = 0`` (its own mean, no spread),
    the second gives ``z = +-1`` (or 0 if equal to the first), and so on; a spread of at most
    ``eps`` counts as none and gives ``z = 0``. NaN is never returned. In ``"returns"`` mode the
    first observation of a source has no change: it returns 0 and only sets the reference.

    Parameters
    ----------
    mode : {"returns", "levels"}, default="returns"
        Normalise changes ``x_t - x_{t-1}`` or the values themselves. For prices, pass log
        prices to normalise log returns.
    halflife : float or None, default=None
        Half-life of the exponential forgetting, in observations (of changes in
        ``"returns"`` mode); None keeps every sample with equal weight.
    eps : float, default=1e-12
        Standard deviations ``<= eps`` (in the input's units) count as zero spread.
    clip : float or None, default=10.0
        z-scores are clipped to ``[-clip, clip]``; None disables clipping.

    Examples
    --------
    >>> norm = OnlineNormalizer(mode="levels")
    >>> state = norm.init_state(n_sources=2, n_channels=1)
    >>> [norm.update_transform(state, np.array([[v], [10 * v]]))[:, 0].tolist()
    ...  for v in (1.0, 3.0)]
    [[0.0, 0.0], [1.0, 1.0]]
    >>> state.mean[:, 0].tolist(), state.var[:, 0].tolist()
    ([2.0, 20.0], [1.0, 100.0])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "mode": [Options(("returns", "levels"))],
        "halflife": [Interval("real", 0, None, "neither"), None],
        "eps": [Interval("real", 0, None, "left")],
        "clip": [Interval("real", 0, None, "neither"), None],
    }

    def __init__(
        self,
        mode: str = "returns",
        halflife: float | None = None,
        eps: float = 1e-12,
        clip: float | None = 10.0,
    ) -> None:
        self.mode = mode
        self.halflife = halflife
        self.eps = eps
        self.clip = clip

    def __repr__(self) -> str:
        return (
            f"OnlineNormalizer(mode={self.mode!r}, halflife={self.halflife!r}, "
            f"eps={self.eps!r}, clip={self.clip!r})"
        )

    def _check_params(self) -> None:
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        if getattr(self, "_checked_params_", None) != params:  # validate once per setting
            validate_params(type(self).__name__, params, self._parameter_constraints)
            self._checked_params_ = params

    @property
    def decay(self) -> float:
        """The forgetting factor ``lambda = 2 ** (-1 / halflife)`` (1.0 without forgetting)."""
        if self.halflife is None:
            return 1.0
        return math.pow(2.0, -1.0 / float(self.halflife))

    def init_state(self, n_sources: int, n_channels: int) -> NormalizerState:
        """Empty statistics for ``n_sources`` sources of ``n_channels`` channels each."""
        self._check_params()
        validate_params(
            f"{type(self).__name__}.init_state",
            {"n_sources": n_sources, "n_channels": n_channels},
            {"n_sources": [Interval("int", 0, None)], "n_channels": [Interval("int", 1, None)]},
        )
        shape = (n_sources, n_channels)
        return NormalizerState(
            count=np.zeros(shape, dtype=np.int64),
            weight=np.zeros(shape, dtype=np.float64),
            mean=np.zeros(shape, dtype=np.float64),
            var=np.zeros(shape, dtype=np.float64),
            last=np.zeros(shape, dtype=np.float64),
        )

    @staticmethod
    def _check_state(state: NormalizerState, batch: int, n_channels: int) -> None:
        if not isinstance(state, NormalizerState):
            raise InvalidInputError(
                f"state must be a NormalizerState (from init_state), got {type(state).__name__}."
            )
        if state.mean.shape != (batch, n_channels):
            raise InvalidInputError(
                f"state holds shape {state.mean.shape} (n_sources, n_channels) but x has shape "
                f"({batch}, {n_channels}); gather the state rows of the sources in the batch."
            )

    def update_transform(self, state: NormalizerState, x: ArrayLike) -> NDArray[np.float64]:
        """Add one observation per source to the statistics and return its z-scores.

        Parameters
        ----------
        state : NormalizerState
            Statistics of the ``batch`` sources in ``x``, row for row; updated in place.
            Left untouched when ``x`` is rejected.
        x : array-like of shape (batch, n_channels), float64
            One new raw observation per source.

        Returns
        -------
        z : ndarray of shape (batch, n_channels), float64

        Raises
        ------
        InvalidInputError
            If ``x`` is not 2-D, holds NaN/inf (count and first index named), or does not
            match the state's shape.
        """
        self._check_params()
        arr = check_finite_array(x, name="x", ndim=2)
        self._check_state(state, *arr.shape)
        return self._step(state, arr)

    def update_transform_many(self, state: NormalizerState, X: ArrayLike) -> NDArray[np.float64]:
        """Feed ``n_steps`` consecutive observations per source; same as repeated single steps.

        Parameters
        ----------
        state : NormalizerState
            Statistics of the ``batch`` sources, updated in place (untouched on rejection:
            the whole block is validated before any update).
        X : array-like of shape (batch, n_steps, n_channels), float64
            Observations in time order along axis 1.

        Returns
        -------
        Z : ndarray of shape (batch, n_steps, n_channels), float64
        """
        self._check_params()
        arr = check_finite_array(X, name="X", ndim=3)
        batch, n_steps, n_channels = arr.shape
        self._check_state(state, batch, n_channels)
        out = np.empty_like(arr)
        for t in range(n_steps):
            out[:, t] = self._step(state, arr[:, t])
        return out

    def _step(self, state: NormalizerState, x: NDArray[np.float64]) -> NDArray[np.float64]:
        lam = self.decay
        if self.mode == "returns":
            has_prev = state.count > 0
            v = np.where(has_prev, x - state.last, 0.0)
        else:
            has_prev = None
            v = x
        weight_old = state.weight
        weight_new = lam * weight_old + 1.0
        delta = v - state.mean
        mean_new = state.mean + delta / weight_new
        var_new = (lam * weight_old / weight_new) * (state.var + delta * delta / weight_new)
        if has_prev is not None:  # the first observation only sets the reference
            weight_new = np.where(has_prev, weight_new, weight_old)
            mean_new = np.where(has_prev, mean_new, state.mean)
            var_new = np.where(has_prev, var_new, state.var)
        std = np.sqrt(var_new)
        spread = std > self.eps
        z = np.divide(v - mean_new, std, out=np.zeros_like(v), where=spread)
        if has_prev is not None:
            z[~has_prev] = 0.0
        if self.clip is not None:
            np.clip(z, -self.clip, self.clip, out=z)
        state.weight[...] = weight_new
        state.mean[...] = mean_new
        state.var[...] = var_new
        state.last[...] = x
        state.count += 1
        return z
