"""Pauli-sum builders checked against explicit Kronecker products and closed forms."""

from __future__ import annotations

import itertools
from functools import reduce

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg  # noqa: F401  (sp.linalg)

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.hamiltonian import (
    BitFlipOperator,
    ising_diagonal,
    ising_hamiltonian,
    pauli_sum,
    transverse_field_ising,
    transverse_field_ising_operator,
)
from nqp.quantum.ising import IsingModel

PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def kron_string(n: int, label: str) -> np.ndarray:
    """Reference: numpy.kron(op_0, op_1, ..., op_{n-1}), qubit 0 the leftmost factor."""
    ops = ["I"] * n
    for token in label.split():
        ops[int(token[1:])] = token[0]
    return reduce(np.kron, [PAULI[o] for o in ops])


def kron_sum(n: int, terms) -> np.ndarray:
    return sum((c * kron_string(n, s) for c, s in terms), np.zeros((2**n, 2**n), complex))


def random_terms(rng, n: int, n_terms: int, *, complex_coeff: bool, letters: str = "IXYZ"):
    terms = []
    for _ in range(n_terms):
        ops = rng.choice(list(letters), size=n)
        label = " ".join(f"{o}{q}" for q, o in enumerate(ops) if o != "I" or rng.random() < 0.3)
        c = rng.normal() + (1j * rng.normal() if complex_coeff else 0.0)
        terms.append((c, label))
    return terms


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("complex_coeff", [False, True])
def test_pauli_sum_equals_kronecker_construction(n, complex_coeff, rng):
    terms = random_terms(rng, n, 12, complex_coeff=complex_coeff)
    terms.append((0.7, ""))  # identity
    terms.append(terms[0])  # a repeated string adds up
    H = pauli_sum(n, terms)
    assert isinstance(H, sp.csr_array)
    assert H.has_canonical_format
    np.testing.assert_allclose(H.toarray(), kron_sum(n, terms), atol=1e-13)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_single_pauli_strings_match_kron_for_every_string(n, rng):
    labels = ["X", "Y", "Z"]
    for _ in range(20):
        qubits = rng.choice(n, size=rng.integers(1, n + 1), replace=False)
        label = " ".join(f"{labels[rng.integers(3)]}{q}" for q in qubits)
        np.testing.assert_array_equal(pauli_sum(n, [(1.0, label)]).toarray(), kron_string(n, label))


def test_qubit_zero_is_most_significant_factor():
    # X on qubit 0 of 3 flips bit 2 (value 4): |000> -> |100>
    H = pauli_sum(3, [(1.0, "X0")])
    assert H[4, 0] == 1.0
    assert H[1, 0] == 0.0
    # Z|0> = +|0>: Z2 is -1 exactly on odd basis indices
    np.testing.assert_array_equal(pauli_sum(3, [(1.0, "Z2")]).diagonal(), [1, -1] * 4)


def test_dtype_real_when_every_term_real(rng):
    assert pauli_sum(3, [(1.0, "Y0 Y2"), (0.5, "X1"), (2, "Z0")]).dtype == np.float64
    assert pauli_sum(2, [(1.0, "Y0")]).dtype == np.complex128
    assert pauli_sum(2, [(1j, "Z0")]).dtype == np.complex128
    # i * Y is real: complex coefficient and odd Y count combine into a real term
    H = pauli_sum(1, [(1j, "Y0")])
    assert H.dtype == np.float64
    np.testing.assert_array_equal(H.toarray(), [[0, 1], [-1, 0]])


@pytest.mark.parametrize("n", [2, 5])
def test_real_coefficients_give_hermitian_matrix(n, rng):
    H = pauli_sum(n, random_terms(rng, n, 15, complex_coeff=False))
    assert abs(H - H.conj().T).max() < 1e-14


def test_cancelling_terms_leave_no_explicit_zeros():
    H = pauli_sum(2, [(1.0, "X0 Z1"), (-1.0, "X0 Z1"), (1.0, "Z0")])
    assert H.nnz == 4
    np.testing.assert_array_equal(H.toarray(), np.diag([1.0, 1.0, -1.0, -1.0]))


def test_empty_sum_is_zero_matrix():
    H = pauli_sum(2, [])
    assert H.shape == (4, 4)
    assert H.nnz == 0


