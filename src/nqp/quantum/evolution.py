"""Exact real-time, imaginary-time and adiabatic evolution, and ground states.

Conventions follow :mod:`nqp.quantum.hamiltonian`: ``ħ = 1``, times in units of 1/energy,
qubit 0 the most significant Kronecker factor, ``Z|0⟩ = +|0⟩``. States are complex128
vectors of shape ``(2**n,)``; Hamiltonians are Hermitian and given as a scipy sparse
matrix (CSR preferred), a dense ndarray or a :class:`scipy.sparse.linalg.LinearOperator`.

Convergence is always judged by the eigen-residual ``‖Hψ − Eψ‖`` (``E = ⟨ψ|H|ψ⟩``, ``‖ψ‖ = 1``)
or by a distance between states, never by the energy or the norm, which unitary evolution
conserves and which converge quadratically faster than the state.

Heavy functions run their BLAS calls under a thread limit (``threads=1`` by default;
threadpoolctl): on the 2-core machines NQP targets, one BLAS thread per problem is faster
and parallelism belongs across problems.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import ThreadpoolController

from nqp._validation import Interval, Options, check_finite_array, validate_params
from nqp.exceptions import ConvergenceError, InvalidInputError
from nqp.quantum.hamiltonian import ising_diagonal
from nqp.quantum.ising import IsingModel

__all__ = [
    "AdiabaticResult",
    "GroundState",
    "IsingMinimum",
    "adiabatic_evolve",
    "evolve",
    "ground_state",
    "imaginary_time_ground_state",
    "ising_minimum",
]

#: Dimension up to which dense ``eigh`` is used by ``method="auto"``.
DENSE_DIM = 256

Operator = sp.sparray | sp.spmatrix | NDArray[Any] | spla.LinearOperator


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GroundState:
    """Lowest eigenpair of a Hamiltonian.

    Attributes
    ----------
    energy : float
        Rayleigh quotient ``⟨ψ|H|ψ⟩`` of the returned state (energy units).
    state : ndarray of shape (dim,)
        Normalised state, float64 for a real Hamiltonian, else complex128. Its global phase is
        fixed so that its largest-magnitude entry is real and positive.
    residual : float
        ``‖Hψ − Eψ‖₂``; the energy error is at most ``residual² / gap``.
    iterations : int
        Matrix-vector products (Lanczos, imaginary time: propagation steps); 0 for dense.
    converged : bool
        ``residual <= tol``.
    """

    energy: float
    state: NDArray[Any]
    residual: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class AdiabaticResult:
    """Outcome of :func:`adiabatic_evolve`.

    Attributes
    ----------
    state : ndarray of shape (dim,), complex128
        Final state ``ψ(T)``.
    times : ndarray of shape (n_steps + 1,), float64
        Step boundaries ``t_k`` (1/energy units).
    s : ndarray of shape (n_steps + 1,), float64
        Schedule ``s(t_k)`` in [0, 1].
    energy : ndarray of shape (n_steps + 1,), float64
        ``⟨ψ(t_k)|H(s(t_k))|ψ(t_k)⟩``.
    overlap : ndarray of shape (n_steps + 1,), float64 or None
        ``|⟨target|ψ(t_k)⟩|²`` when a target state was given.
    """

    state: NDArray[np.complex128]
    times: NDArray[np.float64]
    s: NDArray[np.float64]
    energy: NDArray[np.float64]
    overlap: NDArray[np.float64] | None


@dataclass(frozen=True)
class IsingMinimum:
    """Exact minimum of a classical Ising model over all ``2^n`` configurations.

    Attributes
    ----------
    energy : float
        Minimum of ``E(s)``.
    indices : ndarray of shape (n_ties,), int64
        Basis indices attaining it (within the tie tolerance), ascending.
    spins : ndarray of shape (n_ties, n), int8
        The configurations, ``s_i = 1 - 2 bit_i`` with qubit ``i`` bit ``n - 1 - i``.
    gap : float
        Energy of the lowest configuration above the ties minus ``energy`` (``inf`` if none).
    """

    energy: float
    indices: NDArray[np.int64]
    spins: NDArray[np.int8]
    gap: float

    @property
    def degeneracy(self) -> int:
        """Number of tied minimum configurations."""
        return int(self.indices.size)


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
    scale = np.linalg.norm(Hu) * np.linalg.norm(v) + np.linalg.norm(Hv) * np.linalg.norm(u)
    if abs(lhs - rhs) > 1e-10 * max(scale, 1e-300):
        raise InvalidInputError(
            f"{name} is not Hermitian: <u|Hv> - <Hu|v> = {abs(lhs - rhs):.3g} for random u, v "
            f"(scale {scale:.3g})."
        )


def _check_state(psi: ArrayLike, dim: int, name: str = "psi0") -> NDArray[np.complex128]:
    v = check_finite_array(psi, name=name, ndim=1, dtype=np.complex128)
    if v.shape != (dim,):
        raise InvalidInputError(f"{name} has shape {v.shape}, the Hamiltonian acts on ({dim},).")
    norm = np.linalg.norm(v)
    if norm == 0.0:
        raise InvalidInputError(f"{name} is the zero vector.")
    return v / norm


def _check_times(times: ArrayLike) -> NDArray[np.float64]:
    t = check_finite_array(times, name="times", ndim=1)
    if t.size == 0:
        raise InvalidInputError("times is empty.")
    if np.any(t < 0) or np.any(np.diff(t) < 0):
        raise InvalidInputError("times must be non-negative and non-decreasing.")
    return t


def _residual(op: _Op, psi: NDArray[Any]) -> tuple[float, float]:
    """Rayleigh quotient and eigen-residual ``‖Hψ − Eψ‖`` of a normalised ``psi``."""
    Hpsi = op.matvec(psi).astype(np.result_type(psi, np.float64), copy=True)
    energy = float(np.vdot(psi, Hpsi).real)
    Hpsi -= energy * psi
    return energy, float(np.linalg.norm(Hpsi))


def _fix_phase(psi: NDArray[Any]) -> NDArray[Any]:
    k = int(np.argmax(np.abs(psi)))
    if psi.dtype.kind == "c":
        return psi * (abs(psi[k]) / psi[k])
    return psi if psi[k] >= 0 else -psi


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

    v_prev = psi
    v = (op.matvec(psi) - center * psi) / half_width
    for k in range(K):
        cur = psi if k == 0 else v
        p = k % 2
        bufs[p][fill[p]] = cur
        fill[p] += 1
        cols[p].append(k)
        if fill[p] == block:
            flush(p)
        if k >= 1 and k + 1 < K:
            nxt = scale * (op.matvec(v) - center * v) - v_prev
            v_prev, v = v, nxt
            if k % 16 == 0 and np.linalg.norm(v) > norm0 * (1.0 + 1e-6):
                ok = False
                break
    flush(0)
    flush(1)
    return acc[0], acc[1], ok


def _chebyshev_evolve(
    op: _Op, psi0: NDArray[np.complex128], times: NDArray[np.float64], tol: float, seed: int
) -> tuple[NDArray[np.complex128], int]:
    """``exp(-iHt) ψ0`` for all ``t`` by one Chebyshev expansion (Tal-Ezer and Kosloff 1984).

    With ``H = b + a H̃`` and the spectrum of ``H̃`` in [-1, 1], the Jacobi–Anger expansion
    ``exp(-iHt) = exp(-ibt) Σ_k (2 − δ_k0) (−i)^k J_k(at) T_k(H̃)`` holds; ``‖T_k(H̃)ψ‖ ≤ 1``
    bounds the truncation error by ``2 Σ_{k≥K} |J_k(at)|``, and ``K`` is the smallest order
    making it ``<= tol``. The vectors ``T_k(H̃)ψ0`` do not depend on ``t``: every output time
    reuses them. A real ``H`` keeps them real (a complex ``ψ0`` is done as two real runs).
    """
    lo, hi = _spectral_bounds(op, seed)
    for _attempt in range(4):
        a, b = 0.5 * (hi - lo), 0.5 * (hi + lo)
        x = a * times
        x_max = float(x.max())
        k_max = int(x_max + 12.0 * np.cbrt(x_max) + 60)
        k = np.arange(k_max)
        J = _bessel_j_table(x, k_max)  # J_k(a t_j), shape (n_t, k_max)
        tail = 2.0 * np.cumsum(np.abs(J[:, ::-1]), axis=1)[:, ::-1]  # 2 Σ_{k'≥k} |J_k'|
        small = tail <= 0.5 * tol
        needed = np.where(small.any(axis=1), small.argmax(axis=1), k_max).astype(np.int64)
        needed = np.maximum.accumulate(np.maximum(needed, 1))
        K = int(needed[-1])
        sign = np.where((k[:K] // 2) % 2 == 0, 1.0, -1.0)
        coef = J[:, :K] * sign * np.where(k[:K] == 0, 1.0, 2.0)
        parts = [psi0.real, psi0.imag] if op.real else [psi0]
        sums = []
        ok = True
        for part in parts:
            if not np.any(part):
                sums.append(None)
                continue
            even, odd, good = _chebyshev_real_part(
                op, np.ascontiguousarray(part), coef, needed, b, a
            )
            ok = ok and good
            sums.append((even, odd))
        if ok:
            break
        pad = 0.25 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    else:  # pragma: no cover - needs a pathological operator
        raise ConvergenceError("Chebyshev evolution: could not bound the spectrum of H.")
    # ψ(t) = e^{-ibt} Σ_parts unit·(even − i·odd), unit = 1 for Re ψ0 (or complex H), i for Im ψ0
    out = np.zeros((times.size, op.dim), dtype=np.complex128)
    for unit_is_i, pair in enumerate(sums):
        if pair is None:
            continue
        even, odd = pair
        if even.dtype.kind == "c":
            out += even
            out -= 1j * odd
        elif unit_is_i:  # i·(even − i·odd) = odd + i·even
            out.real += odd
            out.imag += even
        else:
            out.real += even
            out.imag -= odd
        sums[unit_is_i] = None
        del even, odd, pair
    out *= np.exp(-1j * b * times)[:, None]
    return out, K * sum(p is not None for p in sums) + 30


# --------------------------------------------------------------------------- evolve


def evolve(
    H: Operator,
    psi0: ArrayLike,
    times: ArrayLike,
    *,
    method: str = "auto",
    tol: float = 1e-10,
    krylov_dim: int = 30,
    check_hermitian: bool = True,
    threads: int | None = 1,
) -> NDArray[np.complex128]:
    """Exact Schrödinger evolution ``ψ(t) = exp(-iHt) ψ0`` at many output times.

    Parameters
    ----------
    H : sparse matrix, ndarray or LinearOperator of shape (dim, dim)
        Hermitian Hamiltonian (energy units, ``ħ = 1``).
    psi0 : array_like of shape (dim,)
        Initial state at ``t = 0``; normalised on input.
    times : array_like of shape (n_times,)
        Output times (1/energy units), non-negative and non-decreasing.
    method : {"auto", "chebyshev", "krylov", "expm_multiply", "eigh"}, default="auto"
        ``"chebyshev"``: one Chebyshev expansion serving every output time (see Notes);
        ``"krylov"``: Lanczos steps with dense output; ``"expm_multiply"``:
        SciPy's Al-Mohy–Higham Taylor method, one call over the grid when ``times`` is uniform
        (its ``start``/``stop``/``num`` mode), stepwise otherwise; ``"eigh"``: dense
        eigendecomposition ``V exp(-iEt) V† ψ0``. ``"auto"`` uses ``"eigh"`` for
        ``dim <= 256`` and ``"chebyshev"`` above.
    tol : float, default=1e-10
        Target 2-norm error of every output state (``"chebyshev"``, ``"krylov"``; the other
        methods work at machine precision). The infidelity is then below ``tol²`` plus
        round-off (~1e-14).
    krylov_dim : int, default=30
        Lanczos basis size per step.
    check_hermitian : bool, default=True
        Run a randomised test ``⟨u|Hv⟩ = ⟨Hu|v⟩`` (two extra products) first.
    threads : int or None, default=1
        BLAS thread limit while running (``None`` leaves it unchanged).

    Returns
    -------
    ndarray of shape (n_times, dim), complex128
        Row ``k`` is ``ψ(times[k])``.

    Notes
    -----
    Chebyshev: Tal-Ezer and Kosloff, J. Chem. Phys. 81, 3967 (1984). The spectrum is bracketed
    by 30 Lanczos steps from a fixed-seed random vector (Ritz values widened by their
    residuals and 1 %); about ``(E_max − E_min) t_max / 2 + O(t_max^{1/3})`` products with
    ``H`` serve all output times, combined by real matrix products; a real ``H`` keeps all
    vectors real. Krylov propagation: Hochbruck and Lubich, SIAM J. Numer. Anal. 34, 1911
    (1997), with the error estimate of Saad, SIAM J. Numer. Anal. 29, 209 (1992), eq. (5.8);
    each Lanczos basis serves every output time inside its step.

    Examples
    --------
    >>> import numpy as np
    >>> from nqp.quantum.hamiltonian import pauli_sum
    >>> H = pauli_sum(1, [(1.0, "X0")])           # Rabi oscillation
    >>> psi = evolve(H, [1.0, 0.0], [0.0, np.pi / 4, np.pi / 2])
    >>> np.round(np.abs(psi) ** 2, 6)
    array([[1. , 0. ],
           [0.5, 0.5],
           [0. , 1. ]])
    """
    validate_params(
        "evolve",
        {"method": method, "tol": tol, "krylov_dim": krylov_dim, "threads": threads},
        {
            "method": [Options(("auto", "chebyshev", "krylov", "expm_multiply", "eigh"))],
            "tol": [Interval("real", 0, None, closed="neither")],
            "krylov_dim": [Interval("int", 2, None)],
            "threads": [Interval("int", 1, None), None],
        },
    )
    op = _as_operator(H)
    psi = _check_state(psi0, op.dim)
    t = _check_times(times)
    if method == "auto":
        method = "eigh" if op.dim <= DENSE_DIM else "chebyshev"
    with _limit_threads(threads):
        if check_hermitian:
            _check_hermitian(op, np.random.default_rng(0))
        if method == "chebyshev":
            return _chebyshev_evolve(op, psi, t, tol, 0)[0]
        if method == "krylov":
            return _krylov_evolve(op, psi, t, tol, krylov_dim)[0]
        if method == "eigh":
            E, U = sla.eigh(_dense(op))
            c = U.conj().T @ psi
            return (np.exp(-1j * np.outer(t, E)) * c) @ U.T
        return _expm_multiply_evolve(op, psi, t)


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


# --------------------------------------------------------------------------- ground states


def ground_state(
    H: Operator,
    *,
    tol: float = 1e-8,
    v0: ArrayLike | None = None,
    seed: int | None = 0,
    max_iter: int | None = None,
    ncv: int | None = None,
    method: str = "auto",
    raise_on_failure: bool = True,
    threads: int | None = 1,
) -> GroundState:
    """Lowest eigenpair of a Hermitian Hamiltonian, with its eigen-residual.

    Parameters
    ----------
    H : sparse matrix, ndarray or LinearOperator of shape (dim, dim)
        Hermitian; real symmetric input is solved in real float64 arithmetic.
    tol : float, default=1e-8
        Required residual ``‖Hψ − Eψ‖₂`` (energy units).
    v0 : array_like of shape (dim,), optional
        Lanczos start vector. Default: drawn from ``numpy.random.default_rng(seed)``;
        for a real matrix whose off-diagonal entries are all ``<= 0`` (stoquastic, e.g. the
        TFIM with ``h >= 0``) the ground state can be chosen non-negative (Perron–Frobenius),
        so the start is ``1 + U[0, 1)`` noise: large overlap, never orthogonal to it.
        Otherwise standard normal.
    seed : int or None, default=0
        Seed of the start vector.
    max_iter : int, optional
        ARPACK restart limit (default ``10 * dim``).
    ncv : int, optional
        Lanczos vectors kept by ARPACK (default 20, capped at ``dim - 1``).
    method : {"auto", "lanczos", "dense"}, default="auto"
        ``"lanczos"``: ``scipy.sparse.linalg.eigsh(k=1, which="SA")`` (ARPACK implicitly
        restarted Lanczos); ``"dense"``: ``scipy.linalg.eigh`` of the full matrix.
        ``"auto"``: dense for ``dim <= 256``.
    raise_on_failure : bool, default=True
        Raise :class:`~nqp.exceptions.ConvergenceError` when the residual exceeds ``tol``;
        if False, return the best state with ``converged=False``.
    threads : int or None, default=1
        BLAS thread limit while running (``None`` leaves it unchanged).

    Returns
    -------
    GroundState

    Notes
    -----
    ARPACK stops on ``‖r‖ <= tol_A |θ|``; it is called with ``tol_A = tol / ‖H‖`` (Gershgorin
    bound) and, should the residual computed afterwards still exceed ``tol``, restarted once
    from its own vector with a tighter ``tol_A``.

    Examples
    --------
    >>> from nqp.quantum.hamiltonian import transverse_field_ising
    >>> gs = ground_state(transverse_field_ising(2, coupling=1.0, field=0.5))
    >>> round(gs.energy, 10), gs.converged   # -sqrt(J² + 4h²)
    (-1.4142135624, True)
    """
    validate_params(
        "ground_state",
        {
            "tol": tol,
            "seed": seed,
            "max_iter": max_iter,
            "ncv": ncv,
            "method": method,
            "threads": threads,
        },
        {
            "tol": [Interval("real", 0, None, closed="neither")],
            "seed": [Interval("int", 0, None), None],
            "max_iter": [Interval("int", 1, None), None],
            "ncv": [Interval("int", 3, None), None],
            "method": [Options(("auto", "lanczos", "dense"))],
            "threads": [Interval("int", 1, None), None],
        },
    )
    op = _as_operator(H)
    if method == "auto":
        method = "dense" if op.dim <= DENSE_DIM else "lanczos"
    with _limit_threads(threads):
        if method == "dense" or op.dim < 3:
            _, U = sla.eigh(_dense(op), subset_by_index=[0, 0])
            psi = _fix_phase(U[:, 0])
            energy, res = _residual(op, psi)
            iterations = 0
        else:
            psi, iterations = _lanczos(op, tol, v0, seed, max_iter, ncv)
            energy, res = _residual(op, psi)
    converged = res <= tol
    if not converged and raise_on_failure:
        raise ConvergenceError(
            f"ground_state: residual ||H psi - E psi|| = {res:.3g} exceeds tol={tol:g} "
            f"after {iterations} products."
        )
    return GroundState(float(energy), psi, float(res), int(iterations), bool(converged))


def _default_v0(op: _Op, seed: int | None) -> NDArray[Any]:
    rng = np.random.default_rng(seed)
    M = op.matrix
    if op.real and sp.issparse(M):
        offdiag_max = _offdiag_max(M.indptr, M.indices, M.data)
        if offdiag_max <= 0.0:
            return 1.0 + rng.random(op.dim)
    return rng.standard_normal(op.dim)


@numba.njit(cache=True)
def _offdiag_max(indptr, indices, data):  # pragma: no cover - compiled
    best = -np.inf
    for i in range(indptr.shape[0] - 1):
        for k in range(indptr[i], indptr[i + 1]):
            if indices[k] != i and data[k] > best:
                best = data[k]
    return best


def _lanczos(
    op: _Op,
    tol: float,
    v0: ArrayLike | None,
    seed: int | None,
    max_iter: int | None,
    ncv: int | None,
) -> tuple[NDArray[Any], int]:
    dtype = np.float64 if op.real else np.complex128
    if v0 is None:
        start = _default_v0(op, seed).astype(dtype)
    else:
        start = check_finite_array(v0, name="v0", ndim=1, dtype=dtype)
        if start.shape != (op.dim,):
            raise InvalidInputError(f"v0 has shape {start.shape}, expected ({op.dim},).")
    count = [0]

    def matvec(x: NDArray[Any]) -> NDArray[Any]:
        count[0] += 1
        return op.matvec(x.reshape(-1))

    A = spla.LinearOperator((op.dim, op.dim), matvec=matvec, dtype=dtype)
    bound = _gershgorin(op)
    if not math.isfinite(bound) or bound <= 0:
        Hs = op.matvec(start)
        bound = max(float(np.linalg.norm(Hs) / np.linalg.norm(start)), 1.0)
    arpack_tol = tol / max(bound, 1.0)
    n_cv = min(ncv if ncv is not None else 20, op.dim - 1)
    psi = start
    for _attempt in range(3):
        try:
            _, vecs = spla.eigsh(
                A, k=1, which="SA", v0=psi, tol=arpack_tol, maxiter=max_iter, ncv=n_cv
            )
            psi = vecs[:, 0]
        except spla.ArpackNoConvergence as exc:
            if exc.eigenvectors.shape[1] == 0:
                return psi / np.linalg.norm(psi), count[0]
            psi = exc.eigenvectors[:, 0]
            break
        psi = psi / np.linalg.norm(psi)
        _, res = _residual(op, psi)
        if res <= tol:
            break
        arpack_tol *= min(0.5 * tol / res, 0.5)
    return _fix_phase(psi / np.linalg.norm(psi)), count[0]


def imaginary_time_ground_state(
    H: Operator,
    psi0: ArrayLike | None = None,
    *,
    dtau: float = 0.5,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    seed: int | None = 0,
    raise_on_failure: bool = True,
    threads: int | None = 1,
) -> GroundState:
    """Ground state by imaginary-time evolution ``ψ ← exp(-H·dτ) ψ / ‖·‖``.

    Stops when the eigen-residual ``‖Hψ − Eψ‖`` (``E = ⟨ψ|H|ψ⟩``) is ``<= tol``; the state's
    error then falls like ``exp(-gap·dτ)`` per step. Each step applies the exact propagator
    (Lanczos with the error estimate of :func:`evolve`, to ``tol/10``), so ``dτ`` only sets how
    often the residual is checked, not the accuracy.

    Parameters
    ----------
    H : sparse matrix, ndarray or LinearOperator of shape (dim, dim)
        Hermitian Hamiltonian.
    psi0 : array_like of shape (dim,), optional
        Start state; default a seeded random vector (it must overlap the ground state).
    dtau : float, default=0.5
        Imaginary-time step (1/energy units).
    tol : float, default=1e-8
        Residual tolerance (energy units).
    max_iter : int, default=10000
        Maximum number of steps.
    seed : int or None, default=0
        Seed of the default start state.
    raise_on_failure : bool, default=True
        Raise :class:`~nqp.exceptions.ConvergenceError` after ``max_iter`` steps without
        convergence; if False, return with ``converged=False``.
    threads : int or None, default=1
        BLAS thread limit while running.

    Returns
    -------
    GroundState
        ``iterations`` counts imaginary-time steps.

    Examples
    --------
    >>> from nqp.quantum.hamiltonian import transverse_field_ising
    >>> H = transverse_field_ising(3)
    >>> gs = imaginary_time_ground_state(H, dtau=1.0, tol=1e-9)
    >>> gs.converged, abs(gs.energy - ground_state(H).energy) < 1e-12
    (True, True)
    """
    validate_params(
        "imaginary_time_ground_state",
        {"dtau": dtau, "tol": tol, "max_iter": max_iter, "seed": seed, "threads": threads},
        {
            "dtau": [Interval("real", 0, None, closed="neither")],
            "tol": [Interval("real", 0, None, closed="neither")],
            "max_iter": [Interval("int", 1, None)],
            "seed": [Interval("int", 0, None), None],
            "threads": [Interval("int", 1, None), None],
        },
    )
    op = _as_operator(H)
    if psi0 is None:
        rng = np.random.default_rng(seed)
        psi = rng.standard_normal(op.dim) + 0j
        psi /= np.linalg.norm(psi)
    else:
        psi = _check_state(psi0, op.dim)
    step = np.array([dtau])
    with _limit_threads(threads):
        energy, res = _residual(op, psi)
        it = 0
        while res > tol and it < max_iter:
            states, _ = _krylov_evolve(op, psi, step, 0.1 * tol, 30, sign=-1.0)
            psi = states[0]
            psi /= np.linalg.norm(psi)
            energy, res = _residual(op, psi)
            it += 1
    converged = res <= tol
    if not converged and raise_on_failure:
        raise ConvergenceError(
            f"imaginary_time_ground_state: residual {res:.3g} > tol={tol:g} after {it} steps "
            f"of dtau={dtau:g}."
        )
    if op.real and np.abs(psi.imag).max() <= 1e-14 * np.abs(psi.real).max():
        psi = psi.real.copy()
    return GroundState(float(energy), _fix_phase(psi), float(res), it, bool(converged))


# --------------------------------------------------------------------------- adiabatic


def adiabatic_evolve(
    H0: Operator,
    H1: Operator,
    psi0: ArrayLike,
    *,
    total_time: float,
    n_steps: int = 200,
    schedule: Callable[[NDArray[np.float64]], NDArray[np.float64]] | ArrayLike | None = None,
    target: ArrayLike | None = None,
    tol: float = 1e-10,
    threads: int | None = 1,
) -> AdiabaticResult:
    """Evolve under ``H(s) = (1 − s) H0 + s H1`` as ``s`` goes from 0 to 1.

    The interval ``[0, T]`` is cut into ``n_steps`` equal steps; on step ``k`` the
    Hamiltonian is frozen at the midpoint ``s_k+½ = (s(t_k) + s(t_k+1)) / 2`` and the state
    propagated exactly by ``exp(-i H(s_k+½) Δt)`` (Lanczos, as :func:`evolve`). This midpoint
    (exponential midpoint) rule is second order in ``Δt``.

    Parameters
    ----------
    H0, H1 : sparse matrix, ndarray or LinearOperator of shape (dim, dim)
        Hermitian start and end Hamiltonians.
    psi0 : array_like of shape (dim,)
        Initial state, usually the ground state of ``H0``.
    total_time : float
        ``T`` (1/energy units); adiabaticity needs ``T ≫ 1 / gap²``.
    n_steps : int, default=200
        Number of piecewise-constant steps.
    schedule : callable, array_like of shape (n_steps + 1,), or None
        ``s(u)`` for ``u = t / T`` in [0, 1] (vectorised callable), or the values of ``s`` at
        the step boundaries; must start at 0 and end at 1. Default: linear ``s = u``.
    target : array_like of shape (dim,), optional
        State whose overlap ``|⟨target|ψ⟩|²`` is traced (e.g. the ground state of ``H1``).
    tol : float, default=1e-10
        Propagation error target per step (see :func:`evolve`).
    threads : int or None, default=1
        BLAS thread limit while running.

    Returns
    -------
    AdiabaticResult

    Examples
    --------
    >>> import numpy as np
    >>> from nqp.quantum.hamiltonian import pauli_sum
    >>> H0, H1 = pauli_sum(1, [(-1.0, "X0")]), pauli_sum(1, [(-1.0, "Z0")])
    >>> r = adiabatic_evolve(H0, H1, [1, 1], total_time=50.0, target=[1, 0])
    >>> bool(r.overlap[-1] > 0.999), round(float(r.energy[0]), 12)
    (True, -1.0)
    """
    validate_params(
        "adiabatic_evolve",
        {"total_time": total_time, "n_steps": n_steps, "tol": tol, "threads": threads},
        {
            "total_time": [Interval("real", 0, None, closed="neither")],
            "n_steps": [Interval("int", 1, None)],
            "tol": [Interval("real", 0, None, closed="neither")],
            "threads": [Interval("int", 1, None), None],
        },
    )
    op0 = _as_operator(H0, "H0")
    op1 = _as_operator(H1, "H1")
    if op0.dim != op1.dim:
        raise InvalidInputError(f"H0 acts on dimension {op0.dim} but H1 on {op1.dim}.")
    dim = op0.dim
    psi = _check_state(psi0, dim)
    tgt = None if target is None else _check_state(target, dim, "target")
    u = np.linspace(0.0, 1.0, n_steps + 1)
    if schedule is None:
        s = u
    elif callable(schedule):
        s = check_finite_array(schedule(u), name="schedule(u)", ndim=1)
    else:
        s = check_finite_array(schedule, name="schedule", ndim=1)
    if s.shape != (n_steps + 1,):
        raise InvalidInputError(f"schedule gives shape {s.shape}, expected ({n_steps + 1},).")
    if abs(s[0]) > 1e-12 or abs(s[-1] - 1.0) > 1e-12:
        raise InvalidInputError(f"schedule must go from 0 to 1, got {s[0]:g} to {s[-1]:g}.")
    times = total_time * u
    dt = total_time / n_steps

    def make(sk: float) -> _Op:
        def matvec(x: NDArray[Any]) -> NDArray[Any]:
            y = op0.matvec(x) * (1.0 - sk)
            y += sk * op1.matvec(x)
            return y

        return _Op(dim, op0.real and op1.real, matvec, None)

    def energy_of(sk: float, v: NDArray[np.complex128]) -> float:
        return float(np.vdot(v, make(sk).matvec(v)).real)

    energy = np.empty(n_steps + 1)
    overlap = None if tgt is None else np.empty(n_steps + 1)
    with _limit_threads(threads):
        _check_hermitian(op0, np.random.default_rng(0), "H0")
        _check_hermitian(op1, np.random.default_rng(1), "H1")
        for k in range(n_steps + 1):
            energy[k] = energy_of(float(s[k]), psi)
            if overlap is not None:
                overlap[k] = abs(np.vdot(tgt, psi)) ** 2
            if k == n_steps:
                break
            mid = 0.5 * (s[k] + s[k + 1])
            states, _ = _krylov_evolve(make(float(mid)), psi, np.array([dt]), tol / n_steps, 30)
            psi = states[0]
    return AdiabaticResult(psi, times, s, energy, overlap)


# --------------------------------------------------------------------------- classical


def ising_minimum(model: IsingModel, *, tie_tol: float = 1e-9) -> IsingMinimum:
    """Exact minimum of a classical Ising model by enumerating all ``2^n`` energies.

    Parameters
    ----------
    model : IsingModel
        At most 26 spins (``2^26`` float64 energies are 512 MiB).
    tie_tol : float, default=1e-9
        Configurations within ``tie_tol · max(1, |E_min|)`` of the minimum are reported as
        ties (exactly degenerate energies may differ by rounding).

    Returns
    -------
    IsingMinimum

    Examples
    --------
    >>> from nqp.quantum.ising import IsingModel
    >>> m = IsingModel.from_arrays(None, [[0.0, -1.0], [0.0, 0.0]])   # ferromagnetic pair
    >>> r = ising_minimum(m)
    >>> r.energy, r.spins.tolist(), r.gap
    (-1.0, [[1, 1], [-1, -1]], 2.0)
    """
    validate_params(
        "ising_minimum",
        {"tie_tol": tie_tol},
        {"tie_tol": [Interval("real", 0, None, closed="left")]},
    )
    if not isinstance(model, IsingModel):
        raise InvalidInputError(f"model must be an IsingModel, got {type(model).__name__}.")
    if model.n > 26:
        raise InvalidInputError(
            f"ising_minimum enumerates 2^n states; n={model.n} > 26 is too large."
        )
    energies = ising_diagonal(model)
    e_min = float(energies.min())
    cut = e_min + tie_tol * max(1.0, abs(e_min))
    tied = energies <= cut
    idx = np.flatnonzero(tied).astype(np.int64)
    rest = energies[~tied]
    gap = float(rest.min() - e_min) if rest.size else math.inf
    n = model.n
    bits = (idx[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
    spins = (1 - 2 * bits).astype(np.int8)
    return IsingMinimum(e_min, idx, spins, gap)
