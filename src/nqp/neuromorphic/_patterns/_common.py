"""Input checks and signal helpers shared by the pattern detectors."""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import check_finite_array
from nqp.exceptions import InvalidInputError
from nqp.neuromorphic._patterns._kernels import running_mean

__all__ = [
    "as_raster",
    "boxcar",
    "group_traces",
    "harmonic_share",
    "unbatch",
]

Strength = float | NDArray[np.float64]


def as_raster(raster: ArrayLike, *, name: str = "raster") -> tuple[NDArray[np.float64], bool]:
    """Check a spike raster and return it as float64 of shape (batch, n_bins, n_neurons).

    Parameters
    ----------
    raster : array-like of shape (n_bins, n_neurons) or (batch, n_bins, n_neurons)
        Spikes per bin: bool, or non-negative finite spike counts.

    Returns
    -------
    raster3 : ndarray of shape (batch, n_bins, n_neurons), float64
    batched : bool
        Whether the input had a batch axis (False: callers return a plain float).

    Raises
    ------
    InvalidInputError
        Wrong rank, non-finite or negative entries.
    """
    spikes = isinstance(raster, np.ndarray) and raster.dtype == np.bool_
    # A bool raster is finite and non-negative by construction: only convert it.
    arr = np.asarray(raster, np.float64) if spikes else check_finite_array(raster, name=name)
    if arr.ndim not in (2, 3):
        raise InvalidInputError(
            f"{name} must have shape (n_bins, n_neurons) or (batch, n_bins, n_neurons), "
            f"got shape {arr.shape}."
        )
    if not spikes and arr.size and arr.min() < 0:
        raise InvalidInputError(f"{name} holds spike counts and must be >= 0; got {arr.min()}.")
    batched = arr.ndim == 3
    return (arr if batched else arr[None]), batched


def unbatch(values: NDArray[np.float64], batched: bool) -> Strength:
    """Clip strengths to [0, 1]; a plain float when the input had no batch axis."""
    values = np.asarray(values, dtype=np.float64)
    out = np.clip(np.where(np.isnan(values), 0.0, values), 0.0, 1.0)  # ±inf clip to 0/1
    return out if batched else float(out[0])


def boxcar(x: NDArray[np.float64], width: int, axis: int = 1) -> NDArray[np.float64]:
    """Moving average over ``width`` samples along ``axis``, 'valid' mode.

    The output is shorter by ``width - 1`` samples (no edge padding, so no edge
    artefacts); ``width = 1`` returns ``x`` unchanged. If ``x`` is shorter than
    ``width`` the result has length 0 along ``axis``.
    """
    if width <= 1:
        return x
    n = x.shape[axis]
    if n < width:
        shape = list(x.shape)
        shape[axis] = 0
        return np.zeros(shape)
    if x.ndim == 3 and axis == 1:  # the detectors' layout: compiled, same sums
        return running_mean(np.ascontiguousarray(x, dtype=np.float64), width)
    c = np.cumsum(x, axis=axis)
    pad_shape = list(x.shape)
    pad_shape[axis] = 1
    c = np.concatenate([np.zeros(pad_shape), c], axis=axis)
    hi = np.take(c, np.arange(width, n + 1), axis=axis)
    lo = np.take(c, np.arange(0, n + 1 - width), axis=axis)
    return (hi - lo) / width


def group_traces(raster3: NDArray[np.float64], n_groups: int) -> NDArray[np.float64]:
    """Mean activity of contiguous, ordered neuron groups.

    Neurons ``0 .. n_neurons - 1`` are split in order into ``min(n_groups, n_neurons)``
    contiguous groups of near-equal size (``numpy.array_split``).

    Returns
    -------
    ndarray of shape (batch, n_bins, n_groups_used), float64
    """
    return raster3 @ _membership(raster3.shape[2], n_groups)


@functools.cache
def _membership(n_neurons: int, n_groups: int) -> NDArray[np.float64]:
    """(n_neurons, groups used) weights of :func:`group_traces`; read-only, made once."""
    g = max(1, min(n_groups, n_neurons))
    membership = np.zeros((n_neurons, g))
    for k, idx in enumerate(np.array_split(np.arange(n_neurons), g)):
        membership[idx, k] = 1.0 / len(idx)
    membership.flags.writeable = False
    return membership


