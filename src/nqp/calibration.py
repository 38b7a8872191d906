r"""Direction probabilities from a predictive distribution, and their online calibration.

* :func:`direction_probability` — P(up), P(down), P(hold) of a Gaussian predictive
  distribution ``N(mean, scale²)`` around a dead-band.
* :class:`OnlineCalibrator` — per-source online Platt recalibration of a raw probability
  against realised binary outcomes, batched over sources (state :class:`CalibratorState`).
* :func:`platt_map` and :func:`fit_platt` — the same map as a plain function, and its
  offline (batch) fit, for backtests and as the exact reference of the online learner.

Calibration scores (Brier, ECE, reliability) live in :mod:`nqp.validation.statistics`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numba
import numpy as np
import scipy.special
from numpy.typing import ArrayLike, NDArray

from nqp._state import BatchState
from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import ConvergenceError, InvalidInputError, InvalidParameterError

__all__ = [
    "PROBABILITY_CLIP",
    "CalibratorState",
    "OnlineCalibrator",
    "direction_probability",
    "fit_platt",
    "platt_map",
]

#: Raw probabilities are clipped to ``[PROBABILITY_CLIP, 1 - PROBABILITY_CLIP]`` before the
#: logit (so ``logit`` lies within ±13.8), and calibrated ones to the same range.
PROBABILITY_CLIP = 1e-6


def direction_probability(
    mean: ArrayLike, scale: ArrayLike, dead_band: ArrayLike = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r"""Probabilities of up, down and hold under a Gaussian predictive distribution.

    For ``Y ~ N(mean, scale²)`` and dead-band ``c >= 0``:

    .. math::

        P(\text{up}) = P(Y > c) = \Phi\Big(\frac{\text{mean} - c}{\text{scale}}\Big), \quad
        P(\text{down}) = P(Y < -c) = \Phi\Big(\frac{-c - \text{mean}}{\text{scale}}\Big), \quad
        P(\text{hold}) = P(-c \le Y \le c),

    with ``Φ`` = :func:`scipy.special.ndtr`. ``P(hold)`` is computed as a difference of
    whichever tails are smaller (no cancellation far in a tail), so the three sum to 1 up
    to rounding. ``scale = 0`` is the point mass at ``mean`` (``P(up) = [mean > c]``).

    Parameters
    ----------
    mean : array-like
        Predictive means (target units).
    scale : array-like
        Predictive standard deviations, ``>= 0``.
    dead_band : array-like, default=0.0
        Half-width ``c >= 0`` of the hold band.

    Returns
    -------
    p_up, p_down, p_hold : ndarray, float64
        Of the broadcast shape of the three inputs.

    Raises
    ------
    InvalidInputError
        If an input is non-finite, ``scale`` or ``dead_band`` is negative, or the shapes do
        not broadcast.

    Examples
    --------
    >>> up, down, hold = direction_probability([0.0, 1.0], 1.0, dead_band=0.5)
    >>> up.round(4).tolist(), down.round(4).tolist(), hold.round(4).tolist()
    ([0.3085, 0.6915], [0.3085, 0.0668], [0.3829, 0.2417])
    """
    m = check_finite_array(mean, name="mean")
    s = check_finite_array(scale, name="scale")
    c = check_finite_array(dead_band, name="dead_band")
    if (s < 0).any():
        raise InvalidInputError(f"scale must be >= 0; got minimum {float(s.min())}.")
    if (c < 0).any():
        raise InvalidInputError(f"dead_band must be >= 0; got minimum {float(c.min())}.")
    try:
        m, s, c = np.broadcast_arrays(m, s, c)
    except ValueError as exc:
        raise InvalidInputError(
            f"mean {m.shape}, scale {s.shape} and dead_band {c.shape} do not broadcast."
        ) from exc
    point = s == 0.0
    if point.any():  # the point mass at mean: edges at ±inf on the side where mean lies
        safe = np.where(point, 1.0, s)
        lo = np.where(point, np.where(m < -c, np.inf, -np.inf), (-c - m) / safe)
        hi = np.where(point, np.where(m > c, -np.inf, np.inf), (c - m) / safe)
    else:
        lo = (-c - m) / s  # hold is lo <= Z <= hi for Z ~ N(0, 1)
        hi = (c - m) / s
    p_up = scipy.special.ndtr(-hi)
    p_down = scipy.special.ndtr(lo)
    upper = scipy.special.ndtr(-lo) - p_up  # both edges in the upper tail: no cancellation
    lower = scipy.special.ndtr(hi) - p_down
    p_hold = np.where(lo > 0, upper, lower)
    return p_up, p_down, np.clip(p_hold, 0.0, 1.0)


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(scipy.special.logit(np.clip(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)))


def _check_probability(p: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = check_finite_array(p, name=name)
    if ((arr < 0) | (arr > 1)).any():
        bad = np.flatnonzero(((arr < 0) | (arr > 1)).ravel())
        raise InvalidInputError(
            f"{name} must lie in [0, 1]; {bad.size} value(s) outside, first "
            f"{float(arr.ravel()[bad[0]])} at flat index {int(bad[0])}."
        )
    return arr


def _check_outcome(outcome: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.float64]:
    arr = check_finite_array(outcome, name="outcome")
    if arr.shape != shape:
        raise InvalidInputError(f"outcome must have shape {shape}; got {arr.shape}.")
    binary = (arr == 0.0) | (arr == 1.0)
    if not binary.all():
        bad = np.flatnonzero(~binary.ravel())
        raise InvalidInputError(
            f"outcome must be 0 or 1; {bad.size} value(s) are not, first "
            f"{float(arr.ravel()[bad[0]])} at flat index {int(bad[0])}."
        )
    return arr


def platt_map(p_raw: ArrayLike, slope: ArrayLike, intercept: ArrayLike) -> NDArray[np.float64]:
    r"""Platt recalibration ``p = σ(a · logit(p_raw) + b)``, clipped like its input.

    ``p_raw`` is clipped to ``[ε, 1 - ε]`` (``ε`` = :data:`PROBABILITY_CLIP`) before the
    logit, and the result to the same range, so it is finite for ``p_raw`` in {0, 1}.
    ``a = 1, b = 0`` is the identity on ``[ε, 1 - ε]``; for ``a > 0`` the map is increasing.

    Parameters
    ----------
    p_raw : array-like
        Raw probabilities in [0, 1].
    slope, intercept : array-like
        ``a`` and ``b``, broadcast against ``p_raw``.

    Returns
    -------
    ndarray, float64
        Calibrated probabilities, of the broadcast shape.

    References
    ----------
    .. [1] J. Platt, "Probabilistic outputs for support vector machines and comparisons to
       regularized likelihood methods", in *Advances in Large Margin Classifiers*, MIT
       Press, 1999.

    Examples
    --------
    >>> platt_map([0.0, 0.5, 0.9], 1.0, 0.0).round(12).tolist()
    [1e-06, 0.5, 0.9]
    >>> platt_map([0.9], 0.5, 0.0).round(4).tolist()  # halve the confidence in logit units
    [0.75]
    """
    p = _check_probability(p_raw, "p_raw")
    a = check_finite_array(slope, name="slope")
    b = check_finite_array(intercept, name="intercept")
    out = scipy.special.expit(a * _logit(p) + b)
    return np.clip(out, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)


def fit_platt(
    p_raw: ArrayLike,
    outcome: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    prior_precision: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-12,
) -> tuple[float, float]:
    r"""Offline Platt fit: weighted logistic regression of outcomes on ``logit(p_raw)``.

    Minimises, over ``θ = (a, b)``, with ``z_i = logit(clip(p_raw_i))``, ``x_i = (z_i, 1)``,
    ``p_i = σ(θ^T x_i)``:

    .. math::

        F(θ) = \frac{κ}{2}\lVert θ - (1, 0) \rVert^2
               - \sum_i w_i \big[y_i \log p_i + (1 - y_i) \log(1 - p_i)\big],

    a Gaussian prior of precision ``κ`` (``prior_precision``) centred at the identity map,
    by Newton's method with backtracking (the objective is convex). With
    ``sample_weight = λ^{n-1-i}`` and ``κ`` equal to the online learner's
    ``prior_precision`` this is the objective :class:`OnlineCalibrator` tracks. The slope
    is not constrained here.

    Parameters
    ----------
    p_raw : array-like of shape (n,)
        Raw probabilities in [0, 1].
    outcome : array-like of shape (n,)
        Realised outcomes, 0 or 1.
    sample_weight : array-like of shape (n,) or None, default=None
        Non-negative weights (None: all 1).
    prior_precision : float, default=0.0
        ``κ >= 0``; 0 is the plain maximum-likelihood Platt fit.
    max_iter : int, default=100
    tol : float, default=1e-12
        Stop when the Newton step is below ``tol · (1 + |θ|)``.

    Returns
    -------
    slope, intercept : float

    Raises
    ------
    ConvergenceError
        If Newton does not converge (e.g. separable outcomes with ``κ = 0``, whose MLE is
        at infinity).

    Examples
    --------
    >>> p = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    >>> y = np.array([0, 1, 0, 1, 0, 1])
    >>> a, b = fit_platt(p, y, prior_precision=1.0)
    >>> round(a, 4), round(b, 4) + 0.0
    (0.6086, 0.0)
    """
    validate_params(
        "fit_platt",
        {"prior_precision": prior_precision, "max_iter": max_iter, "tol": tol},
        {
            "prior_precision": [Interval("real", 0, None)],
            "max_iter": [Interval("int", 1, None)],
            "tol": [Interval("real", 0, None, "neither")],
        },
    )
    p = _check_probability(p_raw, "p_raw")
    if p.ndim != 1:
        raise InvalidInputError(f"p_raw must have shape (n,); got {p.shape}.")
    y = _check_outcome(outcome, p.shape)
    if sample_weight is None:
        wts = np.ones_like(p)
    else:
        wts = check_finite_array(sample_weight, name="sample_weight")
        if wts.shape != p.shape or (wts < 0).any():
            raise InvalidInputError(
                f"sample_weight must be non-negative of shape {p.shape}; got {wts.shape}."
            )
    x = np.stack([_logit(p), np.ones_like(p)], axis=1)
    theta0 = np.array([1.0, 0.0])
    kappa = float(prior_precision)

    def objective(theta: NDArray[np.float64]) -> float:
        s = x @ theta
        # -log σ(s) = logaddexp(0, -s); -log(1 - σ(s)) = logaddexp(0, s)
        nll = np.where(y > 0, np.logaddexp(0.0, -s), np.logaddexp(0.0, s))
        return 0.5 * kappa * float((theta - theta0) @ (theta - theta0)) + float(wts @ nll)

    theta = theta0.copy()
    f = objective(theta)
    for _ in range(max_iter):
        q = scipy.special.expit(x @ theta)
        grad = kappa * (theta - theta0) + x.T @ (wts * (q - y))
        hess = kappa * np.eye(2) + (x * (wts * q * (1.0 - q))[:, None]).T @ x
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError(
                "fit_platt: singular Hessian (constant p_raw with prior_precision=0?)."
            ) from exc
        t = 1.0
        while True:
            candidate = theta - t * step
            f_new = objective(candidate)
            if f_new <= f + 1e-4 * t * float(grad @ (-step)) or t < 1e-10:
                break
            t *= 0.5
        theta, f = candidate, f_new
        if float(np.abs(t * step).max()) <= tol * (1.0 + float(np.abs(theta).max())):
            return float(theta[0]), float(theta[1])
    raise ConvergenceError(
        f"fit_platt did not converge in {max_iter} Newton iterations (theta={theta.tolist()}); "
        f"separable outcomes need prior_precision > 0."
    )


@dataclasses.dataclass
class CalibratorState(BatchState):
    """Per-source state of :class:`OnlineCalibrator`, one row per source.

    Attributes
    ----------
    coef : ndarray of shape (n_sources, 2), float64
        Posterior mode ``(a, b)``: slope on ``logit(p_raw)`` and intercept; ``(1, 0)``
        (identity) before any outcome. ``a >= min_slope`` always.
    precision : ndarray of shape (n_sources, 2, 2), float64
        Laplace posterior precision ``H`` of ``(a, b)`` (symmetric positive definite).
    count : ndarray of shape (n_sources,), int64
        Outcomes learned.
    """

    coef: NDArray[np.float64]
    precision: NDArray[np.float64]
    count: NDArray[np.int64]


class OnlineCalibrator:
    r"""Online Platt recalibration with a prior at the identity and exponential forgetting.

    Maps a raw probability (e.g. ``P(up) = Φ(ŷ/σ)`` from :func:`direction_probability`) to

    .. math:: p = σ(a\, z + b), \qquad z = \operatorname{logit}(\operatorname{clip}(p_{raw})),

    (Platt 1999) and learns ``θ = (a, b)`` per source from realised binary outcomes. The
    target is the exponentially weighted, penalised log-loss fit

    .. math::

        θ_t = \arg\min_θ \frac12 (θ - θ_0)^\top H_0 (θ - θ_0)
              + \sum_{i \le t} λ^{t-i} \ell_i(θ), \qquad θ_0 = (1, 0), \; H_0 = κ I,

    (``ℓ_i`` the log-loss of outcome ``y_i``), so with few outcomes the map is the identity
    (``p = p_raw``) and with many it corrects over/under-confidence (``a``) and bias (``b``),
    over an effective window of ``1/(1-λ)`` outcomes. Because
    ``F_t = λ F_{t-1} + (1-λ)·prior + ℓ_t``, it is tracked by an online Laplace
    (assumed-density) update (Spiegelhalter & Lauritzen 1990) with the previous objective
    replaced by its quadratic approximation at ``θ_{t-1}`` with precision ``H_{t-1}``:

    .. math::

        Q = λ H_{t-1} + (1-λ) H_0, \qquad
        c = Q^{-1}\big(λ H_{t-1} θ_{t-1} + (1-λ) H_0 θ_0\big),

        θ_t = \arg\min_θ \tfrac12 (θ - c)^\top Q (θ - c) + \ell_t(θ)
            = c - (σ(s) - y_t)\, Q^{-1} x_t, \qquad x_t = (z_t, 1),

        H_t = Q + σ(s)(1 - σ(s))\, x_t x_t^\top,

    where ``s = x_t^T θ_t`` is the unique root of ``s + v (σ(s) - y_t) = x_t^T c`` with
    ``v = x_t^T Q^{-1} x_t`` (increasing in ``s`` with one inflection at 0, so Newton
    started on the root's side of 0 converges monotonically, to rounding level). This
    exact one-outcome minimisation (an *implicit* update) cannot overshoot after a
    confident miss, unlike a single explicit Newton step. By induction ``H_t ⪰ κ I``, so
    ``Q`` is always well conditioned.

    **Direction never flips.** ``a`` is constrained to ``a >= min_slope > 0`` (the mode is
    projected after each update), so the map is strictly increasing in ``p_raw`` on
    ``[ε, 1 - ε]``: a recalibrated P(up) above 1/2 never turns a forecast the other way
    round by more than the intercept does.

    The transform uses the posterior mode (plug-in), not the predictive average over ``θ``,
    so it is exactly the identity before any outcome. Inputs are clipped to
    ``[ε, 1 - ε]`` (:data:`PROBABILITY_CLIP`), and so are outputs.

    Parameters
    ----------
    forgetting : float, default=0.999
        ``λ`` in (0, 1]; an outcome's weight halves every ``ln 2 / ln(1/λ)`` outcomes
        (≈ 693 for 0.999). 1 keeps all outcomes.
    prior_precision : float, default=10.0
        ``κ > 0``, precision of the prior on ``a`` and on ``b`` around the identity; each
        outcome adds at most ``1/4`` (times ``z²`` for ``a``), so ~``4κ`` outcomes are
        needed before the data outweigh the prior on the intercept.
    min_slope : float, default=0.01
        Lower bound on ``a`` (> 0).

    References
    ----------
    .. [1] J. Platt, "Probabilistic outputs for support vector machines and comparisons to
       regularized likelihood methods", in *Advances in Large Margin Classifiers*, 1999.
    .. [2] D. J. Spiegelhalter, S. L. Lauritzen, "Sequential updating of conditional
       probabilities on directed graphical structures", Networks 20(5), 1990.
    .. [3] M. Kull, T. Silva Filho, P. Flach, "Beta calibration: a well-founded and easily
       implemented improvement on logistic calibration for binary classifiers", AISTATS
       2017 (its two-logit map generalises this one; Platt's single logit is used here).

    Examples
    --------
    >>> cal = OnlineCalibrator(forgetting=1.0)
    >>> state = cal.init_state(n_sources=2)
    >>> cal.transform(state, [0.9, 0.2]).round(12).tolist()  # no outcomes yet: identity
    [0.9, 0.2]
    >>> for _ in range(200):  # source 0 says 0.9 but is right half the time
    ...     cal.learn(state, [0.9, 0.9], [1, 1])
    ...     cal.learn(state, [0.9, 0.9], [0, 1])
    >>> p = cal.transform(state, [0.9, 0.9])
    >>> bool(abs(p[0] - 0.5) < 0.05), bool(p[1] > 0.9)
    (True, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "forgetting": [Interval("real", 0, 1, "right")],
        "prior_precision": [Interval("real", 0, None, "neither")],
        "min_slope": [Interval("real", 0, None, "neither")],
    }

    def __init__(
        self, forgetting: float = 0.999, prior_precision: float = 10.0, min_slope: float = 0.01
    ) -> None:
        self.forgetting = forgetting
        self.prior_precision = prior_precision
        self.min_slope = min_slope

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._parameter_constraints)
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        if getattr(self, "_checked_params_", None) != params:
            validate_params(type(self).__name__, params, self._parameter_constraints)
            if self.min_slope > 1.0:
                raise InvalidParameterError(
                    f"The 'min_slope' parameter of {type(self).__name__} must be <= 1 so "
                    f"that the identity map is allowed. Got {self.min_slope!r} instead."
                )
            self._checked_params_ = params

    def init_state(self, n_sources: int) -> CalibratorState:
        """Identity maps (``a = 1, b = 0``, precision ``κ I``) for ``n_sources`` sources."""
        self._check_params()
        validate_params(
            f"{type(self).__name__}.init_state",
            {"n_sources": n_sources},
            {"n_sources": [Interval("int", 0, None)]},
        )
        coef = np.zeros((n_sources, 2), dtype=np.float64)
        coef[:, 0] = 1.0
        precision = np.zeros((n_sources, 2, 2), dtype=np.float64)
        precision[:, 0, 0] = precision[:, 1, 1] = float(self.prior_precision)
        return CalibratorState(
            coef=coef, precision=precision, count=np.zeros(n_sources, dtype=np.int64)
        )

    def _check(self, state: CalibratorState, p_raw: ArrayLike) -> NDArray[np.float64]:
        if not isinstance(state, CalibratorState):
            raise InvalidInputError(
                f"state must be a CalibratorState from init_state(); got {type(state).__name__}."
            )
        p = _check_probability(p_raw, "p_raw")
        if p.ndim != 1 or state.coef.shape != (p.shape[0], 2):
            raise InvalidInputError(
                f"p_raw must have shape (batch,) matching the state's coef of shape "
                f"{state.coef.shape} (n_sources, 2); got {p.shape}. Gather the state rows "
                f"of the sources in the batch."
            )
        return p

    def transform(self, state: CalibratorState, p_raw: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probabilities ``σ(a logit(p_raw) + b)``, one per source.

        Parameters
        ----------
        state : CalibratorState
            Maps of the ``batch`` sources, row for row (not modified).
        p_raw : array-like of shape (batch,)
            Raw probabilities in [0, 1] (0 and 1 are clipped, never NaN).

        Returns
        -------
        ndarray of shape (batch,), float64
            In ``[ε, 1 - ε]``.
        """
        self._check_params()
        p = self._check(state, p_raw)
        out = scipy.special.expit(state.coef[:, 0] * _logit(p) + state.coef[:, 1])
        return np.clip(out, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)

    def learn(self, state: CalibratorState, p_raw: ArrayLike, outcome: ArrayLike) -> None:
        """Learn one realised outcome per source, in place.

        Parameters
        ----------
        state : CalibratorState
            Maps of the ``batch`` sources, updated in place; untouched if anything is
            rejected.
        p_raw : array-like of shape (batch,)
            The raw probabilities that were issued for these outcomes.
        outcome : array-like of shape (batch,)
            1 if the event happened (e.g. the move was up), else 0.

        Raises
        ------
        InvalidInputError
            If an input is non-finite, ``p_raw`` is outside [0, 1], ``outcome`` is not 0/1,
            or the shapes do not match the state.
        """
        self._check_params()
        p = self._check(state, p_raw)
        y = _check_outcome(outcome, p.shape)
        _platt_update(
            state.coef,
            state.precision,
            np.ascontiguousarray(_logit(p)),
            np.ascontiguousarray(y),
            float(self.forgetting),
            float(self.prior_precision),
            float(self.min_slope),
        )
        state.count += 1


@numba.njit(cache=True)
def _expit(s: float) -> float:  # pragma: no cover - compiled
    if s >= 0.0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


@numba.njit(cache=True)
def _platt_update(
    coef: NDArray[np.float64],
    precision: NDArray[np.float64],
    z: NDArray[np.float64],
    y: NDArray[np.float64],
    lam: float,
    kappa: float,
    min_slope: float,
) -> None:  # pragma: no cover - compiled
    """The implicit online-Laplace update of :class:`OnlineCalibrator`, row by row, in place."""
    for b in range(z.shape[0]):
        # Q = lam H + (1 - lam) kappa I ; r = lam H theta + (1 - lam) kappa theta0
        h00 = precision[b, 0, 0]
        h01 = precision[b, 0, 1]
        h11 = precision[b, 1, 1]
        a0 = coef[b, 0]
        b0 = coef[b, 1]
        q00 = lam * h00 + (1.0 - lam) * kappa
        q01 = lam * h01
        q11 = lam * h11 + (1.0 - lam) * kappa
        r0 = lam * (h00 * a0 + h01 * b0) + (1.0 - lam) * kappa
        r1 = lam * (h01 * a0 + h11 * b0)
        det = q00 * q11 - q01 * q01
        c0 = (q11 * r0 - q01 * r1) / det
        c1 = (q00 * r1 - q01 * r0) / det
        x0 = z[b]
        # g = Q^{-1} x,  v = x^T Q^{-1} x,  s0 = x^T c
        g0 = (q11 * x0 - q01) / det
        g1 = (q00 - q01 * x0) / det
        v = x0 * g0 + g1
        s0 = x0 * c0 + c1
        yb = y[b]
        # Root of f(s) = s - s0 + v (expit(s) - y): increasing, convex for s < 0 and concave
        # for s > 0 (inflection at 0). Newton started on the root's side of 0, from the
        # side where the tangent does not overshoot, moves monotonically to the root; it
        # stops when rounding makes a step go backwards (or not at all).
        if v * (0.5 - yb) - s0 <= 0.0:  # f(0) <= 0: root >= 0, approach from below
            s = max(s0 if yb > 0.0 else s0 - v, 0.0)
            direction = 1.0
        else:  # root < 0, approach from above
            s = min(s0 + v if yb > 0.0 else s0, 0.0)
            direction = -1.0
        for _ in range(200):
            q = _expit(s)
            s_new = s - (s - s0 + v * (q - yb)) / (1.0 + v * q * (1.0 - q))
            if direction * (s_new - s) <= 0.0:
                break
            s = s_new
        q = _expit(s)
        coef[b, 0] = max(c0 - (q - yb) * g0, min_slope)
        coef[b, 1] = c1 - (q - yb) * g1
        w = q * (1.0 - q)
        precision[b, 0, 0] = q00 + w * x0 * x0
        precision[b, 0, 1] = q01 + w * x0
        precision[b, 1, 0] = q01 + w * x0
        precision[b, 1, 1] = q11 + w
