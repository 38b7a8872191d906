"""Compiled (numba) inner loops of the reservoirs in :mod:`nqp.neuromorphic.reservoir`.

Private module: the public classes validate every argument before calling in here, so
the kernels assume contiguous float32 arrays of consistent shapes and never check.

Layouts
-------
* Sparse matrices arrive as their three CSR (or CSC) arrays ``indptr`` (int32),
  ``indices`` (int32), ``data`` (float32).
* The echo-state batch kernel keeps the state as ``X`` of shape ``(n_neurons, n_sources)``
  so that ``W @ X`` streams contiguous rows of ``X`` (one SIMD axpy over the sources per
  non-zero of ``W``).
* The LIF kernel is event driven: a spike of neuron ``j`` adds column ``j`` of ``W``
  (CSC) to the input current of the next bin, so the cost per bin is
  ``n_spikes * nnz_per_column + n_neurons`` instead of ``nnz(W)``.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = ["esn_run_batch", "esn_run_single", "lif_run", "lif_sources", "tanh32"]


class _JitOptions(TypedDict):
    """The keyword options of ``nb.njit`` that every kernel here is compiled with."""

    nogil: bool
    cache: bool
    fastmath: set[str]
    error_model: Literal["python", "numpy"]


# Fast-math without "reassoc": fused multiply-adds are allowed but LLVM may not reorder
# sums. Letting it vectorise the CSR row reduction produced emulated gathers with heavy
# register spilling (3x slower than scalar code); four explicit accumulators are faster.
_JIT: _JitOptions = {
    "nogil": True,
    "cache": True,
    "fastmath": {"nnan", "ninf", "nsz", "arcp", "contract", "afn"},
    "error_model": "numpy",
}

# Eigen's float tanh (Eigen/src/Core/MathFunctionsImpl.h, ``generic_fast_tanh_float``):
# a 13/6 odd/even rational approximation on [-c, c] with c = 7.9053111; at |x| >= c
# tanh(x) rounds to +-1 in float32. It vectorises (no libm call), unlike math.tanh.
_TANH_CLAMP = np.float32(7.90531110763549805)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)


@nb.njit(inline="always", **_JIT)
def _tanh32(x: np.float32) -> np.float32:
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    p = p * x
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return p / q


@nb.njit(**_JIT)
def tanh32(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Elementwise float32 tanh by the rational approximation the ESN kernels use."""
    out = np.empty_like(x)
    flat_in = x.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = _tanh32(flat_in[i])
    return out


