"""Evolution and ground states checked against free fermions, dense expm and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from nqp.exceptions import ConvergenceError, InvalidInputError, InvalidParameterError
from nqp.quantum.evolution import (
    AdiabaticResult,
    GroundState,
    adiabatic_evolve,
    evolve,
    ground_state,
    imaginary_time_ground_state,
    ising_minimum,
)
from nqp.quantum.hamiltonian import pauli_sum, transverse_field_ising
from nqp.quantum.ising import IsingModel


def free_fermion_ground_energy(J: np.ndarray, h: np.ndarray) -> float:
    """Open TFIM ``-Σ J_i Z_i Z_i+1 - Σ h_i X_i``: ``E0 = -Σ σ_k`` over the singular values of
    the n×n bidiagonal matrix with ``h`` on the diagonal and ``J`` on the superdiagonal
    (Jordan–Wigner; Pfeuty 1970). n = 2 gives -sqrt(J² + 4h²)."""
    M = np.diag(h) + np.diag(J, k=1)
    return -float(np.linalg.svd(M, compute_uv=False).sum())


def infidelity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - |⟨a|b⟩|²`` row by row, for normalised rows."""
    return 1.0 - np.abs(np.einsum("ij,ij->i", a.conj(), b)) ** 2


def test_free_fermion_formula_two_sites():
    assert free_fermion_ground_energy(np.array([0.7]), np.array([0.4, 0.4])) == pytest.approx(
        -np.sqrt(0.7**2 + 4 * 0.4**2), abs=1e-14
    )


@pytest.mark.parametrize("n", range(2, 13))
def test_uniform_tfim_ground_energy_equals_free_fermions(n):
    J, h = 1.0, 0.8
    gs = ground_state(transverse_field_ising(n, coupling=J, field=h), tol=1e-8)
    assert isinstance(gs, GroundState)
    assert gs.converged
    assert gs.residual <= 1e-8
    exact = free_fermion_ground_energy(np.full(n - 1, J), np.full(n, h))
    assert gs.energy == pytest.approx(exact, abs=1e-10)
    assert np.linalg.norm(gs.state) == pytest.approx(1.0, abs=1e-12)
    assert gs.state.dtype == np.float64


