"""Propagation and eigen-solver kernels behind :mod:`nqp.quantum.evolution`.

Internal module: the public front ends (:func:`~nqp.quantum.evolution.evolve`,
:func:`~nqp.quantum.evolution.ground_state`, ...) validate their arguments, wrap the
Hamiltonian with :func:`_as_operator` and call the kernels here:

- :func:`_chebyshev_evolve`: ``exp(-iHt)ψ`` at many times from Chebyshev expansions
  (Tal-Ezer and Kosloff 1984), cut into segments to balance products against combination;
- :func:`_krylov_evolve`: Lanczos propagation with dense output (Hochbruck and Lubich 1997);
- :func:`_lanczos_ground`: lowest eigenpair by unrestarted two-pass Lanczos;
- :func:`_spectral_bounds`, :func:`_bessel_j_table`, :func:`_expm_multiply_evolve`.

Conventions are those of :mod:`nqp.quantum.hamiltonian` (``ħ = 1``, qubit 0 the most
significant Kronecker factor). A matrix-free :class:`~nqp.quantum.hamiltonian.BitFlipOperator`
is applied through its own kernel (complex vectors in one pass, products into reused buffers).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import numba
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from nqp._validation import check_finite_array
from nqp.exceptions import ConvergenceError, InvalidInputError
from nqp.quantum.hamiltonian import BitFlipOperator

__all__: list[str] = []  # internal kernels; the API is nqp.quantum.evolution

Operator: TypeAlias = sp.sparray | sp.spmatrix | NDArray[Any] | spla.LinearOperator


# --------------------------------------------------------------------------- helpers


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def _limit_threads(threads: int | None) -> Any:
    """Context manager limiting BLAS/OpenMP threads (``None``: leave them alone)."""
    if threads is None:
        return _controller().limit(limits=None)
    return _controller().limit(limits=threads)


@dataclass(frozen=True)
class _Op:
    """A validated square operator; ``matvec(x)`` returns ``H @ x`` as a new array.

    A real matrix is applied to a complex vector as two real products (SciPy would otherwise
    copy the matrix to complex on every call).
    """

    dim: int
    real: bool
    matvec: Callable[[NDArray[Any]], NDArray[Any]]
    matrix: Any  # the CSR/dense matrix or LinearOperator, for scipy routines


def _real_on_complex(A: Any) -> Callable[[NDArray[Any]], NDArray[Any]]:
    def matvec(x: NDArray[Any]) -> NDArray[Any]:
        if x.dtype.kind != "c":
            return A @ x
        y = np.empty(x.shape, dtype=np.complex128)
        y.real = A @ np.ascontiguousarray(x.real)
        y.imag = A @ np.ascontiguousarray(x.imag)
        return y

    return matvec


def _as_operator(H: Operator, name: str = "H") -> _Op:
    if isinstance(H, BitFlipOperator):
        return _Op(int(H.shape[0]), True, H.apply, H)
    if isinstance(H, spla.LinearOperator):
        if len(H.shape) != 2 or H.shape[0] != H.shape[1]:
            raise InvalidInputError(f"{name} must be square, got shape {H.shape}.")
        return _Op(int(H.shape[0]), np.dtype(H.dtype).kind != "c", H.matvec, H)
    if sp.issparse(H):
        A = sp.csr_array(H)
        if A.shape[0] != A.shape[1]:
            raise InvalidInputError(f"{name} must be square, got shape {A.shape}.")
        if A.dtype.kind not in "fc":
            A = A.astype(np.float64)
        if not np.isfinite(A.data).all():
            raise InvalidInputError(f"{name} contains non-finite values.")
        real = A.dtype.kind != "c"
        return _Op(int(A.shape[0]), real, _real_on_complex(A) if real else A.__matmul__, A)
    arr = np.asarray(H)
    dtype = np.complex128 if arr.dtype.kind == "c" else np.float64
    D = check_finite_array(arr, name=name, ndim=2, dtype=dtype)
    if D.shape[0] != D.shape[1]:
        raise InvalidInputError(f"{name} must be square, got shape {D.shape}.")
    real = D.dtype.kind != "c"
    return _Op(int(D.shape[0]), real, _real_on_complex(D) if real else D.__matmul__, D)


def _check_hermitian(op: _Op, rng: np.random.Generator, name: str = "H") -> None:
    """Randomised Hermiticity test ``⟨u|Hv⟩ = ⟨Hu|v⟩`` (two products, no transpose)."""
    u = rng.standard_normal(op.dim) + 1j * rng.standard_normal(op.dim)
    v = rng.standard_normal(op.dim) + 1j * rng.standard_normal(op.dim)
    Hu, Hv = op.matvec(u), op.matvec(v)
    lhs, rhs = np.vdot(u, Hv), np.vdot(Hu, v)
    # norms of complex128 vectors are float64 (numpy's stubs say only ``floating``)
    scale = cast(
        np.float64, np.linalg.norm(Hu) * np.linalg.norm(v) + np.linalg.norm(Hv) * np.linalg.norm(u)
    )
    if abs(lhs - rhs) > 1e-10 * max(scale, 1e-300):
        raise InvalidInputError(
            f"{name} is not Hermitian: <u|Hv> - <Hu|v> = {abs(lhs - rhs):.3g} for random u, v "
            f"(scale {scale:.3g})."
        )


def _residual(op: _Op, psi: NDArray[Any]) -> tuple[float, float]:
    """Rayleigh quotient and eigen-residual ``‖Hψ − Eψ‖`` of a normalised ``psi``."""
    Hpsi = op.matvec(psi).astype(np.result_type(psi, np.float64), copy=True)
    energy = float(np.vdot(psi, Hpsi).real)
    Hpsi -= energy * psi
    return energy, float(np.linalg.norm(Hpsi))


@numba.njit(cache=True)
def _abs_row_sum_max(indptr, data):  # pragma: no cover - compiled
    best = 0.0
    for i in range(indptr.shape[0] - 1):
        acc = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            acc += abs(data[k])
        best = max(best, acc)
    return best


def _gershgorin(op: _Op) -> float:
    """An upper bound on ``‖H‖₂`` for explicit matrices (max absolute row sum)."""
    M = op.matrix
    if isinstance(M, BitFlipOperator):
        return M.norm_bound
    if sp.issparse(M):
        return float(_abs_row_sum_max(M.indptr, M.data))
    if isinstance(M, np.ndarray):
        return float(np.abs(M).sum(axis=1).max())
    return math.nan


# --------------------------------------------------------------------------- Krylov


def _krylov_evolve(
    op: _Op,
    psi0: NDArray[np.complex128],
    times: NDArray[np.float64],
    tol: float,
    krylov_dim: int,
    sign: complex | float = -1j,
) -> tuple[NDArray[np.complex128], int]:
    """``exp(sign·H·t) ψ0`` at every ``t`` in ``times`` by Lanczos steps with dense output.

    Each step builds an orthonormal Lanczos basis ``V_m`` (three-term recurrence, Hermitian
    ``H``) of the current state and uses ``exp(sign·H·τ)ψ ≈ ‖ψ‖ V_m exp(sign·T_m·τ) e₁`` for
    every output time in the step (Gallopoulos and Saad 1992; Hochbruck and Lubich 1997).
    The step length ``τ`` is the largest for which the a posteriori error estimate
    ``‖ψ‖ β_m |e_mᵀ exp(sign·T_m·τ) e₁|`` (Saad 1992, eq. 5.8) stays below
    ``tol·τ / t_final``, so the accumulated 2-norm error stays below about ``tol``.

    The error is controlled relative to ``‖ψ(t)‖``. For a real ``sign`` (imaginary time)
    the outputs are rescaled by an arbitrary positive factor per step (to avoid overflow);
    only their directions are meaningful.

    Returns the states of shape (n_times, dim), complex128, and the number of products.
    """
    imaginary = sign.imag == 0.0 if isinstance(sign, complex) else True
    dim = op.dim
    n_t = times.size
    out = np.empty((n_t, dim), dtype=np.complex128)
    m = min(krylov_dim, dim)
    V = np.empty((m + 1, dim), dtype=np.complex128)
    t_final = float(times[-1])
    psi = psi0.astype(np.complex128, copy=True)
    t_cur = 0.0
    j = 0
    n_matvec = 0
    alpha = np.empty(m)
    beta = np.empty(m)
    while True:
        while j < n_t and times[j] <= t_cur:
            out[j] = psi
            j += 1
        if j == n_t:
            break
        beta0 = float(np.linalg.norm(psi))
        np.multiply(psi, 1.0 / beta0, out=V[0])
        k_eff = m
        breakdown = False
        scale = 0.0
        for k in range(m):
            w = V[k + 1]
            w[...] = op.matvec(V[k])
            n_matvec += 1
            a = np.vdot(V[k], w).real
            alpha[k] = a
            w -= a * V[k]
            if k > 0:
                w -= beta[k - 1] * V[k - 1]
            b = float(np.linalg.norm(w))
            beta[k] = b
            scale = max(scale, abs(a), b)
            if b <= 1e-12 * scale:
                k_eff = k + 1
                breakdown = True  # invariant subspace: the step is exact for every τ
                break
            w *= 1.0 / b
        theta, Q = sla.eigh_tridiagonal(alpha[:k_eff], beta[: k_eff - 1])
        if imaginary:
            theta = theta - theta[0]  # rescales exp(-τH) by exp(τ θ_min): avoids overflow
        q0 = Q[0, :]
        rem = times[j:] - t_cur
        if breakdown:
            tau = float(rem[-1])
        else:
            qm = Q[k_eff - 1, :]
            width = float(theta[-1] - theta[0]) + 1e-300
            budget = tol / max(t_final, 1e-300)
            cap = float(rem[-1]) if imaginary else min(float(rem[-1]), 2.0 * k_eff / width)
            tau = 0.0
            for _ in range(60):
                grid = cap * np.arange(1, 65) / 64.0
                phases = np.exp(sign * np.outer(grid, theta))  # (64, k)
                # relative error estimate: β_m |e_mᵀ exp(..) e₁| / ‖exp(..) e₁‖
                est = beta[k_eff - 1] * np.abs(phases @ (qm * q0))
                est /= np.sqrt((np.abs(phases) ** 2) @ (q0 * q0))
                # the estimate has a round-off floor ~ eps β_m Σ|Q_mj Q_0j|: below it any τ is
                # as good (the step's own round-off is of that size anyway)
                floor = 8.0 * np.finfo(float).eps * (beta[k_eff - 1] * np.abs(qm * q0).sum() + 1.0)
                ok = est <= np.maximum(budget * grid, floor)
                if ok[0]:
                    bad = np.flatnonzero(~ok)
                    tau = float(grid[-1] if bad.size == 0 else grid[bad[0] - 1])
                    break
                cap /= 8.0
            if tau <= 0.0:
                raise ConvergenceError(
                    "Krylov propagation could not meet the tolerance with any step; "
                    f"tol={tol:g} may be below round-off for this Hamiltonian."
                )
        # outputs inside this step, then the state at its end
        n_in = int(np.searchsorted(rem, tau, side="right"))
        steps = np.append(rem[:n_in], tau)
        coef = beta0 * (Q @ (np.exp(sign * np.outer(theta, steps)) * q0[:, None]))  # (k, s)
        states = coef.T @ V[:k_eff]  # (n_in + 1, dim)
        out[j : j + n_in] = states[:n_in]
        j += n_in
        psi = states[-1]
        t_cur += tau
        if j < n_t and times[j] - t_cur <= 1e-15 * max(t_final, 1.0):
            t_cur = float(times[j])
    return out, n_matvec


# --------------------------------------------------------------------------- Chebyshev


def _spectral_bounds(op: _Op, seed: int | None, steps: int = 30) -> tuple[float, float]:
    """Interval containing the spectrum: extreme Lanczos Ritz values widened by their residual
    norms plus 1 % of the width, clipped to the Gershgorin bound where one is available."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(op.dim)
    if not op.real:
        v = v + 1j * rng.standard_normal(op.dim)
    v /= np.linalg.norm(v)
    m = min(steps, op.dim)
    alpha, beta = np.zeros(m), np.zeros(m)
    v_prev = np.zeros_like(v)
    for k in range(m):
        w = op.matvec(v)
        alpha[k] = np.vdot(v, w).real
        w = w - alpha[k] * v - (beta[k - 1] * v_prev if k else 0.0)
        beta[k] = np.linalg.norm(w)
        if beta[k] <= 1e-12 * max(abs(alpha[k]), 1e-300):
            m = k + 1
            break
        v_prev, v = v, w / beta[k]
    theta, Q = sla.eigh_tridiagonal(alpha[:m], beta[: m - 1])
    r = beta[m - 1] * np.abs(Q[m - 1, [0, -1]])
    lo, hi = theta[0] - r[0], theta[-1] + r[1]
    pad = 0.01 * (hi - lo) + 1e-12 * max(abs(lo), abs(hi), 1.0)
    lo, hi = lo - pad, hi + pad
    g = _gershgorin(op)
    if math.isfinite(g):
        lo, hi = max(lo, -g), min(hi, g)
    return float(lo), float(hi)


