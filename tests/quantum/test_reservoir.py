"""QuantumReservoir checked against an independent dense Kronecker-product simulation.

The reference below builds every operator with ``np.kron`` (qubit 0 the most significant
factor), evolves with ``scipy.linalg.expm``, takes partial traces with explicit isometries and
reads expectation values as ``Tr(ρ Z_i)``: nothing is shared with the module's reshapes,
sign tables or structured products.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pytest
import scipy.linalg

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum import reservoir as reservoir_module
from nqp.quantum.reservoir import QuantumReservoir, QuantumReservoirReport, QuantumReservoirState

X = np.array([[0.0, 1.0], [1.0, 0.0]])
Z = np.diag([1.0, -1.0])
I2 = np.eye(2)


def _on(n: int, ops: dict[int, np.ndarray]) -> np.ndarray:
    """``kron(op_0, ..., op_{n-1})`` with the identity on qubits not in ``ops``."""
    return functools.reduce(np.kron, [ops.get(q, I2) for q in range(n)], np.eye(1))


def _embed(n: int, q: int, k: int) -> np.ndarray:
    """The isometry ``|k⟩_q ⊗ 1`` of shape (2^n, 2^(n-1))."""
    ket = np.zeros((2, 1))
    ket[k, 0] = 1.0
    return np.kron(np.kron(np.eye(2**q), ket), np.eye(2 ** (n - 1 - q)))


def _reference_hamiltonian(n: int, J: np.ndarray, h: np.ndarray, g: float) -> np.ndarray:
    H = np.zeros((2**n, 2**n))
    for i, j in itertools.combinations(range(n), 2):
        H -= J[i, j] * _on(n, {i: Z, j: Z})
    for i in range(n):
        H -= h[i] * _on(n, {i: X}) + g * _on(n, {i: Z})
    return H


def _observables(n: int) -> list[np.ndarray]:
    singles = [_on(n, {i: Z}) for i in range(n)]
    pairs = [_on(n, {i: Z, j: Z}) for i, j in itertools.combinations(range(n), 2)]
    return singles + pairs


class Reference:
    """One source of a QuantumReservoir, simulated densely from its parameters."""

    def __init__(self, qr: QuantumReservoir) -> None:
        n = qr.qubit_count
        self.qr, self.n = qr, n
        self.H = _reference_hamiltonian(n, qr.couplings_, qr.fields_, qr.longitudinal)
        self.U = scipy.linalg.expm(-1j * self.H * qr.evolution_time / qr.virtual_nodes)
        self.obs = _observables(n)
        self.rho = np.zeros((2**n, 2**n), dtype=complex)
        self.rho[0, 0] = 1.0

    def step(self, u: np.ndarray) -> np.ndarray:
        qr, n, rho = self.qr, self.n, self.rho
        x = qr.input_scaling * np.asarray(u, dtype=float)
        s = np.tanh(x) if qr.squash == "tanh" else np.clip(x, -1.0, 1.0)
        for sk, q in zip(s, qr.input_qubits, strict=True):
            if qr.injection == "reset":
                V = [_embed(n, q, 0), _embed(n, q, 1)]
                reduced = V[0].T @ rho @ V[0] + V[1].T @ rho @ V[1]
                psi = [np.sqrt((1 + sk) / 2), np.sqrt((1 - sk) / 2)]
                rho = sum(psi[a] * psi[b] * V[a] @ reduced @ V[b].T for a in (0, 1) for b in (0, 1))
            else:
                t = np.arccos(sk) / 2
                R = _on(n, {q: np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])})
                rho = R @ rho @ R.T
        features = []
        for _ in range(qr.virtual_nodes):
            rho = self.U @ rho @ self.U.conj().T
            features += [np.trace(rho @ o).real for o in self.obs]
        p, gamma = qr.dephasing, qr.amplitude_damping
        for q in range(n):
            Zq = _on(n, {q: Z})
            rho = (1 - p) * rho + p * Zq @ rho @ Zq
            K0 = _on(n, {q: np.diag([1.0, np.sqrt(1 - gamma)])})
            K1 = _on(n, {q: np.array([[0.0, np.sqrt(gamma)], [0.0, 0.0]])})
            rho = K0 @ rho @ K0.T + K1 @ rho @ K1.T
        self.rho = rho
        return np.array(features)


def _assert_same_state(got: QuantumReservoirState, want: QuantumReservoirState) -> None:
    """Every array of ``got`` equals ``want``'s bit for bit."""
    for name, value in want.arrays().items():
        np.testing.assert_array_equal(getattr(got, name), value, err_msg=name)


