"""Linear readouts from reservoir features to targets.

* :class:`RidgeReadout` — offline, closed-form ridge regression (fitted once on
  collected reservoir states).

The online recursive-least-squares readout with forgetting (per source, trained as
outcomes arrive; DESIGN.md §4 "Readout") belongs in this module too and is not written
yet.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError, NotFittedError

__all__ = ["RidgeReadout"]


class RidgeReadout:
    r"""Ridge regression solved in closed form on the normal equations.

    Minimises :math:`\lVert y - X w - b \rVert^2 + \alpha \lVert w \rVert^2` (the
    intercept ``b`` is not penalised). With ``fit_intercept`` the columns of ``X`` and
    ``y`` are centred first, then

    .. math:: (X_c^\top X_c + \alpha I)\, w = X_c^\top y_c, \qquad b = \bar y - \bar x^\top w

    solved by Cholesky (:func:`scipy.linalg.solve` with ``assume_a="pos"``) in float64.
    Cost is O(n_samples · n_features² + n_features³), independent of the number of
    outputs beyond the right-hand sides; for ``n_features`` in the thousands that is far
    cheaper than an SVD of ``X``. Centring removes the constant column's large
    eigenvalue, which keeps the Gram matrix better conditioned than augmenting ``X``
    with a column of ones. If ``alpha`` is so small that the Gram matrix is numerically
    singular (Cholesky fails, or LAPACK warns of ill-conditioning), the minimum-norm
    least-squares solution of the same regularised problem is used
    (:func:`scipy.linalg.lstsq` on ``[X_c; sqrt(alpha) I]``).

    Parameters
    ----------
    alpha : float, default=1e-6
        Ridge penalty (>= 0). ``alpha = 0`` is ordinary least squares.
    fit_intercept : bool, default=True

    Attributes
    ----------
    coef_ : ndarray of shape (n_outputs, n_features) or (n_features,), float64
        Weights; 1-D when ``y`` was 1-D.
    intercept_ : ndarray of shape (n_outputs,) or float
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> r = RidgeReadout(alpha=0.0).fit(X, 2.0 * X[:, 0] + 1.0)
    >>> round(float(r.coef_[0]), 10), round(float(r.intercept_), 10)
    (2.0, 1.0)
    >>> r.predict([[4.0]]).round(10).tolist()
    [9.0]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval("real", 0, None)],
        "fit_intercept": [bool],
    }

    def __init__(self, alpha: float = 1e-6, fit_intercept: bool = True) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, X: ArrayLike, y: ArrayLike) -> RidgeReadout:
        """Fit on features ``X`` of shape (n_samples, n_features) and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            float32 reservoir states are promoted to float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        validate_params(
            type(self).__name__,
            {"alpha": self.alpha, "fit_intercept": self.fit_intercept},
            self._parameter_constraints,
        )
        x = check_finite_array(X, name="X", ndim=2)
        y_arr = check_finite_array(y, name="y")
        if y_arr.ndim not in (1, 2) or y_arr.shape[0] != x.shape[0]:
            raise InvalidInputError(
                f"y must have shape (n_samples,) or (n_samples, n_outputs) with "
                f"n_samples={x.shape[0]} like X {x.shape}; got {y_arr.shape}."
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InvalidInputError(f"X must be non-empty; got shape {x.shape}.")
        y2 = y_arr[:, None] if y_arr.ndim == 1 else y_arr
        if self.fit_intercept:
            x_mean = x.mean(axis=0)
            y_mean = y2.mean(axis=0)
            xc = x - x_mean
            yc = y2 - y_mean
        else:
            x_mean = np.zeros(x.shape[1])
            y_mean = np.zeros(y2.shape[1])
            xc, yc = x, y2
        w = _solve_ridge(xc, yc, float(self.alpha))  # (n_features, n_outputs)
        intercept = y_mean - x_mean @ w
        self.n_features_in_ = x.shape[1]
        if y_arr.ndim == 1:
            self.coef_ = w[:, 0].copy()
            self.intercept_: NDArray[np.float64] | float = float(intercept[0])
        else:
            self.coef_ = np.ascontiguousarray(w.T)
            self.intercept_ = intercept
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predictions of shape (n_samples,) or (n_samples, n_outputs), float64."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("This RidgeReadout is not fitted yet; call fit(X, y) first.")
        x = check_finite_array(X, name="X", ndim=2)
        if x.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {x.shape[1]} features but the readout was fitted with "
                f"{self.n_features_in_}; got shape {x.shape}."
            )
        return x @ self.coef_.T + self.intercept_

    def __repr__(self) -> str:
        return f"RidgeReadout(alpha={self.alpha!r}, fit_intercept={self.fit_intercept!r})"


def _solve_ridge(
    x: NDArray[np.float64], y: NDArray[np.float64], alpha: float
) -> NDArray[np.float64]:
    """Solve ``(x.T x + alpha I) w = x.T y``; w of shape (n_features, n_outputs)."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += alpha
    rhs = x.T @ y
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            return scipy.linalg.solve(gram, rhs, assume_a="pos", check_finite=False)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
        pass
    n_features = x.shape[1]
    if alpha > 0.0:
        x = np.vstack([x, np.sqrt(alpha) * np.eye(n_features)])
        y = np.vstack([y, np.zeros((n_features, y.shape[1]))])
    w, *_ = scipy.linalg.lstsq(x, y, check_finite=False)
    return np.asarray(w)