@numba.njit(cache=True)
def _bessel_j_table(x, k_max):  # pragma: no cover - compiled
    """``J_k(x_i)`` for ``k < k_max``, of shape (n_x, k_max), by Miller's backward recurrence
    ``J_{k-1} = (2k/x) J_k − J_{k+1}`` normalised with ``J_0 + 2 Σ J_2k = 1`` (Abramowitz and
    Stegun 9.12.10 / 9.1.87); ~1e-14 absolute accuracy, ~100× faster than ``scipy.special.jv``."""
    n = x.shape[0]
    out = np.zeros((n, k_max))
    for i in range(n):
        xi = x[i]
        if xi == 0.0:
            out[i, 0] = 1.0
            continue
        start = int(max(k_max, xi) + 30 + 8 * xi ** (1.0 / 3.0))
        start += start % 2
        j_next = 0.0
        j_cur = 1e-280
        norm = 0.0
        for k in range(start, 0, -1):
            if k < k_max:
                out[i, k] = j_cur
            if k % 2 == 0:
                norm += 2.0 * j_cur
            j_prev = (2.0 * k / xi) * j_cur - j_next
            j_next = j_cur
            j_cur = j_prev
            if abs(j_cur) > 1e250:  # rescale everything computed so far
                j_cur *= 1e-250
                j_next *= 1e-250
                norm *= 1e-250
                for kk in range(k, k_max):
                    out[i, kk] *= 1e-250
        out[i, 0] = j_cur
        norm += j_cur
        for kk in range(k_max):
            out[i, kk] /= norm
    return out