def _trace_distance(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.linalg.eigvalsh(a - b)).sum())


CONFIGS = {
    "default": {},
    "three-qubit-chain": {"qubit_count": 3, "topology": "chain", "virtual_nodes": 3},
    "ring-two-inputs": {
        "qubit_count": 4,
        "topology": "ring",
        "input_qubits": (3, 1),
        "longitudinal": 0.3,
        "squash": "clip",
    },
    "noisy-reset": {"qubit_count": 4, "input_qubits": (2,), "dephasing": 0.1},
    "rotation-noisy": {
        "qubit_count": 4,
        "injection": "rotation",
        "input_qubits": (0, 3),
        "dephasing": 0.05,
        "amplitude_damping": 0.2,
        "virtual_nodes": 1,
    },
    "rotation-unitary": {"qubit_count": 3, "injection": "rotation", "input_scaling": 2.0},
    "one-qubit": {"qubit_count": 1, "virtual_nodes": 2},
}


# ---------------------------------------------------------------- Hamiltonian and features


@pytest.mark.parametrize("topology", ["all-to-all", "chain", "ring"])
def test_hamiltonian_matches_kronecker_reference(topology):
    qr = QuantumReservoir(4, topology=topology, coupling=0.5, field_disorder=0.3, longitudinal=0.2)
    n = 4
    qr.init_state()  # first use validates and builds
    J, h = qr.couplings_, qr.fields_
    edges = {
        "all-to-all": set(itertools.combinations(range(n), 2)),
        "chain": {(0, 1), (1, 2), (2, 3)},
        "ring": {(0, 1), (1, 2), (2, 3), (0, 3)},
    }[topology]
    for i, j in itertools.product(range(n), repeat=2):
        if (i, j) in edges:
            assert -0.5 <= J[i, j] <= 1.5
            assert J[i, j] != 0.0
        else:
            assert J[i, j] == 0.0
    assert np.all((h >= 0.7) & (h <= 1.3))
    H = _reference_hamiltonian(n, J, h, 0.2)
    np.testing.assert_allclose(qr.hamiltonian_.toarray(), H, atol=1e-12)
    np.testing.assert_allclose(qr.eigenvalues_, np.linalg.eigvalsh(H), atol=1e-12)
    np.testing.assert_allclose(
        qr.propagator_, scipy.linalg.expm(-1j * H * qr.evolution_time / 4), atol=1e-12
    )


