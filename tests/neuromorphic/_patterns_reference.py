"""Frozen numpy reference of the pattern detectors, before their numba kernels.

A verbatim copy (docstrings and validation left out) of the implementations in
``nqp.neuromorphic._patterns`` as of commit 281f6f3, the last one computed with numpy
reductions and a Python loop over sources. ``tests/neuromorphic/test_patterns_kernels.py``
checks the kernels against it and ``bench/patterns.py`` times it side by side. Inputs must
already be validated: rasters float64 of shape (batch, n_bins, n_neurons) with
non-negative finite entries, series float64 of shape (batch, n_points).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.spatial import cKDTree

_FLOOR = 1e-9
_BRUTE_FORCE_MAX = 2048


def unbatch(values):
    return np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)


def boxcar(x, width, axis=1):
    if width <= 1:
        return x
    n = x.shape[axis]
    if n < width:
        shape = list(x.shape)
        shape[axis] = 0
        return np.zeros(shape)
    c = np.cumsum(x, axis=axis)
    pad_shape = list(x.shape)
    pad_shape[axis] = 1
    c = np.concatenate([np.zeros(pad_shape), c], axis=axis)
    hi = np.take(c, np.arange(width, n + 1), axis=axis)
    lo = np.take(c, np.arange(0, n + 1 - width), axis=axis)
    return (hi - lo) / width


def group_traces(raster3, n_groups):
    n_neurons = raster3.shape[2]
    g = max(1, min(n_groups, n_neurons))
    membership = np.zeros((n_neurons, g))
    for k, idx in enumerate(np.array_split(np.arange(n_neurons), g)):
        membership[idx, k] = 1.0 / len(idx)
    return raster3 @ membership


def harmonic_share(x, *, n_harmonics, bandwidth, min_cycles):
    batch, n = x.shape
    n_freq = n // 2
    if n_freq < max(min_cycles, 1) or n < 4:
        return np.zeros(batch)
    t = np.arange(n, dtype=np.float64)
    tc = t - t.mean()
    xc = x - x.mean(axis=1, keepdims=True)
    slope = (xc @ tc) / (tc @ tc)
    xd = xc - slope[:, None] * tc[None, :]
    power = np.abs(np.fft.rfft(xd * np.hanning(n), axis=1)) ** 2
    power = power[:, 1 : n_freq + 1]
    total = power.sum(axis=1)
    ok = total > 1e-20 * max(1.0, float(np.max(np.abs(x), initial=0.0))) ** 2 * n
    cs = np.concatenate([np.zeros((batch, 1)), np.cumsum(power, axis=1)], axis=1)
    k0 = np.arange(min_cycles, n_freq + 1)
    half = np.minimum(bandwidth, (k0 - 1) // 2)[:, None]
    centre = k0[:, None] * np.arange(1, n_harmonics + 1)[None, :]
    lo = np.clip(centre - half, 1, n_freq)
    hi = np.clip(centre + half, 1, n_freq)
    valid = centre - half <= n_freq
    comb = ((cs[:, hi] - cs[:, lo - 1]) * valid).sum(axis=2)
    expected = ((hi - lo + 1) * valid).sum(axis=1) / n_freq
    share = comb / np.where(ok, total, 1.0)[:, None]
    score = (share - expected) / np.maximum(1.0 - expected, 1e-12)
    out = np.where(ok, score.max(axis=1), 0.0)
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------- population


def synchronous(r3, smoothing=3):
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return unbatch(np.zeros(r3.shape[0]))
    v = boxcar(r3, smoothing, axis=1)
    if v.shape[1] < 2:
        return unbatch(np.zeros(r3.shape[0]))
    var_i = v.var(axis=1)
    scale = np.maximum(v.max(axis=(1, 2)), 1e-300)[:, None] ** 2
    active = var_i > 1e-24 * scale
    n_a = active.sum(axis=1)
    pop = (v * active[:, None, :]).sum(axis=2) / np.maximum(n_a, 1)[:, None]
    mean_var = (var_i * active).sum(axis=1) / np.maximum(n_a, 1)
    ok = n_a >= 2
    chi2 = np.where(ok, pop.var(axis=1) / np.where(ok, mean_var, 1.0), 0.0)
    inv_n = 1.0 / np.maximum(n_a, 2)
    rho = np.where(ok, (chi2 - inv_n) / (1.0 - inv_n), 0.0)
    return unbatch(np.sqrt(np.clip(rho, 0.0, 1.0)))


def rhythmic(r3, n_harmonics=4, bandwidth=2, min_cycles=2):
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return unbatch(np.zeros(r3.shape[0]))
    rate = r3.mean(axis=2)
    out = harmonic_share(rate, n_harmonics=n_harmonics, bandwidth=bandwidth, min_cycles=min_cycles)
    return unbatch(out)


def sparse(r3):
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return unbatch(np.zeros(r3.shape[0]))
    n = r3.shape[2]
    counts = r3.sum(axis=1)
    l1 = counts.sum(axis=1)
    l2 = np.sqrt((counts**2).sum(axis=1))
    if n < 2:
        return unbatch(np.zeros(r3.shape[0]))
    ok = l2 > 0
    root = np.sqrt(n)
    out = np.where(ok, (root - l1 / np.where(ok, l2, 1.0)) / (root - 1.0), 0.0)
    return unbatch(out)


# ---------------------------------------------------------------- waves


def lagged_correlations(a, b, max_lag):
    t = a.shape[-1]
    out = np.zeros((2 * max_lag + 1, *a.shape[:-1]))
    for j, lag in enumerate(range(-max_lag, max_lag + 1)):
        if lag >= 0:
            x, y = a[..., : t - lag], b[..., lag:]
        else:
            x, y = a[..., -lag:], b[..., : t + lag]
        if x.shape[-1] < 2:
            continue
        xc = x - x.mean(axis=-1, keepdims=True)
        yc = y - y.mean(axis=-1, keepdims=True)
        den = np.sqrt((xc**2).sum(axis=-1) * (yc**2).sum(axis=-1))
        ok = den > 1e-300
        out[j] = np.where(ok, (xc * yc).sum(axis=-1) / np.where(ok, den, 1.0), 0.0)
    return out


def traveling(r3, n_groups=8, max_lag=8, smoothing=3):
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return unbatch(np.zeros(r3.shape[0]))
    g = boxcar(group_traces(r3, n_groups), smoothing, axis=1)
    n_g = g.shape[2]
    if n_g < 2 or g.shape[1] < max_lag + 2:
        return unbatch(np.zeros(r3.shape[0]))
    a = np.moveaxis(g[:, :, :-1], 1, -1)
    b = np.moveaxis(g[:, :, 1:], 1, -1)
    corr = lagged_correlations(a, b, max_lag)
    peak = corr.max(axis=0)
    lags = np.argmax(corr, axis=0) - max_lag
    signs = np.where(peak > 0, np.sign(lags), 0)
    consistency = np.abs(signs.mean(axis=1))
    out = consistency * np.maximum(peak, 0.0).mean(axis=1)
    return unbatch(out)


def standing(r3, n_groups=8, smoothing=3, n_harmonics=4, bandwidth=2, min_cycles=2):
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return unbatch(np.zeros(r3.shape[0]))
    raw = group_traces(r3, n_groups)
    g = boxcar(raw, smoothing, axis=1)
    if g.shape[2] < 2 or g.shape[1] < 4:
        return unbatch(np.zeros(r3.shape[0]))
    x = g - g.mean(axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    s1 = s[:, 0]
    ok = s1 > 1e-12 * np.maximum(np.abs(g).max(axis=(1, 2)), 1e-300) * np.sqrt(g.shape[1])
    rank1 = np.where(ok, 1.0 - (s[:, 1] / np.where(ok, s1, 1.0)) ** 2, 0.0)
    factor = np.einsum("btg,bg->bt", raw, vt[:, 0, :])
    osc = harmonic_share(
        factor, n_harmonics=n_harmonics, bandwidth=bandwidth, min_cycles=min_cycles
    )
    return unbatch(rank1 * osc)


# ---------------------------------------------------------------- dynamics


@numba.njit(cache=False)
def nearest_outside(ref, theiler):  # pragma: no cover
    n, d = ref.shape
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        best = np.inf
        arg = -1
        for j in range(n):
            if abs(i - j) <= theiler:
                continue
            acc = 0.0
            for c in range(d):
                t = ref[i, c] - ref[j, c]
                acc += t * t
            if acc < best:
                best = acc
                arg = j
        out[i] = arg
    return out


def chaos_statistics(x, dim=3, delay=1, theiler=10, horizon=6):
    if x.size < 3:
        return 0.0, 0.0
    sd = x.std()
    if not sd > 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0))):
        return 0.0, 0.0
    x = (x - x.mean()) / sd
    span = (dim - 1) * delay
    n_embed = x.size - span
    n_ref = n_embed - horizon
    if n_ref < 2 * theiler + 3:
        return 0.0, 0.0
    emb = np.lib.stride_tricks.sliding_window_view(x, span + 1)[:, ::delay]
    ref = np.ascontiguousarray(emb[:n_ref])
    i = np.arange(n_ref)
    if n_ref <= _BRUTE_FORCE_MAX:
        j = nearest_outside(ref, theiler)
    else:
        k = min(2 * theiler + 2, n_ref)
        _, idx = cKDTree(ref).query(ref, k=k)
        idx = np.asarray(idx).reshape(n_ref, k)
        outside = np.abs(idx - i[:, None]) > theiler
        j = idx[i, np.argmax(outside, axis=1)]
    steps = np.arange(horizon + 1)
    diff = emb[i[:, None] + steps] - emb[j[:, None] + steps]
    dist = np.sqrt((diff**2).sum(axis=2))
    log_div = np.log(np.maximum(dist, _FLOOR)).mean(axis=0)
    kk = steps[1:] - steps[1:].mean()
    lyap = float(kk @ (log_div[1:] - log_div[1:].mean()) / (kk @ kk))
    target = x[i + span + 1]
    forecast = x[j + span + 1]
    mse_nn = float(np.mean((target - forecast) ** 2))
    mse_ref = min(1.0, float(np.mean(np.diff(x) ** 2)))
    det = 0.0 if mse_ref <= 0 else float(np.clip(1.0 - mse_nn / mse_ref, 0.0, 1.0))
    return lyap, det


def chaotic(rows, dim=3, delay=1, theiler=10, horizon=6, lyapunov_scale=0.1):
    out = np.zeros(rows.shape[0])
    for b, row in enumerate(rows):
        lyap, det = chaos_statistics(row, dim, delay, theiler, horizon)
        lp = max(lyap, 0.0)
        out[b] = det * lp / (lp + lyapunov_scale)
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------- bursts


def poisson_burst_fraction(min_spikes, isi_ratio):
    q = -math.expm1(-isi_ratio)
    return q ** (min_spikes - 1) * (min_spikes - (min_spikes - 1) * q)


def burst_strength(times, ids, groups, n_groups, min_spikes, isi_ratio):
    out = np.zeros(n_groups)
    if times.size == 0:
        return out
    order = np.lexsort((times, ids))
    t, tr, grp = times[order], ids[order], groups[order]
    starts = np.flatnonzero(np.r_[True, tr[1:] != tr[:-1]])
    ends = np.r_[starts[1:], t.size]
    counts = ends - starts
    long_enough = counts >= min_spikes
    span = t[ends - 1] - t[starts]
    mean_isi = np.where(counts > 1, span / np.maximum(counts - 1, 1), 0.0)
    train_of = np.repeat(np.arange(starts.size), counts)
    same = tr[1:] == tr[:-1]
    isi = np.diff(t)
    short = same & (isi <= isi_ratio * mean_isi[train_of[1:]]) & long_enough[train_of[1:]]
    padded = np.r_[False, short, False].astype(np.int8)
    edges = np.diff(padded)
    run_start = np.flatnonzero(edges == 1)
    run_end = np.flatnonzero(edges == -1)
    run_spikes = run_end - run_start + 1
    in_burst = run_spikes >= min_spikes
    burst_spikes = np.zeros(n_groups)
    np.add.at(burst_spikes, grp[run_start[in_burst]], run_spikes[in_burst])
    eligible = np.zeros(n_groups)
    np.add.at(eligible, grp[starts[long_enough]], counts[long_enough])
    f0 = poisson_burst_fraction(min_spikes, isi_ratio)
    ok = eligible > 0
    frac = np.where(ok, burst_spikes / np.where(ok, eligible, 1.0), 0.0)
    out = np.where(ok, (frac - f0) / (1.0 - f0), 0.0)
    return np.clip(out, 0.0, 1.0)


def burst(r3, min_spikes=3, isi_ratio=0.25):
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return unbatch(np.zeros(r3.shape[0]))
    batch, _, n_neurons = r3.shape
    counts = np.rint(r3).astype(np.int64)
    b, t, n = np.nonzero(counts)
    reps = counts[b, t, n]
    times = np.repeat(t.astype(np.float64), reps)
    ids = np.repeat(b.astype(np.int64) * n_neurons + n, reps)
    groups = np.repeat(b.astype(np.int64), reps)
    return unbatch(burst_strength(times, ids, groups, batch, min_spikes, isi_ratio))


# ---------------------------------------------------------------- detector


def detect(
    raster,
    series=None,
    *,
    kinds=("synchronous", "traveling", "standing", "chaotic", "rhythmic", "sparse", "burst"),
    window=None,
    n_groups=8,
    smoothing=3,
    max_lag=8,
    min_spikes=3,
    isi_ratio=0.25,
    lyapunov_scale=0.1,
):
    """Strengths of ``PatternDetector.detect`` (every kind but ``emergent``), as a dict."""
    r3 = np.asarray(raster, dtype=np.float64)
    if window is not None:
        r3 = r3[:, -window:]
    if series is None:
        x = r3.sum(axis=2) / max(r3.shape[2], 1)
    else:
        x = np.asarray(series, dtype=np.float64)
        if window is not None:
            x = x[:, -window:]
    computers = {
        "synchronous": lambda: synchronous(r3, smoothing),
        "traveling": lambda: traveling(r3, n_groups, max_lag, smoothing),
        "standing": lambda: standing(r3, n_groups, smoothing),
        "chaotic": lambda: chaotic(x, lyapunov_scale=lyapunov_scale),
        "rhythmic": lambda: rhythmic(r3),
        "sparse": lambda: sparse(r3),
        "burst": lambda: burst(r3, min_spikes, isi_ratio),
    }
    return {k: np.asarray(computers[k](), dtype=np.float64) for k in kinds}
