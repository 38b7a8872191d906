"""Online, causal baseline forecasters of the change ``y[t+h] - y[t]``.

Every forecaster here sees the series one point at a time: the forecast made at origin
``t`` uses ``y[0], ..., y[t]`` only. Forecast arrays are aligned with the origin —
``forecast[t]`` is the forecast of ``y[t+h] - y[t]`` — and hold NaN where the forecaster
cannot forecast yet. The target series ``y`` is whatever the engine predicts (raw levels or
the normalised series); pass the same one.

* :func:`zero_change` — persistence of the level: the change is forecast as 0.
* :func:`last_change` — persistence of the change: the last observed h-step change.
* :class:`OnlineAR` — AR(p) fitted by recursive least squares as points arrive.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError, NotFittedError

__all__ = [
    "OnlineAR",
    "baseline_forecasts",
    "change_target",
    "last_change",
    "zero_change",
]


def _series(y: ArrayLike, horizon: int, owner: str) -> NDArray[np.float64]:
    validate_params(owner, {"horizon": horizon}, {"horizon": [Interval("int", 1, None)]})
    return check_finite_array(y, name="y", ndim=1)


def change_target(y: ArrayLike, horizon: int = 1) -> NDArray[np.float64]:
    """Realised change ``y[t+h] - y[t]`` at each origin ``t``; NaN for the last ``h``.

    Parameters
    ----------
    y : array-like of shape (n,)
    horizon : int, default=1

    Returns
    -------
    ndarray of shape (n,), float64

    Examples
    --------
    >>> change_target([1.0, 2.0, 4.0], 1).tolist()
    [1.0, 2.0, nan]
    """
    ya = _series(y, horizon, "change_target")
    out = np.full(ya.size, np.nan)
    out[: max(ya.size - horizon, 0)] = ya[horizon:] - ya[:-horizon]
    return out


def zero_change(y: ArrayLike, horizon: int = 1) -> NDArray[np.float64]:
    """Persistence (random-walk) forecast of the change: 0 at every origin.

    Parameters
    ----------
    y : array-like of shape (n,)
    horizon : int, default=1

    Returns
    -------
    ndarray of shape (n,), float64
        Zeros; its direction is "hold" everywhere.

    Examples
    --------
    >>> zero_change([1.0, 3.0, 2.0]).tolist()
    [0.0, 0.0, 0.0]
    """
    return np.zeros(_series(y, horizon, "zero_change").size)


def last_change(y: ArrayLike, horizon: int = 1) -> NDArray[np.float64]:
    """Persistence of the change: forecast ``y[t] - y[t-h]`` for ``y[t+h] - y[t]``.

    Its sign is the "same direction as the last change" direction baseline.

    Parameters
    ----------
    y : array-like of shape (n,)
    horizon : int, default=1

    Returns
    -------
    ndarray of shape (n,), float64
        NaN for ``t < h`` (no h-step change observed yet).

    Examples
    --------
    >>> last_change([1.0, 3.0, 2.0]).tolist()
    [nan, 2.0, -1.0]
    """
    ya = _series(y, horizon, "last_change")
    out = np.full(ya.size, np.nan)
    out[horizon:] = ya[horizon:] - ya[:-horizon]
    return out


class OnlineAR:
    r"""AR(p) forecaster fitted online by recursive least squares with forgetting.

    With ``difference=True`` the model is an AR(p) on the one-step changes
    :math:`x_t = y_t - y_{t-1}` (an ARIMA(p, 1, 0)); with ``difference=False`` on the
    levels :math:`x_t = y_t`. Each new point gives one regression
    :math:`x_t \approx c + \sum_{i=1}^{p} a_i x_{t-i}` (``c`` only with ``fit_intercept``),
    learned by exponentially weighted RLS (Haykin, *Adaptive Filter Theory*, Table 10.1):

    .. math::

        k = \frac{P z}{\lambda + z^\top P z}, \quad
        w \leftarrow w + k (x_t - z^\top w), \quad
        P \leftarrow (P - k z^\top P) / \lambda,
        \qquad P_0 = I / \delta,

    which minimises :math:`\sum_s \lambda^{t-s}(x_s - z_s^\top w)^2 + \delta\lambda^t\lVert
    w\rVert^2` exactly: with :math:`\lambda = 1` it is ridge regression with penalty
    :math:`\delta` on all data seen. The h-step forecast iterates the one-step model h times
    on its own predictions; the forecast change is the sum of the forecast one-step changes
    (``difference=True``) or the forecast level minus :math:`y_t`.

    Forecasts are NaN until the model has made as many RLS updates as it has coefficients
    (so the ridge prior no longer decides the forecast alone).

    Parameters
    ----------
    p : int, default=2
        AR order (>= 1).
    forgetting : float, default=1.0
        RLS forgetting factor :math:`\lambda` in (0, 1]; 1 keeps all history.
    ridge : float, default=1e-6
        Initial regularisation :math:`\delta > 0` (``P_0 = I / ridge``).
    difference : bool, default=True
        Model the one-step changes (True) or the levels (False).
    fit_intercept : bool, default=True

    Attributes
    ----------
    coef_ : ndarray of shape (p,), float64
        AR coefficients :math:`a_1, \dots, a_p`.
    intercept_ : float
    n_updates_ : int
        RLS updates made.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.cumsum(np.random.default_rng(0).normal(size=300))
    >>> f = OnlineAR(p=1).forecast_series(y, horizon=1)
    >>> bool(np.isnan(f[:3]).all()), bool(np.isfinite(f[3:]).all())
    (True, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "p": [Interval("int", 1, None)],
        "forgetting": [Interval("real", 0, 1, closed="right")],
        "ridge": [Interval("real", 0, None, closed="neither")],
        "difference": [bool],
        "fit_intercept": [bool],
    }

    def __init__(
        self,
        p: int = 2,
        forgetting: float = 1.0,
        ridge: float = 1e-6,
        difference: bool = True,
        fit_intercept: bool = True,
    ) -> None:
        self.p = p
        self.forgetting = forgetting
        self.ridge = ridge
        self.difference = difference
        self.fit_intercept = fit_intercept

    def _start(self) -> None:
        validate_params(
            type(self).__name__,
            {k: getattr(self, k) for k in self._parameter_constraints},
            self._parameter_constraints,
        )
        n_coef = self.p + int(self.fit_intercept)
        self._w = np.zeros(n_coef)
        self._P = np.eye(n_coef) / float(self.ridge)
        # regressor of the next sample: [x_t, x_{t-1}, ..., x_{t-p+1}, (1)], newest first
        self._z = np.zeros(n_coef)
        if self.fit_intercept:
            self._z[-1] = 1.0
        self._n_samples = 0  # samples x_t seen (changes or levels)
        self._last_y = math.nan
        self.n_updates_ = 0

    @property
    def coef_(self) -> NDArray[np.float64]:
        self._check_started()
        return self._w[: self.p].copy()

    @property
    def intercept_(self) -> float:
        self._check_started()
        return float(self._w[self.p]) if self.fit_intercept else 0.0

    def _check_started(self) -> None:
        if not hasattr(self, "_w"):
            raise NotFittedError("This OnlineAR has seen no data; call learn_one(y) first.")

    def learn_one(self, y: float) -> OnlineAR:
        """Observe the next value ``y`` of the series and update the RLS fit.

        Cost O(p²) per point.
        """
        if not hasattr(self, "_w"):
            self._start()
        y = float(y)
        if not math.isfinite(y):
            raise InvalidInputError(f"y must be finite; got {y!r}.")
        prev, self._last_y = self._last_y, y
        if self.difference:
            if math.isnan(prev):
                return self
            x = y - prev
        else:
            x = y
        z = self._z
        if self._n_samples >= self.p:
            pz = self._P @ z
            k = pz / (self.forgetting + z @ pz)
            self._w += k * (x - z @ self._w)
            P = (self._P - np.outer(k, pz)) / self.forgetting
            self._P = 0.5 * (P + P.T)  # keep it symmetric against rounding
            self.n_updates_ += 1
        z[1 : self.p] = z[: self.p - 1]
        z[0] = x
        self._n_samples += 1
        return self

    def forecast_one(self, horizon: int = 1) -> float:
        """Forecast of ``y[t+h] - y[t]`` from the points seen so far (NaN if not ready)."""
        if horizon != 1:
            validate_params(
                type(self).__name__, {"horizon": horizon}, {"horizon": [Interval("int", 1, None)]}
            )
        self._check_started()
        if self.n_updates_ < self._w.size:
            return math.nan
        w = self._w
        x = float(self._z @ w)
        if horizon == 1:
            return x if self.difference else x - self._last_y
        z = self._z.copy()
        total = x
        for _ in range(horizon - 1):
            z[1 : self.p] = z[: self.p - 1]
            z[0] = x
            x = float(z @ w)
            total += x
        return total if self.difference else x - self._last_y

    def forecast_series(self, y: ArrayLike, horizon: int = 1) -> NDArray[np.float64]:
        """Walk through ``y`` from a fresh state; forecast at every origin.

        ``forecast[t]`` is computed after ``learn_one(y[t])`` and before ``y[t+1]`` is seen,
        so it depends on ``y[0..t]`` only. The model is left in its state after the last
        point. Cost: O(n · (p² + h·p)) in a Python loop.

        Parameters
        ----------
        y : array-like of shape (n,)
        horizon : int, default=1

        Returns
        -------
        ndarray of shape (n,), float64
            NaN while the model is warming up (see the class notes).
        """
        ya = _series(y, horizon, type(self).__name__)
        self._start()
        out = np.full(ya.size, np.nan)
        for t, v in enumerate(ya):
            self.learn_one(v)
            out[t] = self.forecast_one(horizon)
        return out

    def __repr__(self) -> str:
        return (
            f"OnlineAR(p={self.p!r}, forgetting={self.forgetting!r}, ridge={self.ridge!r}, "
            f"difference={self.difference!r}, fit_intercept={self.fit_intercept!r})"
        )


def baseline_forecasts(
    y: ArrayLike,
    horizon: int = 1,
    *,
    ar_order: int = 2,
    ar_forgetting: float = 1.0,
    ar_difference: bool = True,
) -> dict[str, NDArray[np.float64]]:
    """The standard baselines of a validation run, aligned with the origins of ``y``.

    Parameters
    ----------
    y : array-like of shape (n,)
    horizon : int, default=1
    ar_order, ar_forgetting, ar_difference
        Passed to :class:`OnlineAR` as ``p``, ``forgetting`` and ``difference``.

    Returns
    -------
    dict of str to ndarray of shape (n,), float64
        ``{"persistence": zero_change, "last_change": last_change, "ar(p)": OnlineAR}``.

    Examples
    --------
    >>> sorted(baseline_forecasts([0.0, 1.0, 0.5, 2.0, 1.0, 1.5]))
    ['ar(2)', 'last_change', 'persistence']
    """
    ya = _series(y, horizon, "baseline_forecasts")
    model = OnlineAR(p=ar_order, forgetting=ar_forgetting, difference=ar_difference)
    return {
        "persistence": zero_change(ya, horizon),
        "last_change": last_change(ya, horizon),
        f"ar({ar_order})": model.forecast_series(ya, horizon),
    }