@pytest.mark.parametrize("feature_map", [True, False], ids=["feature-map", "node-by-node"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_features_and_state_match_dense_reference(name, feature_map, monkeypatch):
    """Reset features come from one precomputed map, or node by node when it is too large."""
    if not feature_map:
        monkeypatch.setattr(reservoir_module, "_FEATURE_MAP_BYTES", 0)
    qr = QuantumReservoir(**CONFIGS[name], seed=7)
    state = qr.init_state(1)
    ref = Reference(qr)
    rng = np.random.default_rng(1)
    m = len(qr.input_qubits)
    for _ in range(12):
        u = rng.normal(scale=1.5, size=(1, m))
        feats = qr.step(state, u)
        expected = ref.step(u[0])
        assert feats.shape == (1, qr.n_features)
        np.testing.assert_allclose(feats[0], expected, atol=1e-10, rtol=0)
        np.testing.assert_allclose(state.rho[0], ref.rho, atol=1e-10, rtol=0)
    if qr.injection == "reset":
        assert (qr._feature_weights is not None) == feature_map


def _random_density(rng: np.random.Generator, d: int, rank: int) -> np.ndarray:
    G = rng.normal(size=(d, rank)) + 1j * rng.normal(size=(d, rank))
    rho = G @ G.conj().T
    return rho / np.trace(rho).real


@pytest.mark.parametrize(
    "params",
    [
        {"qubit_count": 2},
        {"qubit_count": 3, "input_qubits": (2,), "virtual_nodes": 2},
        {"qubit_count": 4, "input_qubits": (3, 1), "longitudinal": 0.4},
        {"qubit_count": 5},
        {"qubit_count": 6, "input_qubits": (4,), "topology": "ring"},
        {"qubit_count": 4, "input_qubits": (1,), "dephasing": 0.1, "amplitude_damping": 0.2},
        {"qubit_count": 3, "input_qubits": (0, 2), "amplitude_damping": 0.3},
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
@pytest.mark.parametrize("tracked", ["scattered", "contiguous"])
def test_compiled_reset_step_matches_dense_reference_from_random_states(params, tracked):
    """Random mixed states and inputs, states and shadows: the compiled step (partial trace,
    packed feature map, upper triangle of A τ A†, noise after it) against the dense reference.
    Only the shadows still tracked advance, scattered or contiguous rows."""
    qr = QuantumReservoir(**params, seed=4)
    n_src = 7
    state = qr.init_state(n_src)
    d = 1 << qr.qubit_count
    rng = np.random.default_rng(21)
    for k in range(n_src):
        state.rho[k] = _random_density(rng, d, rank=1 + k % 3 * (d // 4))
        state.shadow[k] = _random_density(rng, d, rank=d)
    done = [0, 2, 3, 6] if tracked == "scattered" else [0, 1, 5, 6]
    state.converged[done] = True
    before = state.copy()
    m = len(qr.input_qubits)
    for _ in range(3):
        u = rng.normal(scale=1.5, size=(n_src, m))
        feats = qr.step(state, u)
        for k in range(n_src):
            ref = Reference(qr)
            ref.rho = before.rho[k].copy()
            np.testing.assert_allclose(feats[k], ref.step(u[k]), atol=1e-12, rtol=0)
            np.testing.assert_allclose(state.rho[k], ref.rho, atol=1e-12, rtol=0)
            shadow = Reference(qr)
            shadow.rho = before.shadow[k].copy()
            if k in done:
                np.testing.assert_array_equal(state.shadow[k], before.shadow[k])
                assert state.iterations[k] == before.iterations[k]
                continue
            shadow.step(u[k])
            np.testing.assert_allclose(state.shadow[k], shadow.rho, atol=1e-12, rtol=0)
            assert state.iterations[k] == before.iterations[k] + 1
            # the residual bounds the trace distance from above (or is it, near the tolerance)
            distance = _trace_distance(ref.rho, shadow.rho) * qr._scale
            assert state.residual[k] >= distance * (1 - 1e-9)
        # exactly Hermitian and of unit trace
        np.testing.assert_array_equal(state.rho, state.rho.conj().transpose(0, 2, 1))
        np.testing.assert_allclose(np.einsum("bii->b", state.rho).real, 1.0, atol=1e-12)
        before = state.copy()


def test_large_register_step_matches_dense_reference():
    """n = 8 (d = 256, d' = 128): the register size at which batched BLAS was once thought to
    beat the compiled update (it does not, up to n = 10: bench figure ``reservoir_update``);
    node-by-node features, blocked update, one shadow tracked, one not."""
    qr = QuantumReservoir(8, seed=4)
    state = qr.init_state(2)
    assert qr._feature_weights is None  # the map would exceed _FEATURE_MAP_BYTES
    rng = np.random.default_rng(23)
    for k in range(2):
        state.rho[k] = _random_density(rng, 256, rank=3 + 60 * k)
        state.shadow[k] = _random_density(rng, 256, rank=256)
    state.converged[1] = True
    refs, shadow = [Reference(qr), Reference(qr)], Reference(qr)
    for k in range(2):
        refs[k].rho = state.rho[k].copy()
    shadow.rho = state.shadow[0].copy()
    frozen = state.shadow[1].copy()
    for _ in range(2):
        u = rng.normal(scale=1.5, size=(2, 1))
        feats = qr.step(state, u)
        for k in range(2):
            np.testing.assert_allclose(feats[k], refs[k].step(u[k]), atol=1e-12, rtol=0)
            np.testing.assert_allclose(state.rho[k], refs[k].rho, atol=1e-13, rtol=0)
        shadow.step(u[0])
        np.testing.assert_allclose(state.shadow[0], shadow.rho, atol=1e-13, rtol=0)
        np.testing.assert_array_equal(state.shadow[1], frozen)
        np.testing.assert_array_equal(state.rho, state.rho.conj().transpose(0, 2, 1))
    assert state.iterations.tolist() == [2, 0]
    assert state.residual[0] >= _trace_distance(refs[0].rho, shadow.rho) * qr._scale * (1 - 1e-9)


def test_report_matches_direct_sums_on_random_states():
    qr = QuantumReservoir(4, seed=3)
    state = qr.init_state(5)
    rng = np.random.default_rng(22)
    for k in range(5):
        state.rho[k] = _random_density(rng, 16, rank=1 + 3 * k)
    rep = qr.report(state)
    H = qr.hamiltonian_.toarray()
    for k in range(5):
        rho = state.rho[k]
        assert rep.energy[k] == pytest.approx(np.trace(rho @ H).real, abs=1e-13)
        off = np.abs(rho).sum() - np.abs(np.diag(rho)).sum()
        assert rep.phase_coherence[k] == pytest.approx(off / 15, abs=1e-14)


def test_n_features_counts_singles_and_pairs_per_virtual_node():
    assert QuantumReservoir(5, virtual_nodes=4).n_features == 4 * (5 + 10)
    assert QuantumReservoir(1, virtual_nodes=3).n_features == 3
    assert QuantumReservoir(3, input_qubits=(0, 2)).n_inputs == 2


@pytest.mark.parametrize("name", ["default", "rotation-noisy", "rotation-unitary"])
def test_density_matrix_stays_physical_over_long_drive(name):
    qr = QuantumReservoir(**CONFIGS[name], seed=3)
    state = qr.init_state(6)
    rng = np.random.default_rng(2)
    m = len(qr.input_qubits)
    for _ in range(600):
        feats = qr.step(state, rng.normal(scale=2.0, size=(6, m)))
    rho = state.rho
    assert np.abs(rho - rho.conj().transpose(0, 2, 1)).max() <= 1e-12
    np.testing.assert_allclose(np.einsum("bii->b", rho), 1.0, atol=1e-12, rtol=0)
    hermitian = (rho + rho.conj().transpose(0, 2, 1)) / 2
    assert np.linalg.eigvalsh(hermitian).min() >= -1e-12
    assert np.all(np.abs(feats) <= 1.0 + 1e-12)


def test_batched_sources_equal_each_alone():
    qr = QuantumReservoir(4, input_qubits=(1, 2), dephasing=0.02, seed=5)
    rng = np.random.default_rng(3)
    u = rng.normal(size=(30, 5, 2))
    together = qr.run(u)
    batch = qr.init_state(5)
    qr.run(u, state=batch)
    for k in range(5):
        alone_state = qr.init_state(1)
        alone = qr.run(u[:, k], state=alone_state)
        np.testing.assert_allclose(together[:, k], alone, atol=1e-12, rtol=0)
        np.testing.assert_allclose(batch.rho[k], alone_state.rho[0], atol=1e-12, rtol=0)
        np.testing.assert_allclose(batch.shadow[k], alone_state.shadow[0], atol=1e-12, rtol=0)
        assert batch.iterations[k] == alone_state.iterations[0]


def test_gather_step_scatter_equals_stepping_all():
    qr = QuantumReservoir(3, seed=2)
    rng = np.random.default_rng(4)
    full = qr.init_state(4)
    parts = qr.init_state(4)
    for _ in range(5):
        u = rng.normal(size=(4, 1))
        qr.step(full, u)
        for rows in ([0, 3], [2, 1]):
            sub = parts.take(rows)
            qr.step(sub, u[rows])
            parts.put(rows, sub)
    for name, value in full.arrays().items():
        np.testing.assert_allclose(getattr(parts, name), value, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("name", ["default", "noisy-reset", "rotation-noisy", "ring-two-inputs"])
def test_stepping_rows_in_place_equals_gather_step_scatter(name):
    """``step(state, u, rows=r)`` and ``report(state, rows=r)`` give, bit for bit, what
    stepping and reporting ``state.take(r)`` gives, and leave the other rows alone; with
    washout shadows tracked for some rows only (some converged, some past max_washout)."""
    qr = QuantumReservoir(**CONFIGS[name], energy_tolerance=1e-3, seed=3)
    rng = np.random.default_rng(5)
    n, m = 9, len(CONFIGS[name].get("input_qubits", (0,)))
    in_place = qr.init_state(n)
    for _ in range(6):  # different histories per row
        qr.step(in_place, rng.normal(size=(n, m)))
    in_place.converged[[1, 4]] = True
    in_place.iterations[7] = qr.max_washout
    gathered = in_place.copy()
    for _ in range(12):
        rows = rng.permutation(n)[: rng.integers(1, n + 1)]  # scattered, any order
        u = rng.normal(size=(rows.size, m))
        got = qr.step(in_place, u, rows=rows)
        sub = gathered.take(rows)
        want = qr.step(sub, u)
        gathered.put(rows, sub)
        np.testing.assert_array_equal(got, want)
        got_report, want_report = qr.report(in_place, rows=rows), qr.report(sub)
        for field in dataclasses.fields(want_report):
            np.testing.assert_array_equal(
                getattr(got_report, field.name), getattr(want_report, field.name), field.name
            )
        _assert_same_state(in_place, gathered)


def test_bad_rows_raise_and_leave_state_unchanged():
    qr = QuantumReservoir(3)
    state = qr.init_state(4)
    before = state.copy()
    with pytest.raises(InvalidInputError, match="distinct"):
        qr.step(state, np.ones((2, 1)), rows=[3, 3])
    with pytest.raises(InvalidInputError, match=r"rows must lie in \[0, 4\)"):
        qr.step(state, np.ones((1, 1)), rows=[4])
    with pytest.raises(InvalidInputError, match="integer indices"):
        qr.step(state, np.ones((2, 1)), rows=[0.0, 1.0])
    with pytest.raises(InvalidInputError, match=r"u must have shape .* \(2, 1\)"):
        qr.step(state, np.ones((3, 1)), rows=[0, 1])
    with pytest.raises(InvalidInputError, match="distinct"):
        qr.report(state, rows=[0, 0])
    _assert_same_state(state, before)


def test_run_equals_stepping_and_accepts_one_source():
    qr = QuantumReservoir(3, virtual_nodes=2, seed=1)
    u = np.random.default_rng(5).uniform(-1, 1, size=(20, 1))
    out = qr.run(u)
    assert out.shape == (20, qr.n_features)
    state = qr.init_state(1)
    stepped = np.stack([qr.step(state, u[t : t + 1])[0] for t in range(20)])
    np.testing.assert_array_equal(out, stepped)


def test_same_seed_same_features_other_seed_differs():
    u = np.random.default_rng(6).normal(size=(15, 1))
    a = QuantumReservoir(seed=11).run(u)
    b = QuantumReservoir(seed=11).run(u)
    c = QuantumReservoir(seed=12).run(u)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


# ---------------------------------------------------------------- report


def test_report_energy_and_coherence():
    qr = QuantumReservoir(3, seed=4)
    state = qr.init_state(3)
    d = 8
    plus = np.full((d, d), 1.0 / d, dtype=complex)  # |+++⟩⟨+++|
    state.rho[1] = plus
    state.rho[2] = np.eye(d) / d
    rep = qr.report(state)
    assert isinstance(rep, QuantumReservoirReport)
    np.testing.assert_allclose(rep.phase_coherence, [0.0, 1.0, 0.0], atol=1e-15)
    H = _reference_hamiltonian(3, qr.couplings_, qr.fields_, 0.0)
    np.testing.assert_allclose(
        rep.energy, [H[0, 0], np.trace(plus @ H).real, np.trace(H) / d], atol=1e-12
    )
    rng = np.random.default_rng(7)
    for _ in range(10):
        qr.step(state, rng.normal(size=(3, 1)))
    rep = qr.report(state)
    for k in range(3):
        rho = state.rho[k]
        expected = (np.abs(rho).sum() - np.abs(np.diag(rho)).sum()) / (d - 1)
        assert rep.phase_coherence[k] == pytest.approx(expected, abs=1e-13)
        assert rep.energy[k] == pytest.approx(np.trace(rho @ H).real, abs=1e-12)
        assert 0.0 <= rep.phase_coherence[k] <= 1.0


@pytest.mark.parametrize("dephasing", [0.05, 0.0])  # 0.0: decided on the reduced states
def test_washout_converges_at_first_step_copies_agree(dephasing: float):
    """The reported iteration is the first at which independently simulated copies agree."""
    qr = QuantumReservoir(4, evolution_time=2.0, dephasing=dephasing, energy_tolerance=1e-5, seed=8)
    state = qr.init_state(1)
    real, shadow = Reference(qr), Reference(qr)
    shadow.rho = np.eye(16, dtype=complex) / 16
    E = qr.eigenvalues_
    scale = max(E[-1] - E[0], 2.0)
    rng = np.random.default_rng(8)
    first = None
    distances = []
    for t in range(1, 400):
        u = rng.uniform(-1, 1, size=(1, 1))
        qr.step(state, u)
        real.step(u[0])
        shadow.step(u[0])
        distances.append(_trace_distance(real.rho, shadow.rho))
        if first is None and distances[-1] * scale <= 1e-5:
            first = t
            energy_gap = abs(np.trace((real.rho - shadow.rho) @ real.H).real)
            break
    assert first is not None
    assert first > 1
    # trace distance never increases under the CPTP step
    assert np.all(np.diff(distances) <= 1e-12)
    rep = qr.report(state)
    assert bool(rep.converged[0])
    assert rep.iterations[0] == first
    assert rep.residual[0] == pytest.approx(distances[-1] * scale, rel=1e-6)
    assert energy_gap <= qr.energy_tolerance
    # once converged the washout is frozen
    qr.step(state, np.zeros((1, 1)))
    assert qr.report(state).iterations[0] == first


def test_washout_converges_for_default_reservoir():
    qr = QuantumReservoir()
    u = np.random.default_rng(9).uniform(-1, 1, size=(600, 3, 1))
    state = qr.init_state(3)
    qr.run(u, state=state)
    rep = qr.report(state)
    assert rep.converged.all()
    assert np.all((rep.iterations > 0) & (rep.iterations < 600))
    assert np.all(rep.residual <= qr.energy_tolerance)


def test_pure_unitary_reservoir_never_converges():
    """Rotation injection without noise is unitary: the copies' distance is conserved."""
    qr = QuantumReservoir(3, injection="rotation", max_washout=150, seed=2)
    state = qr.init_state(2)
    rep0 = qr.report(state)
    assert not rep0.converged.any()
    assert np.all(rep0.iterations == 0)
    qr.run(np.random.default_rng(10).normal(size=(200, 2, 1)), state=state)
    rep = qr.report(state)
    assert not rep.converged.any()
    np.testing.assert_array_equal(rep.iterations, [150, 150])
    E = qr.eigenvalues_
    # D(|000⟩⟨000|, 1/8) = 7/8 is conserved by unitary steps
    for k in range(2):
        assert _trace_distance(state.rho[k], state.shadow[k]) == pytest.approx(7 / 8, abs=1e-9)
    assert np.all(rep.residual >= 7 / 8 * max(E[-1] - E[0], 2.0) * (1 - 1e-9))


def test_washout_reports_not_converged_when_max_washout_too_small():
    qr = QuantumReservoir(max_washout=5)
    state = qr.init_state(2)
    qr.run(np.random.default_rng(11).uniform(-1, 1, size=(20, 2, 1)), state=state)
    rep = qr.report(state)
    assert not rep.converged.any()
    np.testing.assert_array_equal(rep.iterations, [5, 5])
    assert np.all(rep.residual > qr.energy_tolerance)


# ---------------------------------------------------------------- a memory task


def _nrmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)) / np.std(y))


def _ridge_nrmse(F: np.ndarray, y: np.ndarray, train: slice, test: slice) -> float:
    F1 = np.column_stack([F, np.ones(len(F))])
    A = F1[train]
    w = np.linalg.solve(A.T @ A + 1e-6 * np.eye(A.shape[1]), A.T @ y[train])
    return _nrmse(y[test], F1[test] @ w)


@pytest.fixture(scope="module")
def recall_data():
    u = np.random.default_rng(12).uniform(-1, 1, size=900)
    return u, QuantumReservoir(seed=0).run(u[:, None])


@pytest.mark.parametrize("delay", [1, 2, 3])
def test_reservoir_recalls_past_inputs_that_the_input_alone_cannot(delay, recall_data):
    u, F = recall_data
    y = np.roll(u, delay)  # the first `delay` targets wrap around but lie outside train/test
    train, test = slice(100, 600), slice(600, 900)
    reservoir = _ridge_nrmse(F, y, train, test)
    baseline = _ridge_nrmse(u[:, None], y, train, test)
    assert baseline > 0.95
    assert reservoir < 0.5


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("qubit_count", 0),
        ("qubit_count", 11),
        ("qubit_count", 2.0),
        ("evolution_time", 0.0),
        ("evolution_time", float("nan")),
        ("virtual_nodes", 0),
        ("topology", "star"),
        ("coupling_disorder", -0.1),
        ("field", float("inf")),
        ("injection", "swap"),
        ("squash", "sigmoid"),
        ("input_scaling", 0.0),
        ("dephasing", 0.6),
        ("amplitude_damping", 1.5),
        ("energy_tolerance", 0.0),
        ("max_washout", 0),
        ("seed", -1),
        ("input_qubits", ()),
        ("input_qubits", (5,)),
        ("input_qubits", (1, 1)),
        ("input_qubits", "0"),
        ("input_qubits", (True,)),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(param, value):
    qr = QuantumReservoir(**{param: value})  # __init__ stores, never validates
    assert getattr(qr, param) is value
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of QuantumReservoir"):
        qr.init_state(1)


def test_init_stores_parameters_unchanged():
    qr = QuantumReservoir(input_qubits=[1, 0])
    assert qr.input_qubits == [1, 0]
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(qr))
    assert "QuantumReservoir(qubit_count=5" in repr(qr)


def test_parameters_changed_after_first_use_are_applied():
    qr = QuantumReservoir(3, input_qubits=[0], virtual_nodes=2)
    assert qr.n_features == 2 * 6
    qr.virtual_nodes = 3
    assert qr.n_features == 3 * 6
    qr.input_qubits.append(2)  # in place
    assert qr.n_inputs == 2
    qr.input_qubits.append(2)  # now a duplicate: rejected on next use
    with pytest.raises(InvalidParameterError, match="input_qubits"):
        qr.init_state(1)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0.1], [np.nan]]),
        np.array([[np.inf], [0.0]]),
        np.zeros((3, 1)),
        np.zeros((2, 2)),
        np.zeros(2),
    ],
)
def test_bad_input_raises_and_leaves_state_unchanged(bad):
    qr = QuantumReservoir(3)
    state = qr.init_state(2)
    qr.step(state, np.array([[0.3], [-0.2]]))
    before = state.copy()
    with pytest.raises(InvalidInputError):
        qr.step(state, bad)
    _assert_same_state(state, before)


