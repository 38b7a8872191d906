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

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numba
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, Options, check_finite_array, validate_params
from nqp.exceptions import ConvergenceError, InvalidInputError
from nqp.quantum.hamiltonian import BitFlipOperator, ising_diagonal
from nqp.quantum.ising import IsingModel
from nqp.quantum.propagators import (
    Operator,
    _as_operator,
    _chebyshev_evolve,
    _check_hermitian,
    _dense,
    _expm_multiply_evolve,
    _gershgorin,
    _krylov_evolve,
    _lanczos_ground,
    _limit_threads,
    _Op,
    _residual,
)

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


def _fix_phase(psi: NDArray[Any]) -> NDArray[Any]:
    k = int(np.argmax(np.abs(psi)))
    if psi.dtype.kind == "c":
        return psi * (abs(psi[k]) / psi[k])
    return psi if psi[k] >= 0 else -psi


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
        Hermitian; real symmetric input is solved in real float64 arithmetic. A
        :class:`~nqp.quantum.hamiltonian.BitFlipOperator` (e.g. from
        :func:`~nqp.quantum.hamiltonian.transverse_field_ising_operator`) is applied
        matrix-free, the fastest form for large registers.
    tol : float, default=1e-8
        Required residual ``‖Hψ − Eψ‖₂`` (energy units).
    v0 : array_like of shape (dim,), optional
        Lanczos start vector. Default: for a real operator whose off-diagonal entries are all
        ``<= 0`` (stoquastic, e.g. the TFIM with ``h >= 0``; checked on CSR matrices and
        ``BitFlipOperator``) the ground state can be chosen non-negative (Perron–Frobenius),
        so the start is the uniform vector: never orthogonal to it, and invariant under every
        basis permutation commuting with ``H`` (spin flip, reflections), so the Lanczos
        space stays in the ground state's symmetry sector and the gap that sets the
        convergence rate is the one inside that sector. Otherwise standard normal from
        ``numpy.random.default_rng(seed)``.
    seed : int or None, default=0
        Seed of the random start vector.
    max_iter : int, optional
        ``"lanczos"``: Lanczos steps per pass (default ``min(dim, 5000)``); ``"arpack"``:
        restart limit (default ``10 * dim``).
    ncv : int, optional
        Lanczos vectors kept by ARPACK (``"arpack"`` only; default 20, capped at ``dim - 1``).
    method : {"auto", "lanczos", "arpack", "dense"}, default="auto"
        ``"lanczos"``: unrestarted two-pass Lanczos, three vectors of storage (see Notes);
        ``"arpack"``: ``scipy.sparse.linalg.eigsh(k=1, which="SA")`` (implicitly restarted
        Lanczos); ``"dense"``: ``scipy.linalg.eigh`` of the full matrix. ``"auto"``: dense for
        ``dim <= 256``, ``"lanczos"`` above.
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
    ``"lanczos"`` stops the recurrence when the Ritz estimate ``β_k |s_k|`` of the lowest Ritz
    pair is below ``tol / 2`` and rebuilds the Lanczos vectors in a second pass to form the Ritz
    vector (Cullum and Willoughby, *Lanczos Algorithms for Large Symmetric Eigenvalue
    Computations*, 1985); no reorthogonalisation, so a step costs one product and a few vector
    updates, against ARPACK's ``O(ncv · dim)`` reorthogonalisation per product. Should the
    residual computed afterwards exceed ``tol``, it restarts from its vector (three rounds at
    most). ARPACK stops on ``‖r‖ <= tol_A |θ|``; it is called with ``tol_A = tol / ‖H‖``
    (Gershgorin bound) and, should the residual still exceed ``tol``, restarted once from its
    own vector with a tighter ``tol_A``.

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
            "method": [Options(("auto", "lanczos", "arpack", "dense"))],
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
            start = _start_vector(op, v0, seed)
            if method == "lanczos":
                steps = max_iter if max_iter is not None else min(op.dim, 5000)
                psi, iterations = _lanczos_ground(op, start, tol, steps)
                psi = _fix_phase(psi)
            else:
                psi, iterations = _lanczos(op, start, tol, max_iter, ncv)
            energy, res = _residual(op, psi)
    converged = res <= tol
    if not converged and raise_on_failure:
        raise ConvergenceError(
            f"ground_state: residual ||H psi - E psi|| = {res:.3g} exceeds tol={tol:g} "
            f"after {iterations} products."
        )
    return GroundState(float(energy), psi, float(res), int(iterations), bool(converged))


def _start_vector(op: _Op, v0: ArrayLike | None, seed: int | None) -> NDArray[Any]:
    dtype = np.float64 if op.real else np.complex128
    if v0 is not None:
        start = check_finite_array(v0, name="v0", ndim=1, dtype=dtype)
        if start.shape != (op.dim,):
            raise InvalidInputError(f"v0 has shape {start.shape}, expected ({op.dim},).")
        if not np.any(start):
            raise InvalidInputError("v0 is the zero vector.")
        return start
    M = op.matrix
    if op.real and (
        (isinstance(M, BitFlipOperator) and M.is_stoquastic)
        or (sp.issparse(M) and _offdiag_max(M.indptr, M.indices, M.data) <= 0.0)
    ):
        return np.ones(op.dim)
    return np.random.default_rng(seed).standard_normal(op.dim).astype(dtype)


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
    start: NDArray[Any],
    tol: float,
    max_iter: int | None,
    ncv: int | None,
) -> tuple[NDArray[Any], int]:
    """ARPACK ``eigsh(k=1, which="SA")`` from ``start`` to residual ``tol``."""
    dtype = start.dtype
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
        # float64 + 0j is complex128 (numpy's stubs say only ``complexfloating``)
        psi = cast(NDArray[np.complex128], rng.standard_normal(op.dim) + 0j)
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
    vec: NDArray[np.complex128] | NDArray[np.float64] = psi
    if op.real and np.abs(psi.imag).max() <= 1e-14 * np.abs(psi.real).max():
        vec = psi.real.copy()
    return GroundState(float(energy), _fix_phase(vec), float(res), it, bool(converged))


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
                assert tgt is not None  # overlap is allocated exactly when a target is given
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
