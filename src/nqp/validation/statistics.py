"""Out-of-sample statistics that can fail: hit rate, calibration, magnitude error, DM test.

Every function takes realised, out-of-sample arrays and returns measured numbers; none has a
tunable that flatters the model. The framing used throughout the validation package:

* **Direction.** A prediction states a direction in {-1 (down), 0 (hold), +1 (up)}; it is
  *right* when it equals the realised direction. ``hold`` predictions are abstentions and are
  left out of the hit rate and of the calibration statistics; a realised ``hold`` (a change
  of exactly zero, or inside the caller's dead-band) with an up/down prediction is a miss.
* **Confidence of the stated direction.** ``p`` is the model's stated probability that its
  stated direction is right, and ``outcome = 1`` if it was. The Brier score, expected
  calibration error and reliability curve below are nevertheless generic tools for any
  binary probability forecast.
* **Magnitude.** The signed forecast of the change ``y[t+h] - y[t]`` is compared with the
  realised change by MAE and NRMSE, and against baseline forecasts with the Diebold–Mariano
  test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, Options, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError

__all__ = [
    "DMResult",
    "HitRateResult",
    "PredictionSet",
    "brier_score",
    "brier_skill_score",
    "diebold_mariano",
    "evaluate_predictions",
    "expected_calibration_error",
    "hit_rate_test",
    "mae",
    "nrmse",
    "reliability_curve",
    "summarise_by_regime",
    "to_direction",
]

_DIRECTION_WORDS = {"up": 1, "down": -1, "hold": 0}


def _json_float(x: float) -> float | None:
    """``float(x)``, with NaN/inf mapped to None so the value is valid JSON."""
    x = float(x)
    return x if math.isfinite(x) else None


def to_direction(x: ArrayLike, *, name: str = "direction") -> NDArray[np.int8]:
    """Directions as an int8 array of shape (n,) with values in {-1, 0, +1}.

    Parameters
    ----------
    x : array-like of shape (n,)
        Numbers in {-1, 0, +1} or the strings ``"down"``, ``"hold"``, ``"up"``
        (case-insensitive).
    name : str, default="direction"
        Used in error messages.

    Returns
    -------
    ndarray of shape (n,), int8

    Examples
    --------
    >>> to_direction(["up", "hold", "down"]).tolist()
    [1, 0, -1]
    """
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got shape {arr.shape}.")
    if arr.dtype.kind in "USO":
        out = np.empty(arr.shape, dtype=np.int8)
        for i, v in enumerate(arr.tolist()):
            word = str(v).lower() if isinstance(v, str) else None
            if word in _DIRECTION_WORDS:
                out[i] = _DIRECTION_WORDS[word]
            elif isinstance(v, int | float | np.integer | np.floating) and v in (-1, 0, 1):
                out[i] = int(v)
            else:
                raise InvalidInputError(
                    f"{name} must hold -1/0/+1 or 'down'/'hold'/'up'; got {v!r} at index {i}."
                )
        return out
    num = check_finite_array(arr, name=name, ndim=1)
    bad = ~np.isin(num, (-1.0, 0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(
            f"{name} must hold -1/0/+1 or 'down'/'hold'/'up'; got {num[i]!r} at index {i}."
        )
    return num.astype(np.int8)


def _probabilities(p: ArrayLike, outcome: ArrayLike) -> tuple[NDArray, NDArray]:
    pa = check_finite_array(p, name="p", ndim=1)
    oa = check_finite_array(outcome, name="outcome", ndim=1)
    if pa.shape != oa.shape:
        raise InvalidInputError(f"p {pa.shape} and outcome {oa.shape} must have the same shape.")
    if pa.size == 0:
        raise InvalidInputError("p and outcome must be non-empty.")
    if ((pa < 0.0) | (pa > 1.0)).any():
        raise InvalidInputError("p must lie in [0, 1].")
    if not np.isin(oa, (0.0, 1.0)).all():
        raise InvalidInputError("outcome must hold only 0 and 1.")
    return pa, oa


# --------------------------------------------------------------------------- direction


@dataclass(frozen=True)
class HitRateResult:
    """Hit rate of directional predictions with exact binomial tests.

    Attributes
    ----------
    n : int
        Predictions evaluated (up/down predictions; holds excluded).
    hits : int
        Predictions whose direction equals the realised direction.
    hit_rate : float
        ``hits / n`` (NaN when ``n == 0``).
    p_value_vs_half : float
        One-sided exact binomial p-value of ``H0: P(hit) <= 0.5`` against ``P(hit) > 0.5``.
    majority_rate : float
        Fraction of the evaluated points whose realised direction is the more frequent of
        up/down: the hit rate of a constant "always the majority direction" predictor.
    p_value_vs_majority : float
        One-sided exact binomial p-value of ``H0: P(hit) <= majority_rate``.
    ci_low, ci_high : float
        Two-sided Clopper–Pearson interval of the hit rate (``confidence_level``).
    n_excluded : int
        Hold predictions left out.
    """

    n: int
    hits: int
    hit_rate: float
    p_value_vs_half: float
    majority_rate: float
    p_value_vs_majority: float
    ci_low: float
    ci_high: float
    n_excluded: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN becomes None)."""
        return {k: (v if isinstance(v, int) else _json_float(v)) for k, v in asdict(self).items()}


