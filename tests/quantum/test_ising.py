"""IsingModel / QUBO conversions checked by brute force over all assignments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from nqp.exceptions import InvalidInputError
from nqp.quantum.ising import IsingModel, qubo_energy


def _all_binary(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("sparse", [False, True])
def test_from_qubo_matches_qubo_energy_for_every_assignment(n, sparse, rng):
    Q = rng.normal(size=(n, n))
    m = IsingModel.from_qubo(sp.csr_array(Q) if sparse else Q, offset=0.7)
    x = _all_binary(n)
    np.testing.assert_allclose(m.energy(2 * x - 1), qubo_energy(Q, x, 0.7), atol=1e-12)


@pytest.mark.parametrize("n", [2, 5])
def test_to_qubo_round_trip(n, rng):
    J = np.triu(rng.normal(size=(n, n)), k=1)
    m = IsingModel.from_arrays(rng.normal(size=n), J, offset=-1.5)
    Q, off = m.to_qubo()
    x = _all_binary(n)
    np.testing.assert_allclose(qubo_energy(Q, x, off), m.energy(2 * x - 1), atol=1e-12)


def test_energy_closed_form_two_spins():
    m = IsingModel.from_arrays([0.5, -0.25], [[0.0, 2.0], [0.0, 0.0]], offset=1.0)
    # E = 0.5 s0 - 0.25 s1 + 2 s0 s1 + 1
    for s0, s1 in itertools.product([-1, 1], repeat=2):
        assert m.energy([s0, s1]) == pytest.approx(0.5 * s0 - 0.25 * s1 + 2 * s0 * s1 + 1)


def test_symmetric_input_counts_each_pair_twice():
    J = np.array([[0.0, 1.0], [1.0, 0.0]])
    m = IsingModel.from_arrays(None, J)
    assert m.energy([1, 1]) == pytest.approx(2.0)


def test_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="zero diagonal"):
        IsingModel.from_arrays(None, [[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="non-finite"):
        IsingModel.from_qubo([[np.nan, 0.0], [0.0, 0.0]])
    m = IsingModel.from_arrays(None, [[0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="-1 or \\+1"):
        m.energy([0, 1])
