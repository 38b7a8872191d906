"""Kernels behind nqp.quantum.evolution: tridiagonal Ritz pairs, two-pass Lanczos, segmented
Chebyshev propagation, checked against LAPACK, dense eigh and free fermions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from nqp.quantum.evolution import evolve, ground_state
from nqp.quantum.hamiltonian import (
    pauli_sum,
    transverse_field_ising,
    transverse_field_ising_operator,
)
from nqp.quantum.propagators import (
    _as_operator,
    _chebyshev_evolve,
    _lanczos_ground,
    _lowest_ritz_vector,
    _segments,
)


def free_fermion_ground_energy(J: np.ndarray, h: np.ndarray) -> float:
    M = np.diag(h) + np.diag(J, k=1)
    return -float(np.linalg.svd(M, compute_uv=False).sum())


@pytest.mark.parametrize("m", [1, 2, 3, 17, 120])
def test_lowest_ritz_vector_matches_lapack(m, rng):
    alpha = rng.normal(size=m)
    beta = np.abs(rng.normal(size=m))  # beta[m-1] is not part of T
    y = _lowest_ritz_vector(alpha, beta)
    if m == 1:
        assert y.tolist() == [1.0]
        return
    _, V = sla.eigh_tridiagonal(alpha, beta[:-1])
    assert abs(abs(y @ V[:, 0]) - 1.0) <= 1e-12
    assert np.linalg.norm(y) == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("n", [9, 10, 11])
def test_two_pass_lanczos_is_deterministic_and_exact(n):
    # regression: the unused v_{-1} buffer was np.empty, and 0·NaN garbage gave NaN vectors
    H = transverse_field_ising(n, coupling=1.0, field=0.8)
    op = _as_operator(H)
    runs = [_lanczos_ground(op, np.ones(2**n), 1e-9, 2**n) for _ in range(3)]
    for psi, n_mv in runs:
        assert np.all(np.isfinite(psi))
        assert n_mv < 200
        np.testing.assert_array_equal(psi, runs[0][0])
    psi = runs[0][0]
    energy = psi @ (H @ psi)
    assert energy == pytest.approx(
        free_fermion_ground_energy(np.ones(n - 1), np.full(n, 0.8)), abs=1e-12
    )
    assert np.linalg.norm(H @ psi - energy * psi) <= 1e-9


@pytest.mark.parametrize("method", ["lanczos", "arpack"])
def test_ground_state_non_stoquastic_complex(method, rng):
    n = 9
    terms = [(rng.normal(), f"Y{i} Z{(i + 1) % n}") for i in range(n)]
    terms += [(rng.normal(), f"X{i}") for i in range(n)]
    H = pauli_sum(n, terms)
    gs = ground_state(H, method=method, tol=1e-9)
    assert gs.residual <= 1e-9
    assert gs.energy == pytest.approx(np.linalg.eigvalsh(H.toarray())[0], abs=1e-10)


@pytest.mark.parametrize("n", [12, 14])
def test_ground_state_matrix_free_equals_free_fermions(n):
    gs = ground_state(transverse_field_ising_operator(n), tol=1e-8)
    assert gs.converged
    assert gs.residual <= 1e-8
    assert gs.state.dtype == np.float64
    exact = free_fermion_ground_energy(np.ones(n - 1), np.ones(n))
    assert gs.energy == pytest.approx(exact, abs=1e-10)
    assert np.all(gs.state > 0)  # Perron-Frobenius, phase fixed


def test_evolve_matrix_free_equals_sparse(rng):
    n = 10
    kw = {"coupling": rng.normal(size=n - 1), "field": rng.normal(size=n)}
    psi0 = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    t = np.linspace(0.0, 4.0, 25)
    a = evolve(transverse_field_ising(n, **kw), psi0, t, method="chebyshev")
    b = evolve(transverse_field_ising_operator(n, **kw), psi0, t, method="chebyshev")
    ref = evolve(transverse_field_ising(n, **kw), psi0, t, method="eigh")
    for out in (a, b):
        assert np.linalg.norm(out - ref, axis=1).max() <= 1e-9


def test_segments_split_complex_states_and_end_on_output_times():
    t = np.linspace(0.0, 10.0, 100)
    # a complex state under a real H costs the same per segment: splitting cuts the combination
    ends = _segments(t, 18.0, 1e-10, 30.0, first_real=False, real_h=True)
    assert len(ends) > 1
    assert ends[-1] == t.size
    assert ends == sorted(set(ends))
    assert ends[0] > 0
    # from a real state the later segments would run twice: one expansion is cheaper here
    assert _segments(t, 18.0, 1e-10, 30.0, first_real=True, real_h=True) == [t.size]


def test_segmented_chebyshev_matches_dense_over_long_times(rng):
    n = 8
    H = transverse_field_ising(n, coupling=rng.normal(size=n - 1), field=rng.normal(size=n))
    psi0 = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    psi0 /= np.linalg.norm(psi0)
    t = np.linspace(0.0, 30.0, 80)
    op = _as_operator(H)
    a = 0.5 * np.ptp(np.linalg.eigvalsh(H.toarray()))
    assert len(_segments(t, a, 1e-10, 60.0, first_real=False, real_h=True)) > 1
    out, _ = _chebyshev_evolve(op, psi0, t, 1e-10, 0)
    E, U = np.linalg.eigh(H.toarray())
    ref = (np.exp(-1j * np.outer(t, E)) * (U.conj().T @ psi0)) @ U.T
    err = np.linalg.norm(out - ref, axis=1)
    assert err.max() <= 1e-9
    assert (1.0 - np.abs(np.einsum("ij,ij->i", ref.conj(), out)) ** 2).max() <= 1e-12
    energy = np.einsum("ij,ij->i", out.conj(), (H @ out.T).T).real
    np.testing.assert_allclose(energy, energy[0], atol=1e-10)
