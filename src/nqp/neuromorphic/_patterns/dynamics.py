"""Deterministic-chaos detector on a scalar series: ``chaotic``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError
from nqp.neuromorphic._patterns._common import Strength
from nqp.neuromorphic._patterns._kernels import chaos_divergence, nearest_outside

__all__ = ["chaos_statistics", "chaotic"]

_FLOOR = 1e-9  # distances below this (in units of the series' std) count as this
_BRUTE_FORCE_MAX = 2048  # below this many reference points an exact O(n²) scan beats a k-d tree


def chaos_statistics(
    series: ArrayLike, *, dim: int = 3, delay: int = 1, theiler: int = 10, horizon: int = 6
) -> tuple[float, float]:
    r"""Rosenstein's largest Lyapunov exponent and nearest-neighbour determinism.

    The series is standardised and delay-embedded,
    :math:`y_i = (x_i, x_{i+\tau}, \dots, x_{i+(m-1)\tau})`. For each reference point
    :math:`i` its nearest neighbour :math:`j(i)` (Euclidean, excluding
    :math:`|i - j| \le` ``theiler``) is found by an exact scan (a k-d tree for long
    series).

    * **Lyapunov exponent** (Rosenstein, Collins & De Luca 1993, eq. (8)-(10)):
      :math:`L(k) = \langle \ln \lVert y_{i+k} - y_{j(i)+k}\rVert \rangle_i` for
      :math:`k = 0..K`; :math:`\lambda` is the least-squares slope of :math:`L(k)` over
      :math:`k = 1..K` (in nats per sample). Step 0 is left out of the fit so that the
      jump of noise-dominated neighbours from their selected (minimal) distance to a
      typical one is not read as divergence.
    * **Determinism**: the skill of the nearest-neighbour ("method of analogues",
      Lorenz 1969; Sugihara & May 1990) one-step forecast
      :math:`\hat x_{i+(m-1)\tau+1} = x_{j(i)+(m-1)\tau+1}` over the better of the two
      trivial forecasts, the mean (variance of the series) and persistence
      (:math:`\langle(\Delta x)^2\rangle`):
      :math:`D = \operatorname{clip}(1 - \mathrm{MSE}_{nn} / \mathrm{MSE}_{ref}, 0, 1)` with
      :math:`\mathrm{MSE}_{ref} = \min(\sigma^2, \mathrm{MSE}_{persist})`.
      I.i.d. noise gives :math:`\mathrm{MSE}_{nn} \approx 2\sigma^2` (:math:`D = 0`); a
      random walk is predicted no better than by persistence (:math:`D \approx 0`); a
      low-dimensional deterministic map gives :math:`D \approx 1`.

    Parameters
    ----------
    series : array-like of shape (n_points,)
        Finite values (NaN/inf raise :class:`~nqp.exceptions.InvalidInputError`).
    dim : int, default=3
        Embedding dimension :math:`m`.
    delay : int, default=1
        Embedding delay :math:`\tau` in samples.
    theiler : int, default=10
        Temporal exclusion window for neighbours, in samples.
    horizon : int, default=6
        Divergence steps :math:`K` (at least 2); keep it inside the linear-growth range.

    Returns
    -------
    lyapunov : float
        :math:`\lambda` in nats per sample (0 when it cannot be estimated).
    determinism : float
        :math:`D \in [0, 1]`.

    References
    ----------
    M. T. Rosenstein, J. J. Collins, C. J. De Luca, "A practical method for calculating
    largest Lyapunov exponents from small data sets", Physica D 65:117-134 (1993).
    G. Sugihara, R. M. May, "Nonlinear forecasting as a way of distinguishing chaos from
    measurement error in time series", Nature 344:734-741 (1990).
    """
    _validate_chaos_params(dim, delay, theiler, horizon)
    x = check_finite_array(series, name="series", ndim=1)
    return _chaos_statistics(x, dim, delay, theiler, horizon)


def _validate_chaos_params(dim: int, delay: int, theiler: int, horizon: int) -> None:
    validate_params(
        "chaotic",
        {"dim": dim, "delay": delay, "theiler": theiler, "horizon": horizon},
        {
            "dim": [Interval("int", 1, None)],
            "delay": [Interval("int", 1, None)],
            "theiler": [Interval("int", 0, None)],
            "horizon": [Interval("int", 2, None)],
        },
    )


def _chaos_statistics(
    x: NDArray[np.float64], dim: int, delay: int, theiler: int, horizon: int
) -> tuple[float, float]:
    lyap, det = _chaos_batch(x[None], dim, delay, theiler, horizon)
    return float(lyap[0]), float(det[0])


def _chaos_batch(
    rows: NDArray[np.float64], dim: int, delay: int, theiler: int, horizon: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`chaos_statistics` of each row of ``rows`` (batch, n_points).

    Returns ``(lyapunov, determinism)``, each of shape (batch,).
    """
    x = np.ascontiguousarray(rows, dtype=np.float64)
    batch, n = x.shape
    lyap, det = np.zeros(batch), np.zeros(batch)
    span = (dim - 1) * delay
    n_ref = n - span - horizon  # reference points whose trajectories run K steps further
    if n < 3 or n_ref < 2 * theiler + 3:
        return lyap, det
    sd = x.std(axis=1)
    ok = sd > 1e-12 * np.maximum(1.0, np.abs(x).max(axis=1))
    if not ok.any():
        return lyap, det
    z = (x[ok] - x.mean(axis=1)[ok, None]) / sd[ok, None]  # standardised rows
    if n_ref <= _BRUTE_FORCE_MAX:
        nbr = nearest_outside(z, n_ref, dim, delay, theiler)
    else:
        nbr = np.stack([_kdtree_neighbours(row, n_ref, span, delay, theiler) for row in z])
    dist, det[ok] = chaos_divergence(z, nbr, dim, delay, horizon)  # (batch, n_ref, K+1)
    log_div = np.log(np.maximum(dist, _FLOOR)).mean(axis=1)  # L(k), k = 0..K
    steps = np.arange(horizon + 1)
    kk = steps[1:] - steps[1:].mean()
    centred = log_div[:, 1:] - log_div[:, 1:].mean(axis=1, keepdims=True)
    lyap[ok] = np.vecdot(kk, centred) / (kk @ kk)  # row by row, as ``kk @ row`` adds
    return lyap, det


