"""Exact enumeration against brute force; solver front ends against exact references."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.ising import IsingModel, qubo_energy
from nqp.quantum.optimize import (
    enumerate_ising,
    minimize_ising,
    minimize_qubo,
    solve_maxcut,
    solve_portfolio,
)
from nqp.quantum.problems import MaxCutProblem, PortfolioProblem, read_gset

GSET = Path(__file__).parents[2] / "../shared/data/gset"


def _all_spins(n: int) -> np.ndarray:
    """Every configuration, row k = index k (bit i of k set <=> s_i = +1)."""
    k = np.arange(2**n)[:, None]
    return (2 * ((k >> np.arange(n)[None, :]) & 1) - 1).astype(np.int8)


def _brute_force(model: IsingModel) -> tuple[np.ndarray, float, np.ndarray]:
    states = np.array(list(itertools.product([-1, 1], repeat=model.n)), dtype=np.int8)
    e = np.array([float(model.energy(s)) for s in states])
    emin = e.min()
    return states, emin, states[e <= emin + 1e-9]


def _random_model(n, seed, integer=False, density=1.0):
    rng = np.random.default_rng(seed)
    if integer:
        J = np.triu(rng.integers(-1, 2, size=(n, n)), k=1).astype(float)
        h = np.zeros(n)
    else:
        J = np.triu(rng.normal(size=(n, n)), k=1) * np.triu(rng.random((n, n)) < density, 1)
        h = rng.normal(size=n)
    return IsingModel.from_arrays(h, J, offset=0.25)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_enumeration_equals_itertools_brute_force(n, integer, seed):
    model = _random_model(n, seed, integer)
    _, emin, minimisers = _brute_force(model)
    res = enumerate_ising(model, return_spectrum=True)
    assert res.energy == pytest.approx(emin, abs=1e-12)
    assert res.degeneracy == len(minimisers)
    assert {g.tobytes() for g in res.ground_states} == {g.tobytes() for g in minimisers}
    np.testing.assert_allclose(res.spectrum, model.energy(_all_spins(n)), atol=1e-10)
    np.testing.assert_array_equal(res.ground_states, _all_spins(n)[res.indices])


def test_enumeration_n18_matches_vectorised_energies():
    model = _random_model(18, 3, density=0.4)
    res = enumerate_ising(model, return_spectrum=True)
    np.testing.assert_allclose(res.spectrum, model.energy(_all_spins(18)), atol=1e-9)
    assert res.energy == pytest.approx(res.spectrum.min())


def test_enumeration_counts_ties_beyond_max_solutions():
    # no couplings, fields 0 on 6 of 10 spins: 2**6 = 64 minimisers
    h = np.array([0.0] * 6 + [1.0, -1.0, 2.0, -0.5])
    model = IsingModel.from_arrays(h, np.zeros((10, 10)))
    res = enumerate_ising(model, max_solutions=5)
    assert res.degeneracy == 64
    assert res.ground_states.shape == (5, 10)
    assert res.energy == pytest.approx(-4.5)
    np.testing.assert_array_equal(res.ground_states[:, 6:], np.tile([-1, 1, -1, 1], (5, 1)))
    full = enumerate_ising(model)
    assert full.degeneracy == 64
    assert full.ground_states.shape == (64, 10)


def test_enumeration_limits():
    big = IsingModel.from_arrays(np.ones(31), np.zeros((31, 31)))
    with pytest.raises(InvalidInputError, match="limited to 30 variables"):
        enumerate_ising(big)
    with pytest.raises(InvalidInputError, match="with return_spectrum"):
        enumerate_ising(
            IsingModel.from_arrays(np.ones(27), np.zeros((27, 27))), return_spectrum=True
        )


def test_minimize_ising_auto_picks_exact_then_anneal():
    small = _random_model(12, 4)
    r = minimize_ising(small, seed=0)
    assert r.method == "exact"
    assert r.optimal
    assert r.energy == pytest.approx(enumerate_ising(small).energy)
    assert r.trace_sweeps.size == 0
    large = _random_model(24, 5, density=0.3)
    r2 = minimize_ising(large, seed=0, num_reads=8, num_sweeps=200)
    assert r2.method == "anneal"
    assert not r2.optimal
    assert r2.reads_completed == 8
    assert r2.energy == pytest.approx(float(large.energy(r2.solution)))
    assert r2.energy == pytest.approx(enumerate_ising(large).energy)
    assert r2.trace_energy[-1] >= r2.energy - 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_minimize_ising_anneal_equals_exact(seed):
    model = _random_model(14, seed, density=0.5)
    r = minimize_ising(model, method="anneal", num_reads=16, num_sweeps=300, seed=seed)
    assert r.energy == pytest.approx(enumerate_ising(model).energy, abs=1e-9)


def test_gap_to_best_known():
    model = _random_model(8, 0)
    exact = enumerate_ising(model).energy
    r = minimize_ising(model, best_known=exact - 1.0)
    assert r.gap == pytest.approx(1.0)
    assert r.relative_gap == pytest.approx(1.0 / abs(exact - 1.0))
    assert minimize_ising(model).gap is None


def test_minimize_qubo_equals_brute_force(rng):
    n = 10
    Q = rng.normal(size=(n, n))
    xs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)
    e = qubo_energy(Q, xs, 1.5)
    for method in ("exact", "anneal"):
        r = minimize_qubo(Q, 1.5, method=method, num_reads=16, num_sweeps=200, seed=1)
        assert r.variables == "binary"
        assert set(np.unique(r.solution)) <= {0, 1}
        assert r.energy == pytest.approx(e.min(), abs=1e-9)
        assert float(qubo_energy(Q, r.solution, 1.5)) == pytest.approx(r.energy, abs=1e-9)


def test_solver_parameter_errors():
    model = _random_model(4, 0)
    with pytest.raises(InvalidParameterError, match="'method' parameter of minimize_ising"):
        minimize_ising(model, method="qaoa")
    with pytest.raises(InvalidParameterError, match="'num_reads' parameter of minimize_qubo"):
        minimize_qubo(np.eye(3), num_reads=0)
    with pytest.raises(InvalidParameterError, match="limited to 30 variables"):
        minimize_ising(IsingModel.from_arrays(np.ones(31), np.zeros((31, 31))), method="exact")
    with pytest.raises(InvalidParameterError, match="must be an IsingModel"):
        minimize_ising(np.eye(3))


def _brute_max_cut(p: MaxCutProblem) -> float:
    return max(p.cut_value(np.array(bits)) for bits in itertools.product([0, 1], repeat=p.n_nodes))


@pytest.mark.parametrize("method", ["exact", "anneal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solve_maxcut_equals_brute_force(method, seed):
    rng = np.random.default_rng(seed)
    n = 11
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.4]
    w = rng.uniform(0.5, 2.0, size=len(pairs))
    p = MaxCutProblem.from_edges(n, pairs, w)
    r = solve_maxcut(p, method=method, num_reads=16, num_sweeps=200, seed=seed)
    assert r.objective == pytest.approx(_brute_max_cut(p))
    assert r.details["cut"] == pytest.approx(p.cut_value(r.solution))
    assert r.details["cut"] == pytest.approx(p.cut_from_energy(r.energy))
    assert r.sense == "max"


def test_solve_maxcut_g1_short_anneal():
    path = GSET / "G1.txt"
    if not path.exists():
        pytest.skip(f"Gset data not found at {path.resolve()} (shared/ beside the repo)")
    p = read_gset(path)
    r = solve_maxcut(p, num_reads=4, num_sweeps=1000, seed=0, best_known=11624)
    assert r.method == "anneal"
    assert r.objective >= 11500
    assert r.objective == p.cut_value(r.solution)
    assert r.objective == p.cut_from_energy(r.energy)
    assert r.gap == 11624 - r.objective
    assert r.reads_completed == 4


def _brute_portfolio(p: PortfolioProblem) -> tuple[float, list[int]]:
    n, k = p.n_assets, p.budget
    best, arg = -np.inf, None
    for sel in itertools.combinations(range(n), k):
        x = np.zeros(n, dtype=int)
        x[list(sel)] = 1
        obj = p.evaluate(x)["objective"]
        if obj > best:
            best, arg = obj, list(sel)
    return best, arg


def _random_portfolio(n, k, seed, q=2.0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) * 0.1
    return PortfolioProblem(
        mu=rng.normal(0.05, 0.05, size=n), sigma=A @ A.T / n, budget=k, risk_aversion=q
    )


@pytest.mark.parametrize("method", ["exact", "anneal"])
@pytest.mark.parametrize(("n", "k", "seed"), [(8, 3, 0), (10, 4, 1), (12, 6, 2), (9, 1, 3)])
def test_solve_portfolio_equals_brute_force_over_k_subsets(method, n, k, seed):
    p = _random_portfolio(n, k, seed)
    best, arg = _brute_portfolio(p)
    r = solve_portfolio(p, method=method, num_reads=16, num_sweeps=300, seed=seed)
    assert r.details["budget_satisfied"]
    assert r.details["selected"] == arg
    assert r.objective == pytest.approx(best, abs=1e-12)
    assert r.energy == pytest.approx(-best, abs=1e-9)
    x = r.solution
    assert r.details["expected_return"] == pytest.approx(float(np.asarray(p.mu) @ x))
    assert r.details["risk"] == pytest.approx(float(x @ np.asarray(p.sigma) @ x))


@pytest.mark.parametrize("seed", range(4))
def test_annealed_portfolio_respects_the_budget_on_larger_instances(seed):
    p = _random_portfolio(40, 7 + seed, seed, q=5.0)
    r = solve_portfolio(p, method="anneal", num_reads=4, num_sweeps=50, seed=seed)
    assert r.details["n_selected"] == p.budget
    assert r.details["budget_satisfied"]
