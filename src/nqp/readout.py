"""Linear readouts from reservoir features to targets.

* :class:`RidgeReadout` — offline, closed-form ridge regression (fitted once on
  collected reservoir states).
* :class:`RLSReadout` — online recursive least squares with exponential forgetting, one
  learner per source, stepped for a batch of sources at once (DESIGN.md §4 "Readout"); its
  per-source state is an :class:`RLSState` (gather with ``take``, scatter with ``put``).

Turning a predictive distribution into calibrated direction probabilities lives in
:mod:`nqp.calibration`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import numba
import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from nqp._state import BatchState
from nqp._validation import Interval, check_finite_array, check_rows, validate_params
from nqp.exceptions import InvalidInputError, NotFittedError

__all__ = ["RLSReadout", "RLSState", "RidgeReadout"]


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


# -- online recursive least squares -------------------------------------------------------

#: Floor on the residual-variance estimate, so the predictive scale is never exactly 0.
_VAR_FLOOR = float(np.finfo(np.float64).tiny)


@dataclasses.dataclass
class RLSState(BatchState):
    """Per-source state of :class:`RLSReadout`, one row per source (all float64 but ``count``).

    Attributes
    ----------
    w : ndarray of shape (n_sources, n_features), float64
        Current weights ``w_t``.
    P : ndarray of shape (n_sources, n_features, n_features), float64
        Inverse of the exponentially weighted, regularised Gram matrix
        ``(sum_i lambda**(t-1-i) x_i x_i^T + delta lambda**t I)^{-1}`` (symmetric positive
        definite); ``I / delta`` before the first update.
    resid_var : ndarray of shape (n_sources,), float64
        Exponentially weighted mean ``s_t^2`` of the standardised squared a-priori residuals,
        started at ``prior_scale**2`` (units of the target, squared).
    resid_weight : ndarray of shape (n_sources,), float64
        Total weight ``W_t`` behind ``resid_var``, started at ``prior_weight``.
    count : ndarray of shape (n_sources,), int64
        Number of updates (outcomes learned) so far.
    """

    w: NDArray[np.float64]
    P: NDArray[np.float64]
    resid_var: NDArray[np.float64]
    resid_weight: NDArray[np.float64]
    count: NDArray[np.int64]


class RLSReadout:
    r"""Recursive least squares with exponential forgetting, one learner per source, batched.

    Each source has its own weights ``w`` and matrix ``P``; a batch of sources is stepped at
    once (compiled loops over the source rows, numba), and every row's result is bitwise
    the same whether it is stepped alone or with others. The bias, if wanted, is an
    explicit constant feature (DESIGN.md §4 appends a 1 to the features) and is
    regularised like the other weights.

    **Update** (Haykin 2002, ch. 9: RLS with forgetting factor ``λ``). For an outcome
    ``y_t`` of features ``x_t``, with ``u = P_{t-1} x_t`` and ``h = x_t^T P_{t-1} x_t``:

    .. math::

        e_t = y_t - w_{t-1}^\top x_t, \qquad k_t = \frac{u}{\lambda + h}, \qquad
        w_t = w_{t-1} + k_t e_t, \qquad
        P_t = \frac{1}{\lambda}\Big(P_{t-1} - \frac{u u^\top}{\lambda + h}\Big),

    from ``w_0 = 0`` and ``P_0 = I / \delta``. This gives exactly (up to rounding) the
    exponentially weighted ridge solution

    .. math::

        w_t = \Big(\sum_{i=1}^t \lambda^{t-i} x_i x_i^\top + \delta \lambda^t I\Big)^{-1}
              \sum_{i=1}^t \lambda^{t-i} x_i y_i ,

    i.e. ridge ``δ`` with ``λ = 1``. The downdate is written as ``P - v v^T`` with
    ``v = u / sqrt(λ + h)``, so ``P`` stays exactly symmetric (no drift to re-symmetrise);
    ``h`` is clamped at 0 should rounding make it negative.

    **Cap on P.** With ``λ < 1``, a direction that the features stop exciting has its
    variance in ``P`` multiplied by ``1/λ`` every step (estimator wind-up), which overflows
    after ~``700 / ln(1/λ)`` steps and makes the next excitation move ``w`` violently.
    After each update, while some diagonal entry exceeds ``p_max = variance_cap / δ``
    (``variance_cap`` times the prior variance), ridge information ``ρ e_i e_i^T`` on the
    largest such coordinate ``i`` is added at the current weights (a pseudo-observation
    ``w_i = w_i``, so ``w`` is unchanged), by Sherman–Morrison:

    .. math::

        \rho = \frac{1}{p_{\max}} - \frac{1}{P_{ii}}, \qquad
        P \leftarrow P - \frac{\rho\, P e_i e_i^\top P}{1 + \rho P_{ii}},
        \qquad\text{so that } P_{ii} = p_{\max}.

    Adding information only shrinks ``P``, so each coordinate is fixed at most once per
    update (≤ d rank-one steps, O(d²) each). Since ``ρ <= δ / variance_cap`` is tiny, the
    well-excited directions keep their forgetting (rescaling all of ``P`` instead would
    freeze them). The cap engages only after ~``ln(variance_cap) / ln(1/λ)`` updates
    without excitation (≈ 1840 for the defaults); until then the update is exact RLS.
    ``variance_cap=None`` disables it. This is regularisation on demand, a cheap variant
    of the bounded-information RLS of Gunnarsson (1996) and Salgado et al. (1988).

    **Predictive scale.** In the Bayesian reading of RLS with forgetting (Gaussian noise of
    variance ``σ²``, prior ``w ~ N(0, σ² I/δ)``, forgetting as covariance inflation
    ``P → P/λ``), the a-priori residual has variance ``σ² (1 + x^T P x / λ)``. So the
    standardised squared residual ``r_t = e_t^2 / (1 + h/λ)`` estimates ``σ²``, and it is
    averaged with exponential forgetting ``μ`` (``scale_forgetting``, default ``λ``),
    starting from a pseudo-observation ``prior_scale**2`` of weight ``prior_weight``:

    .. math::

        W_t = \mu W_{t-1} + 1, \qquad s_t^2 = s_{t-1}^2 + \frac{r_t - s_{t-1}^2}{W_t},
        \qquad W_0 = \text{prior\_weight}, \; s_0^2 = \text{prior\_scale}^2 .

    :meth:`predict` returns the mean ``w^T x`` and the predictive standard deviation
    ``sqrt(s_t^2 (1 + x^T P_t x / λ))``: ``prior_scale · sqrt(1 + |x|²/(δλ))`` before any
    outcome, then shrinking toward the noise level as outcomes arrive. ``s_t^2`` is floored
    at the smallest normal float64, so the scale is never 0 or NaN.

    Parameters
    ----------
    n_features : int
        Length ``d`` of a feature vector.
    forgetting : float, default=0.995
        ``λ`` in (0, 1]: an outcome's weight halves every ``ln 2 / ln(1/λ)`` updates
        (≈ 138 for 0.995). 1 keeps every outcome (plain recursive ridge).
    delta : float, default=1.0
        Ridge ``δ > 0``; ``P_0 = I / δ``.
    prior_scale : float, default=1.0
        Residual standard deviation assumed before outcomes arrive (target units).
    prior_weight : float, default=1.0
        Weight, in outcomes, of ``prior_scale**2`` in the residual-variance average (> 0).
    scale_forgetting : float or None, default=None
        ``μ`` in (0, 1] for the residual-variance average; None uses ``forgetting``.
    variance_cap : float or None, default=1e4
        Keep every ``P_ii <= variance_cap / δ`` (``variance_cap >= 1``); None: no cap.

    Notes
    -----
    Cost per update is O(d²) per source, memory ``8 d²`` bytes per source for ``P``
    (80 kB at d = 100). The kernels rely on ``P`` being exactly symmetric, which the
    updates preserve; do not write a non-symmetric ``P`` into the state. An update reads
    each source's ``P`` from memory once and writes it once (its row is checked against
    overflow from cheap bounds first, so no row is written before all are known to pass; past
    the bounds every row is computed and checked before any is written, which reads ``P``
    twice); :meth:`learn_predict` predicts within that pass, where :meth:`learn` then
    :meth:`predict` reads ``P`` once more.

    References
    ----------
    .. [1] S. Haykin, *Adaptive Filter Theory*, 4th ed., Prentice Hall, 2002, ch. 9
       (the exponentially weighted RLS algorithm).
    .. [2] A. H. Sayed, *Fundamentals of Adaptive Filtering*, Wiley, 2003 (RLS as
       exponentially weighted regularised least squares).
    .. [3] S. Gunnarsson, "Combining tracking and regularization in recursive least squares
       identification", Proc. 35th IEEE Conference on Decision and Control, 1996.
    .. [4] M. E. Salgado, G. C. Goodwin, R. H. Middleton, "Modified least squares algorithm
       incorporating exponential resetting and forgetting", Int. J. Control 47(2), 1988.

    Examples
    --------
    >>> import numpy as np
    >>> rls = RLSReadout(n_features=2, forgetting=1.0, delta=1e-8)
    >>> state = rls.init_state(n_sources=2)
    >>> W_true = np.array([[2.0, -1.0], [0.5, 3.0]])  # one weight vector per source
    >>> for x in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]):
    ...     X = np.tile(x, (2, 1))
    ...     rls.learn(state, X, (W_true * X).sum(axis=1))
    >>> state.w.round(6).tolist(), state.count.tolist()
    ([[2.0, -1.0], [0.5, 3.0]], [3, 3])
    >>> mean, scale = rls.predict(state, [[1.0, 2.0], [1.0, 2.0]])
    >>> mean.round(6).tolist(), bool(np.all(scale > 0))
    ([0.0, 6.5], True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_features": [Interval("int", 1, None)],
        "forgetting": [Interval("real", 0, 1, "right")],
        "delta": [Interval("real", 0, None, "neither")],
        "prior_scale": [Interval("real", 0, None, "neither")],
        "prior_weight": [Interval("real", 0, None, "neither")],
        "scale_forgetting": [Interval("real", 0, 1, "right"), None],
        "variance_cap": [Interval("real", 1, None), None],
    }

    def __init__(
        self,
        n_features: int,
        forgetting: float = 0.995,
        delta: float = 1.0,
        prior_scale: float = 1.0,
        prior_weight: float = 1.0,
        scale_forgetting: float | None = None,
        variance_cap: float | None = 1e4,
    ) -> None:
        self.n_features = n_features
        self.forgetting = forgetting
        self.delta = delta
        self.prior_scale = prior_scale
        self.prior_weight = prior_weight
        self.scale_forgetting = scale_forgetting
        self.variance_cap = variance_cap

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._parameter_constraints)
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        if getattr(self, "_checked_params_", None) != params:  # validate once per setting
            validate_params(type(self).__name__, params, self._parameter_constraints)
            self._checked_params_ = params

    def init_state(self, n_sources: int) -> RLSState:
        """Fresh learners for ``n_sources`` sources: ``w = 0``, ``P = I/δ``, prior scale.

        Parameters
        ----------
        n_sources : int
            Number of rows (>= 0).

        Returns
        -------
        RLSState
            Arrays of shapes (n_sources, d), (n_sources, d, d), (n_sources,) x 3.
        """
        self._check_params()
        validate_params(
            f"{type(self).__name__}.init_state",
            {"n_sources": n_sources},
            {"n_sources": [Interval("int", 0, None)]},
        )
        d = self.n_features
        P = np.zeros((n_sources, d, d), dtype=np.float64)
        P[:, np.arange(d), np.arange(d)] = 1.0 / float(self.delta)
        return RLSState(
            w=np.zeros((n_sources, d), dtype=np.float64),
            P=P,
            resid_var=np.full(n_sources, float(self.prior_scale) ** 2, dtype=np.float64),
            resid_weight=np.full(n_sources, float(self.prior_weight), dtype=np.float64),
            count=np.zeros(n_sources, dtype=np.int64),
        )

    # -- checks --------------------------------------------------------------------------
    def _check_X(self, state: RLSState, X: ArrayLike, ndim: int) -> NDArray[np.float64]:
        if not isinstance(state, RLSState):
            raise InvalidInputError(
                f"state must be an RLSState from init_state(); got {type(state).__name__}."
            )
        x = check_finite_array(X, name="X", ndim=ndim)
        d = self.n_features
        if x.shape[-1] != d:
            raise InvalidInputError(
                f"X has {x.shape[-1]} features but the readout has n_features={d}; "
                f"got shape {x.shape}."
            )
        return x

    @staticmethod
    def _check_rows(
        state: RLSState, rows: ArrayLike | None, x_shape: tuple[int, ...]
    ) -> NDArray[np.intp]:
        """The state rows of the batch's sources: ``rows``, or every row in order."""
        batch, d = x_shape[0], x_shape[-1]
        n = state.w.shape[0]
        if state.w.shape != (n, d) or state.P.shape != (n, d, d):
            raise InvalidInputError(
                f"state holds w of shape {state.w.shape} and P of shape {state.P.shape}; "
                f"expected (n_sources, {d}) and (n_sources, {d}, {d})."
            )
        if rows is None:
            if n != batch:
                raise InvalidInputError(
                    f"state holds w of shape {state.w.shape} and P of shape {state.P.shape} "
                    f"(n_sources, ...) but X has shape {x_shape} with {batch} sources; "
                    f"gather the state rows of the sources in the batch, or pass rows."
                )
            return np.arange(batch)
        return check_rows(rows, batch=batch, n_rows=n, what="one per source in X")

    @staticmethod
    def _check_y(y: ArrayLike, shape: tuple[int, ...], x_shape: tuple[int, ...]) -> NDArray[Any]:
        y_arr = check_finite_array(y, name="y")
        if y_arr.shape != shape:
            raise InvalidInputError(
                f"y must have shape {shape} to match X of shape {x_shape}; got {y_arr.shape}."
            )
        return y_arr

    # -- prediction ----------------------------------------------------------------------
    def predict(
        self, state: RLSState, X: ArrayLike, *, rows: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Predictive mean and standard deviation, one per source.

        Parameters
        ----------
        state : RLSState
            Learners of the ``batch`` sources in ``X``, row for row (not modified), or of
            more sources with ``rows``.
        X : array-like of shape (batch, n_features)
            One feature vector per source (float32 is promoted to float64).
        rows : array-like of int of shape (batch,), optional
            The distinct state rows of the sources in ``X`` (default: every row, in order):
            the learners are read where they are, not gathered first.

        Returns
        -------
        mean : ndarray of shape (batch,), float64
            ``w^T x``.
        scale : ndarray of shape (batch,), float64
            ``sqrt(s^2 (1 + x^T P x / λ))``, > 0 (see the class docstring).

        Raises
        ------
        InvalidInputError
            If ``X`` is not 2-D, holds NaN/inf, or its shape does not match the state.
        """
        self._check_params()
        x = self._check_X(state, X, ndim=2)
        r = self._check_rows(state, rows, x.shape)
        mean, h = _rls_predict(state.w, state.P, np.ascontiguousarray(x), r)
        var = np.maximum(state.resid_var[r], _VAR_FLOOR) * (1.0 + h / float(self.forgetting))
        return mean, np.sqrt(var)

    # -- learning ------------------------------------------------------------------------
    def learn(
        self, state: RLSState, X: ArrayLike, y: ArrayLike, *, rows: ArrayLike | None = None
    ) -> None:
        """Learn one outcome per source, in place.

        Parameters
        ----------
        state : RLSState
            Learners of the ``batch`` sources, row for row (or of more sources with
            ``rows``); updated in place, and left untouched if anything is rejected.
        X : array-like of shape (batch, n_features)
            The features the outcome belongs to (those the prediction was made from).
        y : array-like of shape (batch,)
            Realised targets.
        rows : array-like of int of shape (batch,), optional
            The distinct state rows of the sources (default: every row, in order): the
            learners are updated where they are, with no gather and scatter copies.

        Raises
        ------
        InvalidInputError
            If ``X`` or ``y`` holds NaN/inf or has the wrong shape, or if finite but huge
            inputs would make the update overflow (the offending rows are named).
        """
        self._check_params()
        x = self._check_X(state, X, ndim=2)
        y_arr = self._check_y(y, (x.shape[0],), x.shape)
        r = self._check_rows(state, rows, x.shape)
        self._step(state, np.ascontiguousarray(x), np.ascontiguousarray(y_arr), r)

    def learn_many(self, state: RLSState, X: ArrayLike, y: ArrayLike) -> None:
        """Learn ``n_steps`` consecutive outcomes per source; same as repeated :meth:`learn`.

        Parameters
        ----------
        state : RLSState
            Learners of the ``batch`` sources, updated in place; untouched if anything is
            rejected (the block is learned on a copy that is committed at the end).
        X : array-like of shape (batch, n_steps, n_features)
            Features in time order along axis 1.
        y : array-like of shape (batch, n_steps)
            Realised targets.
        """
        self._check_params()
        x = self._check_X(state, X, ndim=3)
        y_arr = self._check_y(y, x.shape[:2], x.shape)
        r = self._check_rows(state, None, x.shape)
        work = state.copy()
        for t in range(x.shape[1]):
            self._step(work, np.ascontiguousarray(x[:, t]), np.ascontiguousarray(y_arr[:, t]), r)
        for name, arr in state.arrays().items():
            arr[...] = getattr(work, name)

    def learn_predict(
        self,
        state: RLSState,
        X_learn: ArrayLike,
        y: ArrayLike,
        X: ArrayLike,
        *,
        rows: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`learn` of ``(X_learn, y)``, then :meth:`predict` of ``X``, for the same sources.

        The result and the new state are bit for bit those of the two calls; the
        prediction is accumulated while ``P`` is rewritten, so ``P`` is not read again
        (for large batches the step is bound by reading and writing ``P``).

        Parameters
        ----------
        state : RLSState
            Learners of the ``batch`` sources, row for row; updated in place, and left
            untouched if anything is rejected.
        X_learn : array-like of shape (batch, n_features)
            The features each outcome belongs to.
        y : array-like of shape (batch,)
            Realised targets.
        X : array-like of shape (batch, n_features)
            The features to predict from, with the updated learners.
        rows : array-like of int of shape (batch,), optional
            As in :meth:`learn`.

        Returns
        -------
        mean, scale : ndarray of shape (batch,), float64
            As :meth:`predict`.
        """
        self._check_params()
        x_learn = self._check_X(state, X_learn, ndim=2)
        y_arr = self._check_y(y, (x_learn.shape[0],), x_learn.shape)
        x = self._check_X(state, X, ndim=2)
        if x.shape != x_learn.shape:
            raise InvalidInputError(
                f"X must have the shape of X_learn {x_learn.shape} (the same sources); "
                f"got {x.shape}."
            )
        r = self._check_rows(state, rows, x.shape)
        x = np.ascontiguousarray(x)
        h = self._step(state, np.ascontiguousarray(x_learn), np.ascontiguousarray(y_arr), r, x)
        mean = _rows_dot(state.w, x, r)
        var = np.maximum(state.resid_var[r], _VAR_FLOOR) * (1.0 + h / float(self.forgetting))
        return mean, np.sqrt(var)

    def _step(
        self,
        state: RLSState,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        rows: NDArray[np.intp],
        x_next: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """One RLS update of the state ``rows``, in place; nothing changes if any would overflow.

        Returns ``max(x_next^T P x_next, 0)`` per row with the updated ``P`` (shape
        (batch,)), or an empty array without ``x_next``.
        """
        lam = float(self.forgetting)
        mu = lam if self.scale_forgetting is None else float(self.scale_forgetting)
        p_max = math.inf if self.variance_cap is None else float(self.variance_cap / self.delta)
        nxt = np.empty((0, x.shape[1])) if x_next is None else x_next
        h, ok = _rls_update(
            state.w, state.P, state.resid_var, state.resid_weight, x, y, lam, mu, p_max, nxt, rows
        )
        if not ok.all():
            rows = np.flatnonzero(~ok)
            raise InvalidInputError(
                f"The RLS update overflowed for {rows.size} source row(s) (first at row "
                f"{int(rows[0])}): the features or targets are too large; rescale them."
            )
        state.count[rows] += 1
        return h


# -- compiled kernels (one loop per source row, so batching never changes a row's result) --


@numba.njit(cache=True)
def _sym_matvec(P: NDArray[np.float64], x: NDArray[np.float64], u: NDArray[np.float64]) -> float:
    """``u = P x`` for one symmetric ``P`` of shape (d, d), as a sum of its rows
    ``sum_j x_j P[j, :]`` (contiguous, vectorised without reassociation); returns
    ``max(x^T u, 0)``."""  # pragma: no cover - compiled
    d = x.shape[0]
    u[:] = 0.0
    for j in range(d):
        xj = x[j]
        for i in range(d):
            u[i] += P[j, i] * xj
    h = 0.0
    for i in range(d):
        h += x[i] * u[i]
    return max(h, 0.0)


@numba.njit(cache=True)
def _rows_dot(
    w: NDArray[np.float64], x: NDArray[np.float64], rows: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Per batch row ``b``: ``w[rows[b]]^T x[b]`` (summed in index order)."""  # pragma: no cover
    n, d = x.shape
    mean = np.empty(n)
    for b in range(n):
        r = rows[b]
        m = 0.0
        for i in range(d):
            m += w[r, i] * x[b, i]
        mean[b] = m
    return mean


@numba.njit(cache=True)
def _rls_predict(
    w: NDArray[np.float64], P: NDArray[np.float64], x: NDArray[np.float64], rows: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # pragma: no cover - compiled
    """Per batch row ``b``, state row ``r = rows[b]``: ``w_r^T x_b``, ``max(x_b^T P_r x_b, 0)``."""
    n, d = x.shape
    h = np.empty(n)
    u = np.empty(d)
    for b in range(n):
        h[b] = _sym_matvec(P[rows[b]], x[b], u)
    return _rows_dot(w, x, rows), h


_SURE = 1e100  # bounds below this leave every intermediate of an update far from overflow


@numba.njit(cache=True)
def _prepare_row(
    w: NDArray[np.float64],
    P: NDArray[np.float64],
    resid_var: float,
    resid_weight: float,
    x: NDArray[np.float64],
    y: float,
    lam: float,
    mu: float,
    w_new: NDArray[np.float64],
    v: NDArray[np.float64],
) -> tuple[float, float, bool]:  # pragma: no cover - compiled
    """Everything of one row's RLS update but ``P`` (read only).

    Writes the new ``w`` into ``w_new`` and ``v = P x / sqrt(lam + h)`` into ``v`` (shapes
    (d,)); returns the new residual variance and weight, and whether the row stays finite.
    The new ``P``, ``(P - v v^T) / lam``, is finite when ``(2 max_i P_ii + max_i v_i^2)
    / lam`` is far from overflow (``|P_ij| <= max_i P_ii`` for positive semidefinite ``P``);
    only otherwise are its entries computed and checked one by one.
    """
    d = x.shape[0]
    u = v
    h = _sym_matvec(P, x, u)
    yhat = 0.0
    for i in range(d):
        yhat += w[i] * x[i]
    den = lam + h
    e = y - yhat
    root = np.sqrt(den)
    good = np.isfinite(den) and np.isfinite(e)
    big = 0.0
    for i in range(d):
        w_new[i] = w[i] + (u[i] / den) * e
        u[i] = u[i] / root
        good = good and np.isfinite(w_new[i]) and np.isfinite(u[i])
        big = max(big, 2.0 * abs(P[i, i]) + u[i] * u[i])
    r = lam * e * e / den  # e^2 / (1 + h / lam)
    rw = mu * resid_weight + 1.0
    rv = resid_var + (r - resid_var) / rw
    good = good and np.isfinite(rv) and np.isfinite(rw)
    if good and not big / lam < 1e300:
        for i in range(d):
            for j in range(d):
                if not np.isfinite((P[i, j] - u[i] * u[j]) / lam):
                    good = False
    return rv, rw, good


@numba.njit(cache=True)
def _apply_row(
    P: NDArray[np.float64],
    v: NDArray[np.float64],
    lam: float,
    p_max: float,
    x: NDArray[np.float64],
    u: NDArray[np.float64],
    g: NDArray[np.float64],
) -> float:  # pragma: no cover - compiled
    """In place for one row: ``P = (P - v v^T) / lam``, then the variance cap (class Notes).

    With ``x`` of shape (d,) (else (0,)), also returns ``max(x^T P x, 0)`` of the new
    ``P``, summed in the order of :func:`_sym_matvec` (so bit for bit its value) while the
    rows of ``P`` are written, unless a cap fix changed ``P`` afterwards; else 0.
    ``u`` and ``g`` are scratch of shape (d,).
    """
    d = v.shape[0]
    with_x = x.shape[0] == d
    inv_lam = 1.0 / lam  # a product per entry, not a division: the same to rounding
    u[:] = 0.0
    for i in range(d):
        vi = v[i]
        row = P[i]
        if with_x:
            xi = x[i]
            for j in range(d):
                p = (row[j] - vi * v[j]) * inv_lam
                row[j] = p
                u[j] += p * xi
        else:
            for j in range(d):
                row[j] = (row[j] - vi * v[j]) * inv_lam
    fixed = False
    for _ in range(d):  # each coordinate needs at most one fix: fixes only shrink P
        worst = 0
        for i in range(1, d):
            if P[i, i] > P[worst, worst]:
                worst = i
        p_ii = P[worst, worst]
        if not p_ii > p_max:
            break
        fixed = True
        rho = 1.0 / p_max - 1.0 / p_ii
        c = np.sqrt(rho / (1.0 + rho * p_ii))
        for i in range(d):
            g[i] = P[i, worst] * c
        for i in range(d):
            gi = g[i]
            for j in range(d):
                P[i, j] -= gi * g[j]
    if not with_x:
        return 0.0
    if fixed:
        return _sym_matvec(P, x, u)
    h = 0.0
    for i in range(d):
        h += x[i] * u[i]
    return max(h, 0.0)


@numba.njit(cache=True)
def _surely_finite(
    w: NDArray[np.float64],
    P: NDArray[np.float64],
    resid_var: NDArray[np.float64],
    resid_weight: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    lam: float,
    rows: NDArray[np.intp],
) -> bool:  # pragma: no cover - compiled
    """Whether no row's update can overflow, from bounds that read only ``diag(P)``.

    Batch row ``b`` belongs to state row ``rows[b]``.

    For positive semidefinite ``P`` with ``D = max_i P_ii``, ``S = sum_i |x_i|`` and
    ``E = |y| + sum_i |w_i x_i|``: ``|(P x)_i| <= D S``, ``h <= D S^2``, ``|e| <= E`` and
    ``lam + h >= lam``, so every quantity of the update is bounded by products of these.
    When all stay below ``1e100`` no row can fail its finiteness check.
    """
    n, d = x.shape
    for b in range(n):
        r = rows[b]
        D = 0.0
        S = 0.0
        E = abs(y[b])
        Wm = 0.0
        for i in range(d):
            D = max(D, abs(P[r, i, i]))
            S += abs(x[b, i])
            E += abs(w[r, i] * x[b, i])
            Wm = max(Wm, abs(w[r, i]))
        DS = D * S
        bounds = (
            DS * S,  # h
            E * E,  # lam e^2 / den, and so the residual variance
            Wm + DS * E / lam,  # the new w
            (D + DS * DS / lam) / lam,  # entries of the new P
            abs(resid_var[r]),
            abs(resid_weight[r]),
        )
        for bound in bounds:
            if not bound < _SURE:  # also NaN
                return False
    return True


@numba.njit(cache=True)
def _rls_update(
    w: NDArray[np.float64],
    P: NDArray[np.float64],
    resid_var: NDArray[np.float64],
    resid_weight: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    lam: float,
    mu: float,
    p_max: float,
    x_next: NDArray[np.float64],
    rows: NDArray[np.intp],
    row_by_row: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:  # pragma: no cover - compiled
    """One RLS update of the state rows ``rows`` (distinct) from batch rows ``x``, ``y``.

    In place, unless a row would overflow.
    Returns ``h`` (``max(x_next^T P x_next, 0)`` per row of the new ``P`` when ``x_next``
    has shape (n, d), else empty) and ``ok`` per row; if any row is not ok nothing was
    written. When ``row_by_row`` and :func:`_surely_finite` hold, each row is prepared and
    applied in turn (its ``P`` read from memory once, not twice); otherwise every row is
    prepared and checked before any is applied. Both orders compute every row identically.
    """
    n, d = x.shape
    with_x = x_next.shape[0] == n
    h = np.zeros(n if with_x else 0)
    ok = np.ones(n, dtype=np.bool_)
    none = np.empty(0)
    u = np.empty(d)
    g = np.empty(d)
    if row_by_row and _surely_finite(w, P, resid_var, resid_weight, x, y, lam, rows):
        w_new = np.empty(d)
        v = np.empty(d)
        for b in range(n):
            r = rows[b]
            rv, rw, good = _prepare_row(
                w[r], P[r], resid_var[r], resid_weight[r], x[b], y[b], lam, mu, w_new, v
            )
            if not good:  # excluded by the bounds for positive semidefinite P
                raise FloatingPointError("RLS update overflowed past its bounds")
            hb = _apply_row(P[r], v, lam, p_max, x_next[b] if with_x else none, u, g)
            if with_x:
                h[b] = hb
            w[r] = w_new
            resid_var[r] = rv
            resid_weight[r] = rw
        return h, ok
    w_new_all = np.empty((n, d))
    v_all = np.empty((n, d))
    rv_all = np.empty(n)
    rw_all = np.empty(n)
    for b in range(n):
        r = rows[b]
        rv_all[b], rw_all[b], ok[b] = _prepare_row(
            w[r], P[r], resid_var[r], resid_weight[r], x[b], y[b], lam, mu, w_new_all[b], v_all[b]
        )
    if not ok.all():
        return h, ok
    for b in range(n):
        r = rows[b]
        hb = _apply_row(P[r], v_all[b], lam, p_max, x_next[b] if with_x else none, u, g)
        if with_x:
            h[b] = hb
        w[r] = w_new_all[b]
        resid_var[r] = rv_all[b]
        resid_weight[r] = rw_all[b]
    return h, ok