@nb.njit(**_JIT)
def esn_run_single(
    indptr: NDArray[np.int32],
    indices: NDArray[np.int32],
    data: NDArray[np.float32],
    win: NDArray[np.float32],
    bias: NDArray[np.float32],
    leak: np.float32,
    x: NDArray[np.float32],
    u: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:
    """One source: ``x <- (1-a) x + a tanh(W x + W_in u_b + bias)`` for every bin.

    ``x`` (n,) is updated in place; ``u`` has shape (n_steps, substeps, n_inputs);
    ``out`` (n_steps, n) receives ``x`` after each step's last bin.
    """
    n = x.shape[0]
    n_steps, n_bins, n_in = u.shape
    keep = np.float32(1.0) - leak
    new = np.empty(n, dtype=np.float32)
    zero = np.float32(0.0)
    for t in range(n_steps):
        for b in range(n_bins):
            for i in range(n):
                a0 = zero
                a1 = zero
                a2 = zero
                a3 = zero
                k = indptr[i]
                end = indptr[i + 1]
                # Indices cast to unsigned: numba then skips its negative-index wraparound.
                while k + 4 <= end:
                    a0 += data[k] * x[np.uint32(indices[k])]
                    a1 += data[k + 1] * x[np.uint32(indices[k + 1])]
                    a2 += data[k + 2] * x[np.uint32(indices[k + 2])]
                    a3 += data[k + 3] * x[np.uint32(indices[k + 3])]
                    k += 4
                while k < end:
                    a0 += data[k] * x[np.uint32(indices[k])]
                    k += 1
                acc = bias[i] + ((a0 + a1) + (a2 + a3))
                for c in range(n_in):
                    acc += win[i, c] * u[t, b, c]
                new[i] = acc
            for i in range(n):
                x[i] = keep * x[i] + leak * _tanh32(new[i])
        out[t, :] = x


_SOURCE_BLOCK = 32  # sources per block: two (n, 32) float32 buffers stay in L2 for n ~ 1000


@nb.njit(**_JIT)
def esn_run_batch(
    indptr: NDArray[np.int32],
    indices: NDArray[np.int32],
    data: NDArray[np.float32],
    win: NDArray[np.float32],
    bias: NDArray[np.float32],
    leak: np.float32,
    x: NDArray[np.float32],
    u: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:
    """Many sources at once: ``x`` of shape (n_sources, n), updated in place.

    ``u`` has shape (n_steps, n_sources, substeps, n_inputs); ``out`` of shape
    (n_steps, n_sources, n) receives the state after each step's last bin.

    Sources are processed in blocks of 32, each transposed into an (n, 32) buffer so that
    every non-zero ``W[i, j]`` is one SIMD axpy over the block's sources on a contiguous
    row ``X[j, :]``; the block stays in cache for all its steps.
    """
    n_src, n = x.shape
    n_steps, _, n_bins, n_in = u.shape
    keep = np.float32(1.0) - leak
    blk = _SOURCE_BLOCK
    cur = np.empty((n, blk), dtype=np.float32)
    nxt = np.empty((n, blk), dtype=np.float32)
    acc = np.empty(blk, dtype=np.float32)
    for s0 in range(0, n_src, blk):
        m = min(blk, n_src - s0)
        for s in range(m):
            for i in range(n):
                cur[i, s] = x[s0 + s, i]
        for t in range(n_steps):
            for b in range(n_bins):
                for i in range(n):
                    bi = bias[i]
                    for s in range(m):
                        acc[s] = bi
                    for c in range(n_in):
                        w = win[i, c]
                        if w != 0.0:
                            for s in range(m):
                                acc[s] += w * u[t, s0 + s, b, c]
                    for k in range(indptr[i], indptr[i + 1]):
                        w = data[k]
                        row = cur[np.uint32(indices[k])]
                        for s in range(m):
                            acc[s] += w * row[s]
                    ci = cur[i]
                    ni = nxt[i]
                    for s in range(m):
                        ni[s] = keep * ci[s] + leak * _tanh32(acc[s])
                cur, nxt = nxt, cur
            for s in range(m):
                for i in range(n):
                    out[t, s0 + s, i] = cur[i, s]
        for s in range(m):
            for i in range(n):
                x[s0 + s, i] = cur[i, s]


@nb.njit(**_JIT)
def _lif_update(
    v: NDArray[np.float32],
    ref: NDArray[np.int32],
    trace: NDArray[np.float32],
    current: NDArray[np.float32],
    fired: NDArray[np.uint8],
    decay: np.float32,
    threshold: np.float32,
    reset: np.float32,
    refractory: np.int32,
    trace_decay: np.float32,
) -> None:
    """One bin of one source's neurons; zeroes ``current`` for the next bin.

    Branch-free (selects only) so that LLVM vectorises it; a separate function because
    inlined into the event loop it was not vectorised (8x slower).
    """
    zero = np.float32(0.0)
    gain = np.float32(1.0) - trace_decay
    for i in range(v.shape[0]):
        r = ref[i]
        active = r <= 0
        vi = decay * v[i] + current[i]
        vi = vi if active else v[i]
        spk = active and vi >= threshold
        v[i] = reset if spk else vi
        ref[i] = refractory if spk else max(r - 1, 0)
        trace[i] = trace_decay * trace[i] + (gain if spk else zero)
        fired[i] = 1 if spk else 0
        current[i] = zero


@nb.njit(**_JIT)
def _compact(fired: NDArray[np.uint8], out: NDArray[np.int32]) -> int:
    """Write the indices of non-zero ``fired`` into ``out``; return their count."""
    m = 0
    for i in range(fired.shape[0]):
        out[m] = i
        m += fired[i]
    return m


@nb.njit(**_JIT)
def _add_column(
    indptr: NDArray[np.int32],
    indices: NDArray[np.int32],
    data: NDArray[np.float32],
    j: int,
    gain: np.float32,
    current: NDArray[np.float32],
) -> None:
    """``current += gain * column j`` of a CSC matrix (indices of a column are distinct)."""
    for k in range(indptr[j], indptr[j + 1]):
        current[np.uint32(indices[k])] += gain * data[k]


@nb.njit(**_JIT)
def lif_sources(
    s0: int,
    s1: int,
    w_indptr: NDArray[np.int32],
    w_indices: NDArray[np.int32],
    w_data: NDArray[np.float32],
    in_indptr: NDArray[np.int32],
    in_indices: NDArray[np.int32],
    in_data: NDArray[np.float32],
    decay: np.float32,
    threshold: np.float32,
    reset: np.float32,
    refractory: np.int32,
    trace_decay: np.float32,
    v: NDArray[np.float32],
    ref: NDArray[np.int32],
    trace: NDArray[np.float32],
    spikes: NDArray[np.bool_],
    u: NDArray[np.float32],
    out: NDArray[np.float32],
    record: NDArray[np.bool_],
) -> None:
    """Sources ``s0 <= s < s1`` of :func:`lif_run`, one after the other (one thread)."""
    n = v.shape[1]
    n_steps, _, n_bins, n_in = u.shape
    recording = record.size > 0
    one = np.float32(1.0)
    current = np.zeros(n, dtype=np.float32)
    fired = np.zeros(n, dtype=np.uint8)
    active = np.zeros(n, dtype=np.int32)
    for s in range(s0, s1):
        vs = v[s]
        rs = ref[s]
        ts = trace[s]
        ss = spikes[s]
        for i in range(n):
            fired[i] = 1 if ss[i] else 0
        m = _compact(fired, active)
        for t in range(n_steps):
            for b in range(n_bins):
                for c in range(n_in):
                    uc = u[t, s, b, c]
                    if uc != 0.0:
                        _add_column(in_indptr, in_indices, in_data, c, uc, current)
                for q in range(m):
                    _add_column(w_indptr, w_indices, w_data, active[q], one, current)
                _lif_update(
                    vs, rs, ts, current, fired, decay, threshold, reset, refractory, trace_decay
                )
                m = _compact(fired, active)
                if recording:
                    for q in range(m):
                        record[t, s, b, active[q]] = True
            out[t, s, :] = ts
        for i in range(n):
            ss[i] = fired[i] != 0


@nb.njit(parallel=True, **_JIT)
def lif_run(
    w_indptr: NDArray[np.int32],
    w_indices: NDArray[np.int32],
    w_data: NDArray[np.float32],
    in_indptr: NDArray[np.int32],
    in_indices: NDArray[np.int32],
    in_data: NDArray[np.float32],
    decay: np.float32,
    threshold: np.float32,
    reset: np.float32,
    refractory: np.int32,
    trace_decay: np.float32,
    v: NDArray[np.float32],
    ref: NDArray[np.int32],
    trace: NDArray[np.float32],
    spikes: NDArray[np.bool_],
    u: NDArray[np.float32],
    out: NDArray[np.float32],
    record: NDArray[np.bool_],
    n_blocks: int,
) -> None:
    """Leaky integrate-and-fire neurons of many sources, bin by bin, event driven.

    ``w_*`` is ``W`` in CSC (column ``j`` = targets of neuron ``j``), ``in_*`` is
    ``W_in`` in CSC. State arrays ``v``, ``ref``, ``trace``, ``spikes`` have shape
    (n_sources, n) and are updated in place; ``u`` has shape
    (n_steps, n_sources, substeps, n_inputs); ``out`` (n_steps, n_sources, n) receives
    the trace after each step's last bin. ``record`` is either of shape
    (n_steps, n_sources, substeps, n), receiving every bin's spikes, or empty (size 0:
    nothing recorded). The sources are split into ``n_blocks`` contiguous blocks run in
    parallel (``numba.get_num_threads()`` threads).

    Per bin and neuron (``I`` = input current of the bin, ``s`` = spikes of the
    previous bin)::

        I = W_in u_b + W s
        if ref > 0: ref -= 1                       (held at reset, no spike)
        else:       v = decay * v + I
                    if v >= threshold: spike, v = reset, ref = refractory
        trace = trace_decay * trace + (1 - trace_decay) * spike

    Sources are independent, so each source's bins run back to back while its state
    stays in L1 cache. Every source's arithmetic is the same whatever
    the split (its own state, its own current buffer, the same order of adds), so the
    result does not depend on the number of threads.
    """
    n_src = v.shape[0]
    n_blocks = max(1, min(n_blocks, n_src))
    for blk in nb.prange(n_blocks):
        lif_sources(
            blk * n_src // n_blocks,
            (blk + 1) * n_src // n_blocks,
            w_indptr,
            w_indices,
            w_data,
            in_indptr,
            in_indices,
            in_data,
            decay,
            threshold,
            reset,
            refractory,
            trace_decay,
            v,
            ref,
            trace,
            spikes,
            u,
            out,
            record,
        )
