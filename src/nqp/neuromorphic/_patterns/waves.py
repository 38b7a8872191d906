"""Spatio-temporal wave detectors over ordered neuron groups: ``traveling`` and ``standing``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, validate_params
from nqp.neuromorphic._patterns._common import (
    Strength,
    as_raster,
    boxcar,
    group_traces,
    harmonic_share,
    unbatch,
)
from nqp.neuromorphic._patterns._kernels import lagged_correlations

__all__ = ["standing", "traveling"]


def traveling(
    raster: ArrayLike, *, n_groups: int = 8, max_lag: int = 8, smoothing: int = 3
) -> Strength:
    r"""Consistent, non-zero propagation lag across ordered neuron groups.

    Neurons are split in index order into ``n_groups`` contiguous groups (the index is
    taken as the spatial coordinate); each group's mean activity is smoothed by a boxcar
    of ``smoothing`` bins, giving traces :math:`g_1(t), \dots, g_G(t)`. For each
    consecutive pair the lag-resolved Pearson correlation
    :math:`\rho_k(\ell) = \operatorname{corr}_t\big(g_k(t), g_{k+1}(t+\ell)\big)`,
    :math:`|\ell| \le` ``max_lag``, gives a peak lag :math:`\ell_k` and peak correlation
    :math:`\rho_k = \max(0, \rho_k(\ell_k))` (pairs with :math:`\rho_k \le 0` count as
    lag 0). Then

    .. math:: \text{consistency} = \Big|\frac{1}{G-1}\sum_k \operatorname{sign}\ell_k\Big|,
              \qquad
              \text{strength} = \text{consistency}\times\frac{1}{G-1}\sum_k \rho_k .

    A wave moving along the groups gives the same non-zero lag sign at every pair and
    high peak correlations (strength near 1); synchronous or standing activity peaks at
    lag 0 (consistency near 0); independent groups have low correlation and random lags.
    The consistency term is a lag-sign analogue of the phase-gradient directionality
    that Rubino, Robbins & Hatsopoulos (2006) use to detect propagating waves in
    multi-electrode recordings. A wave is only resolved if its lag per group is below
    ``max_lag`` and below half its period.

    Parameters
    ----------
    raster : array-like of shape (n_bins, n_neurons) or (batch, n_bins, n_neurons)
    n_groups : int, default=8
        Number of ordered groups (at most ``n_neurons``; at least 2 groups are needed).
    max_lag : int, default=8
        Largest lag searched, in bins.
    smoothing : int, default=3
        Boxcar width in bins applied to the group traces.

    Returns
    -------
    float, or ndarray of shape (batch,) float64

    References
    ----------
    D. Rubino, K. A. Robbins, N. G. Hatsopoulos, "Propagating waves mediate information
    transfer in the motor cortex", Nature Neuroscience 9:1549-1557 (2006).

    Examples
    --------
    >>> t, x = np.arange(200)[:, None], np.arange(32)[None, :]
    >>> wave = (t - x // 4 * 2) % 16 < 3     # 8 groups, 2 bins later per group
    >>> traveling(wave) > 0.9, traveling(wave[:, ::-1]) > 0.9
    (True, True)
    """
    validate_params(
        "traveling",
        {"n_groups": n_groups, "max_lag": max_lag, "smoothing": smoothing},
        {
            "n_groups": [Interval("int", 2, None)],
            "max_lag": [Interval("int", 1, None)],
            "smoothing": [Interval("int", 1, None)],
        },
    )
    r3, batched = as_raster(raster)
    return unbatch(_traveling(r3, n_groups, max_lag, smoothing), batched)


def _traveling(
    r3: NDArray[np.float64], n_groups: int, max_lag: int, smoothing: int
) -> NDArray[np.float64]:
    """:func:`traveling` of a checked raster of shape (batch, n_bins, n_neurons), unclipped."""
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return np.zeros(r3.shape[0])
    return _traveling_traces(boxcar(group_traces(r3, n_groups), smoothing, axis=1), max_lag)


def _traveling_traces(g: NDArray[np.float64], max_lag: int) -> NDArray[np.float64]:
    """:func:`traveling` from the smoothed group traces ``g`` of shape (batch, T', G)."""
    n_g = g.shape[2]
    if n_g < 2 or g.shape[1] < max_lag + 2:
        return np.zeros(g.shape[0])
    corr = lagged_correlations(np.ascontiguousarray(g.transpose(2, 1, 0)), max_lag)
    peak = corr.max(axis=2)
    lags = np.argmax(corr, axis=2) - max_lag
    signs = np.where(peak > 0, np.sign(lags), 0)
    consistency = np.abs(signs.mean(axis=1))
    return consistency * np.maximum(peak, 0.0).mean(axis=1)


def standing(
    raster: ArrayLike,
    *,
    n_groups: int = 8,
    smoothing: int = 3,
    n_harmonics: int = 4,
    bandwidth: int = 2,
    min_cycles: int = 2,
) -> Strength:
    r"""Fixed spatial profile with oscillating amplitude: rank-1 oscillation.

    The ordered group traces (as in :func:`traveling`), centred in time, form a matrix
    :math:`X \in \mathbb{R}^{T \times G}` with singular values
    :math:`s_1 \ge s_2 \ge \dots` and first right singular vector (spatial mode)
    :math:`v_1`. A standing wave :math:`\phi(x)\cos\omega t` is rank 1; a traveling wave
    :math:`\cos(kx - \omega t) = \cos kx\cos\omega t + \sin kx \sin\omega t` needs two
    components of (nearly) equal weight; noise spreads over all of them. So

    .. math:: \text{rank1} = 1 - s_2^2 / s_1^2, \qquad
              \text{strength} = \text{rank1} \times \text{osc}(X_{raw} v_1),

    where :math:`\text{osc}` is the harmonic spectral-peak share of
    :func:`~nqp.neuromorphic.patterns.rhythmic` applied to the temporal factor (the
    *unsmoothed* group traces projected on the first spatial mode :math:`v_1`, since
    smoothing would colour the white-noise reference of that measure; 1 for a periodic
    temporal factor, near 0 for a broadband one). Shared but aperiodic volleys are rank 1
    with a broadband factor, hence not standing. This is the proper-orthogonal-
    decomposition view of standing vs travelling waves (Feeny 2008: a pure standing wave
    has a single mode; a travelling wave a pair in quadrature).

    Parameters
    ----------
    raster : array-like of shape (n_bins, n_neurons) or (batch, n_bins, n_neurons)
    n_groups : int, default=8
        Number of ordered groups (at least 2 are needed to see a spatial profile).
    smoothing : int, default=3
        Boxcar width in bins applied to the group traces.
    n_harmonics, bandwidth, min_cycles : int
        Passed to the oscillation measure, see :func:`rhythmic`.

    Returns
    -------
    float, or ndarray of shape (batch,) float64

    References
    ----------
    B. F. Feeny, "A complex orthogonal decomposition for wave motion analysis",
    J. Sound Vib. 310:77-90 (2008).

    Examples
    --------
    >>> t, x = np.arange(200)[:, None], np.arange(32)[None, :]
    >>> profile = np.sin(np.pi * (x + 0.5) / 32)
    >>> counts = np.round(4 * profile * (1 + np.cos(2 * np.pi * t / 20)))
    >>> standing(counts) > 0.9
    True
    """
    validate_params(
        "standing",
        {
            "n_groups": n_groups,
            "smoothing": smoothing,
            "n_harmonics": n_harmonics,
            "bandwidth": bandwidth,
            "min_cycles": min_cycles,
        },
        {
            "n_groups": [Interval("int", 2, None)],
            "smoothing": [Interval("int", 1, None)],
            "n_harmonics": [Interval("int", 1, None)],
            "bandwidth": [Interval("int", 0, None)],
            "min_cycles": [Interval("int", 1, None)],
        },
    )
    r3, batched = as_raster(raster)
    return unbatch(_standing(r3, n_groups, smoothing, n_harmonics, bandwidth, min_cycles), batched)


def _standing(
    r3: NDArray[np.float64],
    n_groups: int,
    smoothing: int,
    n_harmonics: int,
    bandwidth: int,
    min_cycles: int,
) -> NDArray[np.float64]:
    """:func:`standing` of a checked raster of shape (batch, n_bins, n_neurons), unclipped."""
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return np.zeros(r3.shape[0])
    raw = group_traces(r3, n_groups)  # (batch, T, G)
    g = boxcar(raw, smoothing, axis=1)  # (batch, T', G)
    return _standing_traces(raw, g, n_harmonics, bandwidth, min_cycles)


def _standing_traces(
    raw: NDArray[np.float64],
    g: NDArray[np.float64],
    n_harmonics: int = 4,
    bandwidth: int = 2,
    min_cycles: int = 2,
) -> NDArray[np.float64]:
    """:func:`standing` from the group traces ``raw`` and their smoothed ``g``."""
    if g.shape[2] < 2 or g.shape[1] < 4:
        return np.zeros(g.shape[0])
    x = g - g.mean(axis=1, keepdims=True)
    # The squared singular values of x and its right singular vectors are the eigenpairs of
    # the (G × G) Gram matrix xᵀx: no (T × G) left factor, which an SVD would compute.
    # rank1 = 1 − (s₂/s₁)² = 1 − λ₂/λ₁ needs no square root, so nothing is lost squaring.
    lam, vecs = np.linalg.eigh(np.matmul(x.transpose(0, 2, 1), x))  # ascending
    lam1, lam2 = lam[:, -1], np.maximum(lam[:, -2], 0.0)
    scale = np.maximum(np.abs(g).max(axis=(1, 2)), 1e-300) * np.sqrt(g.shape[1])
    ok = np.sqrt(np.maximum(lam1, 0.0)) > 1e-12 * scale
    rank1 = np.where(ok, 1.0 - lam2 / np.where(ok, lam1, 1.0), 0.0)
    # Temporal factor of the *unsmoothed* traces on the first spatial mode: smoothing
    # colours the noise spectrum, and the oscillation measure assumes a white reference.
    factor = np.einsum("btg,bg->bt", raw, vecs[:, :, -1])
    osc = harmonic_share(
        factor, n_harmonics=n_harmonics, bandwidth=bandwidth, min_cycles=min_cycles
    )
    return rank1 * osc