def _chebyshev_real_part(
    op: _Op,
    psi: NDArray[Any],
    coef: NDArray[np.float64],
    needed: NDArray[np.int64],
    center: float,
    half_width: float,
    block: int = 32,
) -> tuple[NDArray[Any], NDArray[Any], bool]:
    """``Σ_k even coef[:, k] T_k(H̃)ψ`` and the odd-k sum, ``H̃ = (H − center) / half_width``.

    Vectors ``T_k(H̃)ψ`` come from the three-term recurrence and are combined in blocks by
    real GEMMs (complex vectors are viewed as real pairs). Row ``j`` of ``coef`` only needs
    ``k < needed[j]`` (``needed`` non-decreasing), so each block updates a suffix of rows.
    Returns the two sums, of shape (n_times, dim) and ``psi``'s dtype, and ``False`` if the
    vectors grew (spectrum outside the assumed interval).
    """
    n_t, K = coef.shape
    dim = psi.size
    scale = 2.0 / half_width
    acc = [np.zeros((n_t, dim), dtype=psi.dtype) for _ in range(2)]
    bufs = [np.empty((block, dim), dtype=psi.dtype) for _ in range(2)]
    fill = [0, 0]
    cols: list[list[int]] = [[], []]
    norm0 = float(np.linalg.norm(psi))
    ok = True

    def flush(p: int) -> None:
        if not fill[p]:
            return
        k_first = cols[p][0]
        j0 = int(np.searchsorted(needed, k_first, side="right"))
        if j0 < n_t:
            C = coef[j0:, cols[p]]
            acc_f = acc[p][j0:].view(np.float64)
            buf = bufs[p][: fill[p]].view(np.float64)
            acc_f += C @ buf
        fill[p] = 0
        cols[p] = []

    mv = _into(op)
    v_prev, v, w = (np.empty(dim, dtype=psi.dtype) for _ in range(3))
    v_prev[...] = psi
    mv(psi, v)
    _cheb_step(v, psi, psi, 1.0 / half_width, center, 0.0)
    for k in range(K):
        cur = psi if k == 0 else v
        p = k % 2
        bufs[p][fill[p]] = cur
        fill[p] += 1
        cols[p].append(k)
        if fill[p] == block:
            flush(p)
        if k >= 1 and k + 1 < K:
            mv(v, w)
            _cheb_step(w, v, v_prev, scale, center, 1.0)
            v_prev, v, w = v, w, v_prev
            if k % 16 == 0 and np.linalg.norm(v) > norm0 * (1.0 + 1e-6):
                ok = False
                break
    flush(0)
    flush(1)
    return acc[0], acc[1], ok