@pytest.mark.parametrize(
    ("terms", "match"),
    [
        ([(1.0, "X3")], "acts on qubit 3"),
        ([(1.0, "X0 Z0")], "more than once"),
        ([(1.0, "A0")], "Cannot parse"),
        ([(1.0, "X")], "Cannot parse"),
        ([(float("nan"), "X0")], "not finite"),
        ([("1", "X0")], "must be a number"),
        ([(1.0,)], "pair"),
    ],
)
def test_pauli_sum_rejects_bad_terms(terms, match):
    with pytest.raises(InvalidInputError, match=match):
        pauli_sum(2, terms)


@pytest.mark.parametrize("n", [0, -1, 31, 2.0, True])
def test_bad_qubit_count(n):
    with pytest.raises(InvalidParameterError, match="'n_qubits' parameter of pauli_sum"):
        pauli_sum(n, [])


def tfim_kron(n, J, h, g, periodic):
    terms = [(-J[i], f"Z{i} Z{(i + 1) % n}") for i in range(len(J))]
    terms += [(-h[i], f"X{i}") for i in range(n)] + [(-g[i], f"Z{i}") for i in range(n)]
    return kron_sum(n, terms).real


@pytest.mark.parametrize(
    ("n", "periodic"), [(1, False), (2, False), (5, False), (3, True), (6, True)]
)
def test_tfim_with_disorder_equals_kronecker_construction(n, periodic, rng):
    J = rng.normal(size=n if periodic else n - 1)
    h, g = rng.normal(size=n), rng.normal(size=n)
    H = transverse_field_ising(n, coupling=J, field=h, longitudinal=g, periodic=periodic)
    assert H.dtype == np.float64
    assert H.has_canonical_format
    np.testing.assert_allclose(H.toarray(), tfim_kron(n, J, h, g, periodic), atol=1e-13)


def test_tfim_scalars_broadcast_and_equal_pauli_sum():
    n = 4
    H = transverse_field_ising(n, coupling=0.7, field=0.3, longitudinal=-0.2, periodic=True)
    terms = [(-0.7, f"Z{i} Z{(i + 1) % n}") for i in range(n)]
    terms += [(-0.3, f"X{i}") for i in range(n)] + [(0.2, f"Z{i}") for i in range(n)]
    assert abs(H - pauli_sum(n, terms)).max() < 1e-15
    # n off-diagonal entries per row plus the nonzero diagonal entries (zeros are dropped)
    assert H.nnz == n * 2**n + np.count_nonzero(H.diagonal())


@pytest.mark.parametrize(("J", "h"), [(1.0, 0.5), (0.3, 2.0), (-1.2, 0.7)])
def test_two_qubit_tfim_spectrum_closed_form(J, h):
    # H = -J Z0Z1 - h(X0 + X1). In the basis |00>±|11>, |01>±|10>: |00>-|11> -> -J,
    # |01>-|10> -> +J, and {|00>+|11>, |01>+|10>} give [[-J, -2h], [-2h, J]] -> ±sqrt(J²+4h²).
    H = transverse_field_ising(2, coupling=J, field=h)
    r = np.sqrt(J**2 + 4 * h**2)
    np.testing.assert_allclose(np.linalg.eigvalsh(H.toarray()), np.sort([-r, r, -J, J]), atol=1e-13)


def test_pure_zz_spectrum():
    # -J Z0Z1: aligned spins -J (twice), anti-aligned +J (twice); diagonal in the Z basis
    H = transverse_field_ising(2, coupling=1.5, field=0.0)
    np.testing.assert_array_equal(H.toarray(), np.diag([-1.5, 1.5, 1.5, -1.5]))
    assert H.nnz == 4


def test_tfim_rejects_bad_shapes_and_periodic_pair():
    with pytest.raises(InvalidInputError, match=r"coupling must be a scalar or have shape \(3,\)"):
        transverse_field_ising(4, coupling=np.ones(4))
    with pytest.raises(InvalidInputError, match=r"field .* shape \(4,\)"):
        transverse_field_ising(4, field=np.ones(3))
    with pytest.raises(InvalidInputError, match="non-finite"):
        transverse_field_ising(3, longitudinal=[0.0, np.inf, 0.0])
    with pytest.raises(InvalidParameterError, match="n_qubits >= 3"):
        transverse_field_ising(2, periodic=True)
    with pytest.raises(InvalidParameterError, match="'periodic'"):
        transverse_field_ising(3, periodic=1)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_ising_diagonal_equals_model_energy_for_every_configuration(n, rng):
    J = np.triu(rng.normal(size=(n, n)), k=1)
    J[rng.random(size=J.shape) < 0.3] = 0.0
    model = IsingModel.from_arrays(rng.normal(size=n), J, offset=0.4)
    bits = np.array(list(itertools.product([0, 1], repeat=n)))  # row b = binary digits of b
    spins = 1 - 2 * bits  # qubit 0 is the most significant bit
    np.testing.assert_allclose(ising_diagonal(model), model.energy(spins), atol=1e-12)