def _kdtree_neighbours(
    z: NDArray[np.float64], n_ref: int, span: int, delay: int, theiler: int
) -> NDArray[np.int64]:
    """Nearest neighbour outside the Theiler window of each of the first ``n_ref`` points."""
    emb = np.lib.stride_tricks.sliding_window_view(z, span + 1)[:, ::delay]  # (n_embed, dim)
    ref = np.ascontiguousarray(emb[:n_ref])
    i = np.arange(n_ref)
    k = min(2 * theiler + 2, n_ref)
    _, idx = cKDTree(ref).query(ref, k=k)
    idx = np.asarray(idx).reshape(n_ref, k)
    outside = np.abs(idx - i[:, None]) > theiler
    return idx[i, np.argmax(outside, axis=1)].astype(np.int64)


def chaotic(
    series: ArrayLike,
    *,
    dim: int = 3,
    delay: int = 1,
    theiler: int = 10,
    horizon: int = 6,
    lyapunov_scale: float = 0.1,
) -> Strength:
    r"""Deterministic chaos: positive largest Lyapunov exponent *and* determinism.

    With :math:`\lambda` (nats/sample) and :math:`D` from :func:`chaos_statistics`,

    .. math:: \text{strength} = D \cdot \frac{\lambda^+}{\lambda^+ + \lambda_0},
              \qquad \lambda^+ = \max(\lambda, 0),\ \lambda_0 = \text{lyapunov\_scale}.

    Sensitivity alone is not enough (noise looks "divergent" and has maximal permutation
    entropy), nor is predictability alone (a sine is perfectly predictable): chaos needs
    both. The logistic map at :math:`r = 4` (:math:`\lambda = \ln 2`, :math:`D \approx 1`)
    scores about 0.85; a sine (:math:`\lambda \approx 0`) and i.i.d. noise
    (:math:`D = 0`) score near 0. :math:`\lambda` is per *sample*: a finely sampled flow
    (e.g. Lorenz at ``dt = 0.01``, :math:`\lambda \approx 0.009`/sample) needs a smaller
    ``lyapunov_scale`` or a coarser sampling. Series too short for the embedding,
    ``theiler`` window and ``horizon`` score 0.

    Parameters
    ----------
    series : array-like of shape (n_points,) or (batch, n_points)
        Finite values; NaN/inf raise :class:`~nqp.exceptions.InvalidInputError`.
    dim, delay, theiler, horizon : int
        See :func:`chaos_statistics`.
    lyapunov_scale : float, default=0.1
        :math:`\lambda_0` in nats per sample: the exponent that maps to half strength.

    Returns
    -------
    float, or ndarray of shape (batch,) float64

    Examples
    --------
    >>> x = np.empty(600); x[0] = 0.3
    >>> for t in range(599): x[t + 1] = 4.0 * x[t] * (1.0 - x[t])
    >>> chaotic(x) > 0.5, chaotic(np.sin(0.3 * np.arange(600))) < 0.1
    (True, True)
    """
    _validate_chaos_params(dim, delay, theiler, horizon)
    validate_params(
        "chaotic",
        {"lyapunov_scale": lyapunov_scale},
        {"lyapunov_scale": [Interval("real", 0, None, "neither")]},
    )
    x = check_finite_array(series, name="series")
    if x.ndim not in (1, 2):
        raise InvalidInputError(
            f"series must have shape (n_points,) or (batch, n_points), got shape {x.shape}."
        )
    out = _chaotic(x if x.ndim == 2 else x[None], dim, delay, theiler, horizon, lyapunov_scale)
    return out if x.ndim == 2 else float(out[0])


def _chaotic(
    rows: NDArray[np.float64],
    dim: int = 3,
    delay: int = 1,
    theiler: int = 10,
    horizon: int = 6,
    lyapunov_scale: float = 0.1,
) -> NDArray[np.float64]:
    """:func:`chaotic` of checked finite series of shape (batch, n_points)."""
    lyap, det = _chaos_batch(rows, dim, delay, theiler, horizon)
    lp = np.maximum(lyap, 0.0)
    return np.clip(det * lp / (lp + lyapunov_scale), 0.0, 1.0)
