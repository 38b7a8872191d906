"""Compiled per-source loops of :class:`nqp.quantum.reservoir.QuantumReservoir`.

With reset injection the state update is, per source, two small complex products (``A τ``
of shape (d, d') and ``(A τ) A†`` of shape (d, d); d = 32, d' = 16 at n = 5). NumPy's batched
``matmul`` on blocks that small runs far below BLAS speed and every NumPy call costs
microseconds of dispatch, so the loops are written out here, one source at a time, on real
and imaginary parts kept apart. Both products are dot products of contiguous rows (``τ`` is
Hermitian, so its columns are its conjugated rows), which LLVM vectorises as reductions; the
``y[t] += a * x[t]`` form stayed scalar here. The dot products are register-blocked two rows
by two rows (:func:`_dots_2x2`: each loaded element serves two products, eight independent
sums), 11–18 % faster than one at a time at n = 5..8. Only the upper triangle of the Hermitian
``ρ`` is computed and the lower one is its mirror, so the stored ``ρ`` is exactly Hermitian.
Batched BLAS ``matmul`` computes the whole ``(A τ) A†`` and was 1.6–2.3× slower than this
update at every register size n = 5..10 on one thread (``bench/quantum.py``, figure
``reservoir_update``), so it is not used.

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
    dp = full.shape[1]
    tr = np.empty((dp, dp))  # τ
    ti = np.empty((dp, dp))
    flat_r = np.empty(d * dp)  # A = Σ_c ψ_c C_c
    flat_i = np.empty(d * dp)
    br = np.empty((d, dp))  # B = A τ
    bi = np.empty((d, dp))
    h = np.empty(dp * dp)
    for k in range(n_rows):
        rho = states[rows[k]]
        _reduce(rho, full, tr, ti)
        _keep(k, tr, ti, psi, pair_first, pair_second, h, packed, taus)
        _update(rho, psi[k], columns, tr, ti, flat_r, flat_i, br, bi)


@numba.njit(inline="always", boundscheck=False, fastmath=_FAST)
def _reduce(  # pragma: no cover - compiled
    rho: NDArray[np.complex128],
    full: NDArray[np.uint64],
    tr: NDArray[np.float64],
    ti: NDArray[np.float64],
) -> None:
    """``τ = Tr_inputs ρ`` into ``tr + i·ti`` (unsigned indices: no wraparound check)."""
    K, dp = full.shape
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


@numba.njit(inline="always", boundscheck=False, fastmath=_FAST)
def _keep(  # pragma: no cover - compiled
    k: int,
    tr: NDArray[np.float64],
    ti: NDArray[np.float64],
    psi: NDArray[np.float64],
    pair_first: NDArray[np.intp],
    pair_second: NDArray[np.intp],
    h: NDArray[np.float64],
    packed: NDArray[np.float64],
    taus: NDArray[np.complex128],
) -> None:
    """Row ``k`` of ``taus`` and ``packed`` from ``τ`` (each unless empty)."""
    dp = tr.shape[0]
    if taus.shape[0]:
        for j in range(dp):
            for t in range(dp):
                taus[k, j, t] = complex(tr[j, t], ti[j, t])
    if packed.shape[0]:
        n_upper = dp * (dp - 1) // 2
        pos = dp
        for j in range(dp):
            h[j] = tr[j, j]
            for t in range(j + 1, dp):
                h[pos] = tr[j, t]
                h[pos + n_upper] = ti[j, t]
                pos += 1
        for p in range(pair_first.shape[0]):
            w = psi[k, pair_first[p]] * psi[k, pair_second[p]]
            base = p * dp * dp
            for a in range(dp * dp):
                packed[k, base + a] = w * h[a]


@numba.njit(inline="always", boundscheck=False, fastmath=_FAST)
def _update(  # pragma: no cover - compiled
    rho: NDArray[np.complex128],
    psi: NDArray[np.float64],
    columns: NDArray[np.float64],
    tr: NDArray[np.float64],
    ti: NDArray[np.float64],
    flat_r: NDArray[np.float64],
    flat_i: NDArray[np.float64],
    br: NDArray[np.float64],
    bi: NDArray[np.float64],
) -> None:
    """``ρ ← A τ A†`` with ``A = Σ_c ψ_c C_c``; the upper triangle computed, mirrored below."""
    K = psi.shape[0]
    d, dp = br.shape
    ar = flat_r.reshape((d, dp))
    ai = flat_i.reshape((d, dp))
    # A = Σ_c ψ_c C_c, on the flattened (d·d') arrays so that the loops vectorise
    w = psi[0]
    for x in range(d * dp):
        flat_r[x] = w * columns[0, 0, x]
        flat_i[x] = w * columns[1, 0, x]
    for c in range(1, K):
        w = psi[c]
        for x in range(d * dp):
            flat_r[x] += w * columns[0, c, x]
            flat_i[x] += w * columns[1, c, x]
    # B_it = Σ_m A_im τ_mt = Σ_m A_im conj(τ_tm): dot products of contiguous rows, 2 rows
    # i by 2 rows t at a time (d is even; d' = 1 repeats row 0 and keeps one column)
    for i in range(0, d, 2):
        for t in range(0, dp, 2):
            u = min(t + 1, dp - 1)
            r00, i00, r01, i01, r10, i10, r11, i11 = _dots_2x2(
                ar[i], ai[i], ar[i + 1], ai[i + 1], tr[t], ti[t], tr[u], ti[u]
            )
            br[i, t], bi[i, t], br[i + 1, t], bi[i + 1, t] = r00, i00, r10, i10
            br[i, u], bi[i, u], br[i + 1, u], bi[i + 1, u] = r01, i01, r11, i11
    # ρ_ij = Σ_t B_it conj(A_jt) in 2×2 blocks on and above the diagonal, mirrored below
    for i in range(0, d, 2):
        for j in range(i, d, 2):
            r00, i00, r01, i01, r10, i10, r11, i11 = _dots_2x2(
                br[i], bi[i], br[i + 1], bi[i + 1], ar[j], ai[j], ar[j + 1], ai[j + 1]
            )
            rho[i, j + 1], rho[j + 1, i] = complex(r01, i01), complex(r01, -i01)
            rho[i + 1, j + 1], rho[j + 1, i + 1] = complex(r11, i11), complex(r11, -i11)
            if j == i:  # the diagonal is real; (i + 1, i) is the mirror of (i, i + 1)
                rho[i, i], rho[i + 1, i + 1] = r00, r11
            else:
                rho[i, j], rho[j, i] = complex(r00, i00), complex(r00, -i00)
                rho[i + 1, j], rho[j, i + 1] = complex(r10, i10), complex(r10, -i10)


@numba.njit(inline="always", boundscheck=False, fastmath=_FAST)
def _dots_2x2(  # pragma: no cover - compiled
    x0r: NDArray[np.float64],
    x0i: NDArray[np.float64],
    x1r: NDArray[np.float64],
    x1i: NDArray[np.float64],
    y0r: NDArray[np.float64],
    y0i: NDArray[np.float64],
    y1r: NDArray[np.float64],
    y1i: NDArray[np.float64],
) -> tuple[float, float, float, float, float, float, float, float]:
    """``Σ_t x_a[t] conj(y_b[t])`` for rows ``a, b ∈ {0, 1}``, as (re, im) of 00, 01, 10, 11.

    Register blocking: each loaded element serves two products, eight independent sums.
    """
    r00 = i00 = r01 = i01 = r10 = i10 = r11 = i11 = 0.0
    for t in range(x0r.shape[0]):
        a0r, a0i, a1r, a1i = x0r[t], x0i[t], x1r[t], x1i[t]
        b0r, b0i, b1r, b1i = y0r[t], y0i[t], y1r[t], y1i[t]
        r00 += a0r * b0r + a0i * b0i
        i00 += a0i * b0r - a0r * b0i
        r01 += a0r * b1r + a0i * b1i
        i01 += a0i * b1r - a0r * b1i
        r10 += a1r * b0r + a1i * b0i
        i10 += a1i * b0r - a1r * b0i
        r11 += a1r * b1r + a1i * b1i
        i11 += a1i * b1r - a1r * b1i
    return r00, i00, r01, i01, r10, i10, r11, i11


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
    rho: NDArray[np.complex128], rows: NDArray[np.intp], hamiltonian: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``Tr(ρ H)`` and ``Σ_{i≠j} |ρ_ij|`` of ``rho[rows]``, shape (r,) each, one pass each.

    ``rho`` has shape (n, d, d), ``rows`` (r,) and ``hamiltonian`` (d, d), real symmetric:
    ``Tr(ρH) = Σ_ij Re(ρ_ij) H_ij``. Whole rows are summed (fixed trip counts vectorise; the
    upper triangle alone, half the square roots, was three times slower) and the diagonal
    subtracted.
    """
    n, d = rows.shape[0], rho.shape[1]
    energy = np.empty(n)
    off = np.empty(n)
    for k in range(n):
        x = rho[rows[k]]
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