def hit_rate_test(
    predicted_direction: ArrayLike,
    realised_direction: ArrayLike,
    *,
    confidence_level: float = 0.95,
) -> HitRateResult:
    """Hit rate with exact one-sided binomial tests against 50% and the majority class.

    Hold predictions (0) are abstentions and are excluded from ``n``; a realised hold with
    an up/down prediction counts as a miss. The majority rate is the fraction of evaluated
    points whose realised direction is the more frequent of up and down, i.e. the hit rate
    of a constant predictor of that direction. It is measured on the same (out-of-sample)
    points, so that baseline knows the majority direction in hindsight — slightly
    favourable to the baseline, hence conservative for the model. The tests use
    :func:`scipy.stats.binomtest` with ``alternative="greater"``; the interval is the exact
    Clopper–Pearson interval (Clopper & Pearson 1934).

    Parameters
    ----------
    predicted_direction, realised_direction : array-like of shape (n,)
        -1/0/+1 or "down"/"hold"/"up".
    confidence_level : float, default=0.95
        Of the two-sided Clopper–Pearson interval.

    Returns
    -------
    HitRateResult
        With NaN statistics (and an interval of NaN) when every prediction is a hold.

    Examples
    --------
    >>> r = hit_rate_test(["up", "up", "down", "hold"], ["up", "down", "down", "up"])
    >>> r.n, r.hits, r.n_excluded, round(r.hit_rate, 4), r.p_value_vs_half
    (3, 2, 1, 0.6667, 0.5)
    """
    validate_params(
        "hit_rate_test",
        {"confidence_level": confidence_level},
        {"confidence_level": [Interval("real", 0, 1, closed="neither")]},
    )
    pred = to_direction(predicted_direction, name="predicted_direction")
    real = to_direction(realised_direction, name="realised_direction")
    if pred.shape != real.shape:
        raise InvalidInputError(
            f"predicted_direction {pred.shape} and realised_direction {real.shape} must have "
            "the same shape."
        )
    active = pred != 0
    n = int(active.sum())
    n_excluded = int(pred.size - n)
    if n == 0:
        nan = float("nan")
        return HitRateResult(0, 0, nan, nan, nan, nan, nan, nan, n_excluded)
    hits = int((pred[active] == real[active]).sum())
    r_act = real[active]
    majority = max(int((r_act == 1).sum()), int((r_act == -1).sum())) / n
    p_half = scipy.stats.binomtest(hits, n, 0.5, alternative="greater").pvalue
    p_major = scipy.stats.binomtest(hits, n, majority, alternative="greater").pvalue
    ci = scipy.stats.binomtest(hits, n, 0.5).proportion_ci(confidence_level, method="exact")
    return HitRateResult(
        n=n,
        hits=hits,
        hit_rate=hits / n,
        p_value_vs_half=float(p_half),
        majority_rate=float(majority),
        p_value_vs_majority=float(p_major),
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        n_excluded=n_excluded,
    )


# --------------------------------------------------------------------------- calibration