@pytest.mark.parametrize("n", [5, 9, 11])
def test_disordered_tfim_ground_energy_equals_free_fermions(n, rng):
    J, h = rng.uniform(0.2, 1.5, size=n - 1), rng.uniform(0.2, 1.5, size=n)
    gs = ground_state(transverse_field_ising(n, coupling=J, field=h), method="lanczos", seed=3)
    assert gs.energy == pytest.approx(free_fermion_ground_energy(J, h), abs=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("n", [16, 20])
def test_large_critical_tfim_ground_energy_equals_free_fermions(n):
    gs = ground_state(transverse_field_ising(n), tol=1e-8)
    assert gs.converged
    exact = free_fermion_ground_energy(np.ones(n - 1), np.ones(n))
    assert gs.energy == pytest.approx(exact, abs=1e-10)


def test_ground_state_residual_is_recomputed_and_phase_fixed(rng):
    H = transverse_field_ising(9, coupling=rng.normal(size=8), field=rng.normal(size=9))
    gs = ground_state(H, method="lanczos")
    r = H @ gs.state - gs.energy * gs.state
    assert gs.residual == pytest.approx(np.linalg.norm(r), rel=1e-6, abs=1e-15)
    assert gs.state[np.argmax(np.abs(gs.state))] > 0
    dense = ground_state(H, method="dense")
    assert dense.energy == pytest.approx(gs.energy, abs=1e-10)
    assert abs(dense.state @ gs.state) == pytest.approx(1.0, abs=1e-10)


def test_ground_state_of_complex_hermitian_and_linear_operator(rng):
    n = 9
    terms = [(rng.normal(), f"Y{i} Z{(i + 1) % n}") for i in range(n)]
    terms += [(rng.normal(), f"X{i}") for i in range(n)] + [(0.4, "Y0")]
    H = pauli_sum(n, terms)
    assert H.dtype == np.complex128
    exact = np.linalg.eigvalsh(H.toarray())[0]
    gs = ground_state(H, method="lanczos")
    assert gs.energy == pytest.approx(exact, abs=1e-10)
    assert gs.state.dtype == np.complex128
    op = spla.aslinearoperator(H)
    assert ground_state(op).energy == pytest.approx(exact, abs=1e-10)


def test_ground_state_reports_and_raises_non_convergence():
    H = transverse_field_ising(12)
    with pytest.raises(ConvergenceError, match="exceeds tol"):
        ground_state(H, tol=1e-12, max_iter=1, ncv=4)
    gs = ground_state(H, tol=1e-12, max_iter=1, ncv=4, raise_on_failure=False)
    assert not gs.converged
    assert gs.residual > 1e-12


def test_ground_state_user_v0_and_validation():
    H = transverse_field_ising(10)
    ref = ground_state(H)
    gs = ground_state(H, v0=np.ones(2**10))
    assert gs.energy == pytest.approx(ref.energy, abs=1e-10)
    with pytest.raises(InvalidInputError, match="v0 has shape"):
        ground_state(H, v0=np.ones(5), method="lanczos")
    with pytest.raises(InvalidParameterError, match="'tol' parameter of ground_state"):
        ground_state(H, tol=0.0)
    with pytest.raises(InvalidInputError, match="square"):
        ground_state(np.ones((3, 4)))


# ----------------------------------------------------------------------------- real time


def _random_problem(rng, n, complex_h):
    H = transverse_field_ising(
        n,
        coupling=rng.normal(size=n - 1),
        field=rng.normal(size=n),
        longitudinal=rng.normal(size=n),
    )
    if complex_h:
        H = H + pauli_sum(n, [(0.3, "Y0 Z1"), (0.5, "X0 Y2"), (0.2, "Y1")])
    psi0 = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return H, psi0 / np.linalg.norm(psi0)


@pytest.mark.parametrize("method", ["chebyshev", "krylov", "expm_multiply", "eigh"])
@pytest.mark.parametrize("complex_h", [False, True])
def test_evolution_matches_dense_expm_at_many_times(method, complex_h, rng):
    n = 7
    H, psi0 = _random_problem(rng, n, complex_h)
    times = np.concatenate([[0.0, 0.0], np.sort(rng.uniform(0, 6, size=40)), [6.0]])
    out = evolve(H, psi0, times, method=method)
    assert out.shape == (times.size, 2**n)
    assert out.dtype == np.complex128
    Hd = H.toarray()
    ref = np.array([sla.expm(-1j * Hd * t) @ psi0 for t in times])
    assert infidelity(ref, out).max() <= 1e-9
    assert np.linalg.norm(out - ref, axis=1).max() <= 1e-8


@pytest.mark.parametrize("method", ["chebyshev", "krylov", "expm_multiply"])
def test_uniform_grid_with_real_initial_state(method):
    n = 9
    H = transverse_field_ising(n, coupling=1.0, field=0.7, longitudinal=0.1)
    psi0 = np.zeros(2**n)
    psi0[0] = 1.0
    times = np.linspace(0.0, 5.0, 60)
    out = evolve(H, psi0, times, method=method)
    E, U = np.linalg.eigh(H.toarray())
    ref = (np.exp(-1j * np.outer(times, E)) * (U.T @ psi0)) @ U.T
    assert infidelity(ref, out).max() <= 1e-9


@pytest.mark.parametrize("method", ["chebyshev", "krylov"])
def test_energy_is_conserved(method, rng):
    n = 10
    H = transverse_field_ising(n, coupling=rng.normal(size=n - 1), field=rng.normal(size=n))
    psi0 = rng.normal(size=2**n)
    psi0 /= np.linalg.norm(psi0)
    out = evolve(H, psi0, np.linspace(0, 20, 50), method=method)
    energy = np.einsum("ij,ij->i", out.conj(), (H @ out.T).T).real
    np.testing.assert_allclose(energy, energy[0], atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-10)


def test_single_qubit_rabi_closed_form():
    # H = (ω/2) X: P(|1>) = sin²(ωt/2)
    omega = 1.7
    t = np.linspace(0, 10, 33)
    for method in ("chebyshev", "krylov", "eigh", "expm_multiply"):
        out = evolve(pauli_sum(1, [(omega / 2, "X0")]), [1.0, 0.0], t, method=method)
        np.testing.assert_allclose(np.abs(out[:, 1]) ** 2, np.sin(omega * t / 2) ** 2, atol=1e-10)


def test_looser_tol_is_less_accurate_but_within_tol(rng):
    H, psi0 = _random_problem(rng, 8, False)
    t = np.linspace(0, 8, 20)
    ref = evolve(H, psi0, t, method="eigh")
    for tol in (1e-4, 1e-7):
        err = np.linalg.norm(evolve(H, psi0, t, method="chebyshev", tol=tol) - ref, axis=1)
        assert err.max() <= tol


def test_evolve_rejects_bad_input():
    H = transverse_field_ising(3)
    psi = np.ones(8)
    with pytest.raises(InvalidInputError, match="non-decreasing"):
        evolve(H, psi, [1.0, 0.5])
    with pytest.raises(InvalidInputError, match="non-negative"):
        evolve(H, psi, [-1.0])
    with pytest.raises(InvalidInputError, match=r"psi0 has shape \(4,\)"):
        evolve(H, np.ones(4), [1.0])
    with pytest.raises(InvalidInputError, match="zero vector"):
        evolve(H, np.zeros(8), [1.0])
    with pytest.raises(InvalidParameterError, match="'method' parameter of evolve"):
        evolve(H, psi, [1.0], method="rk4")
    with pytest.raises(InvalidInputError, match="not Hermitian"):
        evolve(pauli_sum(2, [(1j, "X0")]), np.ones(4), [1.0], method="krylov")


# ----------------------------------------------------------------------------- imaginary time


def test_imaginary_time_converges_to_lanczos_ground_state(rng):
    n = 8
    H = transverse_field_ising(n, coupling=1.0, field=1.3)
    ref = ground_state(H, tol=1e-10)
    gs = imaginary_time_ground_state(H, dtau=0.5, tol=1e-8, seed=2)
    assert gs.converged
    assert gs.residual <= 1e-8
    assert gs.iterations > 1
    assert gs.energy == pytest.approx(ref.energy, abs=1e-10)
    assert abs(np.vdot(ref.state, gs.state)) ** 2 == pytest.approx(1.0, abs=1e-9)


def test_imaginary_time_reports_too_few_iterations():
    H = transverse_field_ising(8, coupling=1.0, field=1.3)
    gs = imaginary_time_ground_state(H, dtau=0.1, tol=1e-8, max_iter=3, raise_on_failure=False)
    assert not gs.converged
    assert gs.iterations == 3
    assert gs.residual > 1e-8
    with pytest.raises(ConvergenceError, match="after 3 steps"):
        imaginary_time_ground_state(H, dtau=0.1, tol=1e-8, max_iter=3)


# ----------------------------------------------------------------------------- adiabatic


def test_adiabatic_slow_schedule_reaches_ground_state(rng):
    n = 4
    # a random Ising problem with a unique ground state plus fields to keep the gap open
    J = np.triu(rng.normal(size=(n, n)), k=1)
    model = IsingModel.from_arrays(rng.normal(scale=0.5, size=n), J)
    from nqp.quantum.hamiltonian import ising_hamiltonian

    H1 = ising_hamiltonian(model)
    H0 = pauli_sum(n, [(-1.0, f"X{i}") for i in range(n)])
    psi0 = np.full(2**n, 2 ** (-n / 2))  # ground state of -Σ X
    target = ground_state(H1, method="dense").state
    res = adiabatic_evolve(H0, H1, psi0, total_time=60.0, n_steps=300, target=target)
    assert isinstance(res, AdiabaticResult)
    assert res.overlap[-1] > 0.99
    assert res.energy[0] == pytest.approx(-n, abs=1e-12)
    assert res.energy[-1] == pytest.approx(ising_minimum(model).energy, abs=0.05)
    assert res.s[0] == 0.0
    assert res.s[-1] == 1.0
    # too fast a sweep does not (sudden limit keeps the initial state)
    fast = adiabatic_evolve(H0, H1, psi0, total_time=0.05, n_steps=10, target=target)
    assert fast.overlap[-1] < 0.5


def test_adiabatic_schedule_forms_and_validation():
    H0 = pauli_sum(1, [(-1.0, "X0")])
    H1 = pauli_sum(1, [(-1.0, "Z0")])
    psi0 = np.array([1.0, 1.0])
    a = adiabatic_evolve(H0, H1, psi0, total_time=5.0, n_steps=20, schedule=lambda u: u**2)
    b = adiabatic_evolve(
        H0, H1, psi0, total_time=5.0, n_steps=20, schedule=np.linspace(0, 1, 21) ** 2
    )
    np.testing.assert_allclose(a.state, b.state, atol=1e-12)
    assert a.overlap is None
    with pytest.raises(InvalidInputError, match="from 0 to 1"):
        adiabatic_evolve(H0, H1, psi0, total_time=1.0, n_steps=2, schedule=[0.0, 0.5, 0.9])
    with pytest.raises(InvalidInputError, match="dimension"):
        adiabatic_evolve(H0, pauli_sum(2, [(1.0, "Z0")]), psi0, total_time=1.0)


# ----------------------------------------------------------------------------- classical


@pytest.mark.parametrize("n", [1, 3, 8])
def test_ising_minimum_equals_brute_force(n, rng):
    J = np.triu(rng.normal(size=(n, n)), k=1)
    model = IsingModel.from_arrays(rng.normal(size=n), J, offset=0.3)
    configs = np.array(list(itertools.product([1, -1], repeat=n)))
    energies = model.energy(configs)
    res = ising_minimum(model)
    assert res.energy == pytest.approx(energies.min(), abs=1e-12)
    assert res.degeneracy == 1
    np.testing.assert_array_equal(res.spins[0], configs[np.argmin(energies)])
    assert res.gap == pytest.approx(np.sort(energies)[1] - energies.min(), abs=1e-12)


def test_ising_minimum_reports_ties():
    # ferromagnetic ring without fields: all-up and all-down tie
    n = 5
    J = np.zeros((n, n))
    for i in range(n):
        J[min(i, (i + 1) % n), max(i, (i + 1) % n)] = -1.0
    res = ising_minimum(IsingModel.from_arrays(None, J))
    assert res.energy == -5.0
    assert res.degeneracy == 2
    assert res.indices.tolist() == [0, 2**n - 1]
    assert res.spins.tolist() == [[1] * n, [-1] * n]
    assert res.gap == pytest.approx(4.0)