def test_run_rejects_non_finite_sequence_before_stepping():
    qr = QuantumReservoir(3)
    state = qr.init_state(1)
    before = state.copy()
    u = np.zeros((10, 1))
    u[7, 0] = np.nan
    with pytest.raises(InvalidInputError, match="non-finite"):
        qr.run(u, state=state)
    np.testing.assert_array_equal(state.rho, before.rho)


def test_state_from_other_register_is_rejected():
    small = QuantumReservoir(2).init_state(1)
    with pytest.raises(InvalidInputError, match=r"state\.rho must have shape"):
        QuantumReservoir(3).step(small, np.zeros((1, 1)))
    assert isinstance(small, QuantumReservoirState)


def test_state_with_wrong_fields_is_rejected():
    qr = QuantumReservoir(2)
    state = qr.init_state(2)
    state.iterations = state.iterations[:1]
    with pytest.raises(InvalidInputError, match=r"state\.iterations"):
        qr.step(state, np.zeros((2, 1)))
    state = qr.init_state(2)
    strided = np.zeros((2, 4, 8), dtype=complex)[:, :, ::2]
    strided[:] = state.rho
    state.rho = strided  # in-place updates through reshape would be silently lost
    with pytest.raises(InvalidInputError, match="C-contiguous"):
        qr.step(state, np.zeros((2, 1)))