def brier_score(p: ArrayLike, outcome: ArrayLike) -> float:
    """Brier score ``mean((p - outcome)**2)`` of binary probability forecasts (Brier 1950).

    Parameters
    ----------
    p : array-like of shape (n,)
        Forecast probabilities in [0, 1] (here: the confidence that the stated direction
        is right).
    outcome : array-like of shape (n,)
        0/1 realisations (here: 1 if the stated direction was right).

    Returns
    -------
    float
        In [0, 1]; lower is better; a constant 0.5 forecast scores 0.25.

    Examples
    --------
    >>> round(brier_score([0.9, 0.8, 0.3, 0.6], [1, 0, 0, 1]), 10)
    0.225
    """
    pa, oa = _probabilities(p, outcome)
    return float(np.mean((pa - oa) ** 2))


def brier_skill_score(
    p: ArrayLike, outcome: ArrayLike, *, reference_brier: float | None = None
) -> float:
    """Brier skill score ``1 - BS / BS_ref``.

    Parameters
    ----------
    p, outcome : array-like of shape (n,)
        As in :func:`brier_score`.
    reference_brier : float or None, default=None
        Brier score of the reference forecast. None uses climatology: the constant forecast
        equal to the observed base rate ``o_bar``, whose Brier score is ``o_bar (1 - o_bar)``.

    Returns
    -------
    float
        1 for a perfect forecast, 0 for the reference, negative when worse. When the
        reference is perfect (``BS_ref = 0``) the skill is 0 if the forecast is perfect too
        and ``-inf`` otherwise.

    Examples
    --------
    >>> brier_skill_score([0.5, 0.5], [1, 0])
    0.0
    """
    pa, oa = _probabilities(p, outcome)
    bs = float(np.mean((pa - oa) ** 2))
    if reference_brier is None:
        base = float(oa.mean())
        ref = base * (1.0 - base)
    else:
        validate_params(
            "brier_skill_score",
            {"reference_brier": reference_brier},
            {"reference_brier": [Interval("real", 0, 1)]},
        )
        ref = float(reference_brier)
    if ref == 0.0:
        return 0.0 if bs == 0.0 else float("-inf")
    return 1.0 - bs / ref


def _bin_ids(pa: NDArray, n_bins: int, strategy: str) -> NDArray[np.intp]:
    """Right-closed bins ``(e_k, e_{k+1}]`` (the first also holds its left edge)."""
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.quantile(pa, np.linspace(0.0, 1.0, n_bins + 1))
    return np.searchsorted(edges[1:-1], pa, side="left")