def harmonic_share(
    x: NDArray[np.float64], *, n_harmonics: int, bandwidth: int, min_cycles: int
) -> NDArray[np.float64]:
    r"""Excess share of spectral power on the harmonic comb of the best fundamental.

    For each row of ``x`` (a time series of length ``n``): remove the least-squares
    line, apply a Hann window and take the periodogram :math:`P_k = |\mathrm{rfft}|^2`
    for :math:`k = 1 .. K`, :math:`K = \lfloor n/2 \rfloor` (DC excluded). For a
    candidate fundamental :math:`k_0 \ge` ``min_cycles`` the comb is
    :math:`B(k_0) = \{k : |k - h k_0| \le b',\ h = 1..H\}` with :math:`H` =
    ``n_harmonics`` and :math:`b' = \min(\text{bandwidth}, \lfloor (k_0 - 1)/2
    \rfloor)` (teeth never overlap). With the comb's power share
    :math:`s = \sum_{B} P_k / \sum_k P_k` and :math:`e = |B| / K`, the share a flat
    (white-noise) spectrum would put on it,

    .. math:: \text{strength} = \max_{k_0} \operatorname{clip}\big((s - e)/(1 - e), 0, 1\big)

    (the harmonic-sum idea of pitch detection, Noll 1969, scored against white noise).
    A sinusoid, or any periodic waveform such as a pulse train whose harmonics fall on
    the comb, scores near 1. White noise scores near 0 in long windows, but the maximum
    over candidates lifts it with fewer samples: measured on Poisson rasters (200 seeds),
    mean / 99th percentile 0.03 / 0.06 at n = 1000, 0.05 / 0.11 at n = 500, 0.13 / 0.3
    at n = 200, 0.2 / 0.45 at n = 100 and up to 0.5 / 0.95 at n = 32: use windows of
    about 200 samples or more for a 0.5 threshold. Rows with no variance (their detrended
    power at most ``1e-20 · n · max(1, max|x|)²``, rounding noise) score 0.

    Parameters
    ----------
    x : ndarray of shape (batch, n), float64

    Returns
    -------
    ndarray of shape (batch,), float64

    References
    ----------
    A. M. Noll, "Pitch determination of human speech by the harmonic product spectrum,
    the harmonic sum spectrum, and a maximum likelihood estimate", Symposium on Computer
    Processing in Communications, vol. 19, pp. 779-797 (1969).
    """
    batch, n = x.shape
    n_freq = n // 2
    if n_freq < max(min_cycles, 1) or n < 4:
        return np.zeros(batch)
    tc, window, lo, hi, valid, expected = _comb(n, n_harmonics, bandwidth, min_cycles)
    xc = x - x.mean(axis=1, keepdims=True)
    slope = (xc @ tc) / (tc @ tc)
    xd = xc - slope[:, None] * tc[None, :]
    power = np.abs(np.fft.rfft(xd * window, axis=1)) ** 2
    power = power[:, 1 : n_freq + 1]  # k = 1 .. n_freq
    total = power.sum(axis=1)
    # Relative tolerance, row by row (a row's score must not depend on the rows beside it):
    # a constant or linear series leaves only rounding noise.
    ok = total > 1e-20 * np.maximum(1.0, np.abs(x).max(axis=1, initial=0.0)) ** 2 * n
    cs = np.concatenate([np.zeros((batch, 1)), np.cumsum(power, axis=1)], axis=1)
    comb = ((cs[:, hi] - cs[:, lo - 1]) * valid).sum(axis=2)  # (batch, K0)
    share = comb / np.where(ok, total, 1.0)[:, None]
    score = (share - expected) / np.maximum(1.0 - expected, 1e-12)
    out = np.where(ok, score.max(axis=1), 0.0)
    return np.clip(out, 0.0, 1.0)


@functools.cache
def _comb(
    n: int, n_harmonics: int, bandwidth: int, min_cycles: int
) -> tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.bool_],
    NDArray[np.float64],
]:
    """What :func:`harmonic_share` needs of the series length alone, made once per shape.

    Returns ``(tc, window, lo, hi, valid, expected)``: the centred time axis (n,), the Hann
    window (n,), the combs' first and last bins and validity, each (K0, H) for the K0
    candidate fundamentals, and their white-noise shares (K0,). All read-only.
    """
    n_freq = n // 2
    t = np.arange(n, dtype=np.float64)
    tc = t - t.mean()
    k0 = np.arange(min_cycles, n_freq + 1)  # candidate fundamentals
    half = np.minimum(bandwidth, (k0 - 1) // 2)[:, None]  # (K0, 1)
    centre = k0[:, None] * np.arange(1, n_harmonics + 1)[None, :]  # (K0, H)
    lo = np.clip(centre - half, 1, n_freq)
    hi = np.clip(centre + half, 1, n_freq)
    valid = centre - half <= n_freq
    expected = ((hi - lo + 1) * valid).sum(axis=1) / n_freq  # (K0,)
    parts = (tc, np.hanning(n), lo, hi, valid, expected)
    for part in parts:
        part.flags.writeable = False
    return parts