@pytest.mark.parametrize("injection", ["reset", "rotation"])
def test_zero_sources_is_a_valid_batch(injection):
    qr = QuantumReservoir(3, injection=injection)
    state = qr.init_state(0)
    assert qr.step(state, np.zeros((0, 1))).shape == (0, qr.n_features)
    assert qr.report(state).energy.shape == (0,)


def test_chunked_batches_and_scattered_washout_rows_equal_each_alone():
    """70 sources span three chunks; reset rows leave a scattered set still in washout."""
    qr = QuantumReservoir(3, evolution_time=2.0, dephasing=0.1, energy_tolerance=1e-3, seed=6)
    rng = np.random.default_rng(13)
    u = rng.normal(size=(120, 70, 1))
    state = qr.init_state(70)
    qr.run(u[:80], state=state)
    assert state.converged.all()
    fresh = [3, 33, 50, 51, 69]
    state.put(fresh, qr.init_state(len(fresh)))
    out = qr.run(u[80:], state=state)
    for k in [0, 31, 32, 64, 69, *fresh]:
        alone = qr.init_state(1)
        if k not in fresh:
            qr.run(u[:80, k], state=alone)
        np.testing.assert_allclose(out[:, k], qr.run(u[80:, k], state=alone), atol=1e-12)
        for name, value in alone.arrays().items():
            np.testing.assert_allclose(getattr(state, name)[k], value[0], atol=1e-12)


def test_built_from_quantum_settings():
    from nqp.config import QuantumSettings

    settings = QuantumSettings(qubit_count=3, virtual_nodes=2, energy_tolerance=1e-4)
    # every reservoir setting maps onto a constructor parameter (readout_dim is the engine's)
    qr = QuantumReservoir(**settings.model_dump(exclude={"readout_dim"}), seed=1)
    assert qr.n_features == 2 * (3 + 3)
    assert qr.energy_tolerance == 1e-4