def reliability_curve(
    p: ArrayLike, outcome: ArrayLike, n_bins: int = 10, *, strategy: str = "uniform"
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Mean forecast probability, observed frequency and count of each non-empty bin.

    Bins are right-closed intervals ``(e_k, e_{k+1}]`` (the first bin includes its left
    edge), with edges evenly spaced on [0, 1] (``"uniform"``) or at the quantiles of ``p``
    (``"quantile"``; tied quantiles leave some bins empty). Empty bins are dropped.

    Parameters
    ----------
    p, outcome : array-like of shape (n,)
        As in :func:`brier_score`.
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"

    Returns
    -------
    bin_mean_p : ndarray of shape (n_nonempty,), float64
    bin_freq : ndarray of shape (n_nonempty,), float64
        Fraction of outcomes equal to 1 in the bin.
    bin_count : ndarray of shape (n_nonempty,), int64

    Examples
    --------
    >>> m, f, c = reliability_curve([0.9, 0.8, 0.3, 0.6], [1, 0, 0, 1], n_bins=2)
    >>> m.round(4).tolist(), f.round(4).tolist(), c.tolist()
    ([0.3, 0.7667], [0.0, 0.6667], [1, 3])
    """
    validate_params(
        "reliability_curve",
        {"n_bins": n_bins, "strategy": strategy},
        {"n_bins": [Interval("int", 1, None)], "strategy": [Options(("uniform", "quantile"))]},
    )
    pa, oa = _probabilities(p, outcome)
    ids = _bin_ids(pa, n_bins, strategy)
    count = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=pa, minlength=n_bins)
    sum_o = np.bincount(ids, weights=oa, minlength=n_bins)
    keep = count > 0
    c = count[keep]
    return sum_p[keep] / c, sum_o[keep] / c, c.astype(np.int64)


def expected_calibration_error(
    p: ArrayLike, outcome: ArrayLike, n_bins: int = 10, strategy: str = "uniform"
) -> float:
    """Expected calibration error ``sum_k (n_k / n) |mean_p_k - freq_k|``.

    The binned estimator of Naeini, Cooper & Hauskrecht (2015), with the bins of
    :func:`reliability_curve`. For a perfectly calibrated forecast it is not exactly 0 in
    a finite sample: each bin contributes sampling noise of order ``sqrt(p(1-p)/n_k)``.

    Parameters
    ----------
    p, outcome : array-like of shape (n,)
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> round(expected_calibration_error([0.9, 0.8, 0.3, 0.6], [1, 0, 0, 1], n_bins=2), 10)
    0.15
    """
    mean_p, freq, count = reliability_curve(p, outcome, n_bins, strategy=strategy)
    return float(np.sum(count * np.abs(mean_p - freq)) / count.sum())


# --------------------------------------------------------------------------- magnitude


def _pair(forecast: ArrayLike, target: ArrayLike) -> tuple[NDArray, NDArray]:
    f = check_finite_array(forecast, name="forecast", ndim=1)
    y = check_finite_array(target, name="target", ndim=1)
    if f.shape != y.shape:
        raise InvalidInputError(
            f"forecast {f.shape} and target {y.shape} must have the same shape."
        )
    if f.size == 0:
        raise InvalidInputError("forecast and target must be non-empty.")
    return f, y


def mae(forecast: ArrayLike, target: ArrayLike) -> float:
    """Mean absolute error ``mean(|forecast - target|)``, in the target's units.

    Examples
    --------
    >>> mae([1.0, 2.0], [0.0, 4.0])
    1.5
    """
    f, y = _pair(forecast, target)
    return float(np.mean(np.abs(f - y)))


def nrmse(forecast: ArrayLike, target: ArrayLike) -> float:
    """Root-mean-square error divided by the population standard deviation of the target.

    ``NRMSE = sqrt(mean((f - y)**2)) / std(y)`` (``ddof=0``): 1 for the constant forecast
    ``mean(y)`` fitted in hindsight, 0 for a perfect forecast, dimensionless so series can
    be compared. NaN when the target is constant.

    Examples
    --------
    >>> nrmse([0.0, 0.0], [1.0, -1.0])
    1.0
    """
    f, y = _pair(forecast, target)
    sd = float(np.std(y))
    if sd == 0.0:
        return float("nan")
    return float(np.sqrt(np.mean((f - y) ** 2)) / sd)


@dataclass(frozen=True)
class DMResult:
    """Result of :func:`diebold_mariano`.

    Attributes
    ----------
    statistic : float
        HLN-corrected DM statistic; negative when the first forecast has lower loss.
    p_value : float
        Two-sided p-value of equal predictive accuracy against t(n - 1).
    mean_loss_diff : float
        ``mean(L(e1) - L(e2))``.
    p_value_model_better : float
        One-sided p-value of ``H1: E[L(e1) - L(e2)] < 0`` (the first forecast is better).
    n : int
    horizon : int
    """

    statistic: float
    p_value: float
    mean_loss_diff: float
    p_value_model_better: float
    n: int
    horizon: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN/inf become None)."""
        return {k: (v if isinstance(v, int) else _json_float(v)) for k, v in asdict(self).items()}


def diebold_mariano(
    e1: ArrayLike,
    e2: ArrayLike,
    *,
    h: int = 1,
    loss: str = "squared",
    kernel: str = "uniform",
) -> DMResult:
    r"""Diebold–Mariano test of equal predictive accuracy, with the HLN correction.

    With loss differential :math:`d_t = L(e_{1,t}) - L(e_{2,t})`, its mean :math:`\bar d`
    and autocovariances :math:`\hat\gamma_k = n^{-1}\sum_{t=k+1}^{n}(d_t-\bar d)(d_{t-k}-\bar d)`,
    the long-run variance of :math:`\bar d` uses the :math:`h-1` lags an optimal
    :math:`h`-step forecast error can be correlated over (Diebold & Mariano 1995, eq. 5):

    .. math::

        \hat V = \frac{1}{n}\Big(\hat\gamma_0 + 2\sum_{k=1}^{h-1} w_k \hat\gamma_k\Big),
        \qquad DM = \bar d / \sqrt{\hat V},

    with :math:`w_k = 1` (``kernel="uniform"``, the truncated estimator of DM and of HLN) or
    the Newey–West Bartlett weights :math:`w_k = 1 - k/h` (``kernel="bartlett"``, always
    non-negative). If the uniform estimate is not positive (possible for ``h > 1``) the
    Bartlett one is used. The statistic is multiplied by the Harvey, Leybourne & Newbold
    (1997, eq. 9) small-sample factor :math:`\sqrt{(n + 1 - 2h + h(h-1)/n)/n}` and referred
    to Student's t with :math:`n - 1` degrees of freedom. A loss differential that is
    identically 0 gives statistic 0 and p-value 1.

    Parameters
    ----------
    e1, e2 : array-like of shape (n,)
        Forecast errors of the model and of the competitor, aligned in time.
    h : int, default=1
        Forecast horizon in steps.
    loss : {"squared", "absolute"}, default="squared"
    kernel : {"uniform", "bartlett"}, default="uniform"

    Returns
    -------
    DMResult

    Raises
    ------
    InvalidInputError
        If the arrays differ in shape, hold non-finite values, or ``n <= 2h``.

    References
    ----------
    Diebold, F. X. & Mariano, R. S. (1995). Comparing predictive accuracy. JBES 13(3).
    Harvey, D., Leybourne, S. & Newbold, P. (1997). Testing the equality of prediction mean
    squared errors. IJF 13(2).

    Examples
    --------
    >>> r = diebold_mariano([0.1, -0.2, 0.1, 0.0, 0.2], [1.0, -0.8, 1.2, -1.1, 0.9])
    >>> r.statistic < 0, r.p_value_model_better < 0.01
    (True, True)
    """
    validate_params(
        "diebold_mariano",
        {"h": h, "loss": loss, "kernel": kernel},
        {
            "h": [Interval("int", 1, None)],
            "loss": [Options(("squared", "absolute"))],
            "kernel": [Options(("uniform", "bartlett"))],
        },
    )
    a = check_finite_array(e1, name="e1", ndim=1)
    b = check_finite_array(e2, name="e2", ndim=1)
    if a.shape != b.shape:
        raise InvalidInputError(f"e1 {a.shape} and e2 {b.shape} must have the same shape.")
    n = a.size
    if n <= 2 * h:
        raise InvalidInputError(f"The DM test needs more than 2h = {2 * h} errors; got {n}.")
    d = a**2 - b**2 if loss == "squared" else np.abs(a) - np.abs(b)
    dbar = float(d.mean())
    dc = d - dbar
    gamma = np.array([dc[k:] @ dc[: n - k] / n for k in range(h)])
    lags = np.arange(1, h)

    def long_run(weights: NDArray) -> float:
        return float(gamma[0] + 2.0 * np.sum(weights * gamma[1:])) / n

    var = long_run(np.ones(h - 1) if kernel == "uniform" else 1.0 - lags / h)
    if var <= 0.0:
        var = long_run(1.0 - lags / h)
    if var <= 0.0:
        stat = 0.0 if dbar == 0.0 else math.copysign(math.inf, dbar)
    else:
        stat = dbar / math.sqrt(var)
    stat *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    dist = scipy.stats.t(df=n - 1)
    return DMResult(
        statistic=float(stat),
        p_value=float(min(1.0, 2.0 * dist.sf(abs(stat)))),
        mean_loss_diff=dbar,
        p_value_model_better=float(dist.cdf(stat)),
        n=int(n),
        horizon=int(h),
    )


# --------------------------------------------------------------------------- prediction sets


@dataclass(frozen=True)
class PredictionSet:
    """Per-prediction arrays of one model variant over a walk-forward backtest.

    Row ``i`` is the prediction made at origin ``index[i]`` for the change over the horizon
    and what then happened. Arrays are converted and checked on construction.

    Parameters
    ----------
    index : array-like of shape (n,)
        Time of each prediction origin (step number or epoch seconds), float64.
    predicted_direction : array-like of shape (n,)
        -1/0/+1 or "down"/"hold"/"up"; stored as int8.
    confidence : array-like of shape (n,)
        Stated probability in [0, 1] that the predicted direction is right, float64.
    predicted_change : array-like of shape (n,)
        Signed forecast of the change ``y[t+h] - y[t]`` (the magnitude with the sign of the
        direction), in the target's units, float64.
    realised_change : array-like of shape (n,)
        The realised ``y[t+h] - y[t]``, float64.
    realised_direction : array-like of shape (n,) or None, default=None
        None uses ``sign(realised_change)``; pass it explicitly to apply a dead-band.
    regime : array-like of shape (n,) or None, default=None
        Regime label of each row (converted to str), or None if the data has no regimes.

    Examples
    --------
    >>> ps = PredictionSet([0, 1], ["up", "down"], [0.6, 0.7], [0.1, -0.2], [0.3, 0.1])
    >>> ps.realised_direction.tolist(), len(ps)
    ([1, 1], 2)
    """

    index: NDArray[np.float64]
    predicted_direction: NDArray[np.int8]
    confidence: NDArray[np.float64]
    predicted_change: NDArray[np.float64]
    realised_change: NDArray[np.float64]
    realised_direction: NDArray[np.int8] | None = None
    regime: NDArray[np.str_] | None = None

    if TYPE_CHECKING:
        # The generated __init__ takes array-likes (converted in __post_init__); this
        # declares so to type checkers. At run time the dataclass-generated one is used.
        def __init__(
            self,
            index: ArrayLike,
            predicted_direction: ArrayLike,
            confidence: ArrayLike,
            predicted_change: ArrayLike,
            realised_change: ArrayLike,
            realised_direction: ArrayLike | None = None,
            regime: ArrayLike | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        idx = check_finite_array(self.index, name="index", ndim=1)
        n = idx.size
        fields: dict[str, Any] = {
            "index": idx,
            "predicted_direction": to_direction(
                self.predicted_direction, name="predicted_direction"
            ),
            "confidence": check_finite_array(self.confidence, name="confidence", ndim=1),
            "predicted_change": check_finite_array(
                self.predicted_change, name="predicted_change", ndim=1
            ),
            "realised_change": check_finite_array(
                self.realised_change, name="realised_change", ndim=1
            ),
        }
        if self.realised_direction is None:
            fields["realised_direction"] = np.sign(fields["realised_change"]).astype(np.int8)
        else:
            fields["realised_direction"] = to_direction(
                self.realised_direction, name="realised_direction"
            )
        if self.regime is not None:
            reg = np.asarray(self.regime)
            if reg.ndim != 1:
                raise InvalidInputError(f"regime must be 1-D, got shape {reg.shape}.")
            fields["regime"] = reg.astype(str)
        for key, value in fields.items():
            if value.shape != (n,):
                raise InvalidInputError(
                    f"{key} must have shape ({n},) like index; got {value.shape}."
                )
            object.__setattr__(self, key, value)
        conf = fields["confidence"]
        if ((conf < 0.0) | (conf > 1.0)).any():
            raise InvalidInputError("confidence must lie in [0, 1].")

    def __len__(self) -> int:
        return int(self.index.size)

    def subset(self, mask: ArrayLike) -> PredictionSet:
        """The rows where the boolean ``mask`` of shape (n,) is True."""
        m = np.asarray(mask, dtype=bool)
        return PredictionSet(
            self.index[m],
            self.predicted_direction[m],
            self.confidence[m],
            self.predicted_change[m],
            self.realised_change[m],
            self.realised_direction[m],  # type: ignore[index]
            None if self.regime is None else self.regime[m],
        )

    def correctness(self) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """Mask of up/down rows (n,) and, on those rows, 1.0 where the direction was right."""
        active = self.predicted_direction != 0
        right = self.predicted_direction[active] == self.realised_direction[active]  # type: ignore[index]
        return active, right.astype(np.float64)


def _calibration_stats(ps: PredictionSet, majority: float, n_bins: int) -> dict[str, Any]:
    active, right = ps.correctness()
    if right.size == 0:
        return {
            "n": 0,
            "brier": None,
            "brier_reference": None,
            "brier_skill": None,
            "ece": None,
            "n_bins": n_bins,
            "reliability": {"mean_p": [], "freq": [], "count": []},
        }
    conf = ps.confidence[active]
    ref = majority * (1.0 - majority)
    mean_p, freq, count = reliability_curve(conf, right, n_bins)
    return {
        "n": int(right.size),
        "brier": brier_score(conf, right),
        "brier_reference": ref,
        "brier_skill": _json_float(brier_skill_score(conf, right, reference_brier=ref)),
        "ece": expected_calibration_error(conf, right, n_bins),
        "n_bins": n_bins,
        "reliability": {
            "mean_p": mean_p.tolist(),
            "freq": freq.tolist(),
            "count": count.tolist(),
        },
    }


def _magnitude_stats(
    ps: PredictionSet, baselines: Mapping[str, NDArray], horizon: int
) -> dict[str, Any]:
    rows = np.ones(len(ps), dtype=bool)
    for f in baselines.values():
        rows &= np.isfinite(f)
    y = ps.realised_change[rows]
    f_model = ps.predicted_change[rows]
    out: dict[str, Any] = {"n": int(rows.sum()), "baselines": {}, "best_baseline": None}
    if y.size == 0:
        out.update(mae=None, rmse=None, nrmse=None)
        return out
    out["mae"] = mae(f_model, y)
    out["rmse"] = float(np.sqrt(np.mean((f_model - y) ** 2)))
    out["nrmse"] = _json_float(nrmse(f_model, y))
    best, best_val = None, math.inf
    for name, f in baselines.items():
        fb = f[rows]
        entry: dict[str, Any] = {"mae": mae(fb, y), "nrmse": _json_float(nrmse(fb, y))}
        entry["hit_rate"] = hit_rate_test(np.sign(fb), ps.realised_direction[rows]).to_dict()  # type: ignore[index]
        entry["dm"] = (
            diebold_mariano(y - f_model, y - fb, h=horizon).to_dict()
            if y.size > 2 * horizon
            else None
        )
        rmse_b = float(np.sqrt(np.mean((fb - y) ** 2)))
        if rmse_b < best_val:
            best, best_val = name, rmse_b
        out["baselines"][name] = entry
    out["best_baseline"] = best
    return out


def _baseline_arrays(baselines: Mapping[str, ArrayLike] | None, n: int) -> dict[str, NDArray]:
    arrays: dict[str, NDArray] = {}
    for name, f in (baselines or {}).items():
        a = np.asarray(f, dtype=np.float64)
        if a.shape != (n,):
            raise InvalidInputError(f"baseline {name!r} must have shape ({n},); got {a.shape}.")
        if np.isinf(a).any():
            raise InvalidInputError(f"baseline {name!r} contains inf (NaN marks 'not yet').")
        arrays[str(name)] = a
    return arrays


def summarise_by_regime(
    predictions: PredictionSet,
    baselines: Mapping[str, ArrayLike] | None = None,
) -> dict[str, dict[str, Any]] | None:
    """Hit rate, Brier score and NRMSE of each regime label (JSON-able).

    Parameters
    ----------
    predictions : PredictionSet
    baselines : mapping of str to array-like of shape (n,), optional
        Baseline forecasts of the change aligned with ``predictions`` (NaN where not yet
        available); the NRMSE of the best one in each regime is reported beside the model's.

    Returns
    -------
    dict or None
        ``{label: {"n", "hit_rate", "hits", "n_directional", "p_value_vs_half", "brier",
        "nrmse", "best_baseline", "best_baseline_nrmse"}}`` in sorted label order, or None
        when ``predictions.regime`` is None. Statistics that cannot be computed (no up/down
        predictions, constant target) are None.

    Examples
    --------
    >>> ps = PredictionSet([0, 1, 2, 3], [1, 1, -1, -1], [0.6] * 4, [1.0, 1.0, -1.0, 1.0],
    ...                    [2.0, 1.0, -1.0, 3.0], regime=["a", "a", "b", "b"])
    >>> {k: v["hit_rate"] for k, v in summarise_by_regime(ps).items()}
    {'a': 1.0, 'b': 0.5}
    """
    if predictions.regime is None:
        return None
    arrays = _baseline_arrays(baselines, len(predictions))
    out: dict[str, dict[str, Any]] = {}
    for label in sorted(set(predictions.regime.tolist())):
        mask = predictions.regime == label
        sub = predictions.subset(mask)
        hr = hit_rate_test(sub.predicted_direction, sub.realised_direction)  # type: ignore[arg-type]
        active, right = sub.correctness()
        entry: dict[str, Any] = {
            "n": len(sub),
            "n_directional": hr.n,
            "hits": hr.hits,
            "hit_rate": _json_float(hr.hit_rate),
            "p_value_vs_half": _json_float(hr.p_value_vs_half),
            "brier": brier_score(sub.confidence[active], right) if right.size else None,
            "nrmse": _json_float(nrmse(sub.predicted_change, sub.realised_change)),
            "best_baseline": None,
            "best_baseline_nrmse": None,
        }
        best = math.inf
        for name, f in arrays.items():
            fb = f[mask]
            ok = np.isfinite(fb)
            if ok.sum() == 0:
                continue
            v = nrmse(fb[ok], sub.realised_change[ok])
            if math.isfinite(v) and v < best:
                best = v
                entry["best_baseline"], entry["best_baseline_nrmse"] = name, v
        out[label] = entry
    return out


def evaluate_predictions(
    predictions: PredictionSet,
    baselines: Mapping[str, ArrayLike] | None = None,
    *,
    horizon: int = 1,
    n_bins: int = 10,
    confidence_level: float = 0.95,
) -> dict[str, Any]:
    """Every out-of-sample statistic of one variant, as a JSON-able dict.

    This is the input of :func:`nqp.validation.score.validation_score` and, per variant, of
    the report.

    Parameters
    ----------
    predictions : PredictionSet
    baselines : mapping of str to array-like of shape (n,), optional
        Baseline forecasts of the same change, aligned with the rows of ``predictions``;
        NaN where a baseline cannot forecast yet. The magnitude statistics of the model and
        of every baseline are computed on the rows where every baseline is finite, so all
        are compared on the same points.
    horizon : int, default=1
        Forecast horizon in steps (the DM test's ``h``).
    n_bins : int, default=10
        Uniform bins of the reliability curve and ECE.
    confidence_level : float, default=0.95
        Of the hit rate's Clopper–Pearson interval.

    Returns
    -------
    dict
        ``{"n", "hit_rate": HitRateResult.to_dict(), "calibration": {"n", "brier",
        "brier_reference", "brier_skill", "ece", "n_bins", "reliability": {"mean_p",
        "freq", "count"}}, "magnitude": {"n", "mae", "rmse", "nrmse", "best_baseline",
        "baselines": {name: {"mae", "nrmse", "hit_rate", "dm": DMResult.to_dict()}}},
        "regimes": summarise_by_regime(...)}``. The calibration statistics use the up/down
        rows with ``outcome = 1`` where the direction was right. ``brier_reference`` is
        ``m (1 - m)`` with ``m`` the majority rate: the Brier score of the constant
        predictor that always states the majority direction with confidence ``m``, so
        ``brier_skill = 1 - brier / brier_reference`` is 0 for it and for a constant 0.5
        confidence at best. Values that cannot be computed are None. ``hit_rate`` of a
        baseline uses the sign of its forecast (a zero forecast is a hold).

    Examples
    --------
    >>> ps = PredictionSet(range(6), [1, -1, 1, 1, -1, 1], [0.7] * 6,
    ...                    [0.5, -0.4, 0.3, 0.2, -0.1, 0.3], [1.0, -0.5, 0.2, -0.1, -0.3, 0.4])
    >>> s = evaluate_predictions(ps, {"persistence": [0.0] * 6})
    >>> s["hit_rate"]["hits"], s["magnitude"]["best_baseline"]
    (5, 'persistence')
    """
    validate_params(
        "evaluate_predictions",
        {"horizon": horizon, "n_bins": n_bins},
        {"horizon": [Interval("int", 1, None)], "n_bins": [Interval("int", 1, None)]},
    )
    arrays = _baseline_arrays(baselines, len(predictions))
    hr = hit_rate_test(
        predictions.predicted_direction,
        predictions.realised_direction,  # type: ignore[arg-type]
        confidence_level=confidence_level,
    )
    majority = hr.majority_rate if hr.n else 0.5
    return {
        "n": len(predictions),
        "hit_rate": hr.to_dict(),
        "calibration": _calibration_stats(predictions, majority, n_bins),
        "magnitude": _magnitude_stats(predictions, arrays, horizon),
        "regimes": summarise_by_regime(predictions, arrays),
    }