def test_ising_hamiltonian_equals_z_pauli_sum(rng):
    n = 4
    Q = rng.normal(size=(n, n))
    model = IsingModel.from_qubo(Q, offset=-0.3)
    Ju = sp.triu(model.J, k=1).toarray()
    terms = [(model.h[i], f"Z{i}") for i in range(n)]
    terms += [(Ju[i, j], f"Z{i} Z{j}") for i in range(n) for j in range(i + 1, n)]
    terms.append((model.offset, ""))
    H = ising_hamiltonian(model)
    assert H.dtype == np.float64
    np.testing.assert_allclose(H.toarray(), pauli_sum(n, terms).toarray(), atol=1e-12)
    # and the spectrum is the QUBO energy table
    np.testing.assert_allclose(
        np.sort(H.diagonal()),
        np.sort(
            [
                x @ Q @ x - 0.3
                for x in np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)
            ]
        ),
        atol=1e-12,
    )


def test_ising_diagonal_rejects_non_model():
    with pytest.raises(InvalidInputError, match="IsingModel"):
        ising_diagonal(np.zeros(3))


# ----------------------------------------------------------------------------- matrix-free


@pytest.mark.parametrize(
    ("n", "periodic"), [(1, False), (2, False), (3, True), (6, True), (13, False), (14, True)]
)
def test_tfim_operator_equals_csr_on_real_and_complex_vectors(n, periodic, rng):
    # n = 13 / 14 span several 2^13-float cache tiles, so partner-tile flips are exercised
    kw = {
        "coupling": rng.normal(size=n if periodic else n - 1),
        "field": rng.normal(size=n),
        "longitudinal": rng.normal(size=n),
        "periodic": periodic,
    }
    op = transverse_field_ising_operator(n, **kw)
    H = transverse_field_ising(n, **kw)
    assert isinstance(op, BitFlipOperator)
    assert op.shape == H.shape
    assert op.dtype == np.float64
    x = rng.normal(size=2**n)
    z = x + 1j * rng.normal(size=2**n)
    np.testing.assert_allclose(op @ x, H @ x, atol=1e-12)
    np.testing.assert_allclose(op @ z, H @ z, atol=1e-12)
    assert abs(op.tocsr() - H).max() == 0.0
    X = rng.normal(size=(2**n, 3))
    np.testing.assert_allclose(op @ X, H @ X, atol=1e-12)
    np.testing.assert_allclose(op.H @ x, H @ x, atol=1e-12)


def test_bit_flip_operator_multi_bit_flips_equal_pauli_sum(rng):
    n = 14
    labels = ["X0 X1", "X2 X13", "X0 X5 X9", "X12", "X13", "X1 X12 X13"]
    coefs = rng.normal(size=len(labels))
    diag_terms = [(0.7, "Z0 Z3"), (-0.4, "Z13")]
    H = pauli_sum(n, [*zip(coefs, labels, strict=True), *diag_terms])
    flips = [sum(1 << (n - 1 - int(t[1:])) for t in lab.split()) for lab in labels]
    op = BitFlipOperator(pauli_sum(n, diag_terms).diagonal(), flips, coefs)
    x = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    np.testing.assert_allclose(op @ x, H @ x, atol=1e-12)
    assert op.is_stoquastic == bool(np.all(coefs <= 0))
    assert op.norm_bound >= np.abs(sp.linalg.eigsh(H, k=1, which="LM")[0][0]) - 1e-9


def test_bit_flip_operator_validation():
    with pytest.raises(InvalidInputError, match="2\\*\\*n_qubits"):
        BitFlipOperator(np.zeros(6), [1], [1.0])
    with pytest.raises(InvalidInputError, match="distinct masks"):
        BitFlipOperator(np.zeros(8), [1, 1], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="distinct masks"):
        BitFlipOperator(np.zeros(8), [8], [1.0])
    with pytest.raises(InvalidInputError, match="coefficients has shape"):
        BitFlipOperator(np.zeros(8), [1, 2], [1.0])
    with pytest.raises(InvalidInputError, match="integer bit masks"):
        BitFlipOperator(np.zeros(8), [1.5], [1.0])
    with pytest.raises(InvalidParameterError, match="'periodic' parameter"):
        transverse_field_ising_operator(2, periodic=True)
