"""Stateful novelty detector: ``emergent`` (a state far from the source's own history)."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._state import BatchState
from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError

__all__ = ["EmergentState", "emergent"]

_CONSTRAINTS = {
    "halflife": [Interval("real", 0, None, "neither")],
    "warmup": [Interval("int", 1, None)],
    "distance_scale": [Interval("real", 0, None, "neither")],
    "variance_floor": [Interval("real", 0, None, "both")],
}


@dataclasses.dataclass
class EmergentState(BatchState):
    r"""Per-source exponentially weighted mean and variance of the state vector.

    Parameters
    ----------
    mean : ndarray of shape (n_sources, n_features), float64
        EW mean :math:`\mu` of each feature.
    var : ndarray of shape (n_sources, n_features), float64
        EW (population) variance :math:`v` of each feature.
    count : ndarray of shape (n_sources,), int64
        Number of updates each source has seen.

    Examples
    --------
    >>> s = EmergentState.zeros(2, 3)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(50):
    ...     _ = s.update(rng.normal(size=(2, 3)))
    >>> jump = s.update(np.array([[0.1, -0.2, 0.3], [9.0, 9.0, 9.0]]))
    >>> bool(jump[0] < 0.5), bool(jump[1] > 0.5)
    (True, True)
    """

    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    count: NDArray[np.int64]

    @classmethod
    def zeros(cls, n_sources: int, n_features: int) -> Self:
        """A fresh state for ``n_sources`` sources with no history."""
        validate_params(
            "EmergentState",
            {"n_sources": n_sources, "n_features": n_features},
            {"n_sources": [Interval("int", 0, None)], "n_features": [Interval("int", 1, None)]},
        )
        return cls(
            mean=np.zeros((n_sources, n_features)),
            var=np.zeros((n_sources, n_features)),
            count=np.zeros(n_sources, dtype=np.int64),
        )

    def update(
        self,
        features: ArrayLike,
        rows: ArrayLike | None = None,
        *,
        halflife: float = 50.0,
        warmup: int = 20,
        distance_scale: float = 2.0,
        variance_floor: float = 0.01,
    ) -> NDArray[np.float64]:
        r"""Score each source's new state against its history, then learn it.

        For source :math:`s` with history :math:`(\mu, v, n)` and new state
        :math:`x \in \mathbb{R}^F`, the root-mean-square standardised distance
        (a diagonal Mahalanobis distance divided by :math:`\sqrt F`) is

        .. math:: d = \Big(\frac{1}{F}\sum_f \frac{(x_f - \mu_f)^2}
                                          {v_f + \epsilon}\Big)^{1/2},
                  \qquad \epsilon = \text{variance\_floor}\cdot\bar v + 10^{-12},

        which is about 1 for states drawn from the familiar regime. The strength maps the
        excess through a saturating function,

        .. math:: \text{strength} = \frac{(d - 1)^+}{(d - 1)^+ + c},
                  \quad c = \text{distance\_scale},

        so :math:`d = 1 + c` (3 standard deviations by default) gives 0.5. Sources with
        fewer than ``warmup`` past states score 0: they have no history to be novel
        against. Afterwards the state is learnt with the EW update of West (1979) /
        Finch (2009, "exponentially weighted incremental variance") at rate
        :math:`\alpha = \max(1/(n+1), 1 - 2^{-1/\text{halflife}})` (an exact running
        mean and variance until the
        halflife takes over), so a novel state that persists becomes familiar.

        Parameters
        ----------
        features : array-like of shape (batch, n_features)
            New state per source (e.g. a reservoir trace or window firing rates).
        rows : array-like of int of shape (batch,), optional
            Distinct source indices of the batch rows; default ``arange(n_sources)``.
        halflife : float, default=50.0
            Memory of the history in updates.
        warmup : int, default=20
            Updates needed before a source can score above 0.
        distance_scale : float, default=2.0
            :math:`c` above.
        variance_floor : float, default=0.01
            Floor on each variance relative to the mean variance across features, so
            that a feature that never moved does not make any tiny change infinitely novel.

        Returns
        -------
        ndarray of shape (batch,), float64
            Strengths in [0, 1].

        Raises
        ------
        InvalidInputError
            Wrong shapes, non-finite features, repeated or out-of-range rows; the state
            is left unchanged.

        References
        ----------
        T. Finch, "Incremental calculation of weighted mean and variance", University of
        Cambridge Computing Service (2009).
        """
        params = {
            "halflife": halflife,
            "warmup": warmup,
            "distance_scale": distance_scale,
            "variance_floor": variance_floor,
        }
        validate_params("EmergentState.update", params, _CONSTRAINTS)
        n_sources, n_features = self.mean.shape
        x = check_finite_array(features, name="features", ndim=2)
        idx = _check_rows(rows, n_sources, x.shape[0])
        if x.shape[1] != n_features:
            raise InvalidInputError(
                f"features must have shape (batch, {n_features}), got shape {x.shape}."
            )
        mu, v, n = self.mean[idx], self.var[idx], self.count[idx]
        eps = variance_floor * v.mean(axis=1, keepdims=True) + 1e-12
        delta = x - mu
        d = np.sqrt(np.mean(delta**2 / (v + eps), axis=1))
        excess = np.maximum(d - 1.0, 0.0)
        strength = np.where(n >= warmup, excess / (excess + distance_scale), 0.0)
        alpha = np.maximum(1.0 / (n + 1.0), 1.0 - 2.0 ** (-1.0 / halflife))[:, None]
        self.mean[idx] = mu + alpha * delta
        self.var[idx] = (1.0 - alpha) * (v + alpha * delta**2)
        self.count[idx] = n + 1
        return np.clip(strength, 0.0, 1.0)


def _check_rows(rows: Any, n_sources: int, batch: int) -> NDArray[np.intp]:
    if rows is None:
        if batch != n_sources:
            raise InvalidInputError(
                f"Without rows, features must have one row per source ({n_sources}); got {batch}."
            )
        return np.arange(n_sources)
    idx = np.asarray(rows)
    if idx.ndim != 1 or idx.shape[0] != batch or not np.issubdtype(idx.dtype, np.integer):
        raise InvalidInputError(
            f"rows must be integers of shape ({batch},), got {idx.dtype} of shape {idx.shape}."
        )
    if idx.size and (idx.min() < 0 or idx.max() >= n_sources):
        raise InvalidInputError(f"rows must lie in [0, {n_sources}); got {idx.tolist()}.")
    if np.unique(idx).size != idx.size:
        raise InvalidInputError("rows must be distinct: one new state per source per update.")
    return idx.astype(np.intp)


def emergent(
    features: ArrayLike,
    state: EmergentState,
    rows: ArrayLike | None = None,
    **params: Any,
) -> NDArray[np.float64]:
    """Novelty of each source's current state; updates ``state`` in place.

    Same as ``state.update(features, rows, **params)``; see
    :meth:`EmergentState.update` for the definition and parameters.

    Parameters
    ----------
    features : array-like of shape (batch, n_features)
    state : EmergentState
        Of shape (n_sources, n_features).
    rows : array-like of int of shape (batch,), optional

    Returns
    -------
    ndarray of shape (batch,), float64

    Examples
    --------
    >>> st = EmergentState.zeros(1, 4)
    >>> familiar = [emergent(np.full((1, 4), t % 3, float), st)[0] for t in range(60)]
    >>> bool(max(familiar[30:]) < 0.5), bool(emergent(np.full((1, 4), 20.0), st)[0] > 0.5)
    (True, True)
    """
    if not isinstance(state, EmergentState):
        raise InvalidInputError(
            f"state must be an EmergentState (see EmergentState.zeros); got {type(state)!r}."
        )
    return state.update(features, rows, **params)
