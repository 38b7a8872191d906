"""Compiled (numba) inner loops of the pattern detectors.

Private module: the detector functions validate their input and handle the degenerate
shapes (empty windows, too-short series) before calling in here, so the kernels assume
C-contiguous float64 arrays of consistent shapes and never check.

Summation order
---------------
Each kernel adds in the order of the numpy expression it replaces, so that the two
agree bit for bit: a numpy reduction along a contiguous last axis is pairwise
(:func:`pairwise_sum`), one along any other axis runs left to right. What numpy computes
differently from libm or a plain loop (``log``, BLAS dot products) is left to numpy.
Ties, e.g. between equal nearest-neighbour distances or equal lagged correlations, thus
break exactly as before, and the engine's predictions stay the same to the bit.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "burst_strengths",
    "chaos_divergence",
    "lagged_correlations",
    "nearest_outside",
    "pairwise_sum",
    "running_mean",
    "spike_sums",
    "synchrony",
]

_PW_BLOCKSIZE = 128  # numpy's PW_BLOCKSIZE (numpy/_core/src/umath/loops_utils.h.src)


@nb.njit(cache=True, nogil=True)
def spike_sums(
    r3: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # pragma: no cover
    """Spikes per bin (batch, n_bins) and per neuron (batch, n_neurons) of a 0/1 raster.

    For a raster of 0s and 1s (a bool raster as float64) every partial sum is a small
    integer, so any order of addition gives numpy's ``r3.sum(axis=2)`` and
    ``r3.sum(axis=1)`` exactly; one pass computes both.
    """
    batch, n_bins, n_neurons = r3.shape
    per_bin = np.empty((batch, n_bins))
    per_neuron = np.zeros((batch, n_neurons))
    for b in range(batch):
        for t in range(n_bins):
            row = r3[b, t]
            s = 0.0
            for i in range(n_neurons):
                s += row[i]
                per_neuron[b, i] += row[i]
            per_bin[b, t] = s
    return per_bin, per_neuron


@nb.njit(cache=True, nogil=True)
def _pairwise_block(a: NDArray[np.float64], lo: int, n: int) -> float:  # pragma: no cover
    """numpy's pairwise sum of ``a[lo:lo + n]`` for ``n <= 128``: eight accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        k = lo + i
        r0 += a[k]
        r1 += a[k + 1]
        r2 += a[k + 2]
        r3 += a[k + 3]
        r4 += a[k + 4]
        r5 += a[k + 5]
        r6 += a[k + 6]
        r7 += a[k + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@nb.njit(cache=True, nogil=True)
def pairwise_sum(a: NDArray[np.float64], lo: int, n: int) -> float:  # pragma: no cover
    """``a[lo:lo + n].sum()`` in numpy's order (``pairwise_sum`` in ``loops_utils.h.src``).

    Blocks of at most 128 items are summed by eight interleaved accumulators; longer
    spans split at ``n2 = n // 2 - (n // 2) % 8`` and add their halves' sums. The split
    is unrolled on an explicit stack (numba cannot cache recursive functions). A numpy
    reduction along a contiguous axis returns ``0.0 +`` this.
    """
    if n <= _PW_BLOCKSIZE:
        return _pairwise_block(a, lo, n)
    # Post-order walk of the split tree: each frame is (start, length, stage).
    starts = np.empty(64, dtype=np.int64)
    lengths = np.empty(64, dtype=np.int64)
    stages = np.zeros(64, dtype=np.int64)
    sums = np.empty(64)
    top, n_sums = 0, 0
    starts[0], lengths[0] = lo, n
    while top >= 0:
        s, m = starts[top], lengths[top]
        if m <= _PW_BLOCKSIZE:
            sums[n_sums] = _pairwise_block(a, s, m)
            n_sums += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if stages[top] == 0:  # descend left
            stages[top] = 1
            top += 1
            starts[top], lengths[top], stages[top] = s, half, 0
        elif stages[top] == 1:  # descend right
            stages[top] = 2
            top += 1
            starts[top], lengths[top], stages[top] = s + half, m - half, 0
        else:  # both halves summed
            n_sums -= 1
            sums[n_sums - 1] = sums[n_sums - 1] + sums[n_sums]
            top -= 1
    return sums[0]


@nb.njit(cache=True, nogil=True)
def _mean_var(a: NDArray[np.float64], tmp: NDArray[np.float64], n: int) -> tuple[float, float]:
    """``(a[:n].mean(), a[:n].var())`` as numpy computes them on a contiguous row."""
    mean = (0.0 + pairwise_sum(a, 0, n)) / n
    for i in range(n):
        d = a[i] - mean
        tmp[i] = d * d
    return mean, (0.0 + pairwise_sum(tmp, 0, n)) / n


# ---------------------------------------------------------------- waves


_FEW_WINDOWS = 4  # below this many windows, lagged_correlations takes one at a time


@nb.njit(cache=True, nogil=True)
def lagged_correlations(g: NDArray[np.float64], max_lag: int) -> NDArray[np.float64]:
    """Pearson correlation of group ``p`` at ``t`` with group ``p + 1`` at ``t + lag``.

    ``g`` of shape (G, T, batch): group traces with the windows on the contiguous axis,
    so that the accumulators of all windows advance together. Returns shape
    (batch, G - 1, 2 * max_lag + 1), lag ascending, each over the overlapping samples
    only; undefined correlations are 0. Two-pass (centred) sums as the numpy version
    computed them: left to right over time, or pairwise when there is a single pair
    (numpy then reduced along a contiguous axis).
    """
    n_g, t_len, batch = g.shape
    n_p = n_g - 1
    n_lags = 2 * max_lag + 1
    out = np.zeros((batch, n_p, n_lags))
    mx = np.empty(batch)
    my = np.empty(batch)
    sxx = np.empty(batch)
    syy = np.empty(batch)
    sxy = np.empty(batch)
    xs = np.empty(t_len)
    ys = np.empty(t_len)
    tmp = np.empty(t_len)
    for p in range(n_p):
        for j in range(n_lags):
            lag = j - max_lag
            n = t_len - abs(lag)
            if n < 2:
                continue
            x0 = 0 if lag >= 0 else -lag
            y0 = lag if lag >= 0 else 0
            if n_p == 1:
                for b in range(batch):
                    for t in range(n):
                        xs[t] = g[p, x0 + t, b]
                        ys[t] = g[p + 1, y0 + t, b]
                    mean_x = (0.0 + pairwise_sum(xs, 0, n)) / n
                    mean_y = (0.0 + pairwise_sum(ys, 0, n)) / n
                    for t in range(n):
                        xs[t] -= mean_x
                        ys[t] -= mean_y
                    for t in range(n):
                        tmp[t] = xs[t] * xs[t]
                    sxx[b] = 0.0 + pairwise_sum(tmp, 0, n)
                    for t in range(n):
                        tmp[t] = ys[t] * ys[t]
                    syy[b] = 0.0 + pairwise_sum(tmp, 0, n)
                    for t in range(n):
                        tmp[t] = xs[t] * ys[t]
                    sxy[b] = 0.0 + pairwise_sum(tmp, 0, n)
            elif batch < _FEW_WINDOWS:
                # few windows: one window at a time, the same sums in the same order, on
                # scalar accumulators (the batch loop below then runs one or two trips)
                for b in range(batch):
                    sx = 0.0
                    sy = 0.0
                    for t in range(n):
                        sx += g[p, x0 + t, b]
                        sy += g[p + 1, y0 + t, b]
                    mean_x = sx / n
                    mean_y = sy / n
                    cxx = 0.0
                    cyy = 0.0
                    cxy = 0.0
                    for t in range(n):
                        xc = g[p, x0 + t, b] - mean_x
                        yc = g[p + 1, y0 + t, b] - mean_y
                        cxx += xc * xc
                        cyy += yc * yc
                        cxy += xc * yc
                    sxx[b] = cxx
                    syy[b] = cyy
                    sxy[b] = cxy
            else:
                mx[:] = 0.0
                my[:] = 0.0
                for t in range(n):
                    xr = g[p, x0 + t]
                    yr = g[p + 1, y0 + t]
                    for b in range(batch):
                        mx[b] += xr[b]
                        my[b] += yr[b]
                for b in range(batch):
                    mx[b] /= n
                    my[b] /= n
                sxx[:] = 0.0
                syy[:] = 0.0
                sxy[:] = 0.0
                for t in range(n):
                    xr = g[p, x0 + t]
                    yr = g[p + 1, y0 + t]
                    for b in range(batch):
                        xc = xr[b] - mx[b]
                        yc = yr[b] - my[b]
                        sxx[b] += xc * xc
                        syy[b] += yc * yc
                        sxy[b] += xc * yc
            for b in range(batch):
                den = math.sqrt(sxx[b] * syy[b])
                if den > 1e-300:
                    out[b, p, j] = sxy[b] / den
    return out


@nb.njit(cache=True, nogil=True)
def running_mean(x: NDArray[np.float64], width: int) -> NDArray[np.float64]:  # pragma: no cover
    """'Valid' moving average over axis 1 of ``x`` (batch, T, C), ``T >= width >= 1``.

    As ``_common.boxcar``: a running sum from 0 (numpy's ``cumsum``), differenced over
    ``width`` samples and divided by ``width``. Returns shape (batch, T - width + 1, C).
    """
    batch, t_len, n_c = x.shape
    t_out = t_len - width + 1
    out = np.empty((batch, t_out, n_c))
    csum = np.empty((t_len + 1, n_c))
    for b in range(batch):
        csum[0, :] = 0.0
        for t in range(t_len):
            for k in range(n_c):
                csum[t + 1, k] = csum[t, k] + x[b, t, k]
        for t in range(t_out):
            for k in range(n_c):
                out[b, t, k] = (csum[t + width, k] - csum[t, k]) / width
    return out


# ---------------------------------------------------------------- population


@nb.njit(cache=True, nogil=True)
def synchrony(r: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    r"""Chance-corrected :math:`\chi^2` synchrony ``rho`` per window (before the root).

    ``r`` of shape (batch, T, N) with ``T - width + 1 >= 2``; each neuron is smoothed by a
    'valid' boxcar of ``width`` bins (a running sum, as ``_common.boxcar``), then
    ``population.synchronous``'s statistics follow in numpy's summation order.
    """
    batch, t_len, n_n = r.shape
    w = max(width, 1)
    t_out = t_len - w + 1
    out = np.zeros(batch)
    csum = np.empty((t_len + 1, n_n))
    v = np.empty((t_out, n_n))
    mean = np.empty(n_n)
    var = np.empty(n_n)
    active = np.empty(n_n)
    row = np.empty(n_n)
    pop = np.empty(t_out)
    tmp = np.empty(t_out)
    for b in range(batch):
        if w == 1:
            for t in range(t_out):
                for i in range(n_n):
                    v[t, i] = r[b, t, i]
        else:
            csum[0, :] = 0.0
            for t in range(t_len):
                for i in range(n_n):
                    csum[t + 1, i] = csum[t, i] + r[b, t, i]
            for t in range(t_out):
                for i in range(n_n):
                    v[t, i] = (csum[t + w, i] - csum[t, i]) / w
        vmax = -np.inf
        mean[:] = 0.0
        for t in range(t_out):
            for i in range(n_n):
                mean[i] += v[t, i]
                vmax = max(vmax, v[t, i])
        var[:] = 0.0
        for i in range(n_n):
            mean[i] /= t_out
        for t in range(t_out):
            for i in range(n_n):
                d = v[t, i] - mean[i]
                var[i] += d * d
        for i in range(n_n):
            var[i] /= t_out
        scale = max(vmax, 1e-300)
        floor = 1e-24 * (scale * scale)
        n_a = 0
        for i in range(n_n):
            if var[i] > floor:
                active[i] = 1.0
                n_a += 1
            else:
                active[i] = 0.0
        if n_a < 2:
            continue
        for t in range(t_out):
            for i in range(n_n):
                row[i] = v[t, i] * active[i]
            pop[t] = (0.0 + pairwise_sum(row, 0, n_n)) / n_a
        _, pop_var = _mean_var(pop, tmp, t_out)
        for i in range(n_n):
            row[i] = var[i] * active[i]
        mean_var = (0.0 + pairwise_sum(row, 0, n_n)) / n_a
        chi2 = pop_var / mean_var
        inv_n = 1.0 / n_a
        out[b] = (chi2 - inv_n) / (1.0 - inv_n)
    return out


# ---------------------------------------------------------------- bursts


@nb.njit(cache=True, nogil=True)
def burst_strengths(
    r: NDArray[np.float64], min_spikes: int, isi_ratio: float, f0: float
) -> NDArray[np.float64]:
    """``bursts._burst_strength`` of each raster window, its neurons as the spike trains.

    ``r`` of shape (batch, T, N): spike counts (rounded half to even, as ``np.rint``) at
    the bin times ``0 .. T - 1``; a bin of count ``c`` holds ``c`` spikes with ISI 0
    between them. Returns the unclipped excess burst fraction per window. The scans
    over time update every neuron's run by selects rather than branches: spikes are
    random, and mispredicted branches dominated the first version.
    """
    batch, t_len, n_n = r.shape
    out = np.zeros(batch)
    counts = np.empty((t_len, n_n), dtype=np.int64)
    total = np.empty(n_n, dtype=np.int64)
    first = np.empty(n_n, dtype=np.int64)
    last = np.empty(n_n, dtype=np.int64)
    threshold = np.empty(n_n)
    prev = np.empty(n_n, dtype=np.int64)
    run = np.empty(n_n, dtype=np.int64)
    for b in range(batch):
        total[:] = 0
        first[:] = t_len
        last[:] = -1
        for t in range(t_len):
            for i in range(n_n):
                c = np.int64(np.rint(r[b, t, i]))
                counts[t, i] = c
                spike = c > 0
                total[i] += c if spike else 0
                first[i] = min(first[i], t if spike else t_len)
                last[i] = t if spike else last[i]
        eligible = 0.0
        for i in range(n_n):
            if total[i] >= min_spikes:
                eligible += total[i]
                span = np.float64(last[i]) - np.float64(first[i])
                threshold[i] = isi_ratio * (span / (total[i] - 1))  # of the mean ISI
            else:
                threshold[i] = -1.0  # no ISI is short: the neuron has too few spikes
        if eligible == 0.0:
            continue
        in_bursts = 0
        prev[:] = -t_len - 1  # no previous spike: the first ISI is never short
        run[:] = 0  # spikes in the current run of short ISIs
        for t in range(t_len):
            for i in range(n_n):
                c = counts[t, i]
                spike = c > 0
                short = np.float64(t) - np.float64(prev[i]) <= threshold[i]
                ends = spike and not short  # a long ISI closes the run before it
                in_bursts += run[i] if (ends and run[i] >= min_spikes) else 0
                run[i] = run[i] + c if short else (c if spike else run[i])
                prev[i] = t if spike else prev[i]
        for i in range(n_n):
            if total[i] >= min_spikes and run[i] >= min_spikes:
                in_bursts += run[i]
        out[b] = (in_bursts / eligible - f0) / (1.0 - f0)
    return out


# ---------------------------------------------------------------- dynamics


@nb.njit(cache=True, nogil=True)
def nearest_outside(
    z: NDArray[np.float64], n_ref: int, dim: int, delay: int, theiler: int
) -> NDArray[np.int64]:  # pragma: no cover
    """Nearest neighbour ``j`` with ``|i - j| > theiler`` of each embedded point, exact scan.

    ``z`` of shape (batch, n_points): series whose delay vectors
    ``(z[i], z[i + delay], ..., z[i + (dim - 1) delay])``, ``i < n_ref``, are the points.
    Squared distances add the coordinates in order; ties go to the lowest index. Needs
    ``n_ref >= 2 * theiler + 2``. Returns shape (batch, n_ref).

    Each pair ``i < j`` is measured once (the distance is symmetric to the bit) and offered
    to both points; every point still sees its candidates in ascending index order, so a
    strict ``<`` keeps the lowest index among equal distances, as a full scan would.
    """
    batch = z.shape[0]
    out = np.empty((batch, n_ref), dtype=np.int64)
    d2 = np.empty(n_ref)
    best = np.empty(n_ref)
    arg = np.empty(n_ref, dtype=np.int64)
    for b in range(batch):
        zb = z[b]
        best[:] = np.inf
        arg[:] = -1
        for i in range(n_ref):
            lo = i + theiler + 1  # candidates j = lo .. n_ref - 1, all after i
            if lo >= n_ref:
                continue
            m = n_ref - lo
            zc = zb[lo : lo + m]
            zi = zb[i]
            for j in range(m):
                t = zi - zc[j]
                d2[j] = t * t
            for c in range(1, dim):
                zc = zb[lo + c * delay : lo + c * delay + m]
                zi = zb[i + c * delay]
                for j in range(m):
                    t = zi - zc[j]
                    d2[j] += t * t
            # Offer i to every later j (selects, so that the loop vectorises) ...
            best_j = best[lo:n_ref]
            arg_j = arg[lo:n_ref]
            for j in range(m):
                closer = d2[j] < best_j[j]
                best_j[j] = d2[j] if closer else best_j[j]
                arg_j[j] = i if closer else arg_j[j]
            # ... and the nearest later j to i: the minimum, then its first index.
            m0 = m1 = m2 = m3 = np.inf
            j = 0
            while j + 4 <= m:
                m0 = min(m0, d2[j])
                m1 = min(m1, d2[j + 1])
                m2 = min(m2, d2[j + 2])
                m3 = min(m3, d2[j + 3])
                j += 4
            while j < m:
                m0 = min(m0, d2[j])
                j += 1
            nearest = min(min(m0, m1), min(m2, m3))
            if nearest < best[i]:
                for k in range(m):
                    if d2[k] == nearest:
                        best[i] = nearest
                        arg[i] = lo + k
                        break
        out[b] = arg
    return out


@nb.njit(cache=True, nogil=True)
def chaos_divergence(
    z: NDArray[np.float64], nbr: NDArray[np.int64], dim: int, delay: int, horizon: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # pragma: no cover
    r"""Neighbour divergence distances and analogue-forecast determinism.

    ``z`` of shape (batch, n_points), standardised; ``nbr`` of shape (batch, n_ref) from
    :func:`nearest_outside` (or a k-d tree). See ``dynamics.chaos_statistics``. Returns
    ``dist`` of shape (batch, n_ref, horizon + 1), :math:`\lVert y_{i+k} - y_{j(i)+k}\rVert`,
    and the determinism of shape (batch,). The caller takes the logarithms with numpy:
    its ``log`` and libm's differ in the last bit of a few values in 10⁴.
    """
    batch, n = z.shape
    n_ref = nbr.shape[1]
    span = (dim - 1) * delay
    dist = np.empty((batch, n_ref, horizon + 1))
    det = np.zeros(batch)
    coord = np.empty(dim)
    tmp = np.empty(max(n_ref, n - 1))
    for b in range(batch):
        for i in range(n_ref):
            j = nbr[b, i]
            for k in range(horizon + 1):
                if dim < 8:
                    acc = 0.0
                    for c in range(dim):
                        t = z[b, i + k + c * delay] - z[b, j + k + c * delay]
                        acc += t * t
                else:
                    for c in range(dim):
                        t = z[b, i + k + c * delay] - z[b, j + k + c * delay]
                        coord[c] = t * t
                    acc = 0.0 + pairwise_sum(coord, 0, dim)
                dist[b, i, k] = math.sqrt(acc)
        # One-step analogue forecast of the sample after each embedding vector.
        for i in range(n_ref):
            e = z[b, i + span + 1] - z[b, nbr[b, i] + span + 1]
            tmp[i] = e * e
        mse_nn = (0.0 + pairwise_sum(tmp, 0, n_ref)) / n_ref
        for i in range(n - 1):
            e = z[b, i + 1] - z[b, i]
            tmp[i] = e * e
        mse_ref = min(1.0, (0.0 + pairwise_sum(tmp, 0, n - 1)) / (n - 1))
        if mse_ref > 0:
            det[b] = min(max(1.0 - mse_nn / mse_ref, 0.0), 1.0)
    return dist, det
