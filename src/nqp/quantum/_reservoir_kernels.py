"""Compiled per-source loops of :class:`nqp.quantum.reservoir.QuantumReservoir`.

With reset injection the state update is, per source, two small complex products (``A τ``
of shape (d, d') and ``(A τ) A†`` of shape (d, d); d = 32, d' = 16 at n = 5). NumPy's batched
``matmul`` on blocks that small runs far below BLAS speed and every NumPy call costs
microseconds of dispatch, so the loops are written out here, one source at a time, on real
and imaginary parts kept apart. Both products are dot products of contiguous rows (``τ`` is
Hermitian, so its columns are its conjugated rows), which LLVM vectorises as reductions; the
``y[t] += a * x[t]`` form stayed scalar here. Only the upper triangle of the Hermitian ``ρ``
is computed and the lower one is its mirror, so the stored ``ρ`` is exactly Hermitian.

The kernels take a ``rows`` index array and work on those rows of the state in place, so
that scattered rows (shadows still tracked for some sources only) need no gather or scatter
copies.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["distance_bounds", "report_terms", "reset_step"]

# reassociation lets the row loops vectorise; no flag that assumes finite values (inputs are
# validated finite, but a NaN must still propagate rather than be optimised away)
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(cache=True, boundscheck=False, fastmath=_FAST)
def reset_step(  # pragma: no cover - compiled
    states: NDArray[np.complex128],
    rows: NDArray[np.intp],
    psi: NDArray[np.float64],
    columns: NDArray[np.float64],
    full: NDArray[np.uint64],
    pair_first: NDArray[np.intp],
    pair_second: NDArray[np.intp],
    packed: NDArray[np.float64],
    taus: NDArray[np.complex128],
) -> None:
    """Reset injection and evolution ``ρ ← A τ A†`` of ``states[rows]``, in place.

    Parameters
    ----------
    states : ndarray of shape (N, d, d), complex128
        Density matrices; rows ``rows`` are replaced by their next state.
    rows : ndarray of shape (r,), intp
        Which states to advance.
    psi : ndarray of shape (r, K), float64
        Input amplitudes ``ψ_c`` per advanced row (``K = 2^m``, first input qubit most
        significant).
    columns : ndarray of shape (2, K, d·d'), float64
        Real and imaginary parts of ``C_c`` (row-major), the columns of the last node's ``U^V``
        met by input basis state ``c``: ``A = Σ_c ψ_c C_c`` of shape (d, d').
    full : ndarray of shape (K, d'), uint64
        Basis index of input state ``c`` beside reduced basis state ``j``: ``τ_jl = Σ_c
        ρ[full[c, j], full[c, l]]`` (``τ = Tr_inputs ρ``).
    pair_first, pair_second : ndarray of shape (P,), intp
        The pairs ``c ≤ c'`` of the feature map.
    packed : ndarray of shape (r, P·d'²) or (0, 0), float64
        Filled (unless empty) with ``ψ_c ψ_c' · h(τ)`` per pair, ``h(τ)`` the d'² real
        parameters of the Hermitian ``τ``: ``Re τ_jj``, then ``Re τ_jl`` and ``Im τ_jl`` for
        ``j < l`` in row-major order. The features are ``packed @ weights``.
    taus : ndarray of shape (r, d', d') or (0, 0, 0), complex128
        Filled (unless empty) with ``τ`` before the step.
    """
    n_rows = rows.shape[0]
    d = states.shape[1]
    K, dp = full.shape
    n_pairs = pair_first.shape[0]
    n_upper = dp * (dp - 1) // 2
    tr = np.empty((dp, dp))  # τ
    ti = np.empty((dp, dp))
    flat_r = np.empty(d * dp)  # A = Σ_c ψ_c C_c
    flat_i = np.empty(d * dp)
    ar = flat_r.reshape((d, dp))
    ai = flat_i.reshape((d, dp))
    br = np.empty((d, dp))  # B = A τ
    bi = np.empty((d, dp))
    h = np.empty(dp * dp)
    for k in range(n_rows):
        rho = states[rows[k]]
        # τ = Tr_inputs ρ (unsigned indices: no negative-index wraparound in the loop)
        for j in range(dp):
            for t in range(dp):
                tr[j, t] = 0.0
                ti[j, t] = 0.0
        for c in range(K):
            cols = full[c]
            for j in range(dp):
                row = rho[cols[j]]
                for t in range(dp):
                    x = row[cols[t]]
                    tr[j, t] += x.real
                    ti[j, t] += x.imag
        if taus.shape[0]:
            for j in range(dp):
                for t in range(dp):
                    taus[k, j, t] = complex(tr[j, t], ti[j, t])
        if packed.shape[0]:
            pos = dp
            for j in range(dp):
                h[j] = tr[j, j]
                for t in range(j + 1, dp):
                    h[pos] = tr[j, t]
                    h[pos + n_upper] = ti[j, t]
                    pos += 1
            for p in range(n_pairs):
                w = psi[k, pair_first[p]] * psi[k, pair_second[p]]
                base = p * dp * dp
                for a in range(dp * dp):
                    packed[k, base + a] = w * h[a]
        # A = Σ_c ψ_c C_c, on the flattened (d·d') arrays so that the loops vectorise
        w = psi[k, 0]
        for x in range(d * dp):
            flat_r[x] = w * columns[0, 0, x]
            flat_i[x] = w * columns[1, 0, x]
        for c in range(1, K):
            w = psi[k, c]
            for x in range(d * dp):
                flat_r[x] += w * columns[0, c, x]
                flat_i[x] += w * columns[1, c, x]
        # B_it = Σ_m A_im τ_mt = Σ_m A_im conj(τ_tm): dot products of contiguous rows
        for i in range(d):
            for t in range(dp):
                sr = 0.0
                si = 0.0
                for m in range(dp):
                    sr += ar[i, m] * tr[t, m] + ai[i, m] * ti[t, m]
                    si += ai[i, m] * tr[t, m] - ar[i, m] * ti[t, m]
                br[i, t] = sr
                bi[i, t] = si
        # ρ_ij = Σ_t B_it conj(A_jt) on the upper triangle, mirrored below
        for i in range(d):
            sr = 0.0
            for t in range(dp):
                sr += br[i, t] * ar[i, t] + bi[i, t] * ai[i, t]
            rho[i, i] = sr
            for j in range(i + 1, d):
                sr = 0.0
                si = 0.0
                for t in range(dp):
                    sr += br[i, t] * ar[j, t] + bi[i, t] * ai[j, t]
                    si += bi[i, t] * ar[j, t] - br[i, t] * ai[j, t]
                rho[i, j] = complex(sr, si)
                rho[j, i] = complex(sr, -si)


@numba.njit(cache=True, boundscheck=False, fastmath=_FAST)
def distance_bounds(  # pragma: no cover - compiled
    a: NDArray[np.complex128],
    rows_a: NDArray[np.intp],
    b: NDArray[np.complex128],
    rows_b: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``‖Δ‖_F`` and ``Σ_ij |Δ_ij|`` of ``Δ = a[rows_a[k]] − b[rows_b[k]]``, shape (r,) each.

    ``a`` and ``b`` are stacks of matrices of shape (·, D, D), complex128.
    """
    n_rows = rows_a.shape[0]
    D = a.shape[1]
    frobenius = np.empty(n_rows)
    entrywise = np.empty(n_rows)
    for k in range(n_rows):
        x, y = a[rows_a[k]], b[rows_b[k]]
        squares = 0.0
        total = 0.0
        for i in range(D):
            for j in range(D):
                re = x[i, j].real - y[i, j].real
                im = x[i, j].imag - y[i, j].imag
                sq = re * re + im * im
                squares += sq
                total += math.sqrt(sq)
        frobenius[k] = math.sqrt(squares)
        entrywise[k] = total
    return frobenius, entrywise


@numba.njit(cache=True, boundscheck=False, fastmath=_FAST)
def report_terms(  # pragma: no cover - compiled
    rho: NDArray[np.complex128], hamiltonian: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``Tr(ρ H)`` and ``Σ_{i≠j} |ρ_ij|`` per source, shape (n,) each, in one pass over ``ρ``.

    ``rho`` has shape (n, d, d) and ``hamiltonian`` (d, d), real symmetric: ``Tr(ρH) = Σ_ij
    Re(ρ_ij) H_ij``. Whole rows are summed (fixed trip counts vectorise; the upper triangle
    alone, half the square roots, was three times slower) and the diagonal subtracted.
    """
    n, d = rho.shape[0], rho.shape[1]
    energy = np.empty(n)
    off = np.empty(n)
    for k in range(n):
        x = rho[k]
        e = 0.0
        total = 0.0
        diagonal = 0.0
        for i in range(d):
            row = x[i]
            h_row = hamiltonian[i]
            for j in range(d):
                re, im = row[j].real, row[j].imag
                e += h_row[j] * re
                total += math.sqrt(re * re + im * im)
            diagonal += abs(row[i])
        energy[k] = e
        off[k] = total - diagonal
    return energy, off