@numba.njit(cache=True)
def _cheb_step(w, v, v_prev, scale, center, prev):  # pragma: no cover - compiled
    """``w ← scale·(w − center·v) − prev·v_prev`` in one pass (``w`` holds ``H v``)."""
    for i in range(w.shape[0]):
        w[i] = scale * (w[i] - center * v[i]) - prev * v_prev[i]


def _chebyshev_terms(
    x: NDArray[np.float64], tol: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Coefficients ``(2 − δ_k0) (−1)^⌊k/2⌋ J_k(x_j)`` of shape (n_x, K) and, per row, the
    order ``needed[j]`` (made non-decreasing) at which the tail ``2 Σ_{k ≥ K} |J_k(x_j)|``
    drops below ``tol / 2``."""
    x_max = float(x.max()) if x.size else 0.0
    k_max = int(x_max + 12.0 * np.cbrt(x_max) + 60)
    k = np.arange(k_max)
    J = _bessel_j_table(x, k_max)  # J_k(x_j), shape (n_x, k_max)
    tail = 2.0 * np.cumsum(np.abs(J[:, ::-1]), axis=1)[:, ::-1]  # 2 Σ_{k'≥k} |J_k'|
    small = tail <= 0.5 * tol
    needed = np.where(small.any(axis=1), small.argmax(axis=1), k_max).astype(np.int64)
    needed = np.maximum.accumulate(np.maximum(needed, 1))
    K = int(needed[-1])
    sign = np.where((k[:K] // 2) % 2 == 0, 1.0, -1.0)
    return J[:, :K] * sign * np.where(k[:K] == 0, 1.0, 2.0), needed


def _product_cost(op: _Op) -> float:
    """Cost of one product with ``H`` in units of one (output time × Chebyshev term) update of
    the combination GEMM (~2·dim flops): a model, not a timing, so plans are deterministic."""
    M = op.matrix
    if isinstance(M, BitFlipOperator):
        return 2.0 * (M.flips.size + 1)
    if sp.issparse(M):
        return 4.0 * M.nnz / max(op.dim, 1)
    if isinstance(M, np.ndarray):
        return 2.0 * op.dim
    return 50.0


def _segments(
    times: NDArray[np.float64], a: float, tol: float, cost: float, first_real: bool, real_h: bool
) -> list[int]:
    """End indices (exclusive) of the segments of ``times`` propagated by one expansion each.

    One expansion over ``[0, t_max]`` needs ``K ≈ a t_max + O((a t_max)^{1/3})`` products but
    combines ``Σ_j K(t_j)`` vector updates, ``O(n_times · K)``; ``s`` segments (each ending on
    an output time, tolerance ``tol / s``) keep about the same number of products and cut the
    combination ``s``-fold. The count minimising ``cost · products + updates`` is chosen, with
    products and updates counted twice for a complex state under a real ``H`` (two real runs):
    from a real ``ψ0`` only the first segment is real, so splitting rarely pays there.
    """
    n_t = times.size
    t_max = float(times[-1])
    best: tuple[float, list[int]] = (math.inf, [n_t])
    for n_seg in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32):
        if n_seg > n_t:
            break
        ends = sorted(
            {int(np.searchsorted(times, t_max * q / n_seg, side="right")) for q in range(1, n_seg)}
            | {n_t}
        )
        ends = [e for e in ends if e > 0]
        total, start, t0 = 0.0, 0, 0.0
        for e in ends:
            _, needed = _chebyshev_terms(a * (times[start:e] - t0), tol / len(ends))
            runs = 1 if (start == 0 and first_real) or not real_h else 2
            total += runs * (cost * needed[-1] + needed.sum())
            start, t0 = e, float(times[e - 1])
        if total < best[0]:
            best = (total, ends)
    return best[1]


def _chebyshev_evolve(
    op: _Op, psi0: NDArray[np.complex128], times: NDArray[np.float64], tol: float, seed: int
) -> tuple[NDArray[np.complex128], int]:
    """``exp(-iHt) ψ0`` for all ``t`` by Chebyshev expansions (Tal-Ezer and Kosloff 1984).

    With ``H = b + a H̃`` and the spectrum of ``H̃`` in [-1, 1], the Jacobi–Anger expansion
    ``exp(-iHt) = exp(-ibt) Σ_k (2 − δ_k0) (−i)^k J_k(at) T_k(H̃)`` holds; ``‖T_k(H̃)ψ‖ ≤ 1``
    bounds the truncation error by ``2 Σ_{k≥K} |J_k(at)|``, and ``K`` is the smallest order
    making it ``<= tol``. The vectors ``T_k(H̃)ψ`` do not depend on ``t``: every output time
    of a segment (see :func:`_segments`) reuses them, and the last state of a segment starts
    the next; errors add over segments, each run at ``tol / n_segments``. A real ``H`` keeps
    the vectors real (a complex state is done as two real runs).
    """
    lo, hi = _spectral_bounds(op, seed)
    cost = _product_cost(op)
    first_real = not np.any(psi0.imag)
    for _attempt in range(4):
        a, b = 0.5 * (hi - lo), 0.5 * (hi + lo)
        ends = _segments(times, a, tol, cost, first_real, op.real)
        out = np.empty((times.size, op.dim), dtype=np.complex128)
        psi, start, t0 = psi0, 0, 0.0
        n_mv = 30
        ok = True
        for e in ends:
            rel = times[start:e] - t0
            states, k_used, ok = _chebyshev_segment(op, psi, rel, tol / len(ends), a, b)
            if not ok:
                break
            out[start:e] = states
            n_mv += k_used
            psi, start, t0 = out[e - 1], e, float(times[e - 1])
        if ok:
            return out, n_mv
        pad = 0.25 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    raise ConvergenceError(  # pragma: no cover - needs a pathological operator
        "Chebyshev evolution: could not bound the spectrum of H."
    )


def _chebyshev_segment(
    op: _Op,
    psi0: NDArray[np.complex128],
    times: NDArray[np.float64],
    tol: float,
    a: float,
    b: float,
) -> tuple[NDArray[np.complex128], int, bool]:
    """One expansion from ``psi0`` at relative ``times`` (shape (n,)); returns the states of
    shape (n, dim), the number of products and ``False`` if the vectors grew (spectrum
    outside ``[b − a, b + a]``)."""
    coef, needed = _chebyshev_terms(a * times, tol)
    K = int(needed[-1])
    parts = [psi0.real, psi0.imag] if op.real else [psi0]
    out = np.zeros((times.size, op.dim), dtype=np.complex128)
    n_mv = 0
    # ψ(t) = e^{-ibt} Σ_parts unit·(even − i·odd), unit = 1 for Re ψ0 (or complex H), i for Im ψ0
    for unit_is_i, part in enumerate(parts):
        if not np.any(part):
            continue
        even, odd, good = _chebyshev_real_part(op, np.ascontiguousarray(part), coef, needed, b, a)
        n_mv += K
        if not good:
            return out, n_mv, False
        if even.dtype.kind == "c":
            out += even
            out -= 1j * odd
        elif unit_is_i:  # i·(even − i·odd) = odd + i·even
            out.real += odd
            out.imag += even
        else:
            out.real += even
            out.imag -= odd
        del even, odd
    out *= np.exp(-1j * b * times)[:, None]
    return out, n_mv, True


# --------------------------------------------------------------------------- dense, SciPy


def _dense(op: _Op) -> NDArray[Any]:
    M = op.matrix
    if sp.issparse(M):
        return M.toarray()
    if isinstance(M, np.ndarray):
        return M
    return M @ np.eye(op.dim)


def _expm_multiply_evolve(
    op: _Op, psi: NDArray[np.complex128], t: NDArray[np.float64]
) -> NDArray[np.complex128]:
    M = op.matrix
    A = -1j * (M if not isinstance(M, spla.LinearOperator) else sp.csr_array(_dense(op)))
    trace = complex(A.trace()) if hasattr(A, "trace") else None
    n_t = t.size
    uniform = n_t > 2 and np.allclose(
        np.diff(t), (t[-1] - t[0]) / (n_t - 1), rtol=1e-12, atol=1e-15 * max(t[-1], 1.0)
    )
    if uniform and t[-1] > t[0]:
        start = psi
        if t[0] > 0:
            start = spla.expm_multiply(A * t[0], psi, traceA=trace * t[0])
        return spla.expm_multiply(
            A, start, start=0.0, stop=t[-1] - t[0], num=n_t, endpoint=True, traceA=trace
        )
    out = np.empty((n_t, op.dim), dtype=np.complex128)
    cur, t_cur = psi, 0.0
    for k, tk in enumerate(t):
        dt = tk - t_cur
        if dt > 0:
            cur = spla.expm_multiply(A * dt, cur, traceA=trace * dt)
            t_cur = tk
        out[k] = cur
    return out


# --------------------------------------------------------------------------- Lanczos


def _lanczos_ground(
    op: _Op, start: NDArray[Any], tol: float, max_steps: int, restarts: int = 3
) -> tuple[NDArray[Any], int]:
    """Lowest eigenvector by unrestarted Lanczos in two passes (Cullum and Willoughby 1985).

    Pass 1 runs the three-term recurrence ``β_k v_{k+1} = H v_k − α_k v_k − β_{k-1} v_{k-1}``
    keeping three vectors, and stops at the first ``k`` where the Ritz estimate of the lowest
    Ritz pair of the tridiagonal ``T_k``, ``β_k |s_k|`` (Parlett, *The Symmetric Eigenvalue
    Problem*, 1998, §13.2), is ``<= tol / 2``. Pass 2 regenerates ``v_j`` from the stored
    ``α, β`` and sums ``ψ = Σ_j s_j v_j``. No reorthogonalisation: orthogonality is lost only
    in the direction of converged Ritz vectors (Paige 1976), and the run stops as the first one
    converges. The true residual ``‖Hψ − Eψ‖`` is then computed; above ``tol`` the process
    restarts from ``ψ`` (at most ``restarts`` rounds).

    Against ARPACK's implicitly restarted Lanczos this does no ``O(ncv · dim)``
    reorthogonalisation per product and keeps the full Krylov space (no restart loss), at the
    price of doing each product twice. ``start`` has shape (dim,) and the solver's dtype.
    Returns the normalised vector and the number of products.
    """
    dtype = start.dtype
    dim = op.dim
    psi = start / np.linalg.norm(start)
    n_mv = 0
    bufs = [np.empty(dim, dtype=dtype) for _ in range(3)]
    mv = _into(op)
    for _round in range(restarts):
        alpha: list[float] = []
        beta: list[float] = []
        s_vec = np.ones(1)
        v_prev, v, w = bufs
        v_prev[...] = 0.0  # unused at k = 0, but 0·garbage could be NaN
        v[...] = psi
        scale = 0.0
        k_check = 1
        for k in range(max_steps):
            mv(v, w)
            n_mv += 1
            a = float(np.vdot(v, w).real)
            _lanczos_step(w, v, v_prev, a, beta[-1] if beta else 0.0)
            b = float(np.linalg.norm(w))
            alpha.append(a)
            beta.append(b)
            scale = max(scale, abs(a), b)
            breakdown = b <= 1e-13 * scale
            if breakdown or k + 1 >= k_check or k + 1 == max_steps:
                s_vec = _lowest_ritz_vector(np.array(alpha), np.array(beta))
                if breakdown or b * abs(s_vec[-1]) <= 0.5 * tol:
                    break
                # every step when products dominate; small problems check less often
                k_check = k + 1 + (1 if dim >= 1 << 15 else max(1, min(4, (k + 1) // 16)))
            w *= 1.0 / b
            v_prev, v, w = v, w, v_prev
        # pass 2: the same vectors from the stored coefficients, summed with weights s_j
        m = s_vec.size
        v_prev, v, w = bufs
        v_prev[...] = 0.0  # unused at k = 0, but 0·garbage could be NaN
        v[...] = psi
        out = np.zeros(dim, dtype=dtype)
        for k in range(m):
            out += s_vec[k] * v
            if k + 1 == m:
                break
            mv(v, w)
            n_mv += 1
            _lanczos_step(w, v, v_prev, alpha[k], beta[k - 1] if k else 0.0)
            w *= 1.0 / beta[k]
            v_prev, v, w = v, w, v_prev
        psi = out / np.linalg.norm(out)
        _, res = _residual(op, psi)
        n_mv += 1
        if res <= tol:
            break
    return psi, n_mv


def _into(op: _Op) -> Callable[[NDArray[Any], NDArray[Any]], object]:  # result unused
    """``f(x, out)`` writing ``H @ x`` into ``out`` (no allocation for a BitFlipOperator)."""
    M = op.matrix
    if isinstance(M, BitFlipOperator):
        return lambda x, out: M.apply(x, out)

    def f(x: NDArray[Any], out: NDArray[Any]) -> None:
        out[...] = op.matvec(x)

    return f


@numba.njit(cache=True)
def _lanczos_step(w, v, v_prev, a, b_prev):  # pragma: no cover - compiled
    """``w ← w − a·v − b_prev·v_prev`` in one pass."""
    for i in range(w.shape[0]):
        w[i] -= a * v[i] + b_prev * v_prev[i]


@numba.njit(cache=True)
def _lowest_ritz_vector(alpha, beta):  # pragma: no cover - compiled
    """Unit eigenvector of the lowest eigenvalue of the symmetric tridiagonal ``T`` with
    diagonal ``alpha`` (shape (m,)) and off-diagonal ``beta[:m-1]``.

    The eigenvalue is bracketed by Sturm-sequence bisection (the number of negative pivots of
    ``T − x I`` counts the eigenvalues below ``x``; Golub and Van Loan, *Matrix Computations*,
    §8.4.1) to ``4 eps ‖T‖``; the vector comes from two steps of inverse iteration with a
    shift just below it, where ``T − x I`` is positive definite and the tridiagonal LDLᵀ solve
    needs no pivoting. O(m) work per bisection step, against ~0.2 ms per LAPACK call.
    """
    m = alpha.shape[0]
    lo = np.inf
    hi = -np.inf
    for j in range(m):
        r = (abs(beta[j - 1]) if j > 0 else 0.0) + (abs(beta[j]) if j < m - 1 else 0.0)
        lo = min(lo, alpha[j] - r)
        hi = max(hi, alpha[j] + r)
    scale = max(abs(lo), abs(hi), 1e-300)
    eps = 4.0 * np.finfo(np.float64).eps * scale
    lo -= eps
    for _ in range(200):
        if hi - lo <= eps:
            break
        mid = 0.5 * (lo + hi)
        below = 0
        d = 1.0
        for j in range(m):
            d = alpha[j] - mid - (beta[j - 1] * beta[j - 1] / d if j > 0 else 0.0)
            if d == 0.0:
                d = -1e-300
            if d < 0.0:
                below += 1
        if below >= 1:
            hi = mid
        else:
            lo = mid
    shift = lo - eps
    y = np.ones(m)
    piv = np.empty(m)
    for _ in range(2):
        # LDLᵀ of T − shift·I (positive definite) and solve, in place
        piv[0] = alpha[0] - shift
        for j in range(1, m):
            lj = beta[j - 1] / piv[j - 1]
            piv[j] = alpha[j] - shift - lj * beta[j - 1]
            y[j] -= lj * y[j - 1]
        y[m - 1] /= piv[m - 1]
        for j in range(m - 2, -1, -1):
            y[j] = (y[j] - beta[j] * y[j + 1]) / piv[j]
        y /= np.sqrt(np.sum(y * y))
    return y
